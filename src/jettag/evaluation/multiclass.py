"""Multi-class evaluation: the confusion matrix and the binary tasks of a class set.

For a tagger with many classes (JetClass's ten, Xbb's four, FTAG's b, c, light and tau) one
discriminant does not say everything. This stage writes, from a predictions file:
- the confusion matrix (truth class vs the class of largest probability), counts and
  fractions per true class, and the accuracy;
- each binary task (a Discriminant: ParT's X vs QCD for JetClass, D_b and D_c for FTAG):
  the AUC against each background, the rejections at a signal efficiency (50 % by default,
  ParT's Rej50) with their intervals, and the ROC on the efficiency grid.
Every number comes from the evaluation core (performance.py), as evaluate's do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jettag.atomic import json_safe
from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.metrics import auc
from jettag.evaluation.performance import (
    performance_at_working_point,
    predictions_jets,
    rejections,
    roc,
)
from jettag.io.predictions import read_predictions
from jettag.io.results import Result


def confusion_matrix(truth: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """(classes, classes) counts: row = true class, column = the class of largest probability.

    truth: (n_jets,) class index; probabilities: (n_jets, classes).
    """
    n_classes = probabilities.shape[1]
    predicted = np.argmax(probabilities, axis=1)
    flat = np.bincount(truth * n_classes + predicted, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


@dataclasses.dataclass
class MulticlassSummary(Result):
    """results/multiclass/<tagger>.json: confusion matrix and the class set's binary tasks."""

    tagger: str
    classes: list[str]
    n_jets: dict[str, int]
    confusion_counts: list[list[int]]
    confusion_fractions: list[list[float | None]]
    accuracy: float
    tasks: list[dict]
    predictions: str


def multiclass_summary(
    predictions_path: Path,
    tasks: Sequence[Discriminant],
    signal_efficiency: float,
    grid: np.ndarray,
) -> MulticlassSummary:
    """Confusion matrix, accuracy and every binary task of one tagger's predictions (JSON)."""
    predictions = read_predictions(Path(predictions_path))
    classes = list(predictions.classes)
    probabilities = np.stack([predictions.probability(c) for c in classes], axis=1)
    truth = predictions.jets["flavour_label"].astype(np.int64)
    counts = confusion_matrix(truth, probabilities)
    per_class = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.where(per_class > 0, counts / np.maximum(per_class, 1), np.nan)
    task_results = []
    for task in tasks:
        jets = predictions_jets(predictions, task)
        score = jets.discriminant
        entry = performance_at_working_point(jets, signal_efficiency)
        task_results.append(
            {
                "name": f"{task.signal} vs {'+'.join(task.backgrounds)}",
                "discriminant": task.to_dict(),
                "auc": {
                    bkg: auc(score[jets.mask(task.signal)], score[jets.mask(bkg)])
                    for bkg in task.backgrounds
                },
                "signal_efficiency": signal_efficiency,
                "cut": entry["cut"],
                **rejections(entry, task.backgrounds),
                "roc": roc(jets, grid).to_dict(),
            }
        )
    result = {
        "tagger": predictions.tagger,
        "classes": classes,
        "n_jets": dict(zip(classes, per_class[:, 0].tolist(), strict=True)),
        "confusion_counts": counts.tolist(),
        "confusion_fractions": fractions.tolist(),
        "accuracy": float(np.trace(counts) / max(counts.sum(), 1)),
        "tasks": task_results,
        "predictions": str(predictions_path),
    }
    return MulticlassSummary.from_dict(json_safe(result))
