"""Typed, frozen views of the config sections that library functions take.

Built from a validated, default-filled config mapping with `section(cls, mapping)`; a
function takes the section it needs, not the whole config.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar

from jettag.config.schema import fill_defaults, schema
from jettag.flavours import FTAG

T = TypeVar("T")
__all__ = [
    "MAX_EVENT_NUMBER_PER_SHARD",
    "SAMPLE_READING_KEYS",
    "AssociationCone",
    "BaselineConfig",
    "ClassConfig",
    "ComponentConfig",
    "DeepSetsConfig",
    "DenseConfig",
    "EfficiencyConfig",
    "EvaluationConfig",
    "ExperimentLabel",
    "FakesConfig",
    "FractionScanConfig",
    "GenerationConfig",
    "HitsConfig",
    "IngestConfig",
    "InputConfig",
    "InputTransformsConfig",
    "JetReconstructionConfig",
    "JetsConfig",
    "LabellingConfig",
    "LabelsConfig",
    "LearningCurveConfig",
    "LrFinderConfig",
    "MaterialConfig",
    "ModelConfig",
    "OverlapRemovalConfig",
    "PartialSection",
    "PileupConfig",
    "PlotsConfig",
    "PrepareConfig",
    "PtResolution",
    "ReadingConfig",
    "ResampleConfig",
    "Resolution",
    "ReweightConfig",
    "RocGrid",
    "SaliencyConfig",
    "SampleConfig",
    "ScheduleConfig",
    "SimulationConfig",
    "SplitConfig",
    "TailsConfig",
    "TrackerConfig",
    "TrainingConfig",
    "TransformerConfig",
    "UnitsConfig",
    "model_from_dict",
    "partial_section",
    "section",
    "test_only_event_number",
    "typed_section",
]


@dataclasses.dataclass(frozen=True)
class JetReconstructionConfig:
    """Reconstructed jets: truth jets with a smeared pT (JES, JER) and axis."""

    enabled: bool
    energy_scale: float
    noise_gev: float
    stochastic: float
    constant: float
    angular_gev: float
    angular_constant: float
    truth_pt_min_fraction: float


@dataclasses.dataclass(frozen=True)
class JetsConfig:
    """Jet definition of generated samples."""

    radius: float
    pt_min_gev: float
    abs_eta_max: float
    reconstruction: JetReconstructionConfig


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
    threshold_gev: float
    turn_on_gev: float


@dataclasses.dataclass(frozen=True)
class TailsConfig:
    """Core plus wide Gaussian impact-parameter smearing, and a fixed-distance component."""

    enabled: bool
    fraction: float
    scale: float
    fixed_fraction: float
    fixed_width_mm: float


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
    """Hadronic interactions and photon conversions in the beam pipe and pixel layers."""

    enabled: bool
    layer_radii_mm: tuple[float, ...]
    interaction_probability: tuple[float, ...]
    mean_charged_secondaries: float
    charged_energy_fraction: float
    mean_kt_gev: float
    conversions: bool
    conversion_probability: tuple[float, ...]


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
    realistic_hit_patterns: bool
    extra_hit_inefficiency: float
    shared_hit_probability: float
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
    primary_vertex_xy_resolution_mm: float
    primary_vertex_in_uncertainty: bool
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

    values: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    one_hot: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    """One input sample: generated, or read from ROOT/HDF5 files (the whole section)."""

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
    test_shards: int = 0


MAX_EVENT_NUMBER_PER_SHARD = 1_000_000
"""A generated event's eventNumber is shard * MAX_EVENT_NUMBER_PER_SHARD + its index."""


def test_only_event_number(sample: dict[str, Any]) -> int | None:
    """The first eventNumber of a generated sample's test-only shards, None when it has none."""
    if sample["source"] != "generate" or not sample.get("test_shards"):
        return None
    return sample["n_shards"] * MAX_EVENT_NUMBER_PER_SHARD


@dataclasses.dataclass(frozen=True)
class GenerationConfig:
    """What generating a shard reads of its sample (jettag.stages gives the stage these)."""

    process: str
    sqrt_s_gev: float
    events_per_shard: int
    zprime_masses_gev: tuple[float, ...] = ()  # read for process 'zprime' only


@dataclasses.dataclass(frozen=True)
class ReadingConfig:
    """How a sample's files are read into the canonical layout (what ingest reads of it)."""

    source: str
    tree: str
    branches: dict[str, str]
    units: UnitsConfig
    labels: LabelsConfig
    d0_sign: str
    lifetime_sign_check: str
    charged_only: bool
    # from the class set (config.reading_settings): the jets field written, each class's
    # value in it, and the class whose tracks the lifetime-sign check counts
    label_variable: str = FTAG.label_variable
    canonical_labels: dict[str, int] = dataclasses.field(
        default_factory=lambda: {name: FTAG.canonical_value(name) for name in FTAG.classes}
    )
    lifetime_check_class: str | None = FTAG.lifetime_check_class


# The ReadingConfig keys a sample section holds (the rest come from the class set).
SAMPLE_READING_KEYS = ("source", "tree", "branches", "units", "labels", "d0_sign",
                       "lifetime_sign_check", "charged_only")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """Canonical HDF5 writing."""

    max_tracks: int
    compression: str
    chunk_jets: int
    non_finite: str = "error"
    sort_key: str = "abs_sd0"
    degenerate_significance: str = "drop_track"


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
class ResampleConfig:
    """Resampling of the train and val splits to a target class's pT x |eta| distribution."""

    method: str  # importance | countup
    target: str
    pt_bins_gev: tuple[float, ...]
    abs_eta_bins: tuple[float, ...]
    max_factor: float


@dataclasses.dataclass(frozen=True)
class ComponentConfig:
    """One sample of a dataset: how many ingested parts it has, and the jet-pT range it gives
    to each class (a class not named: no cut), and where its test-only events start."""

    sample: str
    n_parts: int
    pt_min_gev: dict[str, float]
    pt_max_gev: dict[str, float]
    test_only_event_number: int | None = None


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Preprocessing: classes, splits, reweighting and model inputs."""

    classes: tuple[ClassConfig, ...]
    split: SplitConfig
    reweight: ReweightConfig
    track_inputs: tuple[InputConfig, ...]
    jet_inputs: tuple[InputConfig, ...]
    # the jets field holding the truth label (the class set's; stages.py adds it)
    label_variable: str = FTAG.label_variable

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
    cycles: int = 1  # cosine_restarts; a default: checkpoints from before the key still load


@dataclasses.dataclass(frozen=True)
class InputTransformsConfig:
    """Which of prepare's input transforms the network undoes at its front (a study knob).

    log: False undoes the log (signed_log) of the inputs in log_inputs, so the network sees
    the raw variable, standardised again on the training split when normalise is True;
    normalise: False undoes the standardisation of every input. The default changes nothing.
    """

    log: bool = True
    log_inputs: tuple[str, ...] = ("ptfrac", "dr")
    normalise: bool = True

    @property
    def is_identity(self) -> bool:
        """Whether the network sees the inputs exactly as prepared (no front layer)."""
        return self.log and self.normalise


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
    label_noise: float
    device: str
    num_threads: int | None
    track_origin_weight: float
    # defaults: checkpoints written before these keys existed still load
    loader: str = "auto"
    loader_block_jets: int = 16384
    loader_buffer_blocks: int = 4
    processes: int = 1
    precision: str = "bf16"
    compile: bool = False
    data_on_device: str = "auto"
    input_transforms: InputTransformsConfig = InputTransformsConfig()
    track_vertex_weight: float = 0.0


@dataclasses.dataclass(frozen=True)
class DeepSetsConfig:
    """DIPS-like Deep Sets sizes."""

    track_layers: tuple[int, ...]
    jet_layers: tuple[int, ...]
    activation: str
    dropout: float
    normalisation: str
    normalisation_placement: str


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
    norm_placement: str
    pairwise_features: bool = False  # default: checkpoints from before the key still load


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
    test_datasets: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    """A tagger without training."""

    dataset: str
    kind: str
    sd0_bins: tuple[float, ...]
    sz0_bins: tuple[float, ...]
    label: str | None = None
    track_grades: bool = True


@dataclasses.dataclass(frozen=True)
class RocGrid:
    """b-efficiency grid for stored ROC curves."""

    start: float
    stop: float
    points: int

    def efficiencies(self) -> Any:
        """The grid's signal efficiencies (a numpy array), evenly spaced, both ends included."""
        import numpy as np  # the config layer itself needs no numpy

        return np.linspace(self.start, self.stop, self.points)


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
class FractionScanConfig:
    """The fraction scan: the background whose fraction varies (None: the discriminant's
    first), its values and the signal efficiency of the working point."""

    fractions: tuple[float, ...]
    working_point: float
    background: str | None = None


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Discriminant, working points and diagnostics."""

    discriminant: dict[str, Any]
    working_points: tuple[float, ...]
    roc_b_efficiencies: RocGrid
    pt_bins_gev: tuple[float, ...]
    pt_working_point: float
    saliency: SaliencyConfig
    feature_groups: dict[str, tuple[str, ...]]
    ablation: str | None
    learning_curve: LearningCurveConfig
    bootstrap_replicas: int = 200
    multiclass_efficiency: float = 0.5
    fraction_scan: FractionScanConfig | None = None


@dataclasses.dataclass(frozen=True)
class LrFinderConfig:
    """The learning-rate range test: its models and the rates and steps it runs over."""

    min_lr: float
    max_lr: float
    steps: int
    stop_factor: float
    models: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ExperimentLabel:
    """The experiment text of every figure: the experiment in bold, the status after it."""

    experiment: str
    status: str


@dataclasses.dataclass(frozen=True)
class PlotsConfig:
    """The presentation every figure shares (the plot stages alone read it)."""

    experiment_label: ExperimentLabel
    formats: tuple[str, ...]
    reference: str | None = None


class PartialSection:
    """Base of the keys of a config section that one stage reads (partial_section): reading
    any other key of the section is an error, never a silent default."""

    def __getattr__(self, name: str) -> Any:
        section = type(self).__name__
        raise AttributeError(
            f"{section} holds only the keys this stage reads, not '{name}'; add it to the"
            " stage's settings function (jettag.stages)"
        )


@functools.cache
def _partial_type(cls: type, names: tuple[str, ...]) -> type:
    """A frozen dataclass of these fields of cls, typed as cls types them."""
    hints = typing.get_type_hints(cls)
    return dataclasses.make_dataclass(
        f"{cls.__name__}[{', '.join(names)}]", [(n, hints[n]) for n in names], frozen=True,
        bases=(PartialSection,),
    )  # fmt: skip


def partial_section(cls: type, data: dict[str, Any]) -> Any:
    """The keys of a section that a stage reads, typed and converted as cls declares them."""
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise KeyError(f"{cls.__name__} has no {unknown}")
    names = tuple(data)
    return _partial_type(cls, names)(**{n: _convert(hints[n], data[n]) for n in names})


def typed_section(cls: type[T], data: dict[str, Any]) -> Any:
    """data as the section dataclass cls when it holds every key cls requires (the others take
    their defaults), else as its partial section (only the keys given, reading others fails)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    missing = dataclasses.MISSING
    required = [f.name for f in fields if f.default is missing and f.default_factory is missing]
    if all(name in data for name in required):
        return section(cls, data)
    return partial_section(cls, data)


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


def model_from_dict(data: dict[str, Any]) -> ModelConfig:
    """A model section as stored (e.g. in a checkpoint), with keys added since filled in."""
    filled = copy.deepcopy(data)
    fill_defaults(filled, {"$ref": "#/$defs/model"}, schema())
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    return section(ModelConfig, {k: v for k, v in filled.items() if k in known})
