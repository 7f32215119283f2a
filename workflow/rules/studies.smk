# Model-choice studies (config `studies`, docs/model_selection.md): every point x seed of a
# study is one training job of the `train` rule, scored on the validation split; one summary
# job and one figure per study.

STUDIES = CONFIG["studies"]
LR_FINDER_MODELS = CONFIG["lr_finder"]["models"]


wildcard_constraints:
    study=r"[A-Za-z][A-Za-z0-9_]*",
    point=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed=r"\d+",


def study_variant(w):
    """A study run's variant: the model as the point sets it."""
    return f"study/{w.study}/{w.point}"


def study_runs(study, name):
    """A file of every run of a study, point by point and seed by seed (the summary's order)."""
    section = STUDIES[study]
    return [
        f"results/studies/{section['model']}/{study}/{p['name']}/{k}/{name}"
        for p in section["points"]
        for k in range(section["seeds"])
    ]


use rule train as train_study with:
    input:
        training_inputs(study_variant),
    output:
        best="results/studies/{model}/{study}/{point}/{seed}/best.pt",
        history="results/studies/{model}/{study}/{point}/{seed}/history.csv",
    params:
        **training_params(study_variant, member_of=lambda w: w.seed),
    benchmark:
        "results/benchmarks/train_study/{model}/{study}/{point}/{seed}.tsv"
    log:
        "logs/train_study/{model}/{study}/{point}/{seed}.log",


rule predict_study:
    """Validation-split predictions of one study run (a study chooses; the test split waits)."""
    input:
        val=lambda w: prepared(w.model, "val.h5"),
        best="results/studies/{model}/{study}/{point}/{seed}/best.pt",
    output:
        "results/studies/{model}/{study}/{point}/{seed}/val_predictions.h5",
    params:
        settings=lambda w: settings("predict", tagger=w.model),
    log:
        "logs/predict_study/{model}/{study}/{point}/{seed}.log",
    shell:
        "jettag predict --config {CONFIG_FILE} --tagger {wildcards.model} --test {input.val}"
        " --output {output} {input.best}" + TO_LOG


rule study_summary:
    """Loss, rejections, size, speed and loss-curve verdict of every point (mean, spread)."""
    input:
        train=lambda w: prepared(STUDIES[w.study]["model"], "train.h5"),
        histories=lambda w: study_runs(w.study, "history.csv"),
        predictions=lambda w: study_runs(w.study, "val_predictions.h5"),
        checkpoints=lambda w: study_runs(w.study, "best.pt"),
    output:
        json="results/studies/{study}.json",
        md="results/studies/{study}.md",
    params:
        settings=lambda w: settings("study-summary", study=w.study),
    log:
        "logs/study_summary/{study}.log",
    shell:
        "jettag study-summary --config {CONFIG_FILE} --study {wildcards.study}"
        " --train-file {input.train} --output {output.json} --output-md {output.md}"
        " --histories {input.histories} --predictions {input.predictions}"
        " --checkpoints {input.checkpoints}" + TO_LOG


rule plot_study:
    """A study's losses and rejections against the scanned setting."""
    input:
        "results/studies/{study}.json",
    output:
        plot_files("results/plots/study_{study}", "study", "Model choice"),
    params:
        settings=lambda w: settings("plot-study", study=w.study),
    log:
        "logs/plots/study_{study}.log",
    shell:
        "jettag plot-study --config {CONFIG_FILE} --study {wildcards.study} --summary {input}"
        " --output-stem results/plots/study_{wildcards.study}" + TO_LOG


rule lr_finder:
    """Learning-rate range test: training loss while the rate grows exponentially."""
    input:
        lambda w: prepared(w.model, "train.h5", "norm.yaml", "weights.yaml"),
    output:
        "results/lr_finder/{model}.json",
    params:
        settings=lambda w: settings("lr-finder", model=w.model),
        data_dir=lambda w: f"data/prepared/{train_dataset(w.model)}",
    threads: ALL_CORES
    log:
        "logs/lr_finder/{model}.log",
    shell:
        "jettag lr-finder --config {CONFIG_FILE} --model {wildcards.model} --data-dir"
        " {params.data_dir} --output {output} --threads {threads}" + TO_LOG


rule plot_lr_finder:
    """Loss vs learning rate, the suggested and the configured rates marked."""
    input:
        "results/lr_finder/{model}.json",
    output:
        plot_files("results/plots/lr_finder_{model}", "lr_finder", "Model choice"),
    params:
        settings=lambda w: settings("plot-lr-finder", model=w.model),
    log:
        "logs/plots/lr_finder_{model}.log",
    shell:
        "jettag plot-lr-finder --config {CONFIG_FILE} --model {wildcards.model} --result"
        " {input} --output-stem results/plots/lr_finder_{wildcards.model}" + TO_LOG
