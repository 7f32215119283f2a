"""Ratios of taggers scored on the same jets, with a paired bootstrap over those jets.

Two taggers tested on the same jets share their fluctuations: the same few light jets make
both tails. Combining their rejections' errors as if independent overstates the error of
the ratio (and a shared fluctuation moves both). A paired bootstrap draws the test jets
with replacement (one draw for every tagger), refits each tagger's cut at the b efficiency
on the drawn b jets, recounts the passing background jets, and takes the central
INTERVAL_CL range of the ratio over the replicas.

Replicas where both rejections are infinite (no jet passes either) give no ratio and are
left out; the number of replicas used is recorded beside each interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jettag.errors import InputError
from jettag.evaluation.metrics import INTERVAL_CL, cuts_from_sorted
from jettag.evaluation.performance import TaggedJets, cut_at_efficiency, performance_at_cut


def check_same_jets(taggers: Sequence[TaggedJets], sources: Sequence[str]) -> None:
    """Taggers to be compared jet by jet must hold the same jets (flavour and pT, in order)."""
    first = taggers[0]
    for tagger, source in zip(taggers[1:], sources[1:], strict=True):
        same = len(tagger.flavour) == len(first.flavour) and (
            np.array_equal(tagger.flavour, first.flavour)
            and np.array_equal(tagger.pt_gev, first.pt_gev)
        )
        if not same:
            raise InputError(
                f"{source}: tagger '{tagger.tagger}' was not scored on the same jets as"
                f" '{first.tagger}' ({sources[0]}): no paired comparison"
            )


def replica_weights(n_jets: int, replicas: int, seed: int) -> np.ndarray:
    """(replicas, n_jets) counts: how often each jet is drawn in each bootstrap replica."""
    rng = np.random.default_rng([seed, 0xB007])
    return np.stack(
        [np.bincount(rng.integers(0, n_jets, n_jets), minlength=n_jets) for _ in range(replicas)]
    ).astype(np.float64)


def bootstrap_rejections(
    jets: TaggedJets, efficiencies: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Background -> (replicas, points) rejection at each signal efficiency in each replica.

    The cut keeps the fraction `efficiency` of the drawn signal jets (weighted by how often each
    is drawn), by the rule of cut_for_efficiency (metrics.cuts_from_sorted); infinite where no
    drawn background jet passes.
    """
    is_b = jets.mask(jets.signal)
    order = np.argsort(-jets.discriminant[is_b], kind="stable")
    b_scores = jets.discriminant[is_b][order]
    b_weights = weights[:, is_b][:, order]
    cumulative = np.cumsum(b_weights, axis=1) / b_weights.sum(axis=1, keepdims=True)
    sorted_bkg = {}
    for name in jets.backgrounds:
        sel = jets.mask(name)
        bkg_order = np.argsort(jets.discriminant[sel], kind="stable")
        passing_from = np.cumsum(weights[:, sel][:, bkg_order][:, ::-1], axis=1)[:, ::-1]
        # passing_from[:, i]: drawn weight of the background jets at sorted index >= i
        sorted_bkg[name] = (jets.discriminant[sel][bkg_order], passing_from)
    out = {name: np.empty((len(weights), len(efficiencies))) for name in jets.backgrounds}
    for r in range(len(weights)):
        cut = cuts_from_sorted(b_scores, cumulative[r], efficiencies)
        for name, (scores, passing_from) in sorted_bkg.items():
            first_passing = np.searchsorted(scores, cut, side="right")
            total = passing_from[r, 0] if scores.size else 0.0
            passing = np.where(
                first_passing < scores.size,
                passing_from[r, np.minimum(first_passing, scores.size - 1)],
                0.0,
            )
            with np.errstate(divide="ignore"):
                out[name][r] = np.where(passing > 0, total / np.maximum(passing, 1e-300), np.inf)
    return out


def _nominal_rejections(jets: TaggedJets, efficiencies: np.ndarray) -> dict[str, np.ndarray]:
    """Background -> (points,) rejection on the test jets as they are (no limits)."""
    entries = [performance_at_cut(jets, cut_at_efficiency(jets, float(e)), limits=False)
               for e in efficiencies]  # fmt: skip
    return {name: np.array([e[f"{name}_rejection"] for e in entries]) for name in jets.backgrounds}


def _ratio_interval(ratios: np.ndarray, cl: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point: (low, high, replicas used) of the central cl range of replica ratios."""
    low, high, used = [], [], []
    for column in ratios.T:
        defined = column[~np.isnan(column)]  # inf / inf: no ratio in that replica
        used.append(defined.size)
        if defined.size == 0:
            low.append(np.nan)
            high.append(np.nan)
            continue
        lo, hi = np.quantile(defined, [(1 - cl) / 2, (1 + cl) / 2], method="inverted_cdf")
        low.append(lo)
        high.append(hi)
    return np.array(low), np.array(high), np.array(used)


def paired_ratios(
    taggers: Sequence[TaggedJets],
    reference: str,
    efficiencies: Sequence[float],
    replicas: int,
    seed: int,
    cl: float = INTERVAL_CL,
) -> dict:
    """Each tagger's background rejections over the reference's, at each signal efficiency.

    Returns {tagger: {<bkg>_ratio: [...], <bkg>_ratio_interval: [[low, high], ...],
    <bkg>_ratio_replicas: [...]}} on the given signal efficiencies (the reference included, its
    ratio 1 with a zero-width interval).
    """
    names = [t.tagger for t in taggers]
    if reference not in names:
        raise InputError(f"reference tagger '{reference}' is not among {names}")
    grid = np.asarray(efficiencies, dtype=float)
    weights = replica_weights(len(taggers[0].flavour), replicas, seed)
    nominal = {t.tagger: _nominal_rejections(t, grid) for t in taggers}
    boot = {t.tagger: bootstrap_rejections(t, grid, weights) for t in taggers}
    out = {}
    for name in names:
        entry = {}
        for bkg in taggers[0].backgrounds:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = nominal[name][bkg] / nominal[reference][bkg]
                replica_ratios = boot[name][bkg] / boot[reference][bkg]
            low, high, used = _ratio_interval(replica_ratios, cl)
            entry[f"{bkg}_ratio"] = ratio.tolist()
            entry[f"{bkg}_ratio_interval"] = np.stack([low, high], axis=1).tolist()
            entry[f"{bkg}_ratio_replicas"] = used.tolist()
        out[name] = entry
    return out
