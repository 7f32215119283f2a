rule generate:
    """One shard of a generated sample: Pythia 8 + FastJet + parametrised tracker."""
    output:
        "data/generated/{sample}/{shard}.root",
    params:
        settings=lambda w: settings("generate", sample=w.sample, shard=int(w.shard)),
    benchmark:
        "results/benchmarks/generate/{sample}/{shard}.tsv"
    log:
        "logs/generate/{sample}/{shard}.log",
    resources:
        runtime=120,
        mem_mb=2000,
    shell:
        "jettag generate --config {CONFIG_FILE} --sample {wildcards.sample}"
        " --shard {wildcards.shard} --output {output}" + TO_LOG
