# Diagnostics that retrain a model: ablation (without each feature group) and the learning
# curve (on growing training sets). Every retraining is its own job, so a cluster runs them
# side by side.

EVALUATION = CONFIG["evaluation"]
ABLATION_MODEL = EVALUATION["ablation"]
ABLATION_GROUPS = list(jcfg.feature_groups(CONFIG, ABLATION_MODEL)) if ABLATION_MODEL else []
CURVE_MODEL = EVALUATION["learning_curve"]["model"]
CURVE_SIZES = EVALUATION["learning_curve"]["train_jets"] if CURVE_MODEL else []


wildcard_constraints:
    group=r"[A-Za-z0-9_]+",
    jets=r"\d+",


def ablation_variant(w):
    """An ablation retraining's variant: the model without one feature group."""
    return f"ablation/{w.group}"


def learning_curve_variant(w):
    """A learning-curve point's variant: the model on the first {jets} training jets."""
    return f"learning_curve/{w.jets}"


use rule train as train_ablation with:
    input:
        training_inputs(ablation_variant),
    output:
        best="results/ablation/{model}/{group}/best.pt",
        history="results/ablation/{model}/{group}/history.csv",
    params:
        **training_params(ablation_variant),
    benchmark:
        "results/benchmarks/train_ablation/{model}/{group}.tsv"
    log:
        "logs/train_ablation/{model}/{group}.log",


rule predict_ablation:
    """Test-split predictions of one ablation retraining."""
    input:
        test=lambda w: prepared(w.model, "test.h5"),
        best="results/ablation/{model}/{group}/best.pt",
    output:
        "results/ablation/{model}/{group}/predictions.h5",
    params:
        settings=lambda w: settings("predict", tagger=w.model),
    log:
        "logs/predict_ablation/{model}/{group}.log",
    shell:
        "jettag predict --config {CONFIG_FILE} --tagger {wildcards.model} --test {input.test}"
        " --output {output} {input.best}" + TO_LOG


rule predict_ablation_nominal:
    """Test-split predictions of member 0 alone: the reference of retrainings that are single."""
    input:
        test=lambda w: prepared(w.model, "test.h5"),
        best="results/models/{model}/0/best.pt",
    output:
        "results/ablation/{model}/nominal/predictions.h5",
    params:
        settings=lambda w: settings("predict", tagger=w.model),
    log:
        "logs/predict_ablation/{model}/nominal.log",
    shell:
        "jettag predict --config {CONFIG_FILE} --tagger {wildcards.model} --test {input.test}"
        " --output {output} {input.best}" + TO_LOG


ruleorder: predict_ablation_nominal > predict_ablation


rule ablation:
    """Light and c rejection lost without each feature group (results/ablation/<model>.json)."""
    input:
        nominal="results/ablation/{model}/nominal/predictions.h5",
        variants=lambda w: expand(
            "results/ablation/{model}/{group}/predictions.h5", model=w.model, group=ABLATION_GROUPS
        ),
    output:
        "results/ablation/{model}.json",
    params:
        settings=lambda w: settings("ablation", model=w.model),
        variants=lambda w, input: " ".join(
            f"{g}={p}" for g, p in zip(ABLATION_GROUPS, input.variants)
        ),
    log:
        "logs/ablation/{model}.log",
    shell:
        "jettag ablation --config {CONFIG_FILE} --model {wildcards.model} --nominal"
        " {input.nominal} --output {output} {params.variants}" + TO_LOG


use rule train as train_learning_curve with:
    input:
        training_inputs(learning_curve_variant),
    output:
        best="results/learning_curve/{model}/{jets}/best.pt",
        history="results/learning_curve/{model}/{jets}/history.csv",
    params:
        **training_params(learning_curve_variant),
    benchmark:
        "results/benchmarks/train_learning_curve/{model}/{jets}.tsv"
    log:
        "logs/train_learning_curve/{model}/{jets}.log",


rule learning_curve:
    """Training and validation loss at each training-set size."""
    input:
        data=lambda w: prepared(w.model, "train.h5", "val.h5", "weights.yaml"),
        checkpoints=lambda w: expand(
            "results/learning_curve/{model}/{jets}/best.pt", model=w.model, jets=CURVE_SIZES
        ),
    output:
        "results/learning_curve/{model}.json",
    params:
        settings=lambda w: settings("learning-curve", model=w.model),
        data_dir=lambda w: f"data/prepared/{train_dataset(w.model)}",
    log:
        "logs/learning_curve/{model}.log",
    shell:
        "jettag learning-curve --config {CONFIG_FILE} --model {wildcards.model} --data-dir"
        " {params.data_dir} --output {output} {input.checkpoints}" + TO_LOG


rule plot_learning_curve:
    """Loss vs training-set size: high bias or high variance?"""
    input:
        "results/learning_curve/{model}.json",
    output:
        plot_files("results/plots/learning_curve_{model}", "learning_curve", "Training"),
    params:
        settings=lambda w: settings("plot-learning-curve", model=w.model),
    log:
        "logs/plots/learning_curve_{model}.log",
    shell:
        "jettag plot-learning-curve --config {CONFIG_FILE} --model {wildcards.model} --curve"
        " {input} --output-stem results/plots/learning_curve_{wildcards.model}" + TO_LOG


rule saliency:
    """Gradient of D_b w.r.t. each track input, b jets with a fixed track count (member 0)."""
    input:
        checkpoint="results/models/{model}/0/best.pt",
        test=lambda w: prepared(w.model, "test.h5"),
    output:
        "results/saliency/{model}.json",
    params:
        settings=lambda w: settings("saliency"),
    log:
        "logs/saliency/{model}.log",
    shell:
        "jettag saliency --config {CONFIG_FILE} --checkpoint {input.checkpoint}"
        " --test {input.test} --output {output}" + TO_LOG


rule importance:
    """Rejection lost when each feature group is shuffled across test tracks (member 0)."""
    input:
        checkpoint="results/models/{model}/0/best.pt",
        test=lambda w: prepared(w.model, "test.h5"),
    output:
        "results/importance/{model}.json",
    params:
        settings=lambda w: settings("importance", model=w.model),
    log:
        "logs/importance/{model}.log",
    shell:
        "jettag importance --config {CONFIG_FILE} --model {wildcards.model}"
        " --checkpoint {input.checkpoint} --test {input.test} --output {output}" + TO_LOG


rule plot_saliency:
    """Saliency heat maps: inputs x track rank, b jets passing and failing the WP."""
    input:
        "results/saliency/{model}.json",
    output:
        plot_files("results/plots/saliency_{model}", "saliency", "Diagnostics"),
    params:
        settings=lambda w: settings("plot-saliency", model=w.model),
    log:
        "logs/plots/saliency_{model}.log",
    shell:
        "jettag plot-saliency --config {CONFIG_FILE} --model {wildcards.model} --saliency"
        " {input} --output-stem results/plots/saliency_{wildcards.model}" + TO_LOG


rule plot_importance:
    """Rejection lost per feature group: shuffled (importance) or retrained without (ablation)."""
    input:
        "results/{kind}/{model}.json",
    output:
        plot_files("results/plots/{kind}_{model}", "importance", "Diagnostics"),
    wildcard_constraints:
        kind="importance|ablation",
    params:
        settings=lambda w: settings("plot-importance", model=w.model),
    log:
        "logs/plots/{kind}_{model}.log",
    shell:
        "jettag plot-importance --config {CONFIG_FILE} --model {wildcards.model} --importance"
        " {input} --output-stem results/plots/{wildcards.kind}_{wildcards.model}" + TO_LOG


# models trained with the vertexing task (GN2's track-pair head)
VERTEXING_MODELS = [
    m for m, section in CONFIG["models"].items() if section["training"]["track_vertex_weight"] > 0
]


rule vertexing:
    """Vertices of the pair head (member 0) on the test split, matched to the truth vertices."""
    input:
        checkpoint="results/models/{model}/0/best.pt",
        test=lambda w: prepared(w.model, "test.h5"),
    output:
        "results/vertexing/{model}.json",
    params:
        settings=lambda w: settings("vertexing", model=w.model),
    benchmark:
        "results/benchmarks/vertexing/{model}.tsv"
    log:
        "logs/vertexing/{model}.log",
    shell:
        "jettag vertexing --config {CONFIG_FILE} --model {wildcards.model}"
        " --checkpoint {input.checkpoint} --test {input.test} --output {output}" + TO_LOG


rule plot_vertexing:
    """Vertex-finding efficiency and fake rate vs jet pT; exclusive vertex efficiency."""
    input:
        "results/vertexing/{model}.json",
    output:
        plot_files(
            "results/plots/vertexing_{model}", "vertexing", "Diagnostics", ["_inclusive", "_exclusive"]
        ),
    params:
        settings=lambda w: settings("plot-vertexing", model=w.model),
    log:
        "logs/plots/vertexing_{model}.log",
    shell:
        "jettag plot-vertexing --config {CONFIG_FILE} --model {wildcards.model} --result {input}"
        " --output-prefix results/plots/vertexing_{wildcards.model}" + TO_LOG
