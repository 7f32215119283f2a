"""The losses: the classification loss every training and evaluation uses, the pair loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from jettag.models.transformer import valid_pairs


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


def same_vertex_pairs(track_vertex: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(n_pairs,) bool: whether each pair of valid_pairs(valid) shares a truth vertex.

    track_vertex: (batch, max_tracks) ftagTruthVertexIndex; a pair is same-vertex when both
    indices are equal and >= 0 (fakes and pile-up, -1, share no vertex with anything).
    """
    jet, first, second = valid_pairs(valid)
    a, b = track_vertex[jet, first], track_vertex[jet, second]
    return (a == b) & (a >= 0)


def pair_loss_sums(
    pair_logits: torch.Tensor, same_vertex: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of binary cross-entropy over same-vertex pairs, sum over the other pairs).

    The class-balanced loss is sum_same / (2 n_same) + sum_other / (2 n_other): the few
    same-vertex pairs weigh as much as the many others (counts summed over the batch, and
    over processes in distributed training, by the caller).
    """
    bce = F.binary_cross_entropy_with_logits(
        pair_logits.float(), same_vertex.float(), reduction="none"
    )
    return bce[same_vertex].sum(), bce[~same_vertex].sum()


def balanced_pair_loss(
    same_sum: float, other_sum: float, n_same: float, n_other: float
) -> float | torch.Tensor:
    """The class-balanced pair loss from pair_loss_sums' sums and the two pair counts."""
    return same_sum / (2 * max(n_same, 1.0)) + other_sum / (2 * max(n_other, 1.0))
