def ingest_inputs(wildcards):
    """Generated shards, or the files named in the config."""
    sample = CONFIG["samples"][wildcards.sample]
    if sample["source"] == "generate":
        return expand(
            "data/generated/{sample}/{shard}.root",
            sample=wildcards.sample,
            shard=range(sample["n_shards"] + sample["test_shards"]),
        )
    return sample["files"]


rule ingest:
    """ROOT or HDF5 inputs -> one canonical HDF5 file (FTAG layout)."""
    input:
        ingest_inputs,
    output:
        "data/ingested/{sample}.h5",
    params:
        settings=lambda w: settings("ingest", sample=w.sample),
    benchmark:
        "results/benchmarks/ingest/{sample}.tsv"
    log:
        "logs/ingest/{sample}.log",
    resources:
        runtime=60,
        mem_mb=4000,
    shell:
        "jettag ingest --config {CONFIG_FILE} --sample {wildcards.sample}"
        " --output {output} {input} > {log} 2>&1"
