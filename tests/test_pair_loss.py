"""The vertexing task's pairs, targets and class-balanced loss against brute force."""

from __future__ import annotations

import math

import pytest
import torch

from jettag.models.transformer import valid_pairs
from jettag.training.losses import balanced_pair_loss, pair_loss_sums, same_vertex_pairs


def test_pairs_and_targets_match_a_loop_over_jets():
    generator = torch.Generator().manual_seed(7)
    n_tracks = torch.tensor([0, 1, 2, 5, 7])
    valid = torch.arange(7)[None, :] < n_tracks[:, None]
    vertex = torch.randint(-1, 3, (5, 7), generator=generator)
    vertex[~valid] = -1
    jet, first, second = valid_pairs(valid)
    same = same_vertex_pairs(vertex, valid)
    expected_pairs, expected_same = [], []
    for j in range(5):
        for a in range(int(n_tracks[j])):
            for b in range(a + 1, int(n_tracks[j])):
                expected_pairs.append((j, a, b))
                expected_same.append(bool(vertex[j, a] == vertex[j, b] and vertex[j, a] >= 0))
    assert list(zip(jet.tolist(), first.tolist(), second.tolist(), strict=True)) == expected_pairs
    assert same.tolist() == expected_same
    assert len(expected_pairs) == 0 + 0 + 1 + 10 + 21


def test_balanced_loss_weighs_both_classes_equally():
    logits = torch.tensor([2.0, -1.0, 0.5, 0.0])
    same = torch.tensor([True, False, False, False])
    same_sum, other_sum = pair_loss_sums(logits, same)

    def bce(x: float, y: int) -> float:
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = bce(2.0, 1) / 2 + (bce(-1.0, 0) + bce(0.5, 0) + bce(0.0, 0)) / (2 * 3)
    assert float(balanced_pair_loss(same_sum, other_sum, 1, 3)) == pytest.approx(expected, rel=1e-6)
    # a constant guess of 1/2 costs log 2 whatever the class balance
    half = pair_loss_sums(torch.zeros(4), same)
    assert float(balanced_pair_loss(*half, 1, 3)) == pytest.approx(math.log(2))
