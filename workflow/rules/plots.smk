


def dataset_metrics(dataset):
    """Metrics files of every tagger evaluated on a dataset."""
    return [f"results/metrics/{t}.json" for t in TAGGERS if tagger_dataset(t) == dataset]


rule plot_roc:
    """Rejection vs b efficiency of every tagger on the main dataset, ratio to the reference."""
    input:
        metrics=dataset_metrics(MAIN_DATASET),
        comparison=f"results/working_points/{MAIN_DATASET}.json",
    output:
        plot_files("results/plots/roc", "roc", "Performance"),
    params:
        settings=lambda w: settings("plot-roc", dataset=MAIN_DATASET),
        dataset=MAIN_DATASET,
    benchmark:
        "results/benchmarks/plot_roc.tsv"
    log:
        "logs/plots/roc.log",
    shell:
        "jettag plot-roc --config {CONFIG_FILE} --dataset {params.dataset} --comparison"
        " {input.comparison} --output-stem results/plots/roc {input.metrics}" + TO_LOG


rule plot_roc_dataset:
    """The ROC figure of the taggers of another dataset (e.g. the high-pT Z' sample)."""
    input:
        metrics=lambda w: dataset_metrics(w.dataset),
        comparison="results/working_points/{dataset}.json",
    output:
        plot_files("results/plots/roc_{dataset}", "roc", "Performance"),
    params:
        settings=lambda w: settings("plot-roc", dataset=w.dataset),
    benchmark:
        "results/benchmarks/plot_roc/{dataset}.tsv"
    log:
        "logs/plots/roc_{dataset}.log",
    shell:
        "jettag plot-roc --config {CONFIG_FILE} --dataset {wildcards.dataset} --comparison"
        " {input.comparison} --output-stem results/plots/roc_{wildcards.dataset}"
        " {input.metrics}" + TO_LOG


rule plot_loss:
    """Training and validation loss of a model's members, and each one's loss-curve diagnosis."""
    input:
        lambda w: expand(
            "results/models/{model}/{member}/history.csv",
            model=w.model,
            member=range(CONFIG["models"][w.model]["members"]),
        ),
    output:
        plot_files("results/plots/loss_{model}", "loss", "Training"),
        diagnosis="results/diagnosis/{model}.json",
    params:
        settings=lambda w: settings("plot-loss", model=w.model),
    benchmark:
        "results/benchmarks/plot_loss/{model}.tsv"
    log:
        "logs/plots/loss_{model}.log",
    shell:
        "jettag plot-loss --config {CONFIG_FILE} --model {wildcards.model}"
        " --output-stem results/plots/loss_{wildcards.model} --diagnosis {output.diagnosis}"
        " {input}" + TO_LOG


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
        lambda w: ingest_parts(w.sample),
    output:
        "results/validation/{sample}.json",
    params:
        settings=lambda w: settings("sample-histograms", sample=w.sample),
    benchmark:
        "results/benchmarks/sample_histograms/{sample}.tsv"
    log:
        "logs/sample_histograms/{sample}.log",
    shell:
        "jettag sample-histograms --config {CONFIG_FILE} --sample {wildcards.sample}"
        " --input {input} --output {output}" + TO_LOG


rule plot_sample:
    """sd0, sz0, multiplicity, pT and track origins per flavour."""
    input:
        "results/validation/{sample}.json",
    output:
        plot_files("results/plots/sample_{sample}", "sample", "Samples", [f"_{v}" for v in SAMPLE_PLOTS]),
    params:
        settings=lambda w: settings("plot-sample", sample=w.sample),
    benchmark:
        "results/benchmarks/plot_sample/{sample}.tsv"
    log:
        "logs/plots/sample_{sample}.log",
    shell:
        "jettag plot-sample --config {CONFIG_FILE} --sample {wildcards.sample}"
        " --histograms {input} --output-prefix results/plots/sample_{wildcards.sample}" + TO_LOG


# the discriminant's signal efficiency and each background's rejection (D_b: b, c, light)
PT_PLOTS = [f"{SIGNAL}_efficiency"] + [f"{b}_rejection" for b in BACKGROUNDS]


rule plot_pt:
    """Signal efficiency and background rejections vs jet pT, every tagger of a dataset."""
    input:
        lambda w: [
            f"results/performance/{t}_pt.json" for t in TAGGERS if tagger_dataset(t) == w.dataset
        ],
    output:
        plot_files("results/plots/pt_{dataset}", "pt", "Performance", [f"_{v}" for v in PT_PLOTS]),
    params:
        settings=lambda w: settings("plot-pt", dataset=w.dataset),
    benchmark:
        "results/benchmarks/plot_pt/{dataset}.tsv"
    log:
        "logs/plots/pt_{dataset}.log",
    shell:
        "jettag plot-pt --config {CONFIG_FILE} --dataset {wildcards.dataset} --output-prefix"
        " results/plots/pt_{wildcards.dataset} {input}" + TO_LOG


rule plot_scores:
    """D_b per flavour of one tagger, with the working-point cuts."""
    input:
        "results/performance/{tagger}_scores.json",
    output:
        plot_files("results/plots/scores_{tagger}", "scores", "Performance"),
    params:
        settings=lambda w: settings("plot-scores", tagger=w.tagger),
    benchmark:
        "results/benchmarks/plot_scores/{tagger}.tsv"
    log:
        "logs/plots/scores_{tagger}.log",
    shell:
        "jettag plot-scores --config {CONFIG_FILE} --tagger {wildcards.tagger} --scores {input}"
        " --output-stem results/plots/scores_{wildcards.tagger}" + TO_LOG


rule plot_fraction_scan:
    """One background's rejection against another's as its fraction varies, every tagger."""
    input:
        "results/fraction_scan/{dataset}.json",
    output:
        plot_files("results/plots/fraction_scan_{dataset}", "fraction_scan", "Performance"),
    params:
        settings=lambda w: settings("plot-fraction-scan", dataset=w.dataset),
    benchmark:
        "results/benchmarks/plot_fraction_scan/{dataset}.tsv"
    log:
        "logs/plots/fraction_scan_{dataset}.log",
    shell:
        "jettag plot-fraction-scan --config {CONFIG_FILE} --dataset {wildcards.dataset}"
        " --scan {input} --output-stem results/plots/fraction_scan_{wildcards.dataset}" + TO_LOG


rule plot_multiclass:
    """Confusion matrix and binary-task ROCs of one tagger."""
    input:
        "results/multiclass/{tagger}.json",
    output:
        plot_files(
            "results/plots/multiclass_{tagger}", "multiclass", "Performance",
            ["_confusion", "_tasks"],
        ),
    params:
        settings=lambda w: settings("plot-multiclass", tagger=w.tagger),
    benchmark:
        "results/benchmarks/plot_multiclass/{tagger}.tsv"
    log:
        "logs/plots/multiclass_{tagger}.log",
    shell:
        "jettag plot-multiclass --config {CONFIG_FILE} --tagger {wildcards.tagger}"
        " --result {input} --output-prefix results/plots/multiclass_{wildcards.tagger}" + TO_LOG


def input_plot_names():
    """Figures of plot-inputs: one per input, the jet-pT reweighting, key inputs reweighted."""
    prepare = CONFIG["prepare"]
    names = [i["name"] for i in prepare["track_inputs"] + prepare["jet_inputs"]]
    key = [n for n in ("IP3D_signed_d0_significance", "ptfrac") if n in names]
    return names + ["jet_pt_reweighting"] + [f"{n}_reweighted" for n in key]


rule input_histograms:
    """Each model input per flavour: raw, transformed, normalised, pT-reweighted (train split)."""
    input:
        "data/prepared/{dataset}/train.h5",
        "data/prepared/{dataset}/norm.yaml",
        "data/prepared/{dataset}/weights.yaml",
    output:
        "results/inputs/{dataset}.json",
    params:
        settings=lambda w: settings("input-histograms", dataset=w.dataset),
    log:
        "logs/input_histograms/{dataset}.log",
    shell:
        "jettag input-histograms --config {CONFIG_FILE} --dataset {wildcards.dataset}"
        " --data-dir data/prepared/{wildcards.dataset} --output {output}" + TO_LOG


rule plot_inputs:
    """Input distributions before and after each transform, and the pT reweighting."""
    input:
        "results/inputs/{dataset}.json",
    output:
        plot_files(
            "results/plots/inputs_{dataset}", "inputs", "Inputs", [f"_{n}" for n in input_plot_names()]
        ),
    params:
        settings=lambda w: settings("plot-inputs", dataset=w.dataset),
    log:
        "logs/plots/inputs_{dataset}.log",
    shell:
        "jettag plot-inputs --config {CONFIG_FILE} --dataset {wildcards.dataset}"
        " --histograms {input} --output-prefix results/plots/inputs_{wildcards.dataset}" + TO_LOG
