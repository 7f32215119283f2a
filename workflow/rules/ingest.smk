# Ingest is a map: one job per input file (or generated shard), a part of the sample; prepare
# and the sample histograms read the parts in order (the reduce). A cluster ingests every
# file at once, and appending a file to a sample ingests only that file.


def ingest_parts(sample):
    """The canonical parts of a sample, in the order of its files (or shards)."""
    n_parts = len(ingest_part_files(CONFIG, sample))
    return [f"data/ingested/{sample}/{part}.h5" for part in range(n_parts)]


rule ingest:
    """One ROOT or HDF5 input file of a sample -> one canonical HDF5 part (FTAG layout)."""
    input:
        lambda w: ingest_part_files(CONFIG, w.sample)[int(w.part)],
    output:
        "data/ingested/{sample}/{part}.h5",
    params:
        settings=lambda w: settings("ingest", sample=w.sample, part=int(w.part)),
    benchmark:
        "results/benchmarks/ingest/{sample}/{part}.tsv"
    log:
        "logs/ingest/{sample}/{part}.log",
    resources:
        runtime=60,
        mem_mb=4000,
    shell:
        "jettag ingest --config {CONFIG_FILE} --sample {wildcards.sample} --part {wildcards.part}"
        " --output {output} {input}" + TO_LOG
