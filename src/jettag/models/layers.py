"""Layers shared by the taggers."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def mlp(
    n_in: int,
    sizes: list[int] | tuple[int, ...],
    activation: str = "relu",
    dropout: float = 0.0,
    normalisation: str = "none",
    placement: str = "before_activation",
) -> nn.Sequential:
    """Linear -> [norm] -> activation -> [dropout] for each size (or the norm after the
    activation); the output is activated."""
    if placement not in ("before_activation", "after_activation"):
        raise ValueError(f"normalisation placement '{placement}' is not before/after_activation")
    layers: list[nn.Module] = []
    for size in sizes:
        layers.append(nn.Linear(n_in, size))
        norm: list[nn.Module] = []
        if normalisation == "layer":
            norm = [nn.LayerNorm(size)]
        elif normalisation == "batch":
            norm = [nn.BatchNorm1d(size)]
        if placement == "before_activation":
            layers += [*norm, ACTIVATIONS[activation]()]
        else:
            layers += [ACTIVATIONS[activation](), *norm]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = size
    return nn.Sequential(*layers)


def masked_sum(per_track: torch.Tensor, valid: torch.Tensor, n_jets: int) -> torch.Tensor:
    """Sum of per-valid-track vectors into their jets.

    per_track: (n_valid_tracks, d) for the True entries of valid, in row-major order;
    valid: (batch, max_tracks) bool, True = real track. Returns (batch, d).
    """
    jet_index = valid.nonzero(as_tuple=True)[0]
    # at least fp32: under bf16 autocast a jet's tracks would be added with 8 mantissa bits
    dtype = torch.promote_types(per_track.dtype, torch.float32)
    out = per_track.new_zeros(n_jets, per_track.shape[1], dtype=dtype)
    return out.index_add_(0, jet_index, per_track.to(dtype))
