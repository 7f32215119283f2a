"""history.csv: one row per training epoch (losses, accuracies, learning rate, timing).

epoch_seconds: the epoch's training and validation passes (with the time before an
interruption, for a resumed epoch); wall_seconds: their running total since the start.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jettag.errors import InputError

HISTORY_COLUMNS = (
    "epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate",
    "epoch_seconds", "train_track_origin_loss", "val_track_origin_loss", "wall_seconds",
    "train_track_vertex_loss", "val_track_vertex_loss",
)  # fmt: skip
# the auxiliary tasks' columns: task -> (training column, validation column)
AUXILIARY_TASKS = {
    "track_origin": ("train_track_origin_loss", "val_track_origin_loss"),
    "track_vertex": ("train_track_vertex_loss", "val_track_vertex_loss"),
}


def history_csv(rows: Sequence[dict]) -> str:
    """history.csv text of epoch rows (keys: HISTORY_COLUMNS)."""
    buffer = io.StringIO()
    # rows resumed from a run before a column existed have no value for it
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, restval="nan")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_history(path: Path) -> dict[str, np.ndarray]:
    """history.csv columns as float arrays; a file without epochs is an InputError."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise InputError(f"{path}: cannot read training history ({err})") from err
    if not rows:
        raise InputError(f"{path}: history has no epochs")
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def auxiliary_losses(
    history: Mapping[str, Sequence[float]] | Sequence[Mapping[str, float]],
) -> dict[str, dict]:
    """Each trained auxiliary task's loss at the first and last epoch, and its minimum.

    history: history.csv's columns or its rows. A task is reported when its validation loss
    is finite in every epoch ('falling': both losses ended below where they started).
    """
    out = {}
    for task, columns in AUXILIARY_TASKS.items():
        if isinstance(history, Mapping):
            if columns[1] not in history:
                continue
            train, val = (np.asarray(history[c], float) for c in columns)
        else:
            if not history or columns[1] not in history[0]:
                continue
            train, val = (np.array([row[c] for row in history], float) for c in columns)
        if val.size == 0 or not np.isfinite(val).all() or not np.isfinite(train).all():
            continue
        out[task] = {
            "train_first": float(train[0]),
            "train_last": float(train[-1]),
            "val_first": float(val[0]),
            "val_last": float(val[-1]),
            "val_min": float(val.min()),
            "falling": bool(val[-1] < val[0] and train[-1] < train[0]),
        }
    return out
