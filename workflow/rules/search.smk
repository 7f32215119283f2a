# Random hyper-parameter search: each trial (and the model as configured, 'nominal') is one
# training job on the same training subset; the summary ranks them by validation loss.

SEARCH = CONFIG["search"]
SEARCH_MODEL = SEARCH["model"]
SEARCH_TRIALS = ["nominal", *map(str, range(SEARCH["trials"]))] if SEARCH_MODEL else []


wildcard_constraints:
    trial=r"nominal|\d+",


def search_variant(w):
    """A search trial's training variant."""
    return f"search/{w.trial}"


use rule train as train_trial with:
    input:
        training_inputs(search_variant),
    output:
        best="results/search/{model}/{trial}/best.pt",
        history="results/search/{model}/{trial}/history.csv",
    params:
        **training_params(search_variant),
    benchmark:
        "results/benchmarks/train_trial/{model}/{trial}.tsv"
    log:
        "logs/train_trial/{model}/{trial}.log",


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
        settings=lambda w: settings("search-summary", model=w.model),
        histories=lambda w, input: " ".join(f"{t}={p}" for t, p in zip(SEARCH_TRIALS, input)),
    log:
        "logs/search/{model}.log",
    shell:
        "jettag search-summary --config {CONFIG_FILE} --model {wildcards.model} --output-json"
        " {output.json} --output-md {output.md} --output-best {output.best}"
        " {params.histories}" + TO_LOG


rule plot_search:
    """Validation loss vs each searched hyper-parameter."""
    input:
        "results/search/{model}.json",
    output:
        plot_files("results/plots/search_{model}", "search", "Training"),
    params:
        settings=lambda w: settings("plot-search", model=w.model),
    log:
        "logs/plots/search_{model}.log",
    shell:
        "jettag plot-search --config {CONFIG_FILE} --model {wildcards.model} --search {input}"
        " --output-stem results/plots/search_{wildcards.model}" + TO_LOG
