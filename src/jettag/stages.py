"""What each stage reads from the config: one function for both the command and its rule.

Each function here takes a validated config and the wildcards that name one job (its
parameters after `config`: a sample, a model, a training variant, ...) and returns exactly
the part of the config that `jettag <stage>` reads for that job. jettag.commands pairs each
stage with its function, once, and `stage_settings(stage, config, **wildcards)` calls it.
The CLI hands a stage only this mapping; the Snakefile puts the same mapping, as canonical
JSON (`stage_params`), into the rule's `params`, so that editing a key reruns the jobs that
read it and nothing else (Snakemake's params rerun trigger), and the two cannot drift. Every
command logs the SHA-256 of its settings, which tests compare with the params Snakemake
recorded.

Presentation (legend labels, sample text, the experiment label, plot formats) reaches only
the plot stages: no data file, checkpoint or numbers file depends on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from jettag.config import (
    GenerationConfig,
    binary_tasks,
    class_set,
    reading_settings,
    tagger_dataset,
    tagger_label,
    tagger_source,
    taggers,
    test_only_event_number,
    train_dataset,
)
from jettag.config.jobs import (
    feature_groups,
    member_count,
    parse_variant,
    training_job,
    without_presentation,
)
from jettag.errors import ConfigError

Settings = dict[str, Any]

# the sample keys generation and ingest read: the fields of the sections they are given, so
# that a key the stage's code reads but its settings lack is an AttributeError, not a default
GENERATION_KEYS = tuple(f.name for f in dataclasses.fields(GenerationConfig))


def _pick(section: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The named keys of a section."""
    return {key: section[key] for key in keys}


def _section(config: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """config[kind][name] with an error naming what exists."""
    if name not in config[kind]:
        raise ConfigError(f"'{name}' is not in {kind} (have {sorted(config[kind])})")
    return config[kind][name]


def _dataset(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A sample's section, or a dataset's (made of samples) with the label and sqrt(s) its
    figures show: its own label or its components' joined, its first component's sqrt(s)."""
    if name in config["datasets"]:
        section = config["datasets"][name]
        samples = [config["samples"][c["sample"]] for c in section["components"]]
        label = section.get("label") or " + ".join(s["label"] for s in samples)
        return {**section, "label": label, "sqrt_s_gev": samples[0]["sqrt_s_gev"]}
    if name not in config["samples"]:
        known = sorted([*config["samples"], *config["datasets"]])
        raise ConfigError(f"'{name}' is not in samples or datasets (have {known})")
    return config["samples"][name]


def _evaluation(config: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The evaluation keys a stage reads."""
    return {"evaluation": _pick(config["evaluation"], keys)}


# ---------------------------------------------------------------------------------------
# Data: generation, ingestion, preparation.


def generate(config: dict[str, Any], sample: str, shard: int) -> Settings:
    """Seed, the sample's physics (not its shard count: adding shards regenerates none)."""
    section = _section(config, "samples", sample)
    if section["source"] != "generate":
        raise ConfigError(f"sample '{sample}' has source '{section['source']}', not generate")
    n_shards = section["n_shards"] + section["test_shards"]
    if not 0 <= int(shard) < n_shards:
        raise ConfigError(f"shard {shard} outside 0..{n_shards - 1}")
    keys = [
        k for k in GENERATION_KEYS if k != "zprime_masses_gev" or section["process"] == "zprime"
    ]
    return {
        "seed": config["seed"],
        "sample": _pick(section, keys),
        "simulation": config["simulation"],
    }


def ingest(config: dict[str, Any], sample: str, part: int | None = None) -> Settings:
    """How the sample's files are read, and the canonical file's layout.

    One part of a sharded ingest (the workflow's: one job per input file or generated
    shard) also reads the sample's files before its own, whose entries number the events of
    a file without event numbers on from theirs; no part reads the files after it, so
    appending a file to a sample ingests only that file.
    """
    section = _section(config, "samples", sample)
    settings = {"sample": reading_settings(config, sample), "ingest": config["ingest"]}
    if part is not None:
        n_parts = len(ingest_part_files(config, sample))
        if not 0 <= int(part) < n_parts:
            raise ConfigError(f"part {part} of sample '{sample}' outside 0..{n_parts - 1}")
        if section["source"] != "generate":  # generated shards carry their event numbers
            settings["earlier_files"] = list(section["files"][: int(part)])
    return settings


def ingest_part_files(config: dict[str, Any], sample: str) -> list[str]:
    """The input file of each part of a sample's sharded ingest, in order."""
    section = _section(config, "samples", sample)
    if section["source"] == "generate":
        n_shards = section["n_shards"] + section["test_shards"]
        return [f"data/generated/{sample}/{shard}.root" for shard in range(n_shards)]
    return list(section["files"])


def prepare(config: dict[str, Any], dataset: str) -> Settings:
    """Seed (splits), the preprocessing section and where test-only events start; for a
    dataset made of samples, its components (parts, pT cuts per class) and resampling."""
    settings = {
        "seed": config["seed"],
        "prepare": {**config["prepare"], "label_variable": class_set(config).label_variable},
    }
    if dataset not in config["datasets"]:
        sample = _dataset(config, dataset)
        return {**settings, "test_only_event_number": test_only_event_number(sample)}
    section = config["datasets"][dataset]
    classes = [c["name"] for c in config["prepare"]["classes"]]
    components = []
    for component in section["components"]:
        sample = component["sample"]
        cuts = {}
        for key in ("pt_min_gev", "pt_max_gev"):
            value = component[key]
            cuts[key] = (
                {} if value is None else dict(value) if isinstance(value, dict)
                else dict.fromkeys(classes, value)
            )  # fmt: skip
        components.append({
            "sample": sample,
            "n_parts": len(ingest_part_files(config, sample)),
            **cuts,
            "test_only_event_number": test_only_event_number(config["samples"][sample]),
        })  # fmt: skip
    return {
        **settings,
        "test_only_event_number": None,
        "components": components,
        "resample": section["resample"],
    }


def dataset_parts(config: dict[str, Any], dataset: str) -> list[tuple[str, int]]:
    """(sample, part) of each ingested part a dataset is prepared from, in order."""
    _dataset(config, dataset)  # a sample or a dataset, else a ConfigError naming both
    if dataset in config["datasets"]:
        samples = [c["sample"] for c in config["datasets"][dataset]["components"]]
    else:
        samples = [dataset]
    return [(s, k) for s in samples for k in range(len(ingest_part_files(config, s)))]


def sample_histograms(config: dict[str, Any], sample: str) -> Settings:
    """The class set's label variable and classes (the histograms are per class)."""
    _section(config, "samples", sample)
    classes = class_set(config)
    return {
        "label_variable": classes.label_variable,
        "classes": {name: list(values) for name, values in classes.label_values().items()},
    }


def input_histograms(config: dict[str, Any], dataset: str) -> Settings:
    """Nothing: the histograms depend on the prepared files alone."""
    _dataset(config, dataset)
    return {}


# ---------------------------------------------------------------------------------------
# Training and scoring.


def train(config: dict[str, Any], model: str, variant: str = "member", member: int = 0) -> Settings:
    """Seed and the model section of this training variant (config/jobs.py)."""
    parsed = parse_variant(variant)
    section = training_job(config, model, parsed)
    count = member_count(config, model, parsed)
    if not 0 <= int(member) < count:
        raise ConfigError(f"member {member} of {model} ({parsed}) outside 0..{count - 1}")
    return {"seed": config["seed"], "model": section}


def fit_baseline(config: dict[str, Any], baseline: str) -> Settings:
    """The binning of the templates and whether tracks are graded (the keys fitting reads)."""
    keys = ("sd0_bins", "sz0_bins", "track_grades")
    return {"baseline": _pick(_section(config, "baselines", baseline), keys)}


def export_onnx(config: dict[str, Any]) -> Settings:
    """Nothing: the checkpoint carries the model and its input normalisation."""
    return {}


def predict(config: dict[str, Any], tagger: str) -> Settings:
    """What scores the jets: a network's members, or a baseline's kind."""
    tagger_dataset(config, tagger)  # an unknown tagger, or test dataset, fails here
    if tagger_source(tagger) in config["models"]:
        return {"kind": "network"}
    return {"kind": _section(config, "baselines", tagger)["kind"]}


# ---------------------------------------------------------------------------------------
# Evaluation: every number of the plots.


def evaluate(config: dict[str, Any]) -> Settings:
    """The discriminant, working points and the ROC grid."""
    return _evaluation(config, "discriminant", "working_points", "roc_b_efficiencies")


def fraction_scan(config: dict[str, Any], dataset: str) -> Settings:
    """The discriminant and the scan (background, fractions, working point)."""
    _dataset_taggers(config, dataset)
    return _evaluation(config, "discriminant", "fraction_scan")


def multiclass(config: dict[str, Any]) -> Settings:
    """The binary tasks (the class set's discriminants), their efficiency and the ROC grid."""
    return {
        "tasks": binary_tasks(config),
        **_evaluation(config, "multiclass_efficiency", "roc_b_efficiencies"),
    }


def working_points(config: dict[str, Any], dataset: str) -> Settings:
    """The discriminant, working points, and paired ratios to the dataset's reference tagger.

    The ratios are taken at the working points and on the ROC grid, with a paired bootstrap
    over the test jets (its replicas drawn from the seed).
    """
    return {
        "seed": config["seed"],
        "reference": ratio_reference(config, dataset),
        **_evaluation(
            config, "discriminant", "working_points", "roc_b_efficiencies", "bootstrap_replicas"
        ),
    }


def performance(config: dict[str, Any]) -> Settings:
    """The discriminant, working points, the pT bins and the working point of the pT dependence."""
    return _evaluation(config, "discriminant", "working_points", "pt_bins_gev", "pt_working_point")


def vertexing(config: dict[str, Any], model: str) -> Settings:
    """The jet-pT bins of a vertexing model's performance (its pair head's vertices)."""
    section = _section(config, "models", model)
    if section["training"]["track_vertex_weight"] <= 0:
        raise ConfigError(
            f"model '{model}' has no track-pair head to evaluate: set"
            f" models.{model}.training.track_vertex_weight > 0"
        )
    return _evaluation(config, "pt_bins_gev")


def saliency(config: dict[str, Any]) -> Settings:
    """The discriminant and which signal jets the maps average over."""
    return _evaluation(config, "discriminant", "saliency")


def importance(config: dict[str, Any], model: str) -> Settings:
    """Seed (permutations), the model's feature groups, the discriminant and working point."""
    _section(config, "models", model)
    return {
        "seed": config["seed"],
        "groups": feature_groups(config, model),
        **_evaluation(config, "discriminant", "pt_working_point"),
    }


def ablation(config: dict[str, Any], model: str) -> Settings:
    """The model's feature groups, the discriminant and the working point."""
    _section(config, "models", model)
    return {
        "groups": feature_groups(config, model),
        **_evaluation(config, "discriminant", "pt_working_point"),
    }


def learning_curve(config: dict[str, Any], model: str) -> Settings:
    """Nothing: each checkpoint carries the section it was trained with."""
    _section(config, "models", model)
    return {}


def lr_finder(config: dict[str, Any], model: str) -> Settings:
    """Seed, the model's section (as member 0 trains) and the range test's settings."""
    _section(config, "models", model)
    return {
        "seed": config["seed"],
        "model": training_job(config, model, parse_variant("member")),
        "lr_finder": {k: v for k, v in config["lr_finder"].items() if k != "models"},
    }


def study_summary(config: dict[str, Any], study: str) -> Settings:
    """The study's section, each point's model section, the discriminant and working point."""
    section = _section(config, "studies", study)
    return {
        "study": {k: v for k, v in section.items() if k != "label"},
        "sections": {
            p["name"]: training_job(config, section["model"], parse_variant(
                f"study/{study}/{p['name']}")) for p in section["points"]
        },
        **_evaluation(config, "discriminant", "pt_working_point"),
    }  # fmt: skip


def ensemble_comparison(config: dict[str, Any], ensemble: str) -> Settings:
    """The snapshot ensemble's section (its model is the deep ensemble) and the working point.

    The rejections come from the metrics files of both ensembles (the evaluate stage's discriminant
    and working points), the costs from the trainings' histories and benchmarks.
    """
    return {
        "snapshot_ensemble": _section(config, "snapshot_ensembles", ensemble),
        **_evaluation(config, "pt_working_point"),
    }


def search_summary(config: dict[str, Any], model: str) -> Settings:
    """Seed and search space (each trial's values) and the searched model's section."""
    if config["search"]["model"] != model:
        raise ConfigError(
            f"search-summary: search.model is {config['search']['model']!r}, not '{model}'"
        )
    return {
        "seed": config["seed"],
        "search": config["search"],
        "model": without_presentation(config["models"][model]),
    }


def transfer_summary(config: dict[str, Any], model: str) -> Settings:
    """The discriminant and the working point (the target's files are the command's --data-dir)."""
    if config["transfer"]["model"] != model:
        raise ConfigError(
            f"transfer-summary: transfer.model is {config['transfer']['model']!r}, not '{model}'"
        )
    return _evaluation(config, "discriminant", "pt_working_point")


# ---------------------------------------------------------------------------------------
# Plots: the only stages that read presentation keys.


def _figure(config: dict[str, Any], sample: str) -> Settings:
    """What every figure of a sample shows: experiment label, formats, sample text, sqrt(s),
    and the colour and legend text of each class of the config's class set."""
    section = _dataset(config, sample)
    plots = config["plots"]
    classes = class_set(config).classes.values()
    return {
        "plots": _pick(plots, ("experiment_label", "formats")),
        "sample": _pick(section, ("label", "sqrt_s_gev")),
        "class_styles": {c.name: [c.colour, c.label] for c in classes},
    }


def ratio_reference(config: dict[str, Any], dataset: str) -> str:
    """The tagger the others of a dataset are divided by: plots.reference where it is
    evaluated on the dataset, else the dataset's first baseline, else its first model."""
    taggers = _dataset_taggers(config, dataset)
    if not taggers:
        raise ConfigError(f"no tagger is evaluated on dataset '{dataset}'")
    reference = config["plots"]["reference"]
    for name in (reference, f"{reference}@{dataset}"):
        if name in taggers:
            return name
    return taggers[0]


def _dataset_taggers(config: dict[str, Any], dataset: str) -> list[str]:
    """Baselines then models scored on a dataset, in config order (jettag.config.taggers)."""
    return [n for n in taggers(config) if tagger_dataset(config, n) == dataset]


def tagger_figure(config: dict[str, Any], tagger: str) -> Settings:
    """A figure of one tagger: its label, and its dataset's figure settings."""
    label = tagger_label(config, tagger)
    return {**_figure(config, tagger_dataset(config, tagger)), "labels": {tagger: label}}


def plot_roc(config: dict[str, Any], dataset: str) -> Settings:
    """The dataset's figure settings, its taggers' labels and the ratio reference."""
    taggers = _dataset_taggers(config, dataset)
    return {
        **_figure(config, dataset),
        "labels": {t: tagger_label(config, t) for t in taggers},
        "reference": ratio_reference(config, dataset),
    }


def dataset_figure(config: dict[str, Any], dataset: str) -> Settings:
    """The dataset's figure settings and its taggers' labels."""
    taggers = _dataset_taggers(config, dataset)
    return {**_figure(config, dataset), "labels": {t: tagger_label(config, t) for t in taggers}}


def model_figure(config: dict[str, Any], model: str) -> Settings:
    """A figure of one model: its label and its dataset's figure settings."""
    _section(config, "models", model)
    return tagger_figure(config, model)


def training_figure(config: dict[str, Any], model: str) -> Settings:
    """A figure of one model's training (losses, scans): its label and the figure settings of
    the dataset it trains on (a hybrid, say, where it is scored on its samples apart)."""
    _section(config, "models", model)
    label = tagger_label(config, model)
    return {**_figure(config, train_dataset(config, model)), "labels": {model: label}}


def plot_study(config: dict[str, Any], study: str) -> Settings:
    """The studied model's figure settings and the study's title."""
    section = _section(config, "studies", study)
    return {**training_figure(config, section["model"]), "model": section["model"],
            "title": section.get("label") or study}  # fmt: skip


def plot_transfer(config: dict[str, Any], model: str) -> Settings:
    """The target's figure settings, the model's label and the source sample it came from."""
    transfer = config["transfer"]
    if transfer["model"] != model:
        raise ConfigError(f"plot-transfer: transfer.model is {transfer['model']!r}, not '{model}'")
    dataset = train_dataset(config, model)
    source = _dataset(config, dataset)
    return {
        **_figure(config, transfer["target"]),
        "labels": {model: tagger_label(config, model)},
        # a generated source is named by its process, as physicists write it
        "source": {"name": dataset}
        | ({"process": source["process"]} if source.get("source") == "generate" else {}),
    }


def plot_sample(config: dict[str, Any], sample: str) -> Settings:
    """The sample's figure settings."""
    return _figure(config, sample)


def plot_inputs(config: dict[str, Any], dataset: str) -> Settings:
    """The dataset's figure settings."""
    return _figure(config, dataset)
