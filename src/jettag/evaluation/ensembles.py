"""Deep against snapshot ensembles: what each costs to train and what averaging its members buys.

A deep ensemble is N independent trainings of a model (`members: N`); a snapshot ensemble
(Huang et al. 2017, arXiv:1704.00109) is one training on a cosine_restarts schedule whose
weights at the end of each cycle are its members. Both are scored and evaluated by the
ordinary predict and evaluate stages; this stage reads their metrics files (the members'
rejections at the working point, the averaged tagger's, the gain and spread that evaluate
computes for every ensemble) and the trainings' own records of their cost: the epochs and
epoch seconds of history.csv and, where given, the wall and CPU seconds of Snakemake's
benchmark files for the training jobs.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jettag.atomic import json_safe
from jettag.errors import InputError
from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.performance import wp_name
from jettag.io.history import read_history
from jettag.io.results import Result

KINDS = ("deep", "snapshot")


def training_cost(histories: Sequence[Path], benchmarks: Sequence[Path] = ()) -> dict[str, Any]:
    """Epochs and seconds an ensemble's trainings took, summed over its training jobs.

    epoch_seconds: the training's own timing of its epochs (training and validation passes;
    kept across a resume); job_wall_seconds, job_cpu_seconds: Snakemake's benchmark of each
    training job (start-up and data loading included; a resumed job's benchmark holds its
    last attempt only), None when no benchmark file is given.
    """
    epochs, seconds = 0, 0.0
    for path in histories:
        history = read_history(Path(path))
        epochs += int(history["epoch"].size)
        seconds += float(history["epoch_seconds"].sum())
    wall, cpu = (0.0, 0.0) if benchmarks else (None, None)
    for path in benchmarks:
        row = _benchmark_row(Path(path))
        wall += row["s"]
        cpu += row["cpu_time"]
    return {
        "trainings": len(histories),
        "epochs": epochs,
        "epoch_seconds": seconds,
        "job_wall_seconds": wall,
        "job_cpu_seconds": cpu,
    }


def _benchmark_row(path: Path) -> dict[str, float]:
    """Wall ('s') and CPU ('cpu_time') seconds of a Snakemake benchmark TSV (its last row)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        return {key: float(rows[-1][key]) for key in ("s", "cpu_time")}
    except (OSError, IndexError, KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: not a Snakemake benchmark file ({err!r})") from err


def member_rejections(metrics: Mapping[str, Any], working_point: float, path: Path) -> dict:
    """Per background: the averaged tagger's rejection and its members' (mean, std, min, max).

    From an evaluate metrics file. A member or an averaged tagger where no background jet
    passes gives a lower limit, no central value: the statistics over members (and the gain)
    are then None, the members still listed. A tagger of one member (a deep ensemble of
    `members: 1`) is its own mean member, without spread or gain.
    """
    name = wp_name(working_point)
    if name not in metrics["working_points"]:
        raise InputError(
            f"{path}: no working point {working_point} (have {sorted(metrics['working_points'])});"
            " it must be one of evaluation.working_points"
        )
    ensemble = metrics.get("ensemble")
    result: dict[str, Any] = {"n_members": ensemble["n_members"] if ensemble else 1}
    for bkg in Discriminant.from_dict(metrics["discriminant"]).backgrounds:
        if ensemble is None:
            result[bkg] = _single_member(metrics["working_points"][name], bkg)
            continue
        at = ensemble["working_points"][name]
        members = at[f"{bkg}_rejection_members"]
        central = at[f"{bkg}_rejection_mean"] is not None
        result[bkg] = {
            "ensemble": at[f"{bkg}_rejection_averaged"],
            "ensemble_is_lower_limit": at[f"{bkg}_rejection_averaged_is_lower_limit"],
            "members": members,
            "members_are_lower_limits": at[f"{bkg}_rejection_is_lower_limit_members"],
            "mean": at[f"{bkg}_rejection_mean"],
            "std": at[f"{bkg}_rejection_std"],
            "min": min(members) if central else None,
            "max": max(members) if central else None,
            "relative_std": at[f"{bkg}_rejection_relative_std"],
            "gain": at[f"{bkg}_rejection_gain"],
        }
    return result


def _single_member(at: Mapping[str, Any], bkg: str) -> dict[str, Any]:
    """member_rejections' entry of a one-member tagger at a working point."""
    value, limit = at[f"{bkg}_rejection"], bool(at[f"{bkg}_rejection_is_lower_limit"])
    central = None if limit or value is None else value
    return {
        "ensemble": value,
        "ensemble_is_lower_limit": limit,
        "members": [value],
        "members_are_lower_limits": [limit],
        "mean": central,
        "std": None,
        "min": central,
        "max": central,
        "relative_std": None,
        "gain": None,
    }


@dataclasses.dataclass
class EnsembleComparison(Result):
    """results/ensembles/<name>.json: cost and rejections of a deep and a snapshot ensemble."""

    comparison: str
    model: str
    b_efficiency: float
    backgrounds: list[str]
    ensembles: dict[str, dict]  # deep, snapshot
    snapshot_cost_fraction: dict[str, float | None]

    def markdown(self) -> str:
        """The comparison as markdown tables."""
        return markdown(self.to_dict())


def compare_ensembles(
    name: str,
    model: str,
    metrics: Mapping[str, Path],
    histories: Mapping[str, Sequence[Path]],
    benchmarks: Mapping[str, Sequence[Path]],
    working_point: float,
) -> EnsembleComparison:
    """The comparison of a deep and a snapshot ensemble of one model.

    metrics, histories, benchmarks: per kind ('deep', 'snapshot') the evaluate metrics file
    of the ensemble, the history.csv of each of its trainings and (possibly none) the
    Snakemake benchmark files of those trainings.
    """
    read = {kind: json.loads(Path(metrics[kind]).read_text()) for kind in KINDS}
    ensembles = {}
    for kind in KINDS:
        path = Path(metrics[kind])
        ensembles[kind] = {
            **member_rejections(read[kind], working_point, path),
            "cost": training_cost(histories[kind], benchmarks.get(kind, ())),
            "metrics": str(path),
        }
    deep, snapshot = ensembles["deep"]["cost"], ensembles["snapshot"]["cost"]
    result = {
        "comparison": name,
        "model": model,
        "b_efficiency": working_point,
        "backgrounds": list(Discriminant.from_dict(read["deep"]["discriminant"]).backgrounds),
        "ensembles": ensembles,
        # the snapshot ensemble's cost as a fraction of the deep ensemble's
        "snapshot_cost_fraction": {
            key: _ratio(snapshot[key], deep[key])
            for key in ("epochs", "epoch_seconds", "job_wall_seconds", "job_cpu_seconds")
        },
    }
    return EnsembleComparison.from_dict(json_safe(result))


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None where either is unknown or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def markdown(result: Mapping[str, Any]) -> str:
    """The comparison as two tables: training cost, and rejections of ensembles and members."""
    wp = f"{100 * result['b_efficiency']:.0f} %"
    ensembles = result["ensembles"]
    lines = [
        f"# Deep vs snapshot ensemble of {result['model']} ({result['comparison']})",
        "",
        "| ensemble | members | trainings | epochs | epoch time [s] | job wall time [s]"
        " | job CPU time [s] |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        entry, cost = ensembles[kind], ensembles[kind]["cost"]
        lines.append(
            f"| {kind} | {entry['n_members']} | {cost['trainings']} | {cost['epochs']} |"
            f" {_number(cost['epoch_seconds'], 0)} | {_number(cost['job_wall_seconds'], 0)} |"
            f" {_number(cost['job_cpu_seconds'], 0)} |"
        )
    lines += [
        "",
        f"Rejection at {wp} signal efficiency (test split): the averaged tagger, its members'"
        " mean, spread (std, min, max) and the gain of the average over the mean member.",
        "",
        "| ensemble | background | ensemble | mean member | std | min | max | gain |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        for bkg in result["backgrounds"]:
            e = ensembles[kind][bkg]
            value = _number(e["ensemble"], 1)
            if e["ensemble_is_lower_limit"]:
                value = f"> {value}"
            gain = "n/a" if e["gain"] is None else f"{100 * e['gain']:+.1f} %"
            lines.append(
                f"| {kind} | {bkg} | {value} | {_number(e['mean'], 1)} | {_number(e['std'], 1)} |"
                f" {_number(e['min'], 1)} | {_number(e['max'], 1)} | {gain} |"
            )
    return "\n".join(lines) + "\n"


def _number(value: float | None, digits: int) -> str:
    """A table cell: the value at fixed digits, or n/a."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:,.{digits}f}"
