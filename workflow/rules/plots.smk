PLOT_FORMATS = CONFIG["plots"]["formats"]


def dataset_metrics(dataset):
    """Metrics files of every tagger evaluated on a dataset."""
    return [f"results/metrics/{t}.json" for t in TAGGERS if tagger_dataset(t) == dataset]


rule plot_roc:
    """Rejection vs b efficiency of every tagger on the main dataset, ratio to the reference."""
    input:
        dataset_metrics(MAIN_DATASET),
    output:
        expand("results/plots/roc.{ext}", ext=PLOT_FORMATS),
    params:
        settings=lambda w: settings(
            plots=CONFIG["plots"], labels={t: jcfg.tagger_label(CONFIG, t) for t in TAGGERS}
        ),
    benchmark:
        "results/benchmarks/plot_roc.tsv"
    log:
        "logs/plots/roc.log",
    shell:
        "jettag plot-roc --config {CONFIG_FILE} --output-stem results/plots/roc {input}"
        " > {log} 2>&1"


rule plot_roc_dataset:
    """The ROC figure of the taggers of another dataset (e.g. the high-pT Z' sample)."""
    input:
        lambda w: dataset_metrics(w.dataset),
    output:
        expand("results/plots/roc_{{dataset}}.{ext}", ext=PLOT_FORMATS),
    params:
        settings=lambda w: settings(
            plots=CONFIG["plots"], labels={t: jcfg.tagger_label(CONFIG, t) for t in TAGGERS}
        ),
    benchmark:
        "results/benchmarks/plot_roc/{dataset}.tsv"
    log:
        "logs/plots/roc_{dataset}.log",
    shell:
        "jettag plot-roc --config {CONFIG_FILE} --output-stem results/plots/roc_{wildcards.dataset}"
        " {input} > {log} 2>&1"


rule plot_loss:
    """Training and validation loss of a model's members."""
    input:
        lambda w: expand(
            "results/models/{model}/{member}/history.csv",
            model=w.model,
            member=range(CONFIG["models"][w.model]["members"]),
        ),
    output:
        expand("results/plots/loss_{{model}}.{ext}", ext=PLOT_FORMATS),
    params:
        settings=lambda w: settings(plots=CONFIG["plots"]),
    benchmark:
        "results/benchmarks/plot_loss/{model}.tsv"
    log:
        "logs/plots/loss_{model}.log",
    shell:
        "jettag plot-loss --config {CONFIG_FILE} --model {wildcards.model}"
        " --output-stem results/plots/loss_{wildcards.model} {input} > {log} 2>&1"


SAMPLE_PLOTS = [
    "IP3D_signed_d0_significance",
    "IP3D_signed_z0_significance",
    "n_tracks",
    "jet_pt",
    "track_pt",
    "track_origins",
]


rule sample_histograms:
    """Per-flavour validation histograms of a sample (the numbers behind its plots)."""
    input:
        "data/ingested/{sample}.h5",
    output:
        "results/validation/{sample}.json",
    benchmark:
        "results/benchmarks/sample_histograms/{sample}.tsv"
    log:
        "logs/sample_histograms/{sample}.log",
    shell:
        "jettag sample-histograms --config {CONFIG_FILE} --sample {wildcards.sample}"
        " --input {input} --output {output} > {log} 2>&1"


rule plot_sample:
    """sd0, sz0, multiplicity, pT and track origins per flavour."""
    input:
        "results/validation/{sample}.json",
    output:
        expand("results/plots/sample_{{sample}}_{var}.{ext}", var=SAMPLE_PLOTS, ext=PLOT_FORMATS),
    params:
        settings=lambda w: settings(plots=CONFIG["plots"], sample=CONFIG["samples"][w.sample]),
    benchmark:
        "results/benchmarks/plot_sample/{sample}.tsv"
    log:
        "logs/plots/sample_{sample}.log",
    shell:
        "jettag plot-sample --config {CONFIG_FILE} --sample {wildcards.sample}"
        " --histograms {input} --output-prefix results/plots/sample_{wildcards.sample} > {log} 2>&1"
