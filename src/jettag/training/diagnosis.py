"""Loss-curve diagnosis: which classic case a training's loss curves show, with the evidence.

The cases, checked in this order (the first that holds is the diagnosis):
- diverging: the training loss is not finite, ends above where it started, or blew up on the
  way (an epoch's loss EXPLODE times the final one: with Adam a far too large learning rate
  explodes in the first epoch, then settles near chance); a learning rate too large, a
  wrong-sign update;
- not_learning: the training loss never moves by more than FLAT of its first value (a
  learning rate too small, dead units, inputs that carry nothing); or, checked after
  overfitting, the validation loss never falls FLAT below its first epoch's in more than
  PLATEAU_EPOCHS epochs (a run that early stopping ends at chance: e.g. a tiny network
  stuck while its training loss creeps down);
- slow_start: flat for the first PLATEAU_EPOCHS epochs, then falling (initialisation or a
  warm-up too cautious, a learning rate too small at first);
- overfitting: the validation loss rises by more than OVERFIT_RISE above its minimum while
  the training loss keeps falling; the epoch it starts is the one after the minimum;
- not_converged: the validation loss still falls at the end (its best epoch is one of the
  last two and its slope over the last END_EPOCHS epochs is below -END_SLOPE per epoch):
  more epochs would help;
- healthy: none of these.
Slopes are relative: the change per epoch divided by the loss, from a straight-line fit.
Epochs in the evidence count from 1, as on the loss plot (history.csv counts from 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jettag.io.history import auxiliary_losses, read_history

CASES = ("diverging", "not_learning", "slow_start", "overfitting", "not_converged", "healthy")
FLAT = 0.01  # relative change below which a loss counts as not moving
RISE = 0.05  # diverging: the final training loss this much above the first
EXPLODE = 10.0  # diverging: an epoch's training loss this many times the final one
PLATEAU_EPOCHS = 3
OVERFIT_RISE = 0.02
END_EPOCHS = 3
END_SLOPE = 0.003
ADVICE = {
    "diverging": "lower the learning rate (or check the sign of the update)",
    "not_learning": "raise the learning rate; check the inputs and the initialisation",
    "slow_start": "a larger initial learning rate or a shorter warm-up would save epochs",
    "overfitting": "stop earlier, regularise (weight decay, dropout) or add training jets",
    "not_converged": "train for more epochs",
    "healthy": "",
}


def relative_slope(values: np.ndarray) -> float:
    """Straight-line slope per epoch of the values, divided by their mean."""
    if values.size < 2:
        return 0.0
    slope = np.polyfit(np.arange(values.size, dtype=float), values, 1)[0]
    return float(slope / max(abs(float(np.mean(values))), 1e-12))


def diagnose(history: Mapping[str, Sequence[float]] | Sequence[Mapping[str, float]]) -> dict:
    """The case of one training's curves and its evidence (a JSON-ready dict).

    history: history.csv's columns (epoch -> values) or its rows (dicts with train_loss
    and val_loss).
    """
    if isinstance(history, Mapping):
        train = np.asarray(history["train_loss"], float)
        val = np.asarray(history["val_loss"], float)
    else:
        train = np.array([row["train_loss"] for row in history], float)
        val = np.array([row["val_loss"] for row in history], float)
    n = train.size
    finite = bool(np.isfinite(train).all() and np.isfinite(val).all())
    evidence: dict = {"epochs": n, "finite": finite}
    if n == 0:
        return {"case": "not_learning", "evidence": evidence, "advice": ADVICE["not_learning"]}
    best = int(np.nanargmin(val)) if np.isfinite(val).any() else 0
    evidence |= {
        "train_loss_first": _number(train[0]),
        "train_loss_last": _number(train[-1]),
        "train_loss_min": _number(np.nanmin(train)) if np.isfinite(train).any() else None,
        "val_loss_min": _number(val[best]),
        "val_loss_last": _number(val[-1]),
        "best_epoch": best + 1,  # epochs counted from 1, as on the loss plot
        "train_slope_end": relative_slope(train[-END_EPOCHS:]) if finite else None,
        "val_slope_end": relative_slope(val[-END_EPOCHS:]) if finite else None,
        "gap_end": _number((val[-1] - train[-1]) / abs(train[-1])) if finite else None,
    }
    case = _case(train, val, best, finite, evidence)
    result = {"case": case, "evidence": evidence, "advice": ADVICE[case]}
    # the jet loss alone decides the case; a head whose loss does not fall is a finding too
    auxiliary = auxiliary_losses(history)
    if auxiliary:
        result["auxiliary"] = auxiliary
    return result


def _case(train: np.ndarray, val: np.ndarray, best: int, finite: bool, evidence: dict) -> str:
    """The first case of CASES that the curves show (fills in the evidence it used)."""
    evidence["train_blow_up"] = float(train.max() / train[-1]) if finite else None
    if not finite or train[-1] > train[0] * (1 + RISE) or train.max() >= EXPLODE * train[-1]:
        return "diverging"
    moved = np.abs(train - train[0]) / abs(train[0])
    evidence["train_change_max"] = float(moved.max())
    if moved.max() < FLAT:
        return "not_learning"
    if train.size > PLATEAU_EPOCHS + 1 and moved[:PLATEAU_EPOCHS].max() < FLAT:
        evidence["plateau_epochs"] = int(np.argmax(moved >= FLAT))
        return "slow_start"
    rise = (val[-1] - val[best]) / abs(val[best])
    evidence["val_rise_from_min"] = float(rise)
    if rise > OVERFIT_RISE and train[-1] < train[best]:
        evidence["overfitting_from_epoch"] = best + 2  # the first epoch after the minimum
        return "overfitting"
    evidence["val_gain_max"] = float((val[0] - val[best]) / abs(val[0]))
    if train.size > PLATEAU_EPOCHS and evidence["val_gain_max"] < FLAT:
        return "not_learning"
    if best >= train.size - 2 and evidence["val_slope_end"] < -END_SLOPE:
        return "not_converged"
    return "healthy"


def _number(value: float) -> float | None:
    """A float for JSON; None for NaN or infinity."""
    value = float(value)
    return value if math.isfinite(value) else None


def summary(result: dict) -> str:
    """One line for a log or a legend: the case and its deciding evidence."""
    case, e = result["case"], result["evidence"]
    text = case.replace("_", " ")
    if case == "overfitting":
        text += f" from epoch {e['overfitting_from_epoch']} (val +{e['val_rise_from_min']:.1%})"
    elif case == "slow_start":
        text += f" (flat for {e['plateau_epochs']} epochs)"
    elif case == "not_converged":
        text += f" (val slope {e['val_slope_end']:+.1%}/epoch at the end)"
    elif case == "not_learning" and e.get("val_gain_max") is not None:
        text += f" (validation never below epoch 1's: {e['val_gain_max']:+.1%})"
    elif case == "healthy":
        text += f" (best epoch {e['best_epoch']})"
    return text


def diagnose_histories(paths: Sequence[Path]) -> list[dict]:
    """The diagnosis of each history.csv, in order."""
    return [diagnose(read_history(path)) for path in paths]
