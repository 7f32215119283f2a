"""The evaluate stage: predictions -> metrics JSON (AUC, working points, ROC curves).

Every number comes from the evaluation core (performance.py). At a working point where no
background jet passes, `<bkg>_rejection` is the Clopper-Pearson lower limit at
`rejection_limit_cl` (flagged by `<bkg>_rejection_is_lower_limit`); the ROC grid keeps
infinite (null) rejections there. For an ensemble, `ensemble` holds every member's ROC and
working-point rejections, their mean and spread, and the gain of the averaged tagger.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jettag.atomic import json_safe
from jettag.config import RocGrid
from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.metrics import REJECTION_LIMIT_CL, auc
from jettag.evaluation.performance import (
    Roc,
    TaggedJets,
    performance_at_working_point,
    predictions_jets,
    rejections,
    roc,
    wp_name,
)
from jettag.io.predictions import read_predictions
from jettag.io.results import OMIT_NONE, Result


@dataclasses.dataclass
class Metrics(Result):
    """results/metrics/<tagger>.json: AUCs, working points and the ROC curve of one tagger."""

    tagger: str
    discriminant: dict
    n_jets: dict[str, int]
    auc: dict[str, float]  # "<signal>_vs_<background>"
    rejection_limit_cl: float
    working_points: dict[str, dict]  # "77" -> cut, efficiencies, rejections
    roc: dict  # Roc.to_dict
    predictions: str
    ensemble: dict | None = dataclasses.field(default=None, metadata=OMIT_NONE)  # ensembles

    @property
    def definition(self) -> Discriminant:
        """The discriminant the metrics are of."""
        return Discriminant.from_dict(self.discriminant)

    @property
    def curve(self) -> Roc:
        """The ROC curve."""
        return Roc.from_dict(self.roc)


def evaluate(
    predictions_path: Path,
    discriminant: Discriminant,
    working_points: Sequence[float],
    roc_grid: RocGrid,
) -> Metrics:
    """The metrics of one tagger's predictions (unweighted test jets)."""
    predictions = read_predictions(predictions_path)
    jets = predictions_jets(predictions, discriminant)
    db = jets.discriminant
    signal = jets.signal
    grid = roc_grid.efficiencies()
    at_wps = {wp_name(wp): performance_at_working_point(jets, wp) for wp in working_points}
    metrics = {
        "tagger": jets.tagger,
        "discriminant": discriminant.to_dict(),
        "n_jets": {name: int(jets.mask(name).sum()) for name in jets.classes},
        "auc": {  # the last background first (light for D_b), as the figures quote it
            f"{signal}_vs_{bkg}": auc(db[jets.mask(signal)], db[jets.mask(bkg)])
            for bkg in reversed(jets.backgrounds)
        },
        "rejection_limit_cl": REJECTION_LIMIT_CL,
        "working_points": at_wps,
        "roc": roc(jets, grid).to_dict(),
        "predictions": str(predictions_path),
    }
    members = predictions.members
    if members is not None and len(members) > 1:
        member_jets = [predictions_jets(predictions, discriminant, k) for k in range(len(members))]
        metrics["ensemble"] = _member_spread(member_jets, at_wps, working_points, grid)
    return Metrics.from_dict(json_safe(metrics))


def _member_spread(
    members: list[TaggedJets], averaged: dict, working_points: Sequence[float], grid: np.ndarray
) -> dict:
    """Mean and std over ensemble members of the rejections (ROC grid and working points).

    At a working point, a member where no background jet passes gives a lower limit, listed
    with the members; the mean and std are then null, as a limit is no central value. The
    gain compares the averaged tagger with the mean member.
    """
    curves = [roc(jets, grid) for jets in members]
    spread: dict = {"n_members": len(members), "roc": {}, "working_points": {}}
    backgrounds = members[0].backgrounds
    for name in backgrounds:
        values = np.array([c.rejection[name] for c in curves], dtype=float)
        spread["roc"][f"{name}_rejection_mean"] = values.mean(axis=0).tolist()
        spread["roc"][f"{name}_rejection_std"] = values.std(axis=0, ddof=1).tolist()
        spread["roc"][f"{name}_rejection_members"] = values.tolist()
    for wp in working_points:
        at_wp = [rejections(performance_at_working_point(jets, wp), backgrounds)
                 for jets in members]  # fmt: skip
        entry = spread["working_points"][wp_name(wp)] = {}
        for name in backgrounds:
            values = np.array([m[f"{name}_rejection"] for m in at_wp], dtype=float)
            is_limit = [bool(m[f"{name}_rejection_is_lower_limit"]) for m in at_wp]
            central = not any(is_limit) and bool(np.all(np.isfinite(values)))
            entry.update({
                f"{name}_rejection_mean": float(values.mean()) if central else None,
                f"{name}_rejection_std": float(values.std(ddof=1)) if central else None,
                f"{name}_rejection_members": values.tolist(),
                f"{name}_rejection_interval_members": [
                    m[f"{name}_rejection_interval"] for m in at_wp
                ],
                f"{name}_rejection_lower_limit_members": [
                    m[f"{name}_rejection_lower_limit"] for m in at_wp
                ],
                f"{name}_rejection_is_lower_limit_members": is_limit,
            })  # fmt: skip
            entry.update(_gain(name, entry, averaged[wp_name(wp)]))
    return spread


def _gain(name: str, entry: dict, averaged: dict) -> dict:
    """Does averaging the members beat a typical single member? (None where undefined)

    A lower limit (no jet passing) is no central value: no gain and no spread from it.
    """
    mean_member = entry[f"{name}_rejection_mean"]
    value = averaged[f"{name}_rejection"]
    central = not averaged[f"{name}_rejection_is_lower_limit"]
    defined = mean_member is not None and mean_member > 0
    return {
        f"{name}_rejection_averaged": value,
        f"{name}_rejection_averaged_is_lower_limit": not central,
        f"{name}_rejection_gain": (
            value / mean_member - 1.0 if central and defined and np.isfinite(value) else None
        ),
        f"{name}_rejection_relative_std": (
            entry[f"{name}_rejection_std"] / mean_member if defined else None
        ),
    }


def summary_line(metrics: Metrics) -> str:
    """One log line of a tagger's metrics: its AUCs and rejections at the 77 % (or first) WP."""
    label = "77" if "77" in metrics.working_points else next(iter(metrics.working_points))
    wp = metrics.working_points[label]

    def shown(name: str) -> str:
        text = f"{wp[f'{name}_rejection']:.2f}"
        return f"> {text} (lower limit)" if wp[f"{name}_rejection_is_lower_limit"] else text

    aucs = {k: round(v, 4) for k, v in metrics.auc.items()}
    rejections = {bkg: shown(bkg) for bkg in metrics.discriminant["fractions"]}
    return f"{metrics.tagger}: AUC {aucs}; rejection at the {label} % WP: {rejections}"
