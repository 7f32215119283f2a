"""A GN2-like transformer tagger: track initialiser, pre-norm encoder, attention pooling.

No positional encoding: the tracks of a jet are a set, and the model is permutation
invariant. Learned register tokens are always valid, so a jet with zero tracks still has
something to attend to and gives finite outputs and gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from jettag.config import TransformerConfig
from jettag.models.layers import ACTIVATIONS, mlp
from jettag.models.pairwise import PairwiseBias, pair_features
from jettag.transforms import Normalisation


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

    def forward(
        self, x: torch.Tensor, key_mask: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (batch, tokens, dim); key_mask: (batch, tokens) bool, True = may be attended to;
        bias: (batch, heads, tokens, tokens) added to the attention logits, -inf on masked
        keys (attention_bias), or None."""
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(self.norm_attention(x) if self.pre_norm else x).chunk(3, dim=-1)
        shape = (batch, tokens, self.heads, dim // self.heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        attention = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask[:, None, None, :] if bias is None else bias.to(q.dtype),
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


# the inputs the pairwise features are computed from: pT / pT_jet, eta and phi from the jet axis
PAIR_TRACK_INPUTS = ("ptfrac", "deta", "dphi")
PAIR_JET_PT = "pt"


class PairKinematics(nn.Module):
    """Tracks' (pT, deta, dphi) recovered from the model's normalised inputs, for pair features.

    Buffers hold where each input sits and how it was transformed and standardised (so a
    checkpoint carries them). pT is pT / pT_jet times the jet pT when the jet pT is an input,
    else in units of the jet pT: then ln kT and ln m^2 are shifted per jet, the rest unchanged.
    """

    def __init__(self, track_norms: Sequence[Normalisation], jet_norms: Sequence[Normalisation]):
        super().__init__()
        names = [n.name for n in track_norms]
        missing = [n for n in PAIR_TRACK_INPUTS if n not in names]
        if missing:
            raise ValueError(
                f"transformer.pairwise_features needs the track inputs {list(PAIR_TRACK_INPUTS)};"
                f" {missing} are not among the model's inputs {names}"
            )
        chosen = [track_norms[names.index(n)] for n in PAIR_TRACK_INPUTS]
        jet_names = [n.name for n in jet_norms]
        jet_pt = jet_norms[jet_names.index(PAIR_JET_PT)] if PAIR_JET_PT in jet_names else None
        for norm in [*chosen, *([jet_pt] if jet_pt else [])]:
            if norm.transform not in ("none", "log"):
                raise ValueError(
                    f"transformer.pairwise_features: input '{norm.name}' has transform"
                    f" '{norm.transform}'; only 'none' and 'log' can be undone here"
                )
        self.register_buffer("index", torch.tensor([names.index(n) for n in PAIR_TRACK_INPUTS]))
        self.register_buffer("mean", torch.tensor([n.mean for n in chosen]))
        self.register_buffer("std", torch.tensor([n.std for n in chosen]))
        self.register_buffer("is_log", torch.tensor([n.transform == "log" for n in chosen]))
        self.jet_pt = None
        if jet_pt is not None:
            self.jet_pt = (jet_names.index(PAIR_JET_PT), jet_pt.mean, jet_pt.std,
                           jet_pt.transform == "log")  # fmt: skip

    def forward(self, tracks: torch.Tensor, jets: torch.Tensor | None) -> torch.Tensor:
        """tracks: (batch, t, n_track_features) normalised; (batch, t, 3) (pT, deta, dphi)."""
        raw = tracks[..., self.index].float() * self.std + self.mean
        raw = torch.where(self.is_log, raw.clamp(max=30.0).exp(), raw)
        if self.jet_pt is not None and jets is not None:
            column, mean, std, is_log = self.jet_pt
            pt = jets[:, column].float() * std + mean
            pt = pt.clamp(max=30.0).exp() if is_log else pt
            raw = torch.cat([raw[..., :1] * pt[:, None, None], raw[..., 1:]], dim=-1)
        return raw


def attention_bias(pair_bias: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """(batch, heads, tokens, tokens): the tracks' pair bias, zero for register tokens, -inf
    on masked keys. pair_bias: (batch, heads, t, t); key_mask: (batch, tokens), tokens >= t."""
    extra = key_mask.shape[1] - pair_bias.shape[-1]
    bias = F.pad(pair_bias, (0, extra, 0, extra))
    return bias.masked_fill(~key_mask[:, None, None, :], float("-inf"))


def valid_pairs(valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(jet, first, second) indices of every pair of valid tracks of a jet, first < second.

    valid: (batch, max_tracks) bool. Row-major order over (jet, first, second), so trimming
    slots that are padding in every jet leaves the pairs and their order unchanged.
    """
    both = valid[:, :, None] & valid[:, None, :]
    return torch.triu(both, diagonal=1).nonzero(as_tuple=True)


class PairHead(nn.Module):
    """Same-vertex logit of a pair of tracks from their embeddings and the pooled jet.

    Each hidden unit k sees s_k(a) + s_k(b) + u_k(a) u_k(b) + j_k(jet), with s and u linear
    maps of a track's embedding: symmetric in the pair, as 'same vertex' is, and bilinear in
    it, so the product term can say whether two tracks point the same way. Both maps run per
    track, before the pairs are formed: the per-pair work is a few (n_pairs, hidden)
    elementwise operations, where a matrix product per pair cost up to twice as much
    (benchmarks/pair_head.py).
    """

    def __init__(self, dim: int, hidden: int, activation: str) -> None:
        super().__init__()
        self.hidden = hidden
        self.track = nn.Linear(dim, 2 * hidden)  # [s | u]
        self.jet = nn.Linear(dim, hidden, bias=False)
        self.activation = ACTIVATIONS[activation]()
        self.out = nn.Linear(hidden, 1)

    def forward(
        self, tokens: torch.Tensor, pooled: torch.Tensor, pairs: tuple[torch.Tensor, ...]
    ) -> torch.Tensor:
        """tokens: (batch, t, dim); pooled: (batch, dim); pairs: valid_pairs. (n_pairs,) logits."""
        jet, first, second = pairs
        per_track = self.track(tokens)
        a, b = per_track[jet, first], per_track[jet, second]
        h = self.hidden
        hidden = a[:, :h] + b[:, :h] + a[:, h:] * b[:, h:] + self.jet(pooled)[jet]
        return self.out(self.activation(hidden)).squeeze(-1)


class TransformerTagger(nn.Module):
    """Track init MLP -> N encoder layers (with register tokens) -> attention pooling -> head.

    With n_track_classes > 0 a second head classifies each track's truth origin from its
    final embedding and the pooled jet (GN1's auxiliary task); with vertex_head a third says
    for each pair of tracks whether they come from the same vertex (GN2's).
    """

    def __init__(
        self,
        n_track_features: int,
        n_jet_features: int,
        n_classes: int,
        config: TransformerConfig,
        n_track_classes: int = 0,
        vertex_head: bool = False,
        inputs: tuple[Sequence[Normalisation], Sequence[Normalisation]] | None = None,
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
        self.pair_head = PairHead(dim, max(dim // 2, 1), config.activation) if vertex_head else None
        self.pair_kinematics = self.pairwise_bias = None
        if config.pairwise_features:  # Particle Transformer's interaction terms
            if inputs is None:
                raise ValueError("transformer.pairwise_features needs the model's input spec")
            self.pair_kinematics = PairKinematics(*inputs)
            self.pairwise_bias = PairwiseBias(config.num_heads)

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
        tracks_in = tracks
        if jets is not None and jets.shape[1] > 0:
            tracks = torch.cat([tracks, jets[:, None, :].expand(-1, max_tracks, -1)], dim=-1)
        x = self.init_network(tracks)
        registers = self.registers[None].expand(batch, -1, -1).to(x.dtype)
        x = torch.cat([x, registers], dim=1)
        mask = torch.cat([valid, valid.new_ones(batch, self.registers.shape[0])], dim=1)
        bias = None
        if self.pairwise_bias is not None:
            kinematics = self.pair_kinematics(tracks_in, jets)
            pair_bias = self.pairwise_bias(pair_features(kinematics, valid), valid)
            bias = attention_bias(pair_bias, mask)
        for layer in self.layers:
            x = layer(x, mask, bias)
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
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(class logits (batch, n_classes), origin logits, pair logits), each head's or None.

        Origin logits: (n_valid_tracks, n_track_classes), following valid's True entries in
        row-major order, like tracks[valid]. Pair logits: (n_pairs,) same-vertex logits of
        the pairs valid_pairs(valid) lists, in its order.
        """
        if self.track_head is None and self.pair_head is None:
            raise RuntimeError("this model was built without a track-origin or vertexing head")
        x, mask, kept_valid = self._encode(tracks, valid, jets)
        pooled = self.pooling(x, mask)
        tokens = x[:, : kept_valid.shape[1]]
        origin_logits = pair_logits = None
        if self.track_head is not None:
            jet_index = kept_valid.nonzero(as_tuple=True)[0]
            origin_logits = self.track_head(
                torch.cat([tokens[kept_valid], pooled[jet_index]], dim=1)
            )
        if self.pair_head is not None:
            pair_logits = self.pair_head(tokens, pooled, valid_pairs(kept_valid))
        return self.classifier(self.head(pooled)), origin_logits, pair_logits
