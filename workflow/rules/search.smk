# Random hyper-parameter search: each trial (and the model as configured, 'nominal') is one
# training job on the same training subset; the summary ranks them by validation loss.

SEARCH = CONFIG["search"]
SEARCH_MODEL = SEARCH["model"]
SEARCH_TRIALS = ["nominal", *map(str, range(SEARCH["trials"]))] if SEARCH_MODEL else []


wildcard_constraints:
    trial=r"nominal|\d+",


rule train_trial:
    """One random-search trial of the searched model (same seed and jets for every trial)."""
    input:
        lambda w: prepared(w.model, "train.h5", "val.h5", "norm.yaml", "weights.yaml"),
    output:
        best="results/search/{model}/{trial}/best.pt",
        history="results/search/{model}/{trial}/history.csv",
    params:
        settings=lambda w: settings(
            seed=CONFIG["seed"],
            section=training_settings(
                jcfg.trial_section(CONFIG, None if w.trial == "nominal" else int(w.trial))
            ),
        ),
        data_dir=lambda w: f"data/prepared/{tagger_dataset(w.model)}",
    threads: workflow.cores
    benchmark:
        "results/benchmarks/train_trial/{model}/{trial}.tsv"
    log:
        "logs/train_trial/{model}/{trial}.log",
    resources:
        runtime=240,
        mem_mb=8000,
    shell:
        "jettag train --config {CONFIG_FILE} --model {wildcards.model} --search-trial"
        " {wildcards.trial} --data-dir {params.data_dir} --output-dir results/search/"
        "{wildcards.model}/{wildcards.trial} --threads {threads} > {log} 2>&1"


rule search_summary:
    """Trials ranked by validation loss (JSON, markdown) and the best model section (YAML)."""
    input:
        lambda w: expand(
            "results/search/{model}/{trial}/history.csv", model=w.model, trial=SEARCH_TRIALS
        ),
    output:
        json="results/search/{model}.json",
        md="results/search/{model}.md",
        best="results/search/{model}_best.yaml",
    params:
        histories=lambda w, input: " ".join(f"{t}={p}" for t, p in zip(SEARCH_TRIALS, input)),
    log:
        "logs/search/{model}.log",
    shell:
        "jettag search-summary --config {CONFIG_FILE} --output-json {output.json}"
        " --output-md {output.md} --output-best {output.best} {params.histories} > {log} 2>&1"


rule plot_search:
    """Validation loss vs each searched hyper-parameter."""
    input:
        "results/search/{model}.json",
    output:
        plot_files("results/plots/search_{model}", "search", "Training"),
    params:
        settings=lambda w: settings(plots=CONFIG["plots"]),
    log:
        "logs/plots/search_{model}.log",
    shell:
        "jettag plot-search --config {CONFIG_FILE} --search {input}"
        " --output-stem results/plots/search_{wildcards.model} > {log} 2>&1"
