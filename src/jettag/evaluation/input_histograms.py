"""Histograms of the model inputs of a prepared split: raw, transformed and normalised.

The numbers behind the input plots, per flavour, unweighted and pT-reweighted, plus the jet
pT spectra before and after reweighting. Computed once and saved as JSON; the plotting code
only draws them. The normalised values come from io.model_inputs.build_inputs, the function
that wrote the split's model-ready arrays, so they are exactly what a model sees, and their
measured mean and std are recorded as a check of norm.yaml (about 0 and 1 on train, where the
normalisation was fitted).

Layout: inputs.<name>.stages.<raw|transformed|normalised> = {edges, <class>: {counts,
weighted, counts_flow, weighted_flow}} (flow = [underflow, overflow]; weighted = summed
sample_weight), inputs.<name>.check = measured mean/std over all valid tracks (or jets);
jet_pt = {edges (the reweighting bins), <class>: {counts, weighted, weighted_sumw2, ...},
ratio_before / ratio_after: <class>: {ratio, error}} with ratio = unit-area shape of the
class over that of the target, per bin (null where either is empty).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import h5py
import numpy as np
import yaml

from jettag.atomic import json_safe
from jettag.errors import InputError
from jettag.io.model_inputs import build_inputs, input_spec
from jettag.io.results import Result
from jettag.transforms import MeanVarianceAccumulator, apply_transform

STAGES = ("raw", "transformed", "normalised")
QUANTILES = (0.001, 0.999)
# rows of a prepared split are shuffled, so the first block is a fair sample for the ranges
BLOCK_JETS = 100_000


class FlavourHistogram:
    """Per-class counts and weight sums in fixed bins, with underflow and overflow kept apart."""

    def __init__(self, edges: np.ndarray, n_classes: int) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        n_slots = n_classes * (self.edges.size + 1)  # underflow, bins, overflow per class
        self.counts = np.zeros(n_slots)
        self.weighted = np.zeros(n_slots)
        self.sumw2 = np.zeros(n_slots)

    def update(self, values: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> None:
        """Add a chunk of values with their class labels and weights."""
        n_bins = self.edges.size - 1
        slot = np.searchsorted(self.edges, values, side="right")  # 0 = underflow
        slot[values == self.edges[-1]] = n_bins  # the last edge belongs to the last bin
        index = labels * (n_bins + 2) + slot
        size = self.counts.size
        self.counts += np.bincount(index, minlength=size)
        self.weighted += np.bincount(index, weights=weights, minlength=size)
        self.sumw2 += np.bincount(index, weights=weights**2, minlength=size)

    def to_dict(self, classes: list[str], with_sumw2: bool = False) -> dict:
        """Edges and, per class, bin contents and [underflow, overflow]."""
        shape = (len(classes), self.edges.size + 1)
        out: dict = {"edges": self.edges.tolist()}
        arrays = {"counts": self.counts, "weighted": self.weighted}
        if with_sumw2:
            arrays["weighted_sumw2"] = self.sumw2
        for index, name in enumerate(classes):
            out[name] = {}
            for key, values in arrays.items():
                row = values.reshape(shape)[index]
                out[name][key] = row[1:-1].tolist()
                out[name][f"{key}_flow"] = [float(row[0]), float(row[-1])]
        return out


@dataclasses.dataclass
class InputHistograms(Result):
    """results/inputs/<dataset>.json: every model input per class (raw, transformed and
    normalised) and the jet-pT reweighting."""

    prepared_dir: str
    split: str
    classes: list[str]
    n_jets: dict[str, int]
    n_tracks: dict[str, int]
    inputs: dict[str, dict]
    jet_pt: dict


def input_histograms(prepared_dir: Path, split: str = "train", bins: int = 50) -> InputHistograms:
    """Per-flavour histograms of every input (raw, transformed, normalised) and of jet pT."""
    prepared_dir = Path(prepared_dir)
    path = prepared_dir / f"{split}.h5"
    spec = input_spec(prepared_dir)
    weights_info = yaml.safe_load((prepared_dir / "weights.yaml").read_text())
    classes = list(spec.classes)
    reweighting = weights_info["reweighting"]
    pt_edges = np.asarray(reweighting["pt_bins_gev"], dtype=np.float64)
    norms = [("tracks", n) for n in spec.track_norms] + [("jets", n) for n in spec.jet_norms]

    histograms: dict[tuple[str, str], FlavourHistogram] = {}
    checks = {n.name: (MeanVarianceAccumulator(), MeanVarianceAccumulator()) for _, n in norms}
    pt_hist = FlavourHistogram(pt_edges, len(classes))
    n_jets = np.zeros(len(classes), dtype=np.int64)
    n_tracks = np.zeros(len(classes), dtype=np.int64)
    for jets, tracks in _blocks(path):
        labels = jets["flavour_label"].astype(np.int64)
        weights = jets["sample_weight"].astype(np.float64)
        track_x, valid, jet_x = build_inputs(jets, tracks, spec)
        track_labels = np.broadcast_to(labels[:, None], valid.shape)[valid]
        track_weights = np.broadcast_to(weights[:, None], valid.shape)[valid]
        n_jets += np.bincount(labels, minlength=len(classes))
        n_tracks += np.bincount(track_labels, minlength=len(classes))
        # overflow into the edge bins, as the reweighting itself bins jets
        pt = np.clip(jets["pt"].astype(np.float64), pt_edges[0], pt_edges[-1])
        pt_hist.update(pt, labels, weights)
        for k, norm in enumerate(spec.track_norms):
            raw = tracks[norm.name][valid]
            stages = (raw, apply_transform(norm.transform, raw), track_x[..., k][valid])
            _fill(histograms, checks, norm, stages, track_labels, track_weights, classes, bins)
        for k, norm in enumerate(spec.jet_norms):
            raw = jets[norm.name]
            stages = (raw, apply_transform(norm.transform, raw), jet_x[:, k])
            _fill(histograms, checks, norm, stages, labels, weights, classes, bins)

    inputs = {}
    for group, norm in norms:
        normalised_check, transformed_check = checks[norm.name]
        inputs[norm.name] = {
            "group": group,
            "transform": norm.transform,
            "norm": {"mean": norm.mean, "std": norm.std},
            "check": {
                "n": int(normalised_check.count),
                "mean": float(normalised_check.mean),
                "std": _std(normalised_check),
                "transformed_mean": float(transformed_check.mean),
                "transformed_std": _std(transformed_check),
            },
            "stages": {s: histograms[norm.name, s].to_dict(classes) for s in STAGES},
        }
    pt = pt_hist.to_dict(classes, with_sumw2=True)
    target = reweighting["target"]
    balance = "reweight"
    if "resampling" in weights_info and split == "train":
        # a resampled split: its jets (weight 1) are the 'after'; 'before' is the training
        # split as it was before resampling, which prepare counted in the reweighting's bins
        balance = "resample"
        target = weights_info["resampling"]["target"]
        for index, name in enumerate(classes):
            before = [float(v) for v in reweighting["train_counts"][index]]
            pt[name]["counts"], pt[name]["counts_flow"] = before, [0.0, 0.0]
    result = {
        "prepared_dir": str(prepared_dir),
        "split": split,
        "classes": classes,
        "n_jets": dict(zip(classes, n_jets.tolist(), strict=True)),
        "n_tracks": dict(zip(classes, n_tracks.tolist(), strict=True)),
        "inputs": inputs,
        "jet_pt": {
            **pt,
            "target": target,
            "balance": balance,
            "factors": reweighting["factors"],
            "ratio_before": {c: _shape_ratio(pt[c], pt[target], "counts") for c in classes},
            "ratio_after": {c: _shape_ratio(pt[c], pt[target], "weighted") for c in classes},
        },
    }
    return InputHistograms.from_dict(json_safe(result))


def _blocks(path: Path):
    """(jets, tracks) blocks of a prepared split; an empty split is an error."""
    try:
        with h5py.File(path, "r") as f:
            n = f["jets"].shape[0]
            if n == 0:
                raise InputError(f"{path}: the split has no jets")
            for start in range(0, n, BLOCK_JETS):
                yield f["jets"][start : start + BLOCK_JETS], f["tracks"][start : start + BLOCK_JETS]
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: cannot read prepared split ({err})") from err


def _fill(histograms, checks, norm, stages, labels, weights, classes, bins) -> None:
    """Fill the three stage histograms of one input; the first call fixes the binning."""
    if (norm.name, "raw") not in histograms:
        raw_edges = _edges(stages[0], bins, norm.name)
        transformed_edges = _edges(stages[1], bins, norm.name)
        # the same bins as the transformed stage, shifted and scaled: one histogram in two units
        normalised_edges = (transformed_edges - norm.mean) / norm.std
        for stage, edges in zip(
            STAGES, (raw_edges, transformed_edges, normalised_edges), strict=True
        ):
            histograms[norm.name, stage] = FlavourHistogram(edges, len(classes))
    for stage, values in zip(STAGES, stages, strict=True):
        histograms[norm.name, stage].update(np.asarray(values, np.float64), labels, weights)
    checks[norm.name][0].update(stages[2])
    checks[norm.name][1].update(stages[1])


def _edges(values: np.ndarray, bins: int, name: str) -> np.ndarray:
    """Bin edges over the 0.1-99.9 % quantile range; unit bins for few integer values.

    The quantiles are order statistics (inverted CDF), not interpolations, so a monotonic
    transform maps the raw range exactly onto the transformed one.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise InputError(f"input '{name}': no values in the first block to choose a binning")
    lo, hi = np.quantile(values, QUANTILES, method="inverted_cdf")
    if np.all(values == np.round(values)) and hi - lo + 1 <= bins:
        # hit counts and charge: one bin per integer value, not spikes with empty bins between
        return np.arange(lo - 0.5, hi + 1.0)
    if hi <= lo:
        return np.linspace(lo - 0.5, hi + 0.5, bins + 1)
    return np.linspace(lo, hi, bins + 1)


def _std(accumulator: MeanVarianceAccumulator) -> float:
    """Measured standard deviation; 0 when there is no spread (result() would say 1)."""
    return math.sqrt(accumulator.m2 / accumulator.count) if accumulator.count else 0.0


def _shape_ratio(hist: dict, target: dict, key: str) -> dict:
    """Unit-area shape of a class over that of the target, per bin, with its statistical error.

    The error treats the two histograms as independent (N_eff per bin); for the target over
    itself the ratio is 1 and the error is only a scale.
    """
    num, den = np.asarray(hist[key]), np.asarray(target[key])
    sumw2_key = "weighted_sumw2" if key == "weighted" else "counts"
    num_var, den_var = np.asarray(hist[sumw2_key]), np.asarray(target[sumw2_key])
    ratio, error = [], []
    for n, d, vn, vd in zip(num, den, num_var, den_var, strict=True):
        if n <= 0 or d <= 0 or num.sum() <= 0:
            ratio.append(None)
            error.append(None)
            continue
        r = (n / num.sum()) / (d / den.sum())
        ratio.append(float(r))
        error.append(float(r * math.sqrt(vn / n**2 + vd / d**2)))
    return {"ratio": ratio, "error": error}
