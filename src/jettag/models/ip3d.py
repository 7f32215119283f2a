"""An IP3D-like baseline: per-flavour 2D templates of track (sd0, sz0), summed log-likelihoods.

No training: templates are histograms of training tracks of each flavour. A jet's
log-likelihood under flavour f is the sum of log p_f(sd0, sz0) over its tracks; with equal
priors the softmax of these gives p_b, p_c, p_light, so the same D_b applies to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SD0 = "IP3D_signed_d0_significance"
SZ0 = "IP3D_signed_z0_significance"
PSEUDO_COUNT = 0.5  # per bin, so an empty bin gives a finite (large) penalty, not -inf


@dataclass(frozen=True)
class Templates:
    """Normalised per-class densities; log_density (n_classes, n_sd0_bins, n_sz0_bins)."""

    sd0_edges: np.ndarray
    sz0_edges: np.ndarray
    log_density: np.ndarray
    classes: list[str]

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return {
            "sd0_edges": self.sd0_edges.tolist(),
            "sz0_edges": self.sz0_edges.tolist(),
            "log_density": self.log_density.tolist(),
            "classes": self.classes,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Templates:
        """Inverse of to_dict."""
        return cls(
            np.asarray(data["sd0_edges"]), np.asarray(data["sz0_edges"]),
            np.asarray(data["log_density"]), list(data["classes"]),
        )  # fmt: skip


def _bins(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin index with under/overflow into the edge bins."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)


def fit_templates(
    tracks: np.ndarray, labels: np.ndarray, classes: list[str], sd0_edges, sz0_edges
) -> Templates:
    """Histogram valid tracks' (sd0, sz0) per jet flavour and normalise each to unit sum."""
    sd0_edges, sz0_edges = np.asarray(sd0_edges, float), np.asarray(sz0_edges, float)
    valid = tracks["valid"]
    track_labels = np.broadcast_to(labels[:, None], valid.shape)[valid]
    i = _bins(sd0_edges, tracks[SD0][valid])
    j = _bins(sz0_edges, tracks[SZ0][valid])
    counts = np.full((len(classes), sd0_edges.size - 1, sz0_edges.size - 1), PSEUDO_COUNT)
    np.add.at(counts, (track_labels, i, j), 1.0)
    density = counts / counts.sum(axis=(1, 2), keepdims=True)
    return Templates(sd0_edges, sz0_edges, np.log(density), list(classes))


def score(templates: Templates, tracks: np.ndarray) -> np.ndarray:
    """Class probabilities (n_jets, n_classes) from summed per-track log-likelihoods."""
    valid = tracks["valid"]
    i = _bins(templates.sd0_edges, tracks[SD0])
    j = _bins(templates.sz0_edges, tracks[SZ0])
    per_track = templates.log_density[:, i, j]  # (n_classes, n_jets, max_tracks)
    log_likelihood = np.where(valid[None], per_track, 0.0).sum(axis=2).T
    log_likelihood -= log_likelihood.max(axis=1, keepdims=True)
    probabilities = np.exp(log_likelihood)
    return probabilities / probabilities.sum(axis=1, keepdims=True)
