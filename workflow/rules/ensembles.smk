# Snapshot ensembles against deep ones (config `snapshot_ensembles`, docs/model_selection.md):
# per entry one training of the model on a cosine_restarts schedule that saves a member at
# the end of each cycle, scored and evaluated like a tagger, then compared with the model's
# own deep ensemble (its `members`, trained by the `train` rule).

SNAPSHOT_ENSEMBLES = CONFIG["snapshot_ensembles"]


wildcard_constraints:
    ensemble=r"[A-Za-z][A-Za-z0-9_]*",


def snapshot_dir(name):
    """Where a snapshot ensemble's training writes best.pt, history.csv and its snapshots."""
    return f"results/ensembles/{name}/snapshot"


def snapshot_files(name):
    """The snapshots of a snapshot ensemble (its members), one per cycle."""
    cycles = SNAPSHOT_ENSEMBLES[name]["cycles"]
    return [f"{snapshot_dir(name)}/snapshot_{k}.pt" for k in range(cycles)]


def constant(value):
    """An input or params function giving the same value for every job."""
    return lambda w: value


def train_rule_sizes():
    """(threads, resources) a cluster profile gives the train rule, else this machine's.

    A snapshot ensemble's rule is named after the ensemble, which a profile cannot know:
    it trains like a member, so it is sized like one.
    """
    settings = workflow.resource_settings
    threads = settings.overwrite_threads.get("train", ALL_CORES)
    resources = {"runtime": 240, "mem_mb": 8000}
    overrides = settings.overwrite_resources.get("train")
    if overrides is not None:
        resources |= {key: overrides[key] for key in overrides.keys()}
    return threads, resources


SNAPSHOT_THREADS, SNAPSHOT_RESOURCES = train_rule_sizes()


# One rule per snapshot ensemble: its snapshot files (one per cycle, a count from the
# config) are declared outputs, which a rule's fixed patterns cannot hold for every count.
for _name, _ensemble in SNAPSHOT_ENSEMBLES.items():

    rule:
        name:
            f"train_snapshot_{_name}"
        input:
            training_inputs(constant(f"snapshot/{_name}"), model_of=constant(_ensemble["model"])),
        output:
            best=f"{snapshot_dir(_name)}/best.pt",
            history=f"{snapshot_dir(_name)}/history.csv",
            snapshots=snapshot_files(_name),
        params:
            **training_params(
                constant(f"snapshot/{_name}"), model_of=constant(_ensemble["model"])
            ),
            model=_ensemble["model"],
        threads: SNAPSHOT_THREADS
        benchmark:
            f"results/benchmarks/train_snapshot/{_name}.tsv"
        log:
            f"logs/train_snapshot/{_name}.log",
        resources:
            **SNAPSHOT_RESOURCES,
        shell:
            "jettag train --config {CONFIG_FILE} --model {params.model}"
            " --variant {params.variant} --member {params.member}"
            " --data-dir {params.data_dir} --output-dir {params.output_dir} --threads {threads}" + TO_LOG


rule predict_snapshot:
    """The snapshot ensemble's probabilities on the test split, every snapshot a member."""
    input:
        test=lambda w: prepared(SNAPSHOT_ENSEMBLES[w.ensemble]["model"], "test.h5"),
        members=lambda w: snapshot_files(w.ensemble),
    output:
        "results/ensembles/{ensemble}/predictions.h5",
    params:
        settings=lambda w: settings("predict", tagger=SNAPSHOT_ENSEMBLES[w.ensemble]["model"]),
        tagger=lambda w: SNAPSHOT_ENSEMBLES[w.ensemble]["model"],
    benchmark:
        "results/benchmarks/predict_snapshot/{ensemble}.tsv"
    log:
        "logs/predict_snapshot/{ensemble}.log",
    shell:
        "jettag predict --config {CONFIG_FILE} --tagger {params.tagger}"
        " --test {input.test} --output {output} {input.members}" + TO_LOG


use rule evaluate as evaluate_snapshot with:
    input:
        "results/ensembles/{ensemble}/predictions.h5",
    output:
        "results/ensembles/{ensemble}/metrics.json",
    benchmark:
        "results/benchmarks/evaluate_snapshot/{ensemble}.tsv"
    log:
        "logs/evaluate_snapshot/{ensemble}.log",


def deep_members(name, pattern):
    """A file of every member of the deep ensemble a snapshot ensemble is compared with."""
    model = SNAPSHOT_ENSEMBLES[name]["model"]
    members = range(CONFIG["models"][model]["members"])
    return [pattern.format(model=model, member=k) for k in members]


rule ensemble_comparison:
    """Training cost, ensemble and member rejections of the deep and the snapshot ensemble."""
    input:
        deep_metrics=lambda w: f"results/metrics/{SNAPSHOT_ENSEMBLES[w.ensemble]['model']}.json",
        deep_histories=lambda w: deep_members(
            w.ensemble, "results/models/{model}/{member}/history.csv"
        ),
        deep_benchmarks=lambda w: deep_members(
            w.ensemble, "results/benchmarks/train/{model}/{member}.tsv"
        ),
        snapshot_metrics="results/ensembles/{ensemble}/metrics.json",
        snapshot_history="results/ensembles/{ensemble}/snapshot/history.csv",
        snapshot_benchmark="results/benchmarks/train_snapshot/{ensemble}.tsv",
    output:
        json="results/ensembles/{ensemble}.json",
        md="results/ensembles/{ensemble}.md",
    params:
        settings=lambda w: settings("ensemble-comparison", ensemble=w.ensemble),
    log:
        "logs/ensemble_comparison/{ensemble}.log",
    shell:
        "jettag ensemble-comparison --config {CONFIG_FILE} --ensemble {wildcards.ensemble}"
        " --deep-metrics {input.deep_metrics} --deep-histories {input.deep_histories}"
        " --deep-benchmarks {input.deep_benchmarks}"
        " --snapshot-metrics {input.snapshot_metrics}"
        " --snapshot-histories {input.snapshot_history}"
        " --snapshot-benchmarks {input.snapshot_benchmark}"
        " --output {output.json} --output-md {output.md}" + TO_LOG
