"""Discriminant, efficiencies with binomial errors, working points, ROC curves and AUC.

A ROC is computed once, as numbers, and saved; plotting only draws what is saved.

Where no background jet passes a cut, the rejection 1/eff is infinite; a working point then
quotes the lower limit 1/U on the rejection instead, U being the one-sided Clopper-Pearson
upper limit on the efficiency at REJECTION_LIMIT_CL (k = eff N_eff of n = N_eff jets pass,
so weighted jets count as N_eff unit-weight ones). The limit is written at every working
point, passing jets or not, so a reader can always compare the two.
"""

from __future__ import annotations

import math

import numpy as np

PROBABILITY_FLOOR = 1e-10
REJECTION_LIMIT_CL = 0.95  # confidence level of the rejection lower limits
_CF_EPS = 1e-15  # relative convergence of the incomplete-beta continued fraction
_CF_TINY = 1e-300
_CF_MAX_TERMS = 100_000  # NR: O(sqrt(max(a, b))) terms are needed in the worst case


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


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the Beta(a, b) CDF at x, from its continued fraction (a, b > 0)."""
    if not (a > 0 and b > 0):
        raise ValueError(f"incomplete beta needs a, b > 0, got a={a}, b={b}")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # the fraction converges fast below the mean; above it, use I_x(a, b) = 1 - I_(1-x)(b, a)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), by the modified Lentz method."""

    def floored(value: float) -> float:
        return value if abs(value) > _CF_TINY else _CF_TINY

    c = 1.0
    d = 1.0 / floored(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, _CF_MAX_TERMS):
        even = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        d = 1.0 / floored(1.0 + even * d)
        c = floored(1.0 + even / c)
        h *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        d = 1.0 / floored(1.0 + odd * d)
        c = floored(1.0 + odd / c)
        h *= d * c
        if abs(d * c - 1.0) < _CF_EPS:
            return h
    raise ArithmeticError(f"incomplete beta I_{x}({a}, {b}): continued fraction did not converge")


def efficiency_upper_limit(n_pass: float, n_total: float, cl: float = REJECTION_LIMIT_CL) -> float:
    """One-sided Clopper-Pearson upper limit on an efficiency: n_pass of n_total jets pass.

    The p with P(at most n_pass pass | p) = 1 - cl, i.e. the Beta(n_pass + 1, n_total - n_pass)
    quantile at cl; 1 - (1 - cl)^(1/n_total) for n_pass = 0. Counts may be N_eff-scaled
    (non-integer). NaN for n_total <= 0.
    """
    if not 0.0 < cl < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1), got {cl}")
    if not (math.isfinite(n_total) and n_total > 0) or not math.isfinite(n_pass):
        return float("nan")
    n_pass = min(max(n_pass, 0.0), n_total)
    if n_pass == 0.0:
        return -math.expm1(math.log1p(-cl) / n_total)
    a, b = n_pass + 1.0, n_total - n_pass
    if b <= 0.0:  # every jet passes: nothing bounds the efficiency below 1
        return 1.0
    # I_x(a, b) rises monotonically in x: bisect [0, 1] for I_x = cl
    low, high = 0.0, 1.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if regularized_incomplete_beta(a, b, middle) < cl:
            low = middle
        else:
            high = middle
        if high - low <= 4e-16 * high:
            break
    return 0.5 * (low + high)


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
