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
    n_classes = counts.shape[0]
    if not config.enabled:
        return PtReweighting(np.asarray(edges), np.ones_like(counts))
    shape_target = counts[target] / max(counts[target].sum(), 1.0)
    factors = np.ones_like(counts)
    for c in range(n_classes):
        total = counts[c].sum()
        if total == 0:
            continue
        shape = counts[c] / total
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(shape > 0, shape_target / shape, 0.0)
        ratio = np.minimum(ratio, config.max_weight)
        mean = (ratio * counts[c]).sum() / total
        factors[c] = ratio / mean if mean > 0 else 1.0
    return PtReweighting(np.asarray(edges), factors)


def class_weights(weight_sums: np.ndarray) -> np.ndarray:
    """Weights that give every class the same total weight in the loss (mean 1 over jets)."""
    total = weight_sums.sum()
    n_classes = weight_sums.size
    with np.errstate(divide="ignore"):
        return np.where(weight_sums > 0, total / (n_classes * weight_sums), 0.0)
