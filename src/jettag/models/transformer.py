"""A GN2-like transformer tagger: track initialiser, pre-norm encoder, attention pooling.

No positional encoding: the tracks of a jet are a set, and the model is permutation
invariant. Learned register tokens are always valid, so a jet with zero tracks still has
something to attend to and gives finite outputs and gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jettag.config import TransformerConfig
from jettag.models.layers import ACTIVATIONS, mlp


class EncoderLayer(nn.Module):
    """Pre-norm block: x + MHA(LN(x)), then x + FFN(LN(x)); masked keys never contribute.

    Post-norm (norm_placement 'post', the original transformer's): LN(x + MHA(x)), then
    LN(x + FFN(x)).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        ffn_multiplier: int,
        dropout: float,
        activation: str,
        norm_placement: str = "pre",
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {heads}")
        if norm_placement not in ("pre", "post"):
            raise ValueError(f"norm_placement '{norm_placement}' is not 'pre' or 'post'")
        self.pre_norm = norm_placement == "pre"
        self.heads = heads
        self.norm_attention = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_multiplier * dim),
            ACTIVATIONS[activation](),
            nn.Dropout(dropout),
            nn.Linear(ffn_multiplier * dim, dim),
        )
        self.dropout = dropout

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """x: (batch, tokens, dim); key_mask: (batch, tokens) bool, True = may be attended to."""
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(self.norm_attention(x) if self.pre_norm else x).chunk(3, dim=-1)
        shape = (batch, tokens, self.heads, dim // self.heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        attention = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask[:, None, None, :],
            dropout_p=self.dropout if self.training else 0.0,
        )  # fmt: skip
        x = x + self.out(attention.transpose(1, 2).reshape(batch, tokens, dim))
        if self.pre_norm:
            return x + self.ffn(self.norm_ffn(x))
        x = self.norm_attention(x)
        return self.norm_ffn(x + self.ffn(x))


class AttentionPooling(nn.Module):
    """Weighted sum of valid tokens, the weights a softmax of a learned score per token."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (batch, tokens, dim); mask: (batch, tokens) bool. Returns (batch, dim)."""
        score = self.score(x).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(score, dim=1)
        return torch.einsum("bt,btd->bd", weights, x)


class TransformerTagger(nn.Module):
    """Track init MLP -> N encoder layers (with register tokens) -> attention pooling -> head.

    With n_track_classes > 0 a second head classifies each track's truth origin from its
    final embedding and the pooled jet (GN1's auxiliary task).
    """

    def __init__(
        self,
        n_track_features: int,
        n_jet_features: int,
        n_classes: int,
        config: TransformerConfig,
        n_track_classes: int = 0,
    ) -> None:
        super().__init__()
        dim = config.embed_dim
        n_inputs = n_track_features + n_jet_features
        n_init = config.init_layers[-1] if config.init_layers else n_inputs
        self.init_network = nn.Sequential(
            mlp(n_inputs, config.init_layers, config.activation), nn.Linear(n_init, dim)
        )
        self.registers = nn.Parameter(0.02 * torch.randn(config.registers, dim))
        self.layers = nn.ModuleList(
            EncoderLayer(
                dim,
                config.num_heads,
                config.ffn_multiplier,
                config.dropout,
                config.activation,
                config.norm_placement,
            )
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(dim)
        self.pooling = AttentionPooling(dim)
        self.head = mlp(dim, config.jet_layers, config.activation, config.dropout)
        self.classifier = nn.Linear(config.jet_layers[-1] if config.jet_layers else dim, n_classes)
        self.track_head = (
            nn.Sequential(mlp(2 * dim, [dim], config.activation), nn.Linear(dim, n_track_classes))
            if n_track_classes > 0
            else None
        )

    def track_encoder(self) -> tuple[list[nn.Module], list[nn.Parameter]]:
        """(modules, parameters) of the per-track network: what transfer learning may freeze.

        The initialiser, the register tokens and the encoder layers; pooling and the jet head
        stay trainable.
        """
        modules = [self.init_network, *self.layers, self.final_norm]
        parameters = [self.registers, *(p for m in modules for p in m.parameters())]
        return modules, parameters

    def _encode(
        self,
        tracks: torch.Tensor,
        valid: torch.Tensor,
        jets: torch.Tensor | None,
        trim: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(normed tokens (batch, slots + registers, dim), token mask, valid of the kept slots)."""
        if trim:
            # drop the slots that are padding in every jet of the batch: attention costs
            # (tokens)^2; masked keys contribute nothing, so the outputs do not change
            used = valid.any(dim=0).nonzero()
            n_slots = int(used.max()) + 1 if used.numel() else 0
            tracks, valid = tracks[:, :n_slots], valid[:, :n_slots]
        batch, max_tracks, _ = tracks.shape
        if jets is not None and jets.shape[1] > 0:
            tracks = torch.cat([tracks, jets[:, None, :].expand(-1, max_tracks, -1)], dim=-1)
        x = self.init_network(tracks)
        registers = self.registers[None].expand(batch, -1, -1).to(x.dtype)
        x = torch.cat([x, registers], dim=1)
        mask = torch.cat([valid, valid.new_ones(batch, self.registers.shape[0])], dim=1)
        for layer in self.layers:
            x = layer(x, mask)
        return self.final_norm(x), mask, valid

    def forward(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits (batch, n_classes).

        tracks: (batch, max_tracks, n_track_features); valid: (batch, max_tracks) bool,
        True = real track; jets: (batch, n_jet_features) or None (GN2 gives every track the
        jet's pT and eta).
        """
        x, mask, _ = self._encode(tracks, valid, jets)
        return self.classifier(self.head(self.pooling(x, mask)))

    def forward_dense(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """forward() without data-dependent shapes (no trimming of padding slots), for export."""
        x, mask, _ = self._encode(tracks, valid, jets, trim=False)
        return self.classifier(self.head(self.pooling(x, mask)))

    def forward_with_tracks(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits (batch, n_classes), origin logits (n_valid_tracks, n_track_classes)).

        The track logits follow valid's True entries in row-major order, like tracks[valid].
        """
        if self.track_head is None:
            raise RuntimeError("this model was built without a track-origin head")
        x, mask, kept_valid = self._encode(tracks, valid, jets)
        pooled = self.pooling(x, mask)
        jet_index = kept_valid.nonzero(as_tuple=True)[0]
        track_tokens = x[:, : kept_valid.shape[1]][kept_valid]
        track_logits = self.track_head(torch.cat([track_tokens, pooled[jet_index]], dim=1))
        return self.classifier(self.head(pooled)), track_logits
