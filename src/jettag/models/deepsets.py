"""A DIPS-like Deep Sets tagger (ATL-PHYS-PUB-2020-014): track network, masked sum, jet network."""

from __future__ import annotations

import torch
from torch import nn

from jettag.config import DeepSetsConfig
from jettag.models.layers import masked_sum, mlp


class DeepSets(nn.Module):
    """Phi on each valid track, a sum over tracks, then F on the sum (and jet inputs)."""

    def __init__(
        self, n_track_features: int, n_jet_features: int, n_classes: int, config: DeepSetsConfig
    ) -> None:
        super().__init__()
        self.track_network = mlp(
            n_track_features, config.track_layers, config.activation, config.dropout,
            config.normalisation,
        )  # fmt: skip
        n_pooled = config.track_layers[-1] + n_jet_features
        self.jet_network = mlp(
            n_pooled, config.jet_layers, config.activation, config.dropout, config.normalisation
        )
        n_last = config.jet_layers[-1] if config.jet_layers else n_pooled
        self.classifier = nn.Linear(n_last, n_classes)

    def forward(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits (batch, n_classes).

        tracks: (batch, max_tracks, n_track_features); valid: (batch, max_tracks) bool,
        True = real track; jets: (batch, n_jet_features) or None.
        """
        # only real tracks go through Phi: padding can change nothing, and costs nothing
        per_track = self.track_network(tracks[valid])
        pooled = masked_sum(per_track, valid, tracks.shape[0])
        if jets is not None and jets.shape[1] > 0:
            pooled = torch.cat([pooled, jets], dim=1)
        return self.classifier(self.jet_network(pooled))
