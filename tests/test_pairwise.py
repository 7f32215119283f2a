"""ParT pair features and the attention bias built from them, against a float64 brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from jettag.models.pairwise import (
    FEATURE_CENTRES,
    FEATURE_WIDTHS,
    PION_MASS_GEV,
    PairwiseBias,
    pair_features,
)

# Both sides start from the same float32 inputs, so the difference is float32 arithmetic in
# pair_features alone: each quantity is a short chain (~10-20) of operations rounding at
# 6e-8 relative with no cancellation (Δη, Δφ of close tracks are exact subtractions), i.e.
# ~1e-6 relative, which is ~1e-6 absolute on a logarithm. 1e-5 leaves a factor 10.
LOG_ATOL = 1e-5


def _four_vector(pt: float, eta: float, phi: float) -> np.ndarray:
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    energy = math.sqrt(px * px + py * py + pz * pz + PION_MASS_GEV**2)
    return np.array([px, py, pz, energy])


def _reference(kinematics: torch.Tensor, valid: torch.Tensor) -> np.ndarray:
    """Pair by pair in float64 from four-vectors: (batch, t, t, 4)."""
    kin = kinematics.double().numpy()
    ok = valid.numpy()
    batch, tracks = ok.shape
    out = np.zeros((batch, tracks, tracks, 4))
    for jet in range(batch):
        vectors = [_four_vector(*kin[jet, a]) if ok[jet, a] else None for a in range(tracks)]
        for a in range(tracks):
            for b in range(tracks):
                if a == b or not (ok[jet, a] and ok[jet, b]):
                    continue
                va, vb = vectors[a], vectors[b]
                rapidity = [0.5 * math.log((v[3] + v[2]) / (v[3] - v[2])) for v in (va, vb)]
                # the angle between the transverse momenta: no wrapping convention involved
                dphi = math.atan2(va[0] * vb[1] - va[1] * vb[0], va[0] * vb[0] + va[1] * vb[1])
                delta_r = math.hypot(rapidity[0] - rapidity[1], dphi)
                pt_a, pt_b = kin[jet, a, 0], kin[jet, b, 0]
                total = va + vb
                m2 = total[3] ** 2 - total[0] ** 2 - total[1] ** 2 - total[2] ** 2
                values = (
                    delta_r,
                    min(pt_a, pt_b) * delta_r,
                    min(pt_a, pt_b) / (pt_a + pt_b),
                    m2,
                )
                out[jet, a, b] = [math.log(max(v, 1e-8)) for v in values]
    return out


def _random_jets(
    batch: int = 24, tracks: int = 12, seed: int = 0, max_pt: float = 500.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """kinematics (batch, tracks, 3) and valid (batch, tracks); garbage in the padding."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randint(0, tracks + 1, (batch,), generator=g)
    n[:4] = torch.tensor([0, 1, 2, tracks])
    valid = torch.arange(tracks)[None, :] < n[:, None]
    log_pt = torch.empty(batch, tracks).uniform_(math.log(0.5), math.log(max_pt), generator=g)
    eta = torch.empty(batch, tracks).uniform_(-0.5, 0.5, generator=g)
    phi = torch.empty(batch, tracks).uniform_(-0.5, 0.5, generator=g)
    # a few jets sit across ±π, as if the axis were misplaced: their Δφ must wrap
    phi[-4:] = torch.remainder(phi[-4:] + 2 * math.pi, 2 * math.pi) - math.pi
    kinematics = torch.stack((log_pt.exp(), eta, phi), dim=-1)
    kinematics[~valid] = torch.tensor([float("nan"), 1e30, -float("inf")])
    # shuffle so that padding is not always at the end
    order = torch.argsort(torch.rand(batch, tracks, generator=g), dim=1)
    return kinematics.gather(1, order[..., None].expand(-1, -1, 3)), valid.gather(1, order)


def test_matches_float64_brute_force():
    kinematics, valid = _random_jets()
    features = pair_features(kinematics, valid)
    assert features.dtype == torch.float32
    assert features.shape == (*valid.shape, valid.shape[1], 4)
    np.testing.assert_allclose(
        features.numpy(), _reference(kinematics, valid), rtol=0, atol=LOG_ATOL
    )


def test_matches_brute_force_up_to_3_tev():
    kinematics, valid = _random_jets(batch=8, seed=3, max_pt=3000.0)
    features = pair_features(kinematics, valid)
    np.testing.assert_allclose(
        features.numpy(), _reference(kinematics, valid), rtol=0, atol=LOG_ATOL
    )


def test_symmetric_and_zero_on_padding_and_diagonal():
    kinematics, valid = _random_jets(seed=1)
    features = pair_features(kinematics, valid)
    # every operation is symmetric in (a, b) or applied to |Δ|: bit-exact
    assert torch.equal(features, features.transpose(1, 2))
    assert torch.isfinite(features).all()
    diagonal = torch.arange(valid.shape[1])
    assert (features[:, diagonal, diagonal] == 0).all()
    padding_pair = ~(valid[:, :, None] & valid[:, None, :])
    assert (features[padding_pair] == 0).all()
    real_pair = ~padding_pair & ~torch.eye(valid.shape[1], dtype=torch.bool)
    # ln m² >= ln(4 m_π²) and z <= 1/2 can never be 0 for a real pair
    assert (features[real_pair][:, 2:] != 0).all()


@pytest.mark.parametrize("tracks", [0, 1, 5])
def test_jets_without_pairs_are_finite_zeros(tracks):
    valid = torch.zeros(3, tracks, dtype=torch.bool)
    valid[1, :1] = True  # one 1-track jet; the others have none
    kinematics = torch.full((3, tracks, 3), float("nan"))
    kinematics[1, :1] = torch.tensor([20.0, 0.1, -0.2])
    features = pair_features(kinematics, valid)
    assert features.shape == (3, tracks, tracks, 4)
    assert (features == 0).all()
    bias = PairwiseBias(n_heads=2)
    with torch.no_grad():
        bias.self_bias.fill_(0.5)
        out = bias(features, valid)
    assert out.shape == (3, 2, tracks, tracks)
    assert torch.isfinite(out).all()
    # only the 1-track jet's single self-pair survives
    assert out.abs().sum() == (2 * 0.5 if tracks else 0.0)


def _collinear_pair(pt_a: float, pt_b: float, delta_r: float, phi: float) -> torch.Tensor:
    # split the opening between η and φ; ΔR as given up to O(m²/pT²)
    step = delta_r / math.sqrt(2.0)
    phi_b = math.remainder(phi + step, 2 * math.pi)
    return torch.tensor([[[pt_a, 0.2, phi], [pt_b, 0.2 + step, phi_b]]], dtype=torch.float32)


@pytest.mark.parametrize("delta_r", [1e-2, 1e-3, 1e-4])
@pytest.mark.parametrize("phi", [0.1, math.pi - 3e-5])
@pytest.mark.parametrize(("pt_a", "pt_b"), [(1000.0, 1000.0), (3000.0, 2500.0), (1000.0, 0.7)])
def test_collinear_high_pt_mass(pt_a, pt_b, delta_r, phi):
    """m² of nearly collinear TeV tracks: the task asks for 1e-3 relative; float32 rounding of
    a cancellation-free sum gives ~1e-6 (4e-7 seen), so 1e-5 is asserted. phi near π puts the
    pair across ±π."""
    kinematics = _collinear_pair(pt_a, pt_b, delta_r, phi)
    valid = torch.ones(1, 2, dtype=torch.bool)
    m2 = pair_features(kinematics, valid)[0, 0, 1, 3].double().exp().item()
    m2_reference = math.exp(_reference(kinematics, valid)[0, 0, 1, 3])
    assert m2 == pytest.approx(m2_reference, rel=1e-5)


def test_naive_float32_mass_fails_the_collinear_check():
    """The check above can tell: (E_a + E_b)² - |p_a + p_b|² in float32 is off by far more."""
    kinematics = _collinear_pair(1000.0, 1000.0, 1e-3, 0.1)
    valid = torch.ones(1, 2, dtype=torch.bool)
    pt, eta, phi = kinematics[0].unbind(-1)
    p = torch.stack((pt * phi.cos(), pt * phi.sin(), pt * eta.sinh()), dim=-1)
    energy = torch.sqrt((p * p).sum(-1) + PION_MASS_GEV**2)
    naive = energy.sum() ** 2 - (p.sum(0) ** 2).sum()
    m2_reference = math.exp(_reference(kinematics, valid)[0, 0, 1, 3])
    assert abs(naive.item() / m2_reference - 1) > 1e-2


def test_delta_phi_wraps_across_pi():
    # the same pair, once around φ = 0 and once straddling ±π
    inside = torch.tensor([[[30.0, 0.0, 0.01], [8.0, 0.05, -0.02]]])
    across = torch.tensor([[[30.0, 0.0, math.pi - 0.01], [8.0, 0.05, -math.pi + 0.02]]])
    valid = torch.ones(1, 2, dtype=torch.bool)
    f_inside, f_across = pair_features(inside, valid), pair_features(across, valid)
    # Δφ = 0.03 both times, not 2π - 0.03; the inputs' own float32 rounding near π (1.2e-7
    # in 0.03) is the only difference
    assert math.exp(f_across[0, 0, 1, 0].item()) == pytest.approx(math.hypot(0.05, 0.03), rel=1e-3)
    torch.testing.assert_close(f_across, f_inside, rtol=0, atol=1e-5)
    np.testing.assert_allclose(f_across.numpy(), _reference(across, valid), rtol=0, atol=LOG_ATOL)


def _toy_jets(batch: int = 2000, tracks: int = 30, seed: int = 5):
    """Rough R = 0.4 jets of 20-1000 GeV: steeply falling track pT (0.5-500 GeV), softer
    tracks further from the axis."""
    g = torch.Generator().manual_seed(seed)
    jet_pt = torch.empty(batch).uniform_(math.log(20), math.log(1000), generator=g).exp()
    n = torch.randint(2, tracks + 1, (batch,), generator=g)
    valid = torch.arange(tracks)[None, :] < n[:, None]
    share = torch.empty(batch, tracks).exponential_(generator=g).square() * valid
    pt = (0.6 * jet_pt[:, None] * share / share.sum(1, keepdim=True)).clamp(0.5, 500.0)
    radius = torch.empty(batch, tracks).exponential_(generator=g)
    radius = (0.08 * radius * (10.0 / pt).clamp(max=3.0).sqrt()).clamp(max=0.4)
    angle = torch.empty(batch, tracks).uniform_(-math.pi, math.pi, generator=g)
    kinematics = torch.stack((pt, radius * angle.cos(), radius * angle.sin()), dim=-1)
    return kinematics, valid


def test_standardisation_gives_order_one_inputs():
    kinematics, valid = _toy_jets()
    features = pair_features(kinematics, valid)
    real_pair = valid[:, :, None] & valid[:, None, :] & ~torch.eye(valid.shape[1], dtype=bool)
    scaled = (features[real_pair] - torch.tensor(FEATURE_CENTRES)) / torch.tensor(FEATURE_WIDTHS)
    assert (scaled.mean(0).abs() < 0.75).all(), scaled.mean(0)
    assert ((scaled.std(0) > 0.4) & (scaled.std(0) < 2.0)).all(), scaled.std(0)


def _features_and_valid(seed: int = 2):
    kinematics, valid = _random_jets(batch=10, tracks=9, seed=seed)
    return pair_features(kinematics, valid), valid


def _randomise(module: PairwiseBias, seed: int = 0) -> PairwiseBias:
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0.0, 0.5)
    return module


def test_bias_shape_and_padding():
    features, valid = _features_and_valid()
    bias = _randomise(PairwiseBias(n_heads=4, hidden=16))(features, valid)
    assert bias.shape == (10, 4, 9, 9)
    assert bias.dtype == torch.float32
    padding_pair = ~(valid[:, :, None] & valid[:, None, :])
    assert (bias.permute(0, 2, 3, 1)[padding_pair] == 0).all()
    real_pair = ~padding_pair & ~torch.eye(9, dtype=torch.bool)
    assert (bias.permute(0, 2, 3, 1)[real_pair] != 0).all()
    # symmetric features give a symmetric bias
    assert torch.equal(bias, bias.transpose(2, 3))


def test_bias_zero_at_initialisation():
    features, valid = _features_and_valid()
    torch.manual_seed(0)
    assert (PairwiseBias(n_heads=4)(features, valid) == 0).all()


def test_bias_learns_after_one_step():
    features, valid = _features_and_valid()
    torch.manual_seed(0)
    module = PairwiseBias(n_heads=3)
    target = torch.randn(10, 3, 9, 9, generator=torch.Generator().manual_seed(7))
    optimiser = torch.optim.SGD(module.parameters(), lr=0.1)

    def step() -> None:
        optimiser.zero_grad()
        ((module(features, valid) - target) ** 2).sum().backward()
        optimiser.step()

    step()
    last = module.mlp[-1]
    assert (last.weight != 0).any() and (last.bias != 0).any()
    assert (module.self_bias != 0).all()
    # the zero last layer blocked the first layer's gradient at step 0, but not any more
    first_before = module.mlp[0].weight.detach().clone()
    step()
    assert module.mlp[0].weight.grad.abs().sum() > 0
    assert not torch.equal(module.mlp[0].weight, first_before)
    out = module(features, valid)
    padding_pair = ~(valid[:, :, None] & valid[:, None, :])
    assert (out.permute(0, 2, 3, 1)[padding_pair] == 0).all()
    assert (out.permute(0, 2, 3, 1)[~padding_pair] != 0).any()


def test_permutation_equivariance():
    kinematics, valid = _random_jets(batch=10, tracks=9, seed=4)
    module = _randomise(PairwiseBias(n_heads=4, hidden=16)).eval()
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(9))
    features = pair_features(kinematics, valid)
    features_permuted = pair_features(kinematics[:, perm], valid[:, perm])
    # pair by pair arithmetic: permuting the tracks permutes the features exactly
    assert torch.equal(features_permuted, features[:, perm][:, :, perm])
    with torch.no_grad():
        bias = module(features, valid)
        bias_permuted = module(features_permuted, valid[:, perm])
    # the MLP sees the pairs in another order, so allow matmul's reassociation
    torch.testing.assert_close(bias_permuted, bias[:, :, perm][:, :, :, perm], rtol=0, atol=1e-6)


def test_no_gradient_recorded():
    kinematics, valid = _random_jets(batch=5, tracks=4)
    kinematics.requires_grad_(True)
    assert not pair_features(kinematics, valid).requires_grad
