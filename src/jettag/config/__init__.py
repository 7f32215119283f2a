"""Read, validate and default-fill an analysis configuration; typed views of its sections.

The JSON Schema in workflow/schemas/config.schema.yaml is the single source of truth for
keys, types and defaults (config/schema.py). Snakemake and the CLI both go through
`load_config`, so a bad key fails the same way, before any work starts, wherever it is run
from. The typed sections are in config/sections.py; the model section of every training job
(members, search trials, transfer runs, ablation, learning curve) in config/jobs.py.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from jettag.config.jobs import (
    TRANSFER_STRATEGIES,
    TrainingVariant,
    check_training_jobs,
    feature_groups,
    parse_variant,
    sample_trial,
    training_job,
    transfer_section,
    trial_section,
)
from jettag.config.schema import apply_preset, check_schema, fill_defaults, preset, schema
from jettag.config.sections import *  # noqa: F403 (the typed sections, as cfg.<Name>)
from jettag.config.sections import (
    BaselineConfig,
    ModelConfig,
    SampleConfig,
    model_from_dict,
    section,
)
from jettag.errors import ConfigError, InputError
from jettag.flavours import ClassSet, fraction_problem, load_class_set

__all__ = [
    "TRANSFER_STRATEGIES",
    "ConfigError",
    "TrainingVariant",
    "binary_tasks",
    "class_set",
    "feature_groups",
    "load_config",
    "model_from_dict",
    "parse_variant",
    "preset",
    "reading_config",
    "reading_settings",
    "resolve_extends",
    "sample_trial",
    "section",
    "training_job",
    "transfer_section",
    "trial_section",
    "validate_config",
]


def validate_config(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate against the schema, fill in defaults and check cross-references; return a copy."""
    check_schema(config, source)
    filled = copy.deepcopy(config)
    for sample in filled["samples"].values():
        apply_preset(sample)
    fill_defaults(filled, schema(), schema())
    _resolve_classes(filled, source)
    # a default that breaks a constraint is a bug in the schema itself
    check_schema(filled, source + " (defaults)")
    _check_references(filled, source)
    return filled


def class_set(config: dict[str, Any], source: str = "config") -> ClassSet:
    """The config's class set (built-in or the user's YAML), a ConfigError if unreadable."""
    try:
        return load_class_set(config["class_set"])
    except InputError as err:
        raise ConfigError(f"{source}: class_set: {err}") from err


def _resolve_classes(config: dict[str, Any], source: str) -> None:
    """Fill what the class set decides: trained classes, sample labels, target, discriminant.

    Class names anywhere must be the set's; the resolved forms are written in place, so every
    stage (and its rerun trigger) sees explicit label values and fractions.
    """
    classes = class_set(config, source)

    def known(name: str, where: str) -> None:
        if name not in classes.classes:
            raise ConfigError(
                f"{source}: {where}: '{name}' is not a class of class_set '{classes.name}'"
                f" ({list(classes.classes)})"
            )

    prepare = config["prepare"]
    listed = prepare["classes"] if prepare["classes"] is not None else classes.train_classes
    resolved = []
    for k, entry in enumerate(listed):
        name = entry if isinstance(entry, str) else entry["name"]
        known(name, f"prepare.classes[{k}]")
        values = classes[name].label_values if isinstance(entry, str) else entry["truth_labels"]
        resolved.append({"name": name, "truth_labels": list(values)})
    prepare["classes"] = resolved
    trained = [c["name"] for c in resolved]
    label_key = f"jet_{classes.label_variable}"
    jet_keys = [k for k in _source_keys() if k.startswith("jet_")]
    if prepare["reweight"]["target"] is None:
        prepare["reweight"]["target"] = trained[0]
    for dataset_name, dataset in config["datasets"].items():
        for component in dataset["components"]:
            for key in ("pt_min_gev", "pt_max_gev"):
                for name in component[key] if isinstance(component[key], dict) else ():
                    known(name, f"datasets.{dataset_name}.components[{component['sample']}].{key}")
        if dataset["resample"] is not None:
            if dataset["resample"]["target"] is None:
                dataset["resample"]["target"] = prepare["reweight"]["target"]
            known(dataset["resample"]["target"], f"datasets.{dataset_name}.resample.target")
    for sample_name, sample in config["samples"].items():
        labels = sample["labels"]
        if labels["values"] is None:
            labels["values"] = {n: list(v) for n, v in classes.label_values().items()}
        for key in ("values", "one_hot"):
            for name in labels[key]:
                known(name, f"samples.{sample_name}.labels.{key}")
        for key in sample["branches"]:
            if key.startswith("jet_") and key not in jet_keys and key != label_key:
                raise ConfigError(
                    f"{source}: samples.{sample_name}.branches.{key}: not a source key; the"
                    f" jet label of class_set '{classes.name}' is {label_key}, the other jet"
                    f" keys are {jet_keys}"
                )
    evaluation = config["evaluation"]
    evaluation["discriminant"] = _discriminant(evaluation["discriminant"], classes, trained,
                                               source)  # fmt: skip


def _discriminant(
    given: dict[str, Any] | None, classes: ClassSet, trained: list[str], source: str
) -> dict[str, Any]:
    """evaluation.discriminant with its fractions: as given, or the class set's default.

    A default built for classes that are not all trained keeps the trained backgrounds and
    rescales their fractions to add up to 1 (equal shares where none is left).
    """
    where = f"{source}: evaluation.discriminant"
    if given is not None and "fractions" in given:
        signal, fractions = given["signal"], dict(given["fractions"])
    else:
        signal = (
            given["signal"]
            if given
            else next((s for s in classes.discriminants if s in trained), trained[0])
        )
        fractions = _trained_fractions(classes.discriminants.get(signal, {}), trained)
        if sum(fractions.values()) <= 0:  # nothing weighted left: every other class alike
            others = [c for c in trained if c != signal]
            fractions = {b: 1.0 / len(others) for b in others}
    unknown = [n for n in (signal, *fractions) if n not in trained]
    if unknown:
        raise ConfigError(f"{where}: {unknown} not among the trained classes {trained}")
    problem = fraction_problem(signal, fractions)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    order = {name: k for k, name in enumerate(trained)}
    return {"signal": signal, "fractions": dict(sorted(fractions.items(),
                                                       key=lambda i: order[i[0]]))}  # fmt: skip


def binary_tasks(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The class set's discriminants over the trained classes: the multi-class stage's tasks.

    Each keeps its trained backgrounds, their fractions rescaled to add up to 1; a task whose
    signal or every background is not trained is left out. The configured discriminant is
    always among them (first).
    """
    classes = class_set(config)
    trained = [c["name"] for c in config["prepare"]["classes"]]
    tasks = [config["evaluation"]["discriminant"]]
    for signal, fractions in classes.discriminants.items():
        kept = _trained_fractions(fractions, trained)
        if signal not in trained or not kept or signal == tasks[0]["signal"]:
            continue
        if sum(kept.values()) <= 0:  # every kept fraction 0: they share alike
            kept = {b: 1.0 / len(kept) for b in kept}
        tasks.append({"signal": signal, "fractions": kept})
    return tasks


def _trained_fractions(fractions: dict[str, float], trained: list[str]) -> dict[str, float]:
    """A class set's fractions over the trained backgrounds only, rescaled to add up to 1.

    Untrained backgrounds leave, and the rest share their weight; fractions that add up to
    1 (or to 0) are returned as they are, so a default stays bit for bit the class set's.
    """
    kept = {b: f for b, f in fractions.items() if b in trained}
    total = sum(kept.values())
    if total > 0 and total != 1.0:
        kept = {b: f / total for b, f in kept.items()}
    return kept


def _source_keys() -> list[str]:
    """The source keys a sample's branches may map (the schema's list; io/fields.py's)."""
    names = schema()["$defs"]["sample"]["properties"]["branches"]["propertyNames"]
    return next(option["enum"] for option in names["anyOf"] if "enum" in option)


def reading_config(config: dict[str, Any], sample_name: str) -> ReadingConfig:  # noqa: F405
    """The typed ReadingConfig of a sample: what ingest reads of it, with the class set's labels."""
    return section(ReadingConfig, reading_settings(config, sample_name))  # noqa: F405


def reading_settings(config: dict[str, Any], sample_name: str) -> dict[str, Any]:
    """What ingest reads of a sample (ReadingConfig's keys), the class set's labels included."""
    sample = config["samples"][sample_name]
    classes = class_set(config)
    reading = {k: sample[k] for k in SAMPLE_READING_KEYS}  # noqa: F405
    reading["label_variable"] = classes.label_variable
    reading["canonical_labels"] = {n: classes.canonical_value(n) for n in classes.classes}
    reading["lifetime_check_class"] = classes.lifetime_check_class
    return reading


def _check_references(config: dict[str, Any], source: str) -> None:
    """Names used across sections must exist: datasets, class names, reference tagger."""
    samples = config["samples"]
    class_names = [c["name"] for c in config["prepare"]["classes"]]
    if len(set(class_names)) != len(class_names):
        raise ConfigError(f"{source}: prepare.classes has duplicate names {class_names}")
    split = config["prepare"]["split"]
    if abs(split["train"] + split["val"] + split["test"] - 1.0) > 1e-9:
        raise ConfigError(f"{source}: prepare.split fractions must add up to 1, got {split}")
    if config["prepare"]["reweight"]["target"] not in class_names:
        raise ConfigError(
            f"{source}: prepare.reweight.target '{config['prepare']['reweight']['target']}'"
            f" is not a class in {class_names}"
        )
    track_names = [t["name"] for t in config["prepare"]["track_inputs"]]
    jet_names = [t["name"] for t in config["prepare"]["jet_inputs"]]
    datasets = config["datasets"]
    clash = set(samples) & set(datasets)
    if clash:
        raise ConfigError(f"{source}: names used by both samples and datasets: {sorted(clash)}")
    for name, dataset in datasets.items():
        for component in dataset["components"]:
            if component["sample"] not in samples:
                raise ConfigError(
                    f"{source}: datasets.{name}.components: sample '{component['sample']}' is"
                    f" not in samples ({sorted(samples)})"
                )
    known_datasets = {**samples, **datasets}
    taggers = {**config["models"], **config["baselines"]}
    clash = set(config["models"]) & set(config["baselines"])
    if clash:
        raise ConfigError(f"{source}: names used by both models and baselines: {sorted(clash)}")
    for name, entry in taggers.items():
        kind = "models" if name in config["models"] else "baselines"
        if entry["dataset"] not in known_datasets:
            raise ConfigError(
                f"{source}: {kind}.{name}.dataset '{entry['dataset']}' is not in samples or"
                f" datasets ({sorted(known_datasets)})"
            )
        for test in entry.get("test_datasets") or []:
            if test not in known_datasets:
                raise ConfigError(
                    f"{source}: {kind}.{name}.test_datasets: '{test}' is not in samples or"
                    f" datasets ({sorted(known_datasets)})"
                )
        for group, available in (("track_inputs", track_names), ("jet_inputs", jet_names)):
            for var in entry.get(group) or []:
                if var not in available:
                    raise ConfigError(
                        f"{source}: {kind}.{name}.{group}: '{var}' is not in"
                        f" prepare.{group} ({available})"
                    )
    for name, model in config["models"].items():
        if model["kfold"] and model["members"] < 2:
            raise ConfigError(
                f"{source}: models.{name}.kfold needs members >= 2 (K = members), got"
                f" {model['members']}"
            )
        if model["training"]["track_vertex_weight"] > 0 and model["architecture"] != "transformer":
            raise ConfigError(
                f"{source}: models.{name}.training.track_vertex_weight > 0 needs the"
                f" transformer's track-pair head; architecture '{model['architecture']}' has"
                " none (set it to 0)"
            )
    check_training_jobs(config, source)
    evaluation = config["evaluation"]
    for group, names in evaluation["feature_groups"].items():
        unknown = [n for n in names if n not in track_names]
        if unknown:
            raise ConfigError(
                f"{source}: evaluation.feature_groups.{group}: {unknown} not in"
                f" prepare.track_inputs ({track_names})"
            )
    for key, model in (
        ("ablation", evaluation["ablation"]),
        ("learning_curve.model", evaluation["learning_curve"]["model"]),
    ):
        if model is not None and model not in config["models"]:
            raise ConfigError(
                f"{source}: evaluation.{key} '{model}' is not a model ({sorted(config['models'])})"
            )
    finder = config["lr_finder"]
    for model in finder["models"]:
        if model not in config["models"]:
            raise ConfigError(
                f"{source}: lr_finder.models: '{model}' is not a model ({sorted(config['models'])})"
            )
    if finder["min_lr"] >= finder["max_lr"]:
        raise ConfigError(
            f"{source}: lr_finder.min_lr {finder['min_lr']} must be below max_lr {finder['max_lr']}"
        )
    material = config["simulation"]["tracker"]["material"]
    for key in ("interaction_probability", "conversion_probability"):
        if len(material[key]) != len(material["layer_radii_mm"]):
            raise ConfigError(
                f"{source}: simulation.tracker.material.{key} needs one value per layer in"
                f" layer_radii_mm ({len(material['layer_radii_mm'])}), got {len(material[key])}"
            )
    reference = config["plots"]["reference"]
    if reference is not None and reference not in taggers:
        raise ConfigError(f"{source}: plots.reference '{reference}' is not a model or baseline")


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config with safe_load, resolve `extends`, validate it and fill defaults."""
    return validate_config(resolve_extends(_read_yaml(Path(path)), path), str(path))


def _read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping read with safe_load; a clear error naming the file otherwise."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: config file not found") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping at the top level")
    return raw


def resolve_extends(raw: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """A config with `extends: <file>` as that file's mapping with this one's top-level keys
    put in place of the base's (whole sections, no deep merge); the base's path is relative
    to the extending file. A config without `extends` is returned as it is."""
    if "extends" not in raw:
        return raw
    chain = [Path(path).resolve()]
    merged = {k: v for k, v in raw.items() if k != "extends"}
    base_name = raw["extends"]
    while base_name is not None:
        if not isinstance(base_name, str):
            raise ConfigError(f"{chain[-1]}: extends must be a file name, got {base_name!r}")
        base_path = (chain[-1].parent / base_name).resolve()
        if base_path in chain:
            raise ConfigError(f"{chain[-1]}: extends {base_name} makes a cycle")
        base = _read_yaml(base_path)
        chain.append(base_path)
        base_name = base.pop("extends", None)
        merged = {**base, **merged}
    return merged


def tagger_label(config: dict[str, Any], name: str) -> str:
    """Legend text of a tagger: its model's or baseline's."""
    entry = _tagger_entry(config, name)
    return entry.get("label") or tagger_source(name)


TEST_SEPARATOR = "@"  # '<model>@<dataset>': a model scored on another dataset's test split


def taggers(config: dict[str, Any]) -> list[str]:
    """Every tagger: baselines, models (on their first test dataset), then the models scored
    on their further test datasets ('<model>@<dataset>')."""
    names = [*config["baselines"], *config["models"]]
    for model, entry in config["models"].items():
        names += [f"{model}{TEST_SEPARATOR}{d}" for d in (entry["test_datasets"] or [])[1:]]
    return names


def tagger_source(name: str) -> str:
    """The model or baseline behind a tagger ('dips@zprime' -> 'dips')."""
    return name.partition(TEST_SEPARATOR)[0]


def _tagger_entry(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The model or baseline section behind a tagger."""
    source = tagger_source(name)
    entry = config["models"].get(source) or config["baselines"].get(source)
    if entry is None:
        raise ConfigError(f"'{source}' is neither a model nor a baseline in the config")
    return entry


def tagger_dataset(config: dict[str, Any], name: str) -> str:
    """The dataset whose test split scores a tagger: a model's first test dataset (default:
    its own), the one after '@' for a model scored elsewhere, a baseline's own."""
    entry = _tagger_entry(config, name)
    source, separator, dataset = name.partition(TEST_SEPARATOR)
    tests = entry.get("test_datasets") or [entry["dataset"]]
    if separator:
        if source not in config["models"] or dataset not in tests[1:]:
            raise ConfigError(
                f"tagger '{name}': '{dataset}' is not among models.{source}.test_datasets"
                f" after the first ({tests})"
            )
        return dataset
    return tests[0]


def train_dataset(config: dict[str, Any], name: str) -> str:
    """The dataset a model or baseline is trained (or fitted) on."""
    return _tagger_entry(config, name)["dataset"]


def model_config(config: dict[str, Any], name: str) -> ModelConfig:
    """The typed section of one model, with a clear error for an unknown name."""
    if name not in config["models"]:
        raise ConfigError(f"model '{name}' is not in the config (have {sorted(config['models'])})")
    return section(ModelConfig, config["models"][name])


def baseline_config(config: dict[str, Any], name: str) -> BaselineConfig:
    """The typed section of one baseline."""
    if name not in config["baselines"]:
        raise ConfigError(
            f"baseline '{name}' is not in the config (have {sorted(config['baselines'])})"
        )
    return section(BaselineConfig, config["baselines"][name])


def sample_config(config: dict[str, Any], name: str) -> SampleConfig:
    """The typed section of one sample."""
    if name not in config["samples"]:
        raise ConfigError(
            f"sample '{name}' is not in the config (have {sorted(config['samples'])})"
        )
    return section(SampleConfig, config["samples"][name])
