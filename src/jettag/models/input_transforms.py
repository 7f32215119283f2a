"""A first layer that undoes part of prepare's input transforms (the feature-transform study).

Prepare stores every input as x = (transform(v) - mean) / std (jettag.transforms). A study
point may change only the model section, so the network itself maps x back:
  t = x * std + mean                      prepare's transformed value
  v = exp(t)                              for 'log' (v >= LOG_FLOOR: prepare floors zeros)
  v = sign(t) (exp|t| - 1)                for 'signed_log'
  x' = (v - mean') / std'                 mean', std' fitted on the training split (normalise)
  x' = v, or x' = t                       without normalisation (un-logged, or not)
Every number of the map is a buffer, so a checkpoint carries it (torch.load weights_only) and
predict, saliency and the ONNX export need nothing else. Columns the map leaves alone get
identity buffers and come out bit for bit; padded track slots come out as 0.

Shapes: tracks (batch, max_tracks, n_track_features); valid (batch, max_tracks) bool, True =
real track; jets (batch, n_jet_features) or None.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from jettag.config import InputTransformsConfig
from jettag.transforms import INVERSES, Normalisation

KEEP, EXP, SIGNED_EXP = 0, 1, 2  # the inverse applied to a column, as a buffer's code
# each invertible transform (jettag.transforms.INVERSES) -> the code of its inverse
INVERSE_CODES = {t: {"exp": EXP, "signed_expm1": SIGNED_EXP}[f] for t, f in INVERSES.items()}
MAX_EXPONENT = 80.0  # exp(80) is finite in float32: a wild value never becomes inf or NaN


class ColumnMap(nn.Module):
    """The map of one group of inputs (track or jet features), column by column."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.register_buffer("changed", torch.zeros(n_features, dtype=torch.bool))
        self.register_buffer("inverse", torch.zeros(n_features, dtype=torch.int8))
        self.register_buffer("prepared_mean", torch.zeros(n_features))
        self.register_buffer("prepared_std", torch.ones(n_features))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def set(self, plan: dict[str, np.ndarray]) -> None:
        """Fill the buffers from a plan (column_plan) with its fitted mean and std."""
        for name, values in plan.items():
            buffer = getattr(self, name)
            buffer.copy_(torch.as_tensor(values, dtype=buffer.dtype))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared values (..., n_features) -> the variables before normalisation (un-logged)."""
        t = torch.addcmul(self.prepared_mean, x, self.prepared_std)
        clipped = t.clamp(-MAX_EXPONENT, MAX_EXPONENT)
        t = torch.where(self.inverse == EXP, torch.exp(clipped), t)
        return torch.where(
            self.inverse == SIGNED_EXP, torch.sign(clipped) * torch.expm1(clipped.abs()), t
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mapped values (..., n_features): unchanged columns have identity buffers (exact)."""
        return (self.raw(x) - self.mean) / self.std


class InputTransform(nn.Module):
    """The track and jet column maps: prepared inputs in, the inputs a study point asks out."""

    def __init__(self, n_track_features: int, n_jet_features: int) -> None:
        super().__init__()
        self.tracks = ColumnMap(n_track_features)
        self.jets = ColumnMap(n_jet_features)

    def forward(
        self,
        tracks: torch.Tensor,
        valid: torch.Tensor,
        jets: torch.Tensor | None,
        dense: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(tracks, valid, jets) mapped, padded track slots 0; valid is passed on as it is.

        Only real tracks are mapped (a quarter of the slots, typically), so the layer costs
        little beside the network; dense: every slot, padding as 0 (no data-dependent
        shapes, for export). Either way the exponential never sees padding.
        """
        mapped_jets = self.jets(jets) if jets is not None and jets.shape[1] > 0 else jets
        mask = valid[..., None]
        if dense:
            zero = torch.zeros((), dtype=tracks.dtype, device=tracks.device)
            mapped = self.tracks(torch.where(mask, tracks, zero))
            return torch.where(mask, mapped, zero), valid, mapped_jets
        mapped = tracks.new_zeros(tracks.shape)
        mapped[valid] = self.tracks(tracks[valid]).to(tracks.dtype)
        return mapped, valid, mapped_jets


class WithInputTransform(nn.Module):
    """A tagger (DeepSets, TransformerTagger) behind an InputTransform; the same methods."""

    def __init__(self, inputs: InputTransform, network: nn.Module) -> None:
        super().__init__()
        self.inputs, self.network = inputs, network

    def forward(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits (batch, n_classes) of the mapped inputs."""
        return self.network(*self.inputs(tracks, valid, jets))

    def forward_dense(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The network's forward_dense (for export) of the mapped inputs."""
        return self.network.forward_dense(*self.inputs(tracks, valid, jets, dense=True))

    def forward_with_tracks(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The network's (class logits, origin logits, pair logits) of the mapped inputs."""
        return self.network.forward_with_tracks(*self.inputs(tracks, valid, jets))

    def track_encoder(self) -> tuple[list[nn.Module], list[nn.Parameter]]:
        """The network's per-track part (the map has no parameters to freeze)."""
        return self.network.track_encoder()


def column_plan(
    norms: Sequence[Normalisation], config: InputTransformsConfig
) -> dict[str, np.ndarray]:
    """Buffers of a ColumnMap for inputs with these normalisations; NaN mean/std: to be fitted.

    A column is refitted when it is un-logged and prepare had standardised it (a prepare
    input with normalise: false has mean 0 and std 1, and stays unstandardised).
    """
    names = [n.name for n in norms]
    unknown = [
        n.name for n in norms
        if not config.log and n.name in config.log_inputs and n.transform not in INVERSE_CODES
    ]  # fmt: skip
    if unknown:
        raise ValueError(
            f"training.input_transforms.log_inputs names {unknown}, whose prepare transform is"
            f" not log or signed_log ({[n.transform for n in norms if n.name in unknown]})"
        )
    inverse = np.array(
        [INVERSE_CODES[n.transform] if not config.log and n.name in config.log_inputs else KEEP
         for n in norms], dtype=np.int8,
    )  # fmt: skip
    prepared_mean = np.array([n.mean for n in norms], dtype=np.float64)
    prepared_std = np.array([n.std for n in norms], dtype=np.float64)
    standardised = (prepared_mean != 0) | (prepared_std != 1)
    if config.normalise:
        changed = inverse != KEEP
        mean = np.where(changed, prepared_mean, 0.0)
        std = np.where(changed, prepared_std, 1.0)
        refit = changed & standardised
        mean[refit], std[refit] = np.nan, np.nan
    else:
        changed = standardised | (inverse != KEEP)
        mean, std = np.zeros(len(names)), np.ones(len(names))
    # an unchanged column gets (x * 1 + 0 - 0) / 1: exactly x, with no branch per column
    return {
        "changed": changed,
        "inverse": inverse,
        "prepared_mean": np.where(changed, prepared_mean, 0.0),
        "prepared_std": np.where(changed, prepared_std, 1.0),
        "mean": mean,
        "std": std,
    }
