"""Deterministic event-level splits (train/val/test, K folds) from a hash of eventNumber."""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def event_uniform(event_number: np.ndarray, salt: int = 0) -> np.ndarray:
    """A uniform number in [0, 1) per event: splitmix64 of (eventNumber + salt)."""
    with np.errstate(over="ignore"):
        z = np.asarray(event_number).astype(np.uint64) + np.uint64(salt)
        z = (z + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def assign_split(
    event_number: np.ndarray, fractions: dict[str, float], test_only_from: int | None = None
) -> np.ndarray:
    """Index into SPLITS for each jet; all jets of an event land in the same split.

    Events numbered test_only_from or above (a generated sample's test-only shards) are test.
    """
    u = event_uniform(event_number)
    edges = np.cumsum([fractions[s] for s in SPLITS])
    split = np.minimum(np.searchsorted(edges, u, side="right"), len(SPLITS) - 1)
    if test_only_from is not None:
        split[np.asarray(event_number) >= test_only_from] = SPLITS.index("test")
    return split


FOLD_SALT = 0x5EED_F01D  # folds independent of the train/val/test split


def assign_fold(event_number: np.ndarray, n_folds: int) -> np.ndarray:
    """Fold index in 0..n_folds-1 of each jet; all jets of an event land in the same fold."""
    if n_folds < 1:
        raise ValueError(f"n_folds must be at least 1, got {n_folds}")
    u = event_uniform(event_number, FOLD_SALT)
    return np.minimum((u * n_folds).astype(np.int64), n_folds - 1)
