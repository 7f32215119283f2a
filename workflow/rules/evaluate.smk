def tagger_members(wildcards):
    """best.pt of every member of a model, or the templates of a baseline."""
    name = wildcards.tagger
    if name in CONFIG["models"]:
        return expand(
            "results/models/{model}/{member}/best.pt",
            model=name,
            member=range(CONFIG["models"][name]["members"]),
        )
    return [f"results/models/{name}/templates.json"]


rule predict:
    """Class probabilities on the test split (FTAG layout, puma-readable)."""
    input:
        test=lambda w: prepared(w.tagger, "test.h5"),
        members=tagger_members,
    output:
        "results/predictions/{tagger}.h5",
    benchmark:
        "results/benchmarks/predict/{tagger}.tsv"
    log:
        "logs/predict/{tagger}.log",
    shell:
        "jettag predict --config {CONFIG_FILE} --tagger {wildcards.tagger}"
        " --test {input.test} --output {output} {input.members} > {log} 2>&1"


rule evaluate:
    """AUC, working points and ROC curves as numbers."""
    input:
        "results/predictions/{tagger}.h5",
    output:
        "results/metrics/{tagger}.json",
    params:
        settings=lambda w: settings(evaluation=CONFIG["evaluation"]),
    benchmark:
        "results/benchmarks/evaluate/{tagger}.tsv"
    log:
        "logs/evaluate/{tagger}.log",
    shell:
        "jettag evaluate --config {CONFIG_FILE} --predictions {input}"
        " --output {output} > {log} 2>&1"
