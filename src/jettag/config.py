"""Read, validate and default-fill an analysis configuration; typed views of its sections.

The JSON Schema in workflow/schemas/config.schema.yaml is the single source of truth for
keys, types and defaults. Snakemake and the CLI both go through `load_config`, so a bad
key fails the same way, before any work starts, wherever it is run from.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import numpy as np
import yaml

from jettag.errors import ConfigError

T = TypeVar("T")
__all__ = ["ConfigError", "load_config", "section", "validate_config"]


@cache
def schema() -> dict[str, Any]:
    """The configuration JSON Schema (draft 2020-12), shipped inside the package."""
    text = resources.files("jettag").joinpath("schema/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (only '#/$defs/name' is used in the schema)."""
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ConfigError(f"unsupported schema reference {ref!r}")
        merged = dict(root["$defs"][ref.removeprefix("#/$defs/")])
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        node = merged
    return node


def _fill_defaults(instance: Any, node: dict[str, Any], root: dict[str, Any]) -> None:
    """Insert schema defaults into `instance` in place, recursively."""
    node = _resolve(node, root)
    if not isinstance(instance, dict):
        if isinstance(instance, list) and "items" in node:
            for item in instance:
                _fill_defaults(item, node["items"], root)
        return
    properties = node.get("properties", {})
    for key, sub in properties.items():
        sub_resolved = _resolve(sub, root)
        if key not in instance and "default" in sub_resolved:
            instance[key] = copy.deepcopy(sub_resolved["default"])
        if key in instance:
            _fill_defaults(instance[key], sub, root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in properties:
                _fill_defaults(value, extra, root)


def _format_error(error: jsonschema.ValidationError, source: str) -> str:
    """One line naming the file, the key path and what is wrong."""
    path = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    return f"{source}: invalid config at '{path}': {error.message}"


def validate_config(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate against the schema, fill in defaults and check cross-references; return a copy."""
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("\n".join(_format_error(e, source) for e in errors))
    filled = copy.deepcopy(config)
    for sample in filled["samples"].values():
        _apply_preset(sample)
    _fill_defaults(filled, schema(), schema())
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:  # a default that breaks a constraint is a bug in the schema itself
        raise ConfigError("\n".join(_format_error(e, source + " (defaults)") for e in errors))
    _check_references(filled, source)
    return filled


@cache
def preset(name: str) -> dict[str, Any]:
    """A shipped sample preset (src/jettag/presets/<name>.yaml): branches, units, labels."""
    text = resources.files("jettag").joinpath(f"presets/{name}.yaml").read_text()
    return yaml.safe_load(text)


def _apply_preset(sample: dict[str, Any]) -> None:
    """Fill a sample section from its preset, in place; the section's own keys win.

    `branches` and `labels` merge key by key (a user maps one branch differently and keeps
    the rest of the preset); every other key of the preset is a default.
    """
    if "preset" not in sample:
        return
    for key, value in preset(sample["preset"]).items():
        if key in ("branches", "labels", "units") and key in sample:
            sample[key] = {**value, **sample[key]}
        elif key not in sample:
            sample[key] = copy.deepcopy(value)


SEARCH_SALT = 0x5EA2C4  # trials' random streams, apart from every other seed use


def _check_references(config: dict[str, Any], source: str) -> None:
    """Names used across sections must exist: datasets, class names, reference tagger."""
    from jettag.io.fields import SOURCE_KEYS

    samples = config["samples"]
    for name, sample in samples.items():
        unknown = sorted(set(sample["branches"]) - set(SOURCE_KEYS))
        if unknown:
            raise ConfigError(
                f"{source}: samples.{name}.branches has unknown keys {unknown}; known:"
                f" {list(SOURCE_KEYS)}"
            )
    class_names = [c["name"] for c in config["prepare"]["classes"]]
    for required in ("b", "c", "light"):
        if required not in class_names:
            raise ConfigError(
                f"{source}: prepare.classes must include '{required}' (have {class_names})"
            )
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
    taggers = {**config["models"], **config["baselines"]}
    clash = set(config["models"]) & set(config["baselines"])
    if clash:
        raise ConfigError(f"{source}: names used by both models and baselines: {sorted(clash)}")
    for name, section in taggers.items():
        kind = "models" if name in config["models"] else "baselines"
        if section["dataset"] not in samples:
            raise ConfigError(
                f"{source}: {kind}.{name}.dataset '{section['dataset']}' is not in samples"
                f" ({sorted(samples)})"
            )
        for group, available in (("track_inputs", track_names), ("jet_inputs", jet_names)):
            for var in section.get(group) or []:
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
    _check_search(config, source)
    _check_transfer(config, source)
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
    reference = config["plots"]["reference"]
    if reference is not None and reference not in taggers:
        raise ConfigError(f"{source}: plots.reference '{reference}' is not a model or baseline")


def _check_search(config: dict[str, Any], source: str) -> None:
    """The searched model exists and every trial's sampled section is a valid model section."""
    model = config["search"]["model"]
    if model is None:
        return
    if model not in config["models"]:
        raise ConfigError(
            f"{source}: search.model '{model}' is not a model ({sorted(config['models'])})"
        )
    validator = jsonschema.Draft202012Validator(schema())
    for trial in range(config["search"]["trials"]):
        patched = {**config, "models": {**config["models"], model: trial_section(config, trial)}}
        errors = sorted(validator.iter_errors(patched), key=lambda e: list(e.absolute_path))
        if errors:
            raise ConfigError(
                "\n".join(_format_error(e, f"{source} (search trial {trial})") for e in errors)
            )


def sample_trial(config: dict[str, Any], trial: int) -> dict[str, Any]:
    """The hyper-parameters of one search trial, drawn from search.space (seeded per trial)."""
    rng = np.random.default_rng([config["seed"], SEARCH_SALT, trial])
    params: dict[str, Any] = {}
    for path in sorted(config["search"]["space"]):
        ((kind, values),) = config["search"]["space"][path].items()
        if kind == "log_uniform":
            params[path] = float(np.exp(rng.uniform(np.log(values[0]), np.log(values[1]))))
        elif kind == "uniform":
            params[path] = float(rng.uniform(values[0], values[1]))
        else:
            params[path] = copy.deepcopy(values[int(rng.integers(len(values)))])
    return params


def trial_section(config: dict[str, Any], trial: int | None) -> dict[str, Any]:
    """The model section of a search trial (None: the model as configured) on the search subset."""
    search = config["search"]
    section = copy.deepcopy(config["models"][search["model"]])
    for path, value in (sample_trial(config, trial) if trial is not None else {}).items():
        *parents, leaf = path.split(".")
        node = section
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise ConfigError(f"search.space: '{path}' is not a path in a model section")
            node = node[key]
        node[leaf] = value
    section["training"]["max_train_jets"] = search["max_train_jets"]
    if search["epochs"] is not None:
        section["training"]["epochs"] = search["epochs"]
    return section


TRANSFER_STRATEGIES = ("scratch", "finetune", "frozen")


def _check_transfer(config: dict[str, Any], source: str) -> None:
    """The transferred model and target exist, and every job's model section is valid."""
    transfer = config["transfer"]
    if transfer["model"] is None:
        return
    if transfer["model"] not in config["models"]:
        raise ConfigError(
            f"{source}: transfer.model '{transfer['model']}' is not a model"
            f" ({sorted(config['models'])})"
        )
    if transfer["target"] not in config["samples"]:
        raise ConfigError(
            f"{source}: transfer.target '{transfer['target']}' is not a sample"
            f" ({sorted(config['samples'])})"
        )
    if min(transfer["train_jets"]) < transfer["batch_size"]:
        raise ConfigError(
            f"{source}: transfer.train_jets {min(transfer['train_jets'])} is smaller than one"
            f" batch (transfer.batch_size {transfer['batch_size']})"
        )
    validator = jsonschema.Draft202012Validator(schema())
    for strategy in transfer["strategies"]:
        job = transfer_section(config, strategy, min(transfer["train_jets"]))
        patched = {**config, "models": {**config["models"], transfer["model"]: job}}
        errors = sorted(validator.iter_errors(patched), key=lambda e: list(e.absolute_path))
        if errors:
            raise ConfigError(
                "\n".join(_format_error(e, f"{source} (transfer {strategy})") for e in errors)
            )


def transfer_section(config: dict[str, Any], strategy: str, train_jets: int) -> dict[str, Any]:
    """The model section of one transfer-learning job: the pretrained model's, on the target."""
    transfer = config["transfer"]
    if strategy not in TRANSFER_STRATEGIES:
        raise ConfigError(f"transfer strategy '{strategy}' is not one of {TRANSFER_STRATEGIES}")
    section = copy.deepcopy(config["models"][transfer["model"]])
    section.update(dataset=transfer["target"], members=1, kfold=False)
    training = section["training"]
    training.update(
        max_train_jets=train_jets, batch_size=transfer["batch_size"], epochs=transfer["epochs"],
        patience=transfer["patience"],
    )  # fmt: skip
    if strategy == "finetune":
        training["learning_rate"] = transfer["finetune_learning_rate"]
    elif transfer["learning_rate"] is not None:
        training["learning_rate"] = transfer["learning_rate"]
    return section


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config with safe_load, validate it and fill defaults."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: config file not found") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping at the top level")
    return validate_config(raw, str(path))


# ---------------------------------------------------------------------------------------
# Typed, frozen views of the sections that library functions take.


@dataclasses.dataclass(frozen=True)
class JetsConfig:
    """Jet definition of generated samples."""

    radius: float
    pt_min_gev: float
    abs_eta_max: float


@dataclasses.dataclass(frozen=True)
class LabellingConfig:
    """Hadron cone labelling (HadronConeExclTruthLabelID)."""

    hadron_pt_min_gev: float
    delta_r: float


@dataclasses.dataclass(frozen=True)
class Resolution:
    """sigma = sqrt(constant^2 + (multiple_scattering / (pT sqrt(sin theta)))^2)."""

    constant: float
    multiple_scattering: float


@dataclasses.dataclass(frozen=True)
class PtResolution:
    """sigma(pT)/pT = sqrt(constant^2 + (slope_per_gev pT)^2)."""

    constant: float
    slope_per_gev: float


@dataclasses.dataclass(frozen=True)
class AssociationCone:
    """dR < a + exp(b + c_per_mev pT[MeV])."""

    a: float
    b: float
    c_per_mev: float


@dataclasses.dataclass(frozen=True)
class EfficiencyConfig:
    """Track reconstruction efficiency versus pT and eta."""

    plateau: float
    forward_loss: float
    turn_on_gev: float


@dataclasses.dataclass(frozen=True)
class TailsConfig:
    """Core plus wide Gaussian impact-parameter smearing."""

    enabled: bool
    fraction: float
    scale: float


@dataclasses.dataclass(frozen=True)
class HitsConfig:
    """Silicon layers, hit efficiencies and hit-count quality cuts."""

    pixel_radii_mm: tuple[float, ...]
    sct_radii_mm: tuple[float, ...]
    pixel_hit_efficiency: float
    sct_hit_efficiency: float
    min_pixel_hits: int
    min_silicon_hits: int
    max_pixel_holes: int


@dataclasses.dataclass(frozen=True)
class MaterialConfig:
    """Hadronic interactions in the beam pipe and pixel layers."""

    enabled: bool
    layer_radii_mm: tuple[float, ...]
    interaction_probability: tuple[float, ...]
    mean_charged_secondaries: float
    charged_energy_fraction: float
    mean_kt_gev: float


@dataclasses.dataclass(frozen=True)
class DenseConfig:
    """Merged clusters in dense jet cores."""

    enabled: bool
    cluster_size_rphi_mm: float
    cluster_size_z_mm: float
    merged_loss_probability: float
    shared_resolution_factor: float


@dataclasses.dataclass(frozen=True)
class FakesConfig:
    """Fake tracks per jet."""

    enabled: bool
    per_jet_constant: float
    per_jet_per_100gev: float
    pt_mean_above_min_gev: float
    d0_scale_mm: float
    z0_sin_theta_scale_mm: float


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    """The parametrised tracker."""

    b_field_tesla: float
    pt_min_gev: float
    abs_eta_max: float
    efficiency: EfficiencyConfig
    d0_resolution_mm: Resolution
    z0_resolution_mm: Resolution
    pt_resolution: PtResolution
    no_innermost_hit_resolution_factor: float
    tails: TailsConfig
    hits: HitsConfig
    material: MaterialConfig
    dense: DenseConfig
    fakes: FakesConfig
    primary_vertex_z_resolution_mm: float
    max_abs_d0_mm: float
    max_abs_z0_sin_theta_mm: float
    association_cone: AssociationCone


@dataclasses.dataclass(frozen=True)
class PileupConfig:
    """Charged particles from pile-up interactions."""

    enabled: bool
    mu: float
    charged_per_vertex: float
    pt_min_gev: float
    pt_mean_above_min_gev: float
    abs_eta_max: float


@dataclasses.dataclass(frozen=True)
class OverlapRemovalConfig:
    """Removal of jets made by prompt isolated leptons."""

    enabled: bool
    lepton_pt_min_gev: float
    isolation_cone: float
    max_isolation_fraction: float
    delta_r: float


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Everything the generator needs beyond the sample itself."""

    jets: JetsConfig
    labelling: LabellingConfig
    tracker: TrackerConfig
    beam_spot_sigma_z_mm: float
    long_lived_decays: bool
    pileup: PileupConfig
    overlap_removal: OverlapRemovalConfig


@dataclasses.dataclass(frozen=True)
class UnitsConfig:
    """The units an input file's numbers are in (converted to GeV and mm at ingest)."""

    energy: str = "GeV"
    length: str = "mm"


@dataclasses.dataclass(frozen=True)
class LabelsConfig:
    """How jet flavour labels are read: an integer branch mapped, or one-hot branches."""

    values: dict[str, tuple[int, ...]] = dataclasses.field(
        default_factory=lambda: {"b": (5,), "c": (4,), "light": (0,), "tau": (15,)}
    )
    one_hot: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    """One input sample: generated, or read from ROOT/HDF5 files."""

    source: str
    label: str
    process: str
    sqrt_s_gev: float
    n_shards: int
    events_per_shard: int
    tree: str
    branches: dict[str, str]
    zprime_masses_gev: tuple[float, ...]
    files: tuple[str, ...] = ()
    preset: str | None = None
    units: UnitsConfig = UnitsConfig()
    labels: LabelsConfig = LabelsConfig()
    d0_sign: str = "atlas"
    lifetime_sign_check: str = "error"
    charged_only: bool = False


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """Canonical HDF5 writing."""

    max_tracks: int
    compression: str
    chunk_jets: int
    non_finite: str = "error"
    sort_key: str = "abs_sd0"


@dataclasses.dataclass(frozen=True)
class ClassConfig:
    """One output class and the truth labels that make it."""

    name: str
    truth_labels: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Event fractions of the three splits."""

    train: float
    val: float
    test: float


@dataclasses.dataclass(frozen=True)
class ReweightConfig:
    """pT reweighting of each flavour to a target flavour."""

    enabled: bool
    target: str
    pt_bins_gev: tuple[float, ...]
    max_weight: float


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """A model input: variable name, transform, and whether to normalise it."""

    name: str
    transform: str
    normalise: bool


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Preprocessing: classes, splits, reweighting and model inputs."""

    classes: tuple[ClassConfig, ...]
    split: SplitConfig
    reweight: ReweightConfig
    track_inputs: tuple[InputConfig, ...]
    jet_inputs: tuple[InputConfig, ...]

    @property
    def class_names(self) -> list[str]:
        """Class names in output order."""
        return [c.name for c in self.classes]


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule."""

    name: str
    warmup_fraction: float
    min_lr_factor: float


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Optimiser, schedule and stopping."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    l1: float
    gradient_clip_norm: float | None
    schedule: ScheduleConfig
    patience: int
    min_delta: float
    rotate_about_jet_axis: bool
    bucket_by_multiplicity: bool
    use_sample_weights: bool
    use_class_weights: bool
    max_train_jets: int | None
    device: str
    num_threads: int | None
    track_origin_weight: float
    # defaults: checkpoints written before these keys existed still load
    loader: str = "auto"
    loader_block_jets: int = 16384
    loader_buffer_blocks: int = 4
    processes: int = 1


@dataclasses.dataclass(frozen=True)
class DeepSetsConfig:
    """DIPS-like Deep Sets sizes."""

    track_layers: tuple[int, ...]
    jet_layers: tuple[int, ...]
    activation: str
    dropout: float
    normalisation: str


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """GN2-like transformer sizes."""

    embed_dim: int
    num_heads: int
    num_layers: int
    ffn_multiplier: int
    init_layers: tuple[int, ...]
    jet_layers: tuple[int, ...]
    registers: int
    activation: str
    dropout: float


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A trained tagger."""

    dataset: str
    architecture: str
    members: int
    kfold: bool
    deepsets: DeepSetsConfig
    transformer: TransformerConfig
    training: TrainingConfig
    label: str | None = None
    track_inputs: tuple[str, ...] | None = None
    jet_inputs: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    """A tagger without training."""

    dataset: str
    kind: str
    sd0_bins: tuple[float, ...]
    sz0_bins: tuple[float, ...]
    label: str | None = None


@dataclasses.dataclass(frozen=True)
class RocGrid:
    """b-efficiency grid for stored ROC curves."""

    start: float
    stop: float
    points: int


@dataclasses.dataclass(frozen=True)
class SaliencyConfig:
    """Which b jets the saliency maps average over."""

    n_tracks: int
    working_point: float


@dataclasses.dataclass(frozen=True)
class LearningCurveConfig:
    """Training-set sizes of the bias/variance diagnostic."""

    model: str | None
    train_jets: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Discriminant, working points and diagnostics."""

    f_c: float
    working_points: tuple[float, ...]
    roc_b_efficiencies: RocGrid
    pt_bins_gev: tuple[float, ...]
    pt_working_point: float
    saliency: SaliencyConfig
    feature_groups: dict[str, tuple[str, ...]]
    ablation: str | None
    learning_curve: LearningCurveConfig


@dataclasses.dataclass(frozen=True)
class PlotsConfig:
    """Plot appearance."""

    reference: str | None
    atlas_text: str
    formats: tuple[str, ...]


def section(cls: type[T], data: dict[str, Any]) -> T:
    """Build a frozen dataclass (recursively) from a validated config mapping."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name not in data:
            continue
        kwargs[field.name] = _convert(hints[field.name], data[field.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    """Convert one value to the annotated type: nested dataclasses, tuples."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return section(hint, value)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return tuple(_convert(item, v) for v in value)
    if origin is dict:
        return dict(value)
    return value


def tagger_label(config: dict[str, Any], name: str) -> str:
    """Legend text of a model or baseline."""
    entry = config["models"].get(name) or config["baselines"].get(name)
    if entry is None:
        raise ConfigError(f"'{name}' is neither a model nor a baseline in the config")
    return entry.get("label") or name


def tagger_dataset(config: dict[str, Any], name: str) -> str:
    """The dataset a model or baseline is trained and evaluated on."""
    entry = config["models"].get(name) or config["baselines"].get(name)
    if entry is None:
        raise ConfigError(f"'{name}' is neither a model nor a baseline in the config")
    return entry["dataset"]


def feature_groups(config: dict[str, Any], model: str) -> dict[str, tuple[str, ...]]:
    """The feature groups of a model's track inputs: configured ones, else one per input."""
    inputs = model_config(config, model).track_inputs or tuple(
        t["name"] for t in config["prepare"]["track_inputs"]
    )
    groups = config["evaluation"]["feature_groups"] or {name: [name] for name in inputs}
    return {
        name: tuple(v for v in members if v in inputs)
        for name, members in groups.items()
        if any(v in inputs for v in members)
    }


def model_from_dict(data: dict[str, Any]) -> ModelConfig:
    """A model section as stored (e.g. in a checkpoint), with keys added since filled in."""
    filled = copy.deepcopy(data)
    _fill_defaults(filled, {"$ref": "#/$defs/model"}, schema())
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    return section(ModelConfig, {k: v for k, v in filled.items() if k in known})


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
