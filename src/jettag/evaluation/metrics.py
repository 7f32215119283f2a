"""Discriminant, efficiencies with binomial errors, working points, ROC curves and AUC.

A ROC is computed once, as numbers, and saved; plotting only draws what is saved.
"""

from __future__ import annotations

import numpy as np

PROBABILITY_FLOOR = 1e-10


def b_discriminant(pb: np.ndarray, pc: np.ndarray, pu: np.ndarray, f_c: float) -> np.ndarray:
    """D_b = log(p_b / (f_c p_c + (1 - f_c) p_light))."""
    numerator = np.maximum(pb, PROBABILITY_FLOOR)
    denominator = np.maximum(f_c * pc + (1.0 - f_c) * pu, PROBABILITY_FLOOR)
    return np.log(numerator / denominator)


def effective_entries(weights: np.ndarray) -> float:
    """N_eff = (sum w)^2 / sum w^2; the number of entries for unit weights."""
    sum_w2 = float(np.sum(weights**2))
    return float(np.sum(weights)) ** 2 / sum_w2 if sum_w2 > 0 else 0.0


def efficiency(passed: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """(efficiency, binomial error with N_eff) of a weighted selection."""
    total = float(np.sum(weights))
    if total <= 0:
        return float("nan"), float("nan")
    eff = float(np.sum(weights[passed])) / total
    n_eff = effective_entries(weights)
    return eff, float(np.sqrt(max(eff * (1.0 - eff), 0.0) / n_eff))


def rejection(eff: float, eff_error: float) -> tuple[float, float]:
    """(1/eff, error propagated from eff); infinite where nothing passes."""
    if eff <= 0:
        return float("inf"), float("nan")
    return 1.0 / eff, eff_error / eff**2


def cut_for_efficiency(scores: np.ndarray, weights: np.ndarray, target: float) -> float:
    """The cut c with (weighted) fraction target of the signal at scores > c."""
    order = np.argsort(scores)[::-1]
    sorted_scores = scores[order]
    cumulative = np.cumsum(weights[order]) / np.sum(weights)
    k = int(np.searchsorted(cumulative, target, side="left"))
    k = min(k, len(sorted_scores) - 1)
    if k + 1 < len(sorted_scores):
        # midway to the next score, so ties and float rounding cannot flip the count
        return float(0.5 * (sorted_scores[k] + sorted_scores[k + 1]))
    return float(np.nextafter(sorted_scores[k], -np.inf))


def auc(signal: np.ndarray, background: np.ndarray) -> float:
    """Area under the ROC (probability that a signal jet scores above a background jet)."""
    scores = np.concatenate([signal, background])
    ranks = _average_ranks(scores)
    n_s, n_b = len(signal), len(background)
    if n_s == 0 or n_b == 0:
        return float("nan")
    return float((ranks[:n_s].sum() - n_s * (n_s + 1) / 2) / (n_s * n_b))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties averaged."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    unique, inverse, counts = np.unique(sorted_values, return_inverse=True, return_counts=True)
    if len(unique) < len(values):
        sums = np.bincount(inverse, weights=np.arange(1, len(values) + 1))
        ranks[order] = (sums / counts)[inverse]
    return ranks


def roc_curve(
    discriminant: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    signal: int,
    backgrounds: dict[str, int],
    signal_efficiencies: np.ndarray,
) -> dict[str, list[float]]:
    """Background rejections (and errors) at each signal efficiency of the grid."""
    is_signal = labels == signal
    out: dict[str, list[float]] = {"signal_efficiency": [float(e) for e in signal_efficiencies]}
    cuts = [
        cut_for_efficiency(discriminant[is_signal], weights[is_signal], e)
        for e in signal_efficiencies
    ]
    out["cut"] = cuts
    for name, label in backgrounds.items():
        sel = labels == label
        rej, err = [], []
        for cut in cuts:
            r, e = rejection(*efficiency(discriminant[sel] > cut, weights[sel]))
            rej.append(r)
            err.append(e)
        out[f"{name}_rejection"] = rej
        out[f"{name}_rejection_error"] = err
        out[f"{name}_n_eff"] = effective_entries(weights[sel])
    return out
