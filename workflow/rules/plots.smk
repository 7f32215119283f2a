PLOT_FORMATS = CONFIG["plots"]["formats"]


rule plot_roc:
    """Rejection vs b efficiency of every tagger on the main dataset, ratio to the reference."""
    input:
        [f"results/metrics/{t}.json" for t in TAGGERS if tagger_dataset(t) == MAIN_DATASET],
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
