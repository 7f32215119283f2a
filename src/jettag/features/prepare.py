"""The prepare stage: canonical HDF5 -> shuffled train/val/test files, norm.yaml, weights.yaml.

Everything fitted (normalisation, pT reweighting, class weights) is fitted on the training
split only and then applied to all three.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jettag.atomic import atomic_path, write_yaml
from jettag.config import ComponentConfig, PrepareConfig, ResampleConfig
from jettag.errors import InputError
from jettag.features.reweight import (
    GridHistogram,
    HistogramAccumulator,
    Resampling,
    class_weights,
    fit_resampling,
    fit_reweighting,
)
from jettag.features.split import SPLITS, assign_split
from jettag.features.variables import add_derived_track_fields
from jettag.io.canonical import (
    ABSENT_FIELDS_ATTR,
    CanonicalFiles,
    CanonicalWriter,
    absent_fields,
    as_paths,
    count_jets,
    describe_files,
    iterate_blocks,
    merged_attrs,
    read_all,
    sample_name,
    with_fields,
)
from jettag.io.model_inputs import ModelInputWriter
from jettag.transforms import (
    MeanVarianceAccumulator,
    apply_transform,
    fit_normalisation,
    normalisation_from_dict,
    out_of_domain,
)

log = logging.getLogger(__name__)
BLOCK_JETS = 200_000
SCRATCH_PREFIX = ".prepare-"  # pass-1 bucket files, beside the outputs
JET_FIELD_PREFIX = "jet_"
UNNAMED_SAMPLE = "*"  # what ingest records when it is not told the sample's name


def check_inputs_available(path: Path, attrs: Mapping, config: PrepareConfig) -> None:
    """Refuse model inputs that the sample does not provide (placeholders must not be learnt)."""
    absent = absent_fields(attrs, path)
    found = {
        key: names
        for key, specs, prefix in (
            ("prepare.track_inputs", config.track_inputs, ""),
            ("prepare.jet_inputs", config.jet_inputs, JET_FIELD_PREFIX),
        )
        if (names := [s.name for s in specs if prefix + s.name in absent])
    }
    if found:
        named = " and ".join(f"{key} names {names}" for key, names in found.items())
        raise InputError(
            f"{path}: {named} that sample '{sample_name(attrs, path)}' does not provide (absent"
            f" from its input files); remove them from {' and '.join(found)}"
        )


def flavour_labels(truth_label: np.ndarray, config: PrepareConfig) -> np.ndarray:
    """Class index of each jet from its truth label (config.label_variable); -1 in no class."""
    out = np.full(truth_label.shape, -1, dtype=np.int32)
    for index, cls in enumerate(config.classes):
        out[np.isin(truth_label, cls.truth_labels)] = index
    return out


def _truth_label(jets: np.ndarray, config: PrepareConfig, inputs: object) -> np.ndarray:
    """The jets' truth label field; an error naming the file when ingest wrote another one."""
    if config.label_variable not in (jets.dtype.names or ()):
        labels = [n for n in jets.dtype.names or () if "Label" in n or "label" in n]
        raise InputError(
            f"{inputs}: the ingested jets have no '{config.label_variable}' (the class set's"
            f" label_variable) but {labels}: ingested under another class_set; rerun ingest"
        )
    return jets[config.label_variable]


def _with_jet_fields(jets: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Jets with flavour_label and a sample_weight placeholder appended."""
    return with_fields(
        jets, {"flavour_label": labels, "sample_weight": np.ones(len(jets), dtype=np.float32)}
    )


@dataclasses.dataclass(frozen=True)
class _Component:
    """The parts of one sample of a dataset and the jet-pT range each class takes from them."""

    paths: list[Path]
    pt_min: np.ndarray  # (n_classes,) GeV, -inf: no cut
    pt_max: np.ndarray  # (n_classes,) GeV, +inf: no cut
    test_only_event_number: int | None

    def selects(self, pt: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Which jets (of a known class) this component gives the dataset."""
        return (pt >= self.pt_min[labels]) & (pt < self.pt_max[labels])


def _components(
    inputs: list[Path],
    config: PrepareConfig,
    components: Sequence[ComponentConfig] | None,
    test_only_event_number: int | None,
) -> list[_Component]:
    """The inputs cut into their components (one without cuts for a plain sample).

    Each part must hold the sample its component names (its jets' `sample` attribute).
    """
    n = len(config.classes)
    if components is None:
        return [_Component(inputs, np.full(n, -np.inf), np.full(n, np.inf),
                           test_only_event_number)]  # fmt: skip
    expected = sum(c.n_parts for c in components)
    if expected != len(inputs):
        raise InputError(
            f"{describe_files(inputs)}: {len(inputs)} input files for the dataset's components"
            f" {[c.sample for c in components]}, which have {expected} parts"
        )
    out, start = [], 0
    for component in components:
        paths = inputs[start : start + component.n_parts]
        start += component.n_parts
        for path in paths:
            found = sample_name(merged_attrs([path]), path)
            if found not in (component.sample, UNNAMED_SAMPLE):
                raise InputError(
                    f"{path}: holds sample '{found}', but its place in the inputs is a part of"
                    f" component '{component.sample}'; give the components' parts in order"
                )
        cuts = []
        for bound, fill in ((component.pt_min_gev, -np.inf), (component.pt_max_gev, np.inf)):
            unknown = sorted(set(bound) - set(config.class_names))
            if unknown:
                raise InputError(f"component '{component.sample}': pT cuts of unknown classes"
                                 f" {unknown} (classes: {config.class_names})")  # fmt: skip
            cuts.append(np.array([bound.get(name, fill) for name in config.class_names]))
        out.append(_Component(paths, *cuts, component.test_only_event_number))
    return out


def _combined_attrs(components: list[_Component]) -> dict:
    """The jets attributes of a dataset: its first component's (a plain sample's are its own),
    with the fields absent from any component's sample absent from the dataset."""
    merged = [merged_attrs(c.paths) for c in components]
    attrs = dict(merged[0])
    if len(merged) > 1:
        absent = sorted(
            set().union(
                *(absent_fields(a, c.paths[0]) for a, c in zip(merged, components, strict=True))
            )
        )
        attrs[ABSENT_FIELDS_ATTR] = json.dumps(absent)
    return attrs


def prepare_dataset(
    input_path: CanonicalFiles,
    config: PrepareConfig,
    seed: int,
    output_dir: Path,
    test_only_event_number: int | None = None,
    components: Sequence[ComponentConfig] | None = None,
    resample: ResampleConfig | None = None,
    name: str | None = None,
) -> dict[str, dict[str, int]]:
    """Split, derive, fit on train, weight, shuffle and write one dataset, in bounded memory.

    input_path is the ingested file, or the parts of a sharded ingest in their order: the
    parts are read as the one file they add up to (same blocks, same attributes), so both
    give identical outputs. Jets with eventNumber >= test_only_event_number (the extra test
    shards of a generated sample) all go to the test split.

    Pass 1 reads the input block by block: labels, derived variables and the split of each
    jet; the normalisation moments and pT histograms of the training jets are accumulated;
    each jet goes to one of n random buckets of its split (scratch files). Pass 2 shuffles
    each bucket in memory and appends it to the split's file: random buckets, then a random
    order inside each, is a uniformly random order of the whole split. Peak memory is a few
    blocks of BLOCK_JETS jets, whatever the size of the dataset.

    A dataset of several samples (components) takes from each sample's parts the jets of its
    pT range per class (each sample's test-only events still go to test); with resample, the
    train and val splits are resampled to the target class's pT x |eta| distribution (fitted
    on train) and their sample_weight is 1. name: the dataset's, recorded in its files.
    """
    inputs = as_paths(input_path)
    parts = _components(list(inputs), config, components, test_only_event_number)
    attrs = _combined_attrs(parts)
    if name is not None and components is not None:
        attrs["sample"] = name
    n_input = count_jets(inputs)
    where = Path(describe_files(inputs))  # the file (or first part) named in messages
    check_inputs_available(where, attrs, config)
    n_buckets = max(1, math.ceil(n_input / BLOCK_JETS))
    n_classes = len(config.classes)
    counts = {name: np.zeros(n_classes, dtype=np.int64) for name in SPLITS}
    norm = _NormAccumulator(config, where)
    domains = _DomainCheck(config, where, n_input)
    edges = np.asarray(config.reweight.pt_bins_gev, dtype=np.float64)
    pt_histogram = HistogramAccumulator(edges, n_classes)
    grid = None
    if resample is not None:
        grid = GridHistogram(np.asarray(resample.pt_bins_gev), np.asarray(resample.abs_eta_bins),
                             n_classes)  # fmt: skip
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    dropped = 0
    output_dir.mkdir(parents=True, exist_ok=True)
    for stale in output_dir.glob(f"{SCRATCH_PREFIX}*"):  # left by a killed run (SIGKILL)
        log.info("removing %s, the scratch of an interrupted run", stale)
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=SCRATCH_PREFIX) as scratch:
        buckets = _Buckets(Path(scratch))
        for part, jets, tracks in _blocks(parts):
            n_read = len(jets)
            labels = flavour_labels(_truth_label(jets, config, where), config)
            keep = labels >= 0
            dropped += int((~keep).sum())
            keep[keep] = part.selects(jets["pt"][keep], labels[keep])
            jets, tracks, labels = jets[keep], tracks[keep], labels[keep]
            tracks = add_derived_track_fields(jets, tracks)
            jets = _with_jet_fields(jets, labels)
            domains.update(jets, tracks, n_read)  # all splits: pass 2 transforms them all
            split = assign_split(jets["eventNumber"], vars(config.split),
                                 part.test_only_event_number)  # fmt: skip
            for index, split_name in enumerate(SPLITS):
                sel = split == index
                part_jets, part_tracks = jets[sel], tracks[sel]
                counts[split_name] += np.bincount(part_jets["flavour_label"], minlength=n_classes)
                if split_name == "train":
                    norm.update(part_jets, part_tracks)
                    pt_histogram.update(part_jets["pt"], part_jets["flavour_label"])
                    if grid is not None:
                        grid.update(part_jets["pt"], part_jets["eta"], part_jets["flavour_label"])
                bucket = rng.integers(n_buckets, size=len(part_jets))
                for b in np.unique(bucket):
                    buckets.append(split_name, int(b), part_jets[bucket == b],
                                   part_tracks[bucket == b])  # fmt: skip
        _check_classes(counts, config, where)
        reweighting = fit_reweighting(
            pt_histogram.result(), edges, config.class_names.index(config.reweight.target),
            config.reweight,
        )  # fmt: skip
        resampling = None
        if grid is not None:
            resampling = fit_resampling(
                grid.result(), grid.pt_edges, grid.eta_edges,
                config.class_names.index(resample.target), resample.method, resample.max_factor,
            )  # fmt: skip
        # a stream of its own: the shuffles of a dataset without resampling stay as they were
        resample_rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        resampled_counts = {}
        normalisation = norm.result()
        track_norms = normalisation_from_dict(normalisation["tracks"]).values()
        jet_norms = normalisation_from_dict(normalisation["jets"]).values()
        weight_sums = np.zeros(n_classes)
        for name in SPLITS:
            with (
                atomic_path(output_dir / f"{name}.h5") as tmp,
                buckets.writer_like(tmp, name) as writer,
            ):
                inputs = ModelInputWriter(writer.file, writer.tracks.shape[1], track_norms,
                                          jet_norms)  # fmt: skip
                for b in range(n_buckets):
                    jets, tracks = buckets.read(name, b)
                    jets["sample_weight"] = reweighting.weights(jets["pt"], jets["flavour_label"])
                    order = rng.permutation(len(jets))
                    if resampling is not None and name in RESAMPLED_SPLITS:
                        # the shuffle stream draws as without resampling: the test split is
                        # the same either way
                        jets, tracks = _resampled(jets[order], tracks[order], resampling,
                                                  resample_rng)  # fmt: skip
                        order = resample_rng.permutation(len(jets))
                        resampled_counts[name] = resampled_counts.get(
                            name, np.zeros(n_classes, np.int64)
                        ) + np.bincount(jets["flavour_label"], minlength=n_classes)
                    if name == "train":
                        weight_sums += np.bincount(jets["flavour_label"],
                                                   weights=jets["sample_weight"],
                                                   minlength=n_classes)  # fmt: skip
                    writer.append(jets[order], tracks[order])
                    inputs.append(jets[order], tracks[order])
                writer.jets.attrs["flavour_label"] = config.class_names
                writer.jets.attrs["label_variable"] = config.label_variable
                for key, value in attrs.items():
                    writer.jets.attrs[key] = value
    split_counts = {
        name: {cls: int(c[i]) for i, cls in enumerate(config.class_names)}
        for name, c in counts.items()
    }
    weight_info = {
        "classes": config.class_names,
        "class_weights": [float(w) for w in class_weights(weight_sums)],
        "reweighting": {**reweighting.to_dict(), "target": config.reweight.target,
                        "train_counts": pt_histogram.result().tolist()},
    }  # fmt: skip
    if resampling is not None:
        weight_info["resampling"] = {
            **resampling.to_dict(), "target": resample.target,
            "train_counts": grid.result().tolist(),
            "counts": {split: dict(zip(config.class_names, c.tolist(), strict=True))
                       for split, c in resampled_counts.items()},
        }  # fmt: skip
    write_yaml(output_dir / "norm.yaml", normalisation)
    write_yaml(
        output_dir / "weights.yaml",
        {**weight_info, "counts": split_counts, "dropped_jets": dropped},
    )
    log.info("prepared %s: %s (dropped %d jets outside the classes)", output_dir, split_counts,
             dropped)  # fmt: skip
    return split_counts


RESAMPLED_SPLITS = ("train", "val")  # the test split keeps every jet once


def _resampled(
    jets: np.ndarray, tracks: np.ndarray, resampling: Resampling, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A bucket's jets, each repeated as often as the resampling draws; sample_weight 1."""
    copies = resampling.copies(jets["pt"], jets["eta"], jets["flavour_label"], rng)
    index = np.repeat(np.arange(len(jets)), copies)
    jets, tracks = jets[index], tracks[index]
    jets["sample_weight"] = 1.0
    return jets, tracks


def _blocks(parts: list[_Component]):
    """(component, jets, tracks) blocks of every component's parts, in order."""
    for part in parts:
        for jets, tracks in iterate_blocks(part.paths, BLOCK_JETS):
            yield part, jets, tracks


class _Buckets:
    """Scratch HDF5 files, one per split and bucket, appended in pass 1 and read in pass 2.

    Each append opens and closes its file: with a file handle (and its HDF5 caches) per
    bucket held open, memory would grow with the number of buckets, i.e. with the dataset.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.dtypes: dict[str, tuple[np.dtype, np.dtype, int]] = {}
        self.filled: set[tuple[str, int]] = set()

    def path(self, split: str, bucket: int) -> Path:
        """The scratch file of one bucket."""
        return self.directory / f"{split}-{bucket}.h5"

    def append(self, split: str, bucket: int, jets: np.ndarray, tracks: np.ndarray) -> None:
        """Add jets to a bucket (uncompressed: scratch is read once, soon)."""
        key = (split, bucket)
        if key in self.filled:
            writer = CanonicalWriter.reopen(self.path(split, bucket))
        else:
            writer = CanonicalWriter(
                self.path(split, bucket), jets.dtype, tracks.dtype, tracks.shape[1], "none"
            )
            self.dtypes[split] = (jets.dtype, tracks.dtype, tracks.shape[1])
            self.filled.add(key)
        with writer:
            writer.append(jets, tracks)

    def read(self, split: str, bucket: int) -> tuple[np.ndarray, np.ndarray]:
        """A whole bucket; empty tables when no jet fell into it."""
        if (split, bucket) not in self.filled:
            jet_dtype, track_dtype, max_tracks = self.dtypes[split]
            return np.zeros(0, jet_dtype), np.zeros((0, max_tracks), track_dtype)
        return read_all(self.path(split, bucket))

    def writer_like(self, path: Path, split: str) -> CanonicalWriter:
        """A compressed output writer with the split's table layout."""
        jet_dtype, track_dtype, max_tracks = self.dtypes[split]
        return CanonicalWriter(path, jet_dtype, track_dtype, max_tracks, "lzf")


def _check_classes(counts: dict[str, np.ndarray], config: PrepareConfig, path: Path) -> None:
    """Every class must have jets in every split, or training and evaluation are meaningless."""
    for name, per_class in counts.items():
        for index, cls in enumerate(config.class_names):
            if per_class[index] == 0:
                raise InputError(
                    f"{path}: the {name} split has no '{cls}' jets ({int(per_class.sum())} jets"
                    " in total); generate or ingest more events"
                )


def _input_tables(
    config: PrepareConfig, jets: np.ndarray, tracks: np.ndarray
) -> list[tuple[str, tuple, np.ndarray, np.ndarray | None]]:
    """(group, input specs, table, mask of real entries) of the track and the jet inputs."""
    return [
        ("tracks", config.track_inputs, tracks, tracks["valid"]),
        ("jets", config.jet_inputs, jets, None),
    ]


def _described(group: str, n_values: int) -> str:
    """'120000 valid tracks' or '5000 jets'."""
    return f"{n_values} valid tracks" if group == "tracks" else f"{n_values} jets"


class _DomainCheck:
    """Every input's values must suit its transform (log: none negative), in every split.

    Checked block by block in pass 1, so that a bad input fails before any output is written
    and names the file, the variable and how many values are wrong. The first block with a bad
    value raises: earlier blocks had none, so the counts so far are the counts of bad values.
    """

    def __init__(self, config: PrepareConfig, path: Path, n_input: int):
        self.config, self.path, self.n_input = config, path, n_input
        self.seen = {"tracks": 0, "jets": 0}
        self.jets_read = 0

    def update(self, jets: np.ndarray, tracks: np.ndarray, n_read: int) -> None:
        """Check a block of (kept) jets and their tracks; n_read: input jets it came from."""
        self.jets_read += n_read
        problems: list[tuple[str, str, str]] = []
        first: ValueError | None = None
        for group, specs, table, mask in _input_tables(self.config, jets, tracks):
            self.seen[group] += int(np.count_nonzero(mask)) if mask is not None else len(table)
            for spec in specs:
                if spec.name not in (table.dtype.names or ()):
                    continue  # _NormAccumulator names the unknown variable
                values = table[spec.name][mask] if mask is not None else table[spec.name]
                if out_of_domain(spec.transform, values):
                    try:
                        apply_transform(spec.transform, values)
                    except ValueError as err:
                        problems.append((group, spec.name, str(err)))
                        first = first or err
        if first is None:
            return
        where = ""
        if self.jets_read < self.n_input:  # a large file: stop at its first bad block
            where = f" in the first {self.jets_read} of {self.n_input} jets"
        parts = [
            f"prepare.{group[:-1]}_inputs '{name}': {message}"
            f" (of {_described(group, self.seen[group])}{where})"
            for group, name, message in problems
        ]
        hint = "this variable" if len(parts) == 1 else "these variables"
        raise InputError(
            f"{self.path}: {'; '.join(parts)}; check the branch mapped to {hint}"
        ) from first


class _NormAccumulator:
    """Mean and std of each transformed input over valid training tracks (and jets)."""

    def __init__(self, config: PrepareConfig, path: Path):
        self.config, self.path = config, path
        self.accumulators = {
            "tracks": {s.name: MeanVarianceAccumulator() for s in config.track_inputs},
            "jets": {s.name: MeanVarianceAccumulator() for s in config.jet_inputs},
        }

    def update(self, jets: np.ndarray, tracks: np.ndarray) -> None:
        """Add a block of training jets."""
        for group, specs, table, mask in _input_tables(self.config, jets, tracks):
            for spec in specs:
                if spec.name not in (table.dtype.names or ()):
                    raise InputError(
                        f"prepare.{group[:-1]}_inputs: '{spec.name}' is not a {group[:-1]}"
                        f" variable; available: {sorted(table.dtype.names)}"
                    )
                values = table[spec.name][mask] if mask is not None else table[spec.name]
                try:
                    transformed = apply_transform(spec.transform, values)
                except ValueError as err:  # _DomainCheck catches bad values first
                    raise InputError(
                        f"{self.path}: prepare.{group[:-1]}_inputs '{spec.name}': {err} (of"
                        f" {_described(group, values.size)} in a block of training jets)"
                    ) from err
                self.accumulators[group][spec.name].update(transformed)

    def result(self) -> dict:
        """norm.yaml content: per group and variable, transform, mean and std."""
        return {
            group: {
                k: v.to_dict()
                for k, v in fit_normalisation(specs, self.accumulators[group]).items()
            }
            for group, specs in (
                ("tracks", self.config.track_inputs), ("jets", self.config.jet_inputs),
            )
        }  # fmt: skip
