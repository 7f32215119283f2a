"""The prepare stage: canonical HDF5 -> shuffled train/val/test files, norm.yaml, weights.yaml.

Everything fitted (normalisation, pT reweighting, class weights) is fitted on the training
split only and then applied to all three.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np

from jettag.atomic import atomic_path, write_yaml
from jettag.config import PrepareConfig
from jettag.features.reweight import HistogramAccumulator, class_weights, fit_reweighting
from jettag.features.split import SPLITS, assign_split
from jettag.features.transforms import MeanVarianceAccumulator, apply_transform, fit_normalisation
from jettag.features.variables import add_derived_track_fields
from jettag.io.canonical import CanonicalWriter, iterate_blocks, with_fields
from jettag.io.readers import InputError

log = logging.getLogger(__name__)
BLOCK_JETS = 200_000


def flavour_labels(truth_label: np.ndarray, config: PrepareConfig) -> np.ndarray:
    """Class index of each jet from HadronConeExclTruthLabelID; -1 for jets in no class."""
    out = np.full(truth_label.shape, -1, dtype=np.int32)
    for index, cls in enumerate(config.classes):
        out[np.isin(truth_label, cls.truth_labels)] = index
    return out


def _with_jet_fields(jets: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Jets with flavour_label and a sample_weight placeholder appended."""
    return with_fields(
        jets, {"flavour_label": labels, "sample_weight": np.ones(len(jets), dtype=np.float32)}
    )


def prepare_dataset(
    input_path: Path, config: PrepareConfig, seed: int, output_dir: Path
) -> dict[str, dict[str, int]]:
    """Split, derive, fit on train, weight, shuffle and write one dataset."""
    by_split: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {s: [] for s in SPLITS}
    dropped = 0
    attrs = {}
    with h5py.File(input_path, "r") as f:
        attrs = dict(f["jets"].attrs)
    for jets, tracks in iterate_blocks(input_path, BLOCK_JETS):
        labels = flavour_labels(jets["HadronConeExclTruthLabelID"], config)
        keep = labels >= 0
        dropped += int((~keep).sum())
        jets, tracks, labels = jets[keep], tracks[keep], labels[keep]
        tracks = add_derived_track_fields(jets, tracks)
        jets = _with_jet_fields(jets, labels)
        split = assign_split(jets["eventNumber"], vars(config.split))
        for index, name in enumerate(SPLITS):
            sel = split == index
            by_split[name].append((jets[sel], tracks[sel]))
    data = {name: _concatenate(parts) for name, parts in by_split.items()}
    _check_classes(data, config, input_path)

    train_jets, train_tracks = data["train"]
    norm = _fit_norm(train_jets, train_tracks, config)
    reweighting, weight_info = _fit_weights(train_jets, config)
    counts = {}
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, (jets, tracks) in data.items():
        jets["sample_weight"] = reweighting.weights(jets["pt"], jets["flavour_label"])
        order = rng.permutation(len(jets))
        _write_split(output_dir / f"{name}.h5", jets[order], tracks[order], config, attrs)
        counts[name] = {
            cls: int((jets["flavour_label"] == i).sum()) for i, cls in enumerate(config.class_names)
        }
    write_yaml(output_dir / "norm.yaml", norm)
    write_yaml(
        output_dir / "weights.yaml", {**weight_info, "counts": counts, "dropped_jets": dropped}
    )
    log.info("prepared %s: %s (dropped %d jets outside the classes)", output_dir, counts, dropped)
    return counts


def _concatenate(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Join blocks of one split."""
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _check_classes(data, config: PrepareConfig, path: Path) -> None:
    """Every class must have jets in every split, or training and evaluation are meaningless."""
    for name, (jets, _) in data.items():
        for index, cls in enumerate(config.class_names):
            if not np.any(jets["flavour_label"] == index):
                raise InputError(
                    f"{path}: the {name} split has no '{cls}' jets ({len(jets)} jets in total);"
                    " generate or ingest more events"
                )


def _fit_norm(jets: np.ndarray, tracks: np.ndarray, config: PrepareConfig) -> dict:
    """Mean and std of each transformed input over valid training tracks (and jets)."""
    valid = tracks["valid"]
    out = {}
    for group, specs, table, mask in (
        ("tracks", config.track_inputs, tracks, valid),
        ("jets", config.jet_inputs, jets, None),
    ):
        accumulators = {}
        for spec in specs:
            if spec.name not in (table.dtype.names or ()):
                raise InputError(
                    f"prepare.{group[:-1]}_inputs: '{spec.name}' is not a {group[:-1]} variable;"
                    f" available: {sorted(table.dtype.names)}"
                )
            values = table[spec.name][mask] if mask is not None else table[spec.name]
            accumulators[spec.name] = MeanVarianceAccumulator()
            accumulators[spec.name].update(apply_transform(spec.transform, values))
        out[group] = {k: v.to_dict() for k, v in fit_normalisation(specs, accumulators).items()}
    return out


def _fit_weights(jets: np.ndarray, config: PrepareConfig):
    """pT reweighting factors and class weights, from training jets."""
    n_classes = len(config.classes)
    edges = np.asarray(config.reweight.pt_bins_gev, dtype=np.float64)
    histogram = HistogramAccumulator(edges, n_classes)
    histogram.update(jets["pt"], jets["flavour_label"])
    target = config.class_names.index(config.reweight.target)
    reweighting = fit_reweighting(histogram.result(), edges, target, config.reweight)
    weights = reweighting.weights(jets["pt"], jets["flavour_label"])
    sums = np.bincount(jets["flavour_label"], weights=weights, minlength=n_classes)
    info = {
        "classes": config.class_names,
        "class_weights": [float(w) for w in class_weights(sums)],
        "reweighting": {**reweighting.to_dict(), "target": config.reweight.target,
                        "train_counts": histogram.result().tolist()},
    }  # fmt: skip
    return reweighting, info


def _write_split(path: Path, jets, tracks, config: PrepareConfig, attrs: dict) -> None:
    """Write one shuffled split in the FTAG layout, atomically."""
    with (
        atomic_path(path) as tmp,
        CanonicalWriter(tmp, jets.dtype, tracks.dtype, tracks.shape[1], "lzf") as writer,
    ):
        writer.append(jets, tracks)
        writer.jets.attrs["flavour_label"] = config.class_names
        for key, value in attrs.items():
            writer.jets.attrs[key] = value
