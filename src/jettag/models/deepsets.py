"""A DIPS-like Deep Sets tagger (ATL-PHYS-PUB-2020-014): track network, masked sum, jet network."""

from __future__ import annotations

import torch
from torch import nn

from jettag.config import DeepSetsConfig
from jettag.models.layers import masked_sum, mlp


class DeepSets(nn.Module):
    """Phi on each valid track, a sum over tracks, then F on the sum (and jet inputs).

    With n_track_classes > 0 a second head classifies each track's truth origin from its
    Phi output and the jet network's input (the summed representation).
    """

    def __init__(
        self,
        n_track_features: int,
        n_jet_features: int,
        n_classes: int,
        config: DeepSetsConfig,
        n_track_classes: int = 0,
    ) -> None:
        super().__init__()
        self.track_network = mlp(
            n_track_features, config.track_layers, config.activation, config.dropout,
            config.normalisation, config.normalisation_placement,
        )  # fmt: skip
        n_pooled = config.track_layers[-1] + n_jet_features
        self.jet_network = mlp(
            n_pooled, config.jet_layers, config.activation, config.dropout, config.normalisation,
            config.normalisation_placement,
        )  # fmt: skip
        n_last = config.jet_layers[-1] if config.jet_layers else n_pooled
        self.classifier = nn.Linear(n_last, n_classes)
        n_track = config.track_layers[-1]
        self.track_head = (
            nn.Sequential(
                mlp(n_track + n_pooled, [n_track], config.activation),
                nn.Linear(n_track, n_track_classes),
            )
            if n_track_classes > 0
            else None
        )

    def track_encoder(self) -> tuple[list[nn.Module], list[nn.Parameter]]:
        """(modules, parameters) of the per-track network: what transfer learning may freeze."""
        return [self.track_network], list(self.track_network.parameters())

    def _pool(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(Phi of each valid track (n_valid, d), pooled jet representation (batch, d'))."""
        # only real tracks go through Phi: padding can change nothing, and costs nothing
        per_track = self.track_network(tracks[valid])
        pooled = masked_sum(per_track, valid, tracks.shape[0])
        if jets is not None and jets.shape[1] > 0:
            pooled = torch.cat([pooled, jets], dim=1)
        return per_track, pooled

    def forward(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits (batch, n_classes).

        tracks: (batch, max_tracks, n_track_features); valid: (batch, max_tracks) bool,
        True = real track; jets: (batch, n_jet_features) or None.
        """
        _, pooled = self._pool(tracks, valid, jets)
        return self.classifier(self.jet_network(pooled))

    def forward_dense(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """forward() without data-dependent shapes, for export: Phi on every slot, padding masked.

        Same logits as forward() (in eval mode): Phi acts on each track alone, and the padded
        slots' outputs are multiplied by zero before the sum.
        """
        batch, slots, n_features = tracks.shape
        per_track = self.track_network(tracks.reshape(batch * slots, n_features))
        per_track = per_track.reshape(batch, slots, -1) * valid.unsqueeze(-1).to(per_track.dtype)
        pooled = per_track.sum(dim=1)
        if jets is not None and jets.shape[1] > 0:
            pooled = torch.cat([pooled, jets], dim=1)
        return self.classifier(self.jet_network(pooled))

    def forward_with_tracks(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, None]:
        """(class logits (batch, n_classes), origin logits (n_valid_tracks, n_track_classes),
        None: a Deep Sets model has no pair head)."""
        if self.track_head is None:
            raise RuntimeError("this model was built without a track-origin head")
        per_track, pooled = self._pool(tracks, valid, jets)
        jet_index = valid.nonzero(as_tuple=True)[0]
        track_logits = self.track_head(torch.cat([per_track, pooled[jet_index]], dim=1))
        return self.classifier(self.jet_network(pooled)), track_logits, None
