PREPARED = ["train.h5", "val.h5", "test.h5", "norm.yaml", "weights.yaml"]


def dataset_parts(dataset):
    """The ingested parts a dataset is prepared from: its sample's, or its components'."""
    return [f"data/ingested/{s}/{k}.h5" for s, k in jettag_dataset_parts(CONFIG, dataset)]


rule prepare:
    """Splits, derived variables, normalisation and weights, fitted on train only."""
    input:
        lambda w: dataset_parts(w.dataset),
    output:
        expand("data/prepared/{{dataset}}/{name}", name=PREPARED),
    params:
        settings=lambda w: settings("prepare", dataset=w.dataset),
        output_dir=lambda w: f"data/prepared/{w.dataset}",
    benchmark:
        "results/benchmarks/prepare/{dataset}.tsv"
    log:
        "logs/prepare/{dataset}.log",
    resources:
        runtime=60,
        mem_mb=8000,
    shell:
        "jettag prepare --config {CONFIG_FILE} --dataset {wildcards.dataset}"
        " --input {input} --output-dir {params.output_dir}" + TO_LOG
