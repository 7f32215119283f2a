"""history.csv: one row per training epoch (losses, accuracies, learning rate, timing).

epoch_seconds: the epoch's training and validation passes (with the time before an
interruption, for a resumed epoch); wall_seconds: their running total since the start.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jettag.errors import InputError

HISTORY_COLUMNS = (
    "epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate",
    "epoch_seconds", "train_track_origin_loss", "val_track_origin_loss", "wall_seconds",
)  # fmt: skip


def history_csv(rows: Sequence[dict]) -> str:
    """history.csv text of epoch rows (keys: HISTORY_COLUMNS)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS)
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
