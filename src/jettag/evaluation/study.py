"""Model-choice studies: one model's settings scanned point by point, several seeds a point.

A point's trainings differ only by seed (the ensemble members' seeds), so the spread over
seeds is the error bar of the point. Everything is measured on the validation split (a study
chooses a model; the test split is kept for the chosen one): the best validation loss, the
training loss at that epoch, light and c rejection at the working point, and, per training,
its trainable parameter count, epochs, speed and loss-curve verdict.

Time to target: the epochs and the training wall time (history.csv's running total of the
epochs' times, validation passes included, start-up not) until the validation loss first
reaches a target, studies.<name>.target_val_loss or, when that is null, the worst run's best
validation loss (so every run reaches it, the worst at its best epoch). A run that never
reaches it has None there, and a point's mean is over the runs that did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from jettag.atomic import json_safe
from jettag.errors import ConfigError
from jettag.evaluation.ablation import rejections_at
from jettag.evaluation.discriminant import Discriminant, require_b_tagging
from jettag.io.history import read_history
from jettag.io.results import StudySummary
from jettag.training.checkpoint import load_trained_model
from jettag.training.diagnosis import diagnose

# per-run quantities that get a mean and a spread over seeds
AVERAGED = ("val_loss", "train_loss", "light_rejection", "c_rejection", "epochs",
            "seconds", "jets_per_second", "epochs_to_target", "seconds_to_target")  # fmt: skip
DEFAULT_TARGET = "the worst run's best validation loss"


def parameter_count(checkpoint: Path) -> int:
    """Trainable parameters of a trained network (buffers such as batch-norm statistics not)."""
    model, _ = load_trained_model(checkpoint)
    return int(sum(p.numel() for p in model.parameters()))


def training_jets(train_file: Path, max_train_jets: int | None) -> int:
    """Jets a training ran on: the training split, cut at max_train_jets."""
    with h5py.File(train_file, "r") as f:
        n = int(f["jets"].shape[0])
    return n if max_train_jets is None else min(n, max_train_jets)


def wall_seconds(history: Mapping[str, np.ndarray]) -> np.ndarray:
    """Training time at the end of each epoch (the running total of epoch_seconds)."""
    if "wall_seconds" in history:
        return history["wall_seconds"]
    return np.cumsum(history["epoch_seconds"])  # a history.csv from before the column


def time_to_target(
    history: Mapping[str, np.ndarray], target: float
) -> tuple[int | None, float | None]:
    """(epochs, wall seconds) until the validation loss first reaches target; None: never."""
    reached = np.flatnonzero(history["val_loss"] <= target)
    if reached.size == 0:
        return None, None
    first = int(reached[0])
    return first + 1, float(wall_seconds(history)[first])


def target_val_loss(study: Mapping[str, Any], history_files: Sequence[Path]) -> tuple[float, str]:
    """(target, where it comes from): the study's target_val_loss, else the worst best loss."""
    if study.get("target_val_loss") is not None:
        return float(study["target_val_loss"]), "config"
    return max(float(np.nanmin(read_history(h)["val_loss"])) for h in history_files), DEFAULT_TARGET


def run_summary(
    history_file: Path,
    predictions: Path,
    checkpoint: Path,
    n_train_jets: int,
    discriminant: Discriminant,
    working_point: float,
    target_val_loss: float,
) -> dict[str, Any]:
    """One training of a point: losses at its best epoch, rejections, size, speed, verdict."""
    history = read_history(history_file)
    epochs_to_target, seconds_to_target = time_to_target(history, target_val_loss)
    best = int(np.nanargmin(history["val_loss"]))
    seconds = history["epoch_seconds"]
    result: dict[str, Any] = {
        "val_loss": float(history["val_loss"][best]),
        "train_loss": float(history["train_loss"][best]),
        "best_epoch": best + 1,  # counted from 1, as on the loss plots
        "epochs": int(history["epoch"].size),
        "seconds": float(seconds.sum()),
        # an epoch's time includes its validation pass, as a user waiting for it sees it
        "jets_per_second": float(n_train_jets / np.median(seconds)),
        "n_parameters": parameter_count(checkpoint),
        "diagnosis": diagnose(history)["case"],
        "epochs_to_target": epochs_to_target,
        "seconds_to_target": seconds_to_target,
    }
    rej = rejections_at(predictions, discriminant, working_point)
    for background in discriminant.backgrounds:
        value = rej[f"{background}_rejection"]
        limit = rej[f"{background}_rejection_is_lower_limit"]
        # a lower limit (no background jet passes) is not averaged as if it were a value
        result[f"{background}_rejection"] = None if limit or not math.isfinite(value) else value
        result[f"{background}_rejection_interval"] = rej[f"{background}_rejection_interval"]
    return result


def spread(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None with fewer than 2 values) of the known values."""
    known = [v for v in values if v is not None]
    if not known:
        return None, None
    std = float(np.std(known, ddof=1)) if len(known) > 1 else None
    return float(np.mean(known)), std


def runs_by_point(
    study_name: str,
    study: Mapping[str, Any],
    histories: Sequence[Path],
    predictions: Sequence[Path],
    checkpoints: Sequence[Path],
) -> dict[str, list[tuple[Path, Path, Path]]]:
    """Each point's (history, predictions, checkpoint) per seed, from lists given point-major
    and seed-minor (as the rule lists them); a file of another run is a ConfigError."""
    expected = [(p["name"], k) for p in study["points"] for k in range(study["seeds"])]
    files = (histories, predictions, checkpoints)
    if any(len(f) != len(expected) for f in files):
        raise ConfigError(
            f"study-summary {study_name}: {len(expected)} runs (points x seeds) expected, got"
            f" {[len(f) for f in files]} histories, predictions, checkpoints"
        )
    runs: dict[str, list] = {p["name"]: [] for p in study["points"]}
    for (point, seed), *paths in zip(expected, *files, strict=True):
        for path in paths:  # results/studies/<study>/<point>/<seed>/...
            if path.parent.name != str(seed) or path.parent.parent.name != point:
                raise ConfigError(f"study-summary {study_name}: {path} is not run {point}/{seed}")
        runs[point].append(tuple(paths))
    return runs


def study_summary(
    name: str,
    study: Mapping[str, Any],
    sections: Mapping[str, Mapping[str, Any]],
    runs: Mapping[str, Sequence[tuple[Path, Path, Path]]],
    train_file: Path,
    discriminant: Discriminant,
    working_point: float,
) -> StudySummary:
    """Every point of a study: its runs and their mean and spread over seeds.

    study: the config's studies.<name> section; sections: point name -> the model section it
    trains; runs: point name -> per seed (history.csv, validation predictions, best.pt);
    train_file: the training split (for jets per second).
    """
    require_b_tagging(discriminant, f"study {name}")
    for point in study["points"]:
        if len(runs[point["name"]]) != study["seeds"]:
            raise ValueError(
                f"study {name}, point {point['name']}: {len(runs[point['name']])} runs for"
                f" {study['seeds']} seeds"
            )
    target, source = target_val_loss(study, [h for paths in runs.values() for h, _, _ in paths])
    points = []
    for point in study["points"]:
        n_jets = training_jets(train_file, sections[point["name"]]["training"]["max_train_jets"])
        seeds = [
            {"seed": k, **run_summary(h, p, c, n_jets, discriminant, working_point, target)}
            for k, (h, p, c) in enumerate(runs[point["name"]])
        ]
        entry: dict[str, Any] = {
            "name": point["name"],
            "series": point["series"],
            "set": point["set"],
            "train_jets": n_jets,
            "n_parameters": seeds[0]["n_parameters"],
            "runs": seeds,
        }
        for key in AVERAGED:
            entry[key], entry[f"{key}_std"] = spread([s[key] for s in seeds])
        entry["diagnoses"] = [s["diagnosis"] for s in seeds]
        entry["runs_reaching_target"] = sum(s["epochs_to_target"] is not None for s in seeds)
        points.append(entry)
    result = {
        "study": name,
        "model": study["model"],
        "x": study["x"],
        "x_label": study["x_label"],
        "log_x": study["log_x"],
        "seeds": study["seeds"],
        "split": "val",
        "b_efficiency": working_point,
        "discriminant": discriminant.to_dict(),
        "target_val_loss": target,
        "target_source": source,
        "points": points,
    }
    return StudySummary.from_dict(json_safe(result))


def markdown(result: Mapping[str, Any]) -> str:
    """The study as a table: one row per point, mean +- spread over seeds."""

    def cell(point: Mapping[str, Any], key: str, digits: int) -> str:
        mean, std = point[key], point[f"{key}_std"]
        if mean is None:
            return "n/a"
        return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")

    def to_target(point: Mapping[str, Any], key: str, digits: int) -> str:
        reached = point["runs_reaching_target"]
        if reached == 0:
            return "never reached"
        runs = len(point["runs"])
        return cell(point, key, digits) + (
            "" if reached == runs else f" ({reached}/{runs} reached)"
        )

    wp = f"{100 * result['b_efficiency']:.0f} %"
    lines = [
        f"# Study {result['study']}: {result['model']}, {result['seeds']} seeds a point"
        " (validation split)",
        "",
        f"| point | series | parameters | val loss | train loss | light rej. {wp} | c rej. {wp}"
        " | epochs | epochs to target | s to target | jets/s | verdicts |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in result["points"]:
        lines.append(
            f"| {p['name']} | {p['series']} | {p['n_parameters']} | {cell(p, 'val_loss', 4)} |"
            f" {cell(p, 'train_loss', 4)} | {cell(p, 'light_rejection', 1)} |"
            f" {cell(p, 'c_rejection', 2)} | {cell(p, 'epochs', 1)} |"
            f" {to_target(p, 'epochs_to_target', 1)} | {to_target(p, 'seconds_to_target', 1)} |"
            f" {cell(p, 'jets_per_second', 0)} | {', '.join(p['diagnoses'])} |"
        )
    source = "studies config" if result["target_source"] == "config" else result["target_source"]
    lines += [
        "",
        f"Target validation loss {result['target_val_loss']:.4f} ({source}): epochs and"
        " training seconds (start-up not counted) until a run first reaches it.",
    ]
    return "\n".join(lines) + "\n"
