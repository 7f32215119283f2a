"""Efficiencies with binomial errors and Clopper-Pearson intervals, AUC.

Every efficiency comes with its central Clopper-Pearson interval at INTERVAL_CL (68.27 %,
the 1-sigma band of a Gaussian), and every rejection 1/eff with the interval that maps onto
(1/high, 1/low): asymmetric, and exact for few passing jets, where the Gaussian binomial
error is not. k = eff N_eff of n = N_eff jets pass, so weighted jets count as N_eff
unit-weight ones. Where no background jet passes a cut, the rejection is infinite; a
working point then quotes the lower limit 1/U instead, U being the one-sided upper limit on
the efficiency at REJECTION_LIMIT_CL. The limit is written at every working point, passing
jets or not, so a reader can always compare the two.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import betaincinv

REJECTION_LIMIT_CL = 0.95  # confidence level of the rejection lower limits
INTERVAL_CL = 0.6827  # central intervals of efficiencies and rejections: +-1 sigma
FEW_PASSING = 10  # fewer passing jets than this: a rough figure, marked where quoted


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


def _check_cl(cl: float) -> None:
    """A confidence level must lie strictly between 0 and 1."""
    if not 0.0 < cl < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1), got {cl}")


def efficiency_upper_limit(n_pass: float, n_total: float, cl: float = REJECTION_LIMIT_CL) -> float:
    """One-sided Clopper-Pearson upper limit on an efficiency: n_pass of n_total jets pass.

    The p with P(at most n_pass pass | p) = 1 - cl, i.e. the Beta(n_pass + 1, n_total - n_pass)
    quantile at cl; 1 - (1 - cl)^(1/n_total) for n_pass = 0. Counts may be N_eff-scaled
    (non-integer). NaN for n_total <= 0.
    """
    _check_cl(cl)
    if not (math.isfinite(n_total) and n_total > 0) or not math.isfinite(n_pass):
        return float("nan")
    n_pass = min(max(n_pass, 0.0), n_total)
    if n_total - n_pass <= 0.0:  # every jet passes: nothing bounds the efficiency below 1
        return 1.0
    return float(betaincinv(n_pass + 1.0, n_total - n_pass, cl))


def efficiency_interval(
    n_pass: float, n_total: float, cl: float = INTERVAL_CL
) -> tuple[float, float]:
    """Central Clopper-Pearson interval (low, high) of an efficiency: n_pass of n_total pass.

    Each side leaves (1 - cl) / 2 outside: low is the Beta(n_pass, n_total - n_pass + 1)
    quantile at (1 - cl) / 2 (0 when nothing passes), high the Beta(n_pass + 1, n_total -
    n_pass) quantile at (1 + cl) / 2 (1 when everything passes). NaN without jets.
    """
    _check_cl(cl)
    if not (math.isfinite(n_total) and n_total > 0) or not math.isfinite(n_pass):
        return float("nan"), float("nan")
    k = min(max(n_pass, 0.0), n_total)
    low = float(betaincinv(k, n_total - k + 1.0, 0.5 * (1.0 - cl))) if k > 0 else 0.0
    high = float(betaincinv(k + 1.0, n_total - k, 0.5 * (1.0 + cl))) if k < n_total else 1.0
    return low, high


def rejection_interval(eff_low: float, eff_high: float) -> tuple[float, float]:
    """The rejection interval (1/high, 1/low) of an efficiency interval; inf for low = 0."""
    low = 1.0 / eff_high if eff_high > 0 else float("inf")
    high = 1.0 / eff_low if eff_low > 0 else float("inf")
    return low, high


def rejection_with_limit(
    background: str, eff: float, eff_error: float, n_eff: float, cl: float = REJECTION_LIMIT_CL
) -> dict[str, float | bool]:
    """<background>_rejection, _error, _lower_limit and _is_lower_limit at one cut.

    The lower limit is 1 / efficiency_upper_limit(eff N_eff, N_eff, cl), always given where
    there are background jets. Where none of them passes, the rejection is that limit (flagged
    as one) rather than infinite, and has no error. NaN (null in JSON) where there are no
    background jets or no efficiency (no cut).
    """
    defined = math.isfinite(eff) and math.isfinite(n_eff) and n_eff > 0
    limit = 1.0 / efficiency_upper_limit(eff * n_eff, n_eff, cl) if defined else float("nan")
    is_limit = defined and eff <= 0.0
    if is_limit:
        rej, rej_error = limit, float("nan")
    elif defined:
        rej, rej_error = rejection(eff, eff_error)
    else:
        rej, rej_error = float("nan"), float("nan")
    return {
        f"{background}_rejection": rej,
        f"{background}_rejection_error": rej_error,
        f"{background}_rejection_lower_limit": limit,
        f"{background}_rejection_is_lower_limit": is_limit,
    }


def cut_for_efficiency(scores: np.ndarray, weights: np.ndarray, target: float) -> float:
    """The cut c with (weighted) fraction target of the signal at scores > c."""
    order = np.argsort(scores)[::-1]
    cumulative = np.cumsum(weights[order]) / np.sum(weights)
    return float(cuts_from_sorted(scores[order], cumulative, target))


def cuts_from_sorted(
    sorted_scores: np.ndarray, cumulative: np.ndarray, targets: float | np.ndarray
) -> np.ndarray:
    """Cuts keeping each target fraction of the signal.

    sorted_scores: signal scores, highest first; cumulative: their cumulative weight fraction.
    """
    last = len(sorted_scores) - 1
    k = np.minimum(np.searchsorted(cumulative, targets, side="left"), last)
    following = sorted_scores[np.minimum(k + 1, last)]
    # midway to the next score, so ties and float rounding cannot flip the count
    return np.where(
        k + 1 <= last,
        0.5 * (sorted_scores[k] + following),
        np.nextafter(sorted_scores[k], -np.inf),
    )


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
