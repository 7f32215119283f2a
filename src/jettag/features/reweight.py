"""pT reweighting of each flavour to a target flavour's spectrum, and class weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jettag.config import ReweightConfig


class HistogramAccumulator:
    """Per-class counts of a variable in fixed bins, filled chunk by chunk."""

    def __init__(self, edges: np.ndarray, n_classes: int) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.counts = np.zeros((n_classes, self.edges.size - 1))

    def update(self, values: np.ndarray, labels: np.ndarray) -> None:
        """Add a chunk; values outside the edges go to the first/last bin."""
        bins = _bin_index(self.edges, values)
        np.add.at(self.counts, (labels, bins), 1.0)

    def result(self) -> np.ndarray:
        """Counts, shape (n_classes, n_bins)."""
        return self.counts.copy()


def _bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin of each value, overflow into the edge bins."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)


@dataclass(frozen=True)
class PtReweighting:
    """Per-class, per-bin weight factors; each class keeps its mean weight 1."""

    edges: np.ndarray
    factors: np.ndarray  # (n_classes, n_bins)

    def weights(self, pt: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Weight of each jet."""
        return self.factors[labels, _bin_index(self.edges, pt)].astype(np.float32)

    def to_dict(self) -> dict:
        """Serialisable form."""
        return {"pt_bins_gev": self.edges.tolist(), "factors": self.factors.tolist()}


def fit_reweighting(
    counts: np.ndarray, edges: np.ndarray, target: int, config: ReweightConfig
) -> PtReweighting:
    """Factors that give every class the target's normalised pT shape, clipped at max_weight."""
    if not config.enabled:
        return PtReweighting(np.asarray(edges), np.ones_like(counts))
    factors = np.ones_like(counts)
    for c, ratio in _target_ratios(counts, target):
        factors[c] = _unit_mean(np.minimum(ratio, config.max_weight), counts[c])
    return PtReweighting(np.asarray(edges), factors)


def _target_ratios(counts: np.ndarray, target: int):
    """(class, ratio) of every class with jets: per bin, the target's unit-area shape over the
    class's (0 where the class has no jet). counts: (n_classes, bins...)."""
    target_shape = counts[target] / max(counts[target].sum(), 1.0)
    for c in range(counts.shape[0]):
        total = counts[c].sum()
        if total == 0:
            continue
        shape = counts[c] / total
        with np.errstate(divide="ignore", invalid="ignore"):
            yield c, np.where(shape > 0, target_shape / shape, 0.0)


def _unit_mean(ratio: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """ratio scaled so that its mean over the class's jets is 1 (ones if that mean is 0)."""
    mean = (ratio * counts).sum() / counts.sum()
    return ratio / mean if mean > 0 else np.ones_like(ratio)


def class_weights(weight_sums: np.ndarray) -> np.ndarray:
    """Weights that give every class the same total weight in the loss (mean 1 over jets)."""
    total = weight_sums.sum()
    n_classes = weight_sums.size
    with np.errstate(divide="ignore"):
        return np.where(weight_sums > 0, total / (n_classes * weight_sums), 0.0)


class GridHistogram:
    """Per-class counts in a (pT, |eta|) grid, filled chunk by chunk; overflow into edge bins."""

    def __init__(self, pt_edges: np.ndarray, eta_edges: np.ndarray, n_classes: int) -> None:
        self.pt_edges = np.asarray(pt_edges, dtype=np.float64)
        self.eta_edges = np.asarray(eta_edges, dtype=np.float64)
        self.counts = np.zeros((n_classes, self.pt_edges.size - 1, self.eta_edges.size - 1))

    def update(self, pt: np.ndarray, eta: np.ndarray, labels: np.ndarray) -> None:
        """Add a chunk of jets (pT in GeV, eta, class index)."""
        np.add.at(self.counts, (labels, *grid_index(self.pt_edges, self.eta_edges, pt, eta)), 1.0)

    def result(self) -> np.ndarray:
        """Counts, shape (n_classes, n_pt_bins, n_eta_bins)."""
        return self.counts.copy()


def grid_index(
    pt_edges: np.ndarray, eta_edges: np.ndarray, pt: np.ndarray, eta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(pT bin, |eta| bin) of each jet, overflow into the edge bins."""
    return _bin_index(pt_edges, pt), _bin_index(eta_edges, np.abs(eta))


@dataclass(frozen=True)
class Resampling:
    """How many copies of each jet a resampled split holds, per class and (pT, |eta|) bin.

    factors: (n_classes, n_pt, n_eta) mean copies of a jet in that bin; method: importance
    (Poisson(factor) copies) or countup (floor(factor) copies plus one with the probability of
    the rest, so a factor >= 1 never drops a jet).
    """

    method: str
    pt_edges: np.ndarray
    eta_edges: np.ndarray
    factors: np.ndarray

    def copies(
        self, pt: np.ndarray, eta: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """(n_jets,) int: copies of each jet in the resampled split."""
        mean = self.factors[(labels, *grid_index(self.pt_edges, self.eta_edges, pt, eta))]
        if self.method == "importance":
            return rng.poisson(mean)
        whole = np.floor(mean)
        return (whole + (rng.random(mean.size) < mean - whole)).astype(np.int64)

    def to_dict(self) -> dict:
        """Serialisable form."""
        return {
            "method": self.method,
            "pt_bins_gev": self.pt_edges.tolist(),
            "abs_eta_bins": self.eta_edges.tolist(),
            "factors": self.factors.tolist(),
        }


def fit_resampling(
    counts: np.ndarray,
    pt_edges: np.ndarray,
    eta_edges: np.ndarray,
    target: int,
    method: str,
    max_factor: float,
) -> Resampling:
    """Copies per jet that give every class the target's (pT, |eta|) shape (GridHistogram counts).

    The factor of a bin is the target's share of it over the class's, capped at max_factor;
    importance scales it so that a class keeps its number of jets on average, countup so that
    the smallest factor of a bin the target populates is 1 (no jet is dropped there). The
    target class itself is left as it is under importance and repeated as needed by countup.
    """
    factors = np.zeros_like(counts)
    for c, ratio in _target_ratios(counts, target):
        if method == "importance":
            factors[c] = _unit_mean(np.minimum(ratio, max_factor), counts[c])
        else:
            populated = ratio[ratio > 0]  # bins both the class and the target fill
            scale = 1.0 / populated.min() if populated.size else 1.0
            factors[c] = np.minimum(ratio * scale, max_factor)
    return Resampling(method, np.asarray(pt_edges), np.asarray(eta_edges), factors)
