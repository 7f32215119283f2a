"""Particle Transformer's pairwise interaction features, turned into a per-head attention bias.

Following ParT (Qu, Li, Qian, arXiv:2202.03772), each pair of tracks (a, b) is described by
ln ΔR, ln kT, ln z and ln m², and a pointwise MLP maps them to one additive attention bias per
head: softmax(q·k / sqrt(d) + U_ab).
"""

from __future__ import annotations

import math

import torch
from torch import nn

PION_MASS_GEV = 0.13957

# Floor under every logarithm: ΔR = kT = 0 on the diagonal and for coincident tracks, z = 0
# for a zero-pT track.
LOG_FLOOR = 1e-8

# Fixed standardisation (x - centre) / width of (ln ΔR, ln kT, ln z, ln m²), so that the MLP
# sees O(1) inputs from its first step; a learnable affine would only duplicate the first
# Linear layer. Typical pairs of tracks of 0.5-500 GeV in an R = 0.4 jet (centre ± 2 widths
# covers the bulk):
#   ΔR   ~0.13: most tracks lie within 0.2 of the axis         -> ln ΔR -2.0 ± 1.0
#   kT   ~0.2 GeV: the softer track, 1-2 GeV, times ΔR         -> ln kT -1.5 ± 1.5
#   z    ~0.17: one soft track against a harder one, z <= 0.5  -> ln z  -1.75 ± 1.0
#   m²   ~1 GeV²: from 4 m_π² = 0.078 GeV² (ln -2.55) up to
#        B-hadron-like masses and boosted pairs (tens of GeV²) -> ln m² 0.0 ± 2.0
# A toy of such jets (tests/test_pairwise.py) lands within about half a width of each centre.
FEATURE_CENTRES = (-2.0, -1.5, -1.75, 0.0)
FEATURE_WIDTHS = (1.0, 1.5, 1.0, 2.0)

_PI = math.pi
_PI_F32 = float(torch.tensor(math.pi, dtype=torch.float32))
# 2π - 2 float32(π), to restore what the float32 π dropped after the exact subtractions below
_TWO_PI_REMAINDER = 2.0 * (math.pi - _PI_F32)


def _wrapped_delta_phi(phi: torch.Tensor) -> torch.Tensor:
    """Δφ_ab folded into [-π, π] for phi (batch, tracks) in (-π, π]; (batch, tracks, tracks)."""
    dphi = phi[:, :, None] - phi[:, None, :]
    # (Δφ + π) mod 2π - π would round every small Δφ to the float32 spacing near π (2.4e-7).
    # A pair that crosses ±π and is nearly collinear has φ_a near π and φ_b near -π, so
    # φ_a - π and φ_b + π are exact (Sterbenz): only roundings relative to the result remain.
    minus_pi = phi - _PI_F32
    plus_pi = phi + _PI_F32
    above = (minus_pi[:, :, None] - plus_pi[:, None, :]) - _TWO_PI_REMAINDER
    below = (plus_pi[:, :, None] - minus_pi[:, None, :]) + _TWO_PI_REMAINDER
    # strict on both sides, so that (a, b) and (b, a) are always folded alike
    return torch.where(dphi > _PI, above, torch.where(dphi < -_PI, below, dphi))


@torch.no_grad()
def pair_features(kinematics: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """ParT's (ln ΔR, ln kT, ln z, ln m²) for every pair of tracks, charged-pion masses.

    kinematics: (batch, tracks, 3) = (pT in GeV, eta - eta_jet, phi - phi_jet wrapped to
    (-π, π]); padding rows may hold anything. valid: (batch, tracks) bool, True = real track.
    Returns (batch, tracks, tracks, 4) float32, symmetric in the two track axes; pairs with
    a padding track and the diagonal are exactly 0. Four-vectors are built from pT,
    eta - eta_jet and the mass, i.e. as if the jet were at eta 0: ΔR and m² then differ from
    those of the tracks' absolute eta by O(m²/pT²) relatively (up to a few per cent for
    0.5 GeV tracks, below 1e-3 above 5 GeV). No gradient is recorded (no_grad, not
    inference_mode, so the result may feed a model that is trained).
    """
    if kinematics.ndim != 3 or kinematics.shape[-1] != 3:
        raise ValueError(f"kinematics must be (batch, tracks, 3), not {tuple(kinematics.shape)}")
    if valid.shape != kinematics.shape[:2]:
        raise ValueError(
            f"valid {tuple(valid.shape)} does not match kinematics {tuple(kinematics.shape)}"
        )
    valid = valid.bool()
    kinematics = kinematics.float()
    # padding may hold NaN or inf; harmless values keep every intermediate finite
    pt = torch.where(valid, kinematics[..., 0], 1.0).clamp(min=0.0)
    eta = torch.where(valid, kinematics[..., 1], 0.0)
    phi = torch.where(valid, kinematics[..., 2], 0.0)

    mass2 = PION_MASS_GEV**2
    mt = torch.sqrt(pt * pt + mass2)
    sinh_eta = torch.sinh(eta)
    rapidity = torch.asinh(pt / mt * sinh_eta)
    # Δy = Δη + Δ(y - η): Δη of nearly collinear tracks is exact in float32, whereas the
    # difference of two rapidities of O(1) loses ~1e-7 absolutely. y - η itself is formed
    # without cancellation from sinh y - sinh η = 2 cosh((y + η)/2) sinh((y - η)/2) and
    # pT/mT - 1 = -m² / (mT (pT + mT)).
    ratio_minus_one = -mass2 / (mt * (pt + mt))
    y_minus_eta = 2.0 * torch.asinh(
        ratio_minus_one * sinh_eta / (2.0 * torch.cosh(0.5 * (rapidity + eta)))
    )
    dy = (eta[:, :, None] - eta[:, None, :]) + (y_minus_eta[:, :, None] - y_minus_eta[:, None, :])
    # |.| so that odd functions of Δ need not be exactly odd for the result to be symmetric
    dy = dy.abs()
    dphi = _wrapped_delta_phi(phi).abs()
    delta_r = torch.sqrt(dy * dy + dphi * dphi)

    pt_a, pt_b = pt[:, :, None], pt[:, None, :]
    mt_a, mt_b = mt[:, :, None], mt[:, None, :]
    pt_min = torch.minimum(pt_a, pt_b)
    pt_sum = pt_a + pt_b
    kt = pt_min * delta_r
    z = pt_min / pt_sum.clamp(min=torch.finfo(torch.float32).tiny)
    # m² = 2m² + 2(mT_a mT_b cosh Δy - pT_a pT_b cos Δφ). For collinear TeV tracks the bracket
    # is a difference of ~1e6 GeV² numbers that should give ~0.1 GeV², hopeless in float32;
    # rewritten as a sum of non-negative terms it has no cancellation at all:
    #   mT_a mT_b (cosh Δy - 1) = 2 mT_a mT_b sinh²(Δy/2)
    #   pT_a pT_b (1 - cos Δφ)  = 2 pT_a pT_b sin²(Δφ/2)
    #   mT_a mT_b - pT_a pT_b   = m² (pT_a² + pT_b² + m²) / (mT_a mT_b + pT_a pT_b)
    mt_prod = mt_a * mt_b
    pt_prod = pt_a * pt_b
    m2 = (
        2.0 * mass2
        + 4.0 * mt_prod * torch.sinh(0.5 * dy).square()
        + 4.0 * pt_prod * torch.sin(0.5 * dphi).square()
        + 2.0 * mass2 * (pt_a * pt_a + pt_b * pt_b + mass2) / (mt_prod + pt_prod)
    )

    features = torch.stack((delta_r, kt, z, m2), dim=-1).clamp_(min=LOG_FLOOR).log_()
    n_tracks = valid.shape[1]
    off_diagonal = ~torch.eye(n_tracks, dtype=torch.bool, device=valid.device)
    pair_valid = valid[:, :, None] & valid[:, None, :] & off_diagonal
    return features.masked_fill_(~pair_valid[..., None], 0.0)


class PairwiseBias(nn.Module):
    """Pointwise MLP from pair features to one additive attention bias per head (ParT's U)."""

    def __init__(self, n_heads: int, hidden: int = 32):
        super().__init__()
        self.n_heads = n_heads
        self.register_buffer("centre", torch.tensor(FEATURE_CENTRES))
        self.register_buffer("width", torch.tensor(FEATURE_WIDTHS))
        # ParT's 1x1 convolutions over the pair map, written as Linear layers on the last axis
        self.mlp = nn.Sequential(nn.Linear(4, hidden), nn.GELU(), nn.Linear(hidden, n_heads))
        # zero output at initialisation: a fresh model is exactly the plain transformer, and
        # the interaction term is switched on by training rather than injected as noise
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        # The diagonal's features are a zero sentinel, not kinematics (ΔR = 0 has no
        # logarithm), so the MLP never sees it; each head learns its own self-pair bias.
        self.self_bias = nn.Parameter(torch.zeros(n_heads))

    def forward(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """features: (batch, t, t, 4) from pair_features; valid: (batch, t) bool, True = real
        track. Returns (batch, n_heads, t, t); pairs with a padding track are 0."""
        batch, n_tracks = valid.shape
        both = valid[:, :, None] & valid[:, None, :]
        # the MLP runs only on real pairs with a < b: the features are symmetric, and much of
        # a padded batch is padding; its (pairs, hidden) activations are most of the cost
        jet, first, second = torch.triu(both, diagonal=1).nonzero(as_tuple=True)
        upper = features[jet, first, second]
        per_pair = self.mlp((upper - self.centre) / self.width)
        bias = per_pair.new_zeros(batch, self.n_heads, n_tracks, n_tracks)
        bias[jet, :, first, second] = per_pair
        bias[jet, :, second, first] = per_pair
        diagonal = torch.arange(n_tracks, device=valid.device)
        bias[:, :, diagonal, diagonal] = self.self_bias.to(bias.dtype)[:, None] * valid[:, None]
        return bias
