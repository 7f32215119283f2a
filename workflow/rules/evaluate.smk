def tagger_members(wildcards):
    """best.pt of every member of a model (also scored elsewhere), or a baseline's templates."""
    name = jcfg.tagger_source(wildcards.tagger)
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
    params:
        settings=lambda w: settings("predict", tagger=w.tagger),
    benchmark:
        "results/benchmarks/predict/{tagger}.tsv"
    log:
        "logs/predict/{tagger}.log",
    shell:
        "jettag predict --config {CONFIG_FILE} --tagger {wildcards.tagger}"
        " --test {input.test} --output {output} {input.members}" + TO_LOG


rule evaluate:
    """AUC, working points and ROC curves as numbers."""
    input:
        "results/predictions/{tagger}.h5",
    output:
        "results/metrics/{tagger}.json",
    params:
        settings=lambda w: settings("evaluate"),
    benchmark:
        "results/benchmarks/evaluate/{tagger}.tsv"
    log:
        "logs/evaluate/{tagger}.log",
    shell:
        "jettag evaluate --config {CONFIG_FILE} --predictions {input}"
        " --output {output}" + TO_LOG


rule multiclass:
    """Confusion matrix and the class set's binary tasks (more than three classes)."""
    input:
        "results/predictions/{tagger}.h5",
    output:
        "results/multiclass/{tagger}.json",
    params:
        settings=lambda w: settings("multiclass"),
    benchmark:
        "results/benchmarks/multiclass/{tagger}.tsv"
    log:
        "logs/multiclass/{tagger}.log",
    shell:
        "jettag multiclass --config {CONFIG_FILE} --predictions {input}"
        " --output {output}" + TO_LOG


def dataset_predictions(dataset):
    """Prediction files of every tagger evaluated on a dataset."""
    return [f"results/predictions/{t}.h5" for t in TAGGERS if tagger_dataset(t) == dataset]


rule fraction_scan:
    """Every tagger's rejections as one background fraction of the discriminant varies."""
    input:
        lambda w: dataset_predictions(w.dataset),
    output:
        "results/fraction_scan/{dataset}.json",
    params:
        settings=lambda w: settings("fraction-scan", dataset=w.dataset),
    benchmark:
        "results/benchmarks/fraction_scan/{dataset}.tsv"
    log:
        "logs/fraction_scan/{dataset}.log",
    shell:
        "jettag fraction-scan --config {CONFIG_FILE} --dataset {wildcards.dataset}"
        " --output {output} {input}" + TO_LOG


rule working_points:
    """Cut, efficiencies and rejections at each working point, every tagger of a dataset."""
    input:
        lambda w: dataset_predictions(w.dataset),
    output:
        json="results/working_points/{dataset}.json",
        md="results/working_points/{dataset}.md",
    params:
        settings=lambda w: settings("working-points", dataset=w.dataset),
    benchmark:
        "results/benchmarks/working_points/{dataset}.tsv"
    log:
        "logs/working_points/{dataset}.log",
    shell:
        "jettag working-points --config {CONFIG_FILE} --dataset {wildcards.dataset}"
        " --output-json {output.json} --output-md {output.md} {input}" + TO_LOG


rule performance:
    """Efficiency and rejection vs jet pT at a working point, and D_b per flavour."""
    input:
        "results/predictions/{tagger}.h5",
    output:
        pt="results/performance/{tagger}_pt.json",
        scores="results/performance/{tagger}_scores.json",
    params:
        settings=lambda w: settings("performance"),
    benchmark:
        "results/benchmarks/performance/{tagger}.tsv"
    log:
        "logs/performance/{tagger}.log",
    shell:
        "jettag performance --config {CONFIG_FILE} --predictions {input}"
        " --output-pt {output.pt} --output-scores {output.scores}" + TO_LOG
