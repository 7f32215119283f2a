"""Training and validation loss vs training-set size: high bias or high variance?

Both losses come from the trained model in evaluation mode (no dropout, no augmentation), on
the very jets it was trained on and on the validation split, with the training loss's own
weighting. A large gap that closes with more jets is variance (more data helps); two high
losses that meet early are bias (a bigger model or better inputs help).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from jettag.atomic import json_safe
from jettag.io.results import LearningCurve
from jettag.training.checkpoint import load_checkpoint, load_trained_model
from jettag.training.data import TensorData, class_weight_tensor, load_split
from jettag.training.losses import weighted_cross_entropy

EVAL_BATCH = 8192


@torch.no_grad()
def mean_loss(model: torch.nn.Module, data: TensorData, class_weights: torch.Tensor) -> float:
    """Weighted cross-entropy of a model over a whole split (per-jet and class weights)."""
    loss_sum = weight_sum = 0.0
    for tracks, valid, jets, labels, weights, *_ in data.batches(EVAL_BATCH):
        loss, total = weighted_cross_entropy(model(tracks, valid, jets), labels, weights,
                                             class_weights)  # fmt: skip
        loss_sum += float(loss) * float(total)
        weight_sum += float(total)
    return loss_sum / max(weight_sum, 1e-12)


def learning_curve(checkpoints: Sequence[Path], data_dir: Path, model_name: str) -> LearningCurve:
    """Loss on the training subset and on validation for models trained on growing subsets."""
    points = []
    for path in checkpoints:
        state = load_checkpoint(path)
        model, spec = load_trained_model(path)
        training = state["model_config"]["training"]
        # per checkpoint: each point was trained with its own use_class_weights
        class_weights = class_weight_tensor(
            data_dir, training.get("use_class_weights", True), len(spec.classes)
        )
        max_jets = training.get("max_train_jets")
        train = load_split(data_dir / "train.h5", spec, max_jets)
        val = load_split(data_dir / "val.h5", spec)
        if not training.get("use_sample_weights", True):
            train.weights, val.weights = (
                torch.ones_like(train.weights),
                torch.ones_like(val.weights),
            )
        points.append(
            {
                "train_jets": len(train),
                "train_loss": mean_loss(model, train, class_weights),
                "val_loss": mean_loss(model, val, class_weights),
                "best_epoch": int(state["epoch"]),
                "checkpoint": str(path),
            }
        )
    points.sort(key=lambda p: p["train_jets"])
    result = {"model": model_name, "points": points, "data_dir": str(data_dir)}
    return LearningCurve.from_dict(json_safe(result))
