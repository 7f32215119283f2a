"""The classification loss every training and evaluation of a loss uses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, class_weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, weight sum): cross-entropy averaged with per-jet x per-class weights."""
    loss_sum, total = weighted_cross_entropy_sum(logits, labels, weights, class_weights)
    return loss_sum / total.clamp_min(1e-12), total


def weighted_cross_entropy_sum(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, class_weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of cross-entropy x per-jet x per-class weight, sum of those weights)."""
    w = weights * class_weights[labels]
    per_jet = F.cross_entropy(logits.float(), labels, reduction="none")
    return (per_jet * w).sum(), w.sum()
