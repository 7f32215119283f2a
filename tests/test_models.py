"""Deep Sets invariances and the IP3D-like baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jettag import config as cfg
from jettag.models.registry import build_model
from tests.conftest import minimal_config

ARCHITECTURES = ["deepsets", "transformer"]


def _model(normalisation="none", architecture="deepsets", origin_weight=0.0):
    raw = minimal_config()
    raw["models"]["dips"]["architecture"] = architecture
    raw["models"]["dips"].setdefault("training", {})["track_origin_weight"] = origin_weight
    raw["models"]["dips"]["deepsets"]["normalisation"] = normalisation
    raw["models"]["dips"]["transformer"] = {"embed_dim": 16, "num_heads": 2, "num_layers": 2}
    model_config = cfg.model_config(cfg.validate_config(raw), "dips")
    torch.manual_seed(0)
    return build_model(model_config, n_track_features=5, n_jet_features=2, n_classes=3).eval()


def _batch(batch=6, max_tracks=8):
    g = torch.Generator().manual_seed(1)
    tracks = torch.randn(batch, max_tracks, 5, generator=g)
    n = torch.tensor([0, 1, 3, 8, 5, 2])
    valid = torch.arange(max_tracks)[None, :] < n[:, None]
    tracks[~valid] = 0.0
    return tracks, valid, torch.randn(batch, 2, generator=g)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_permutation_invariance(architecture):
    model = _model(architecture=architecture)
    tracks, valid, jets = _batch()
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(4))
    out = model(tracks, valid, jets)
    out_perm = model(tracks[:, perm], valid[:, perm], jets)
    torch.testing.assert_close(out, out_perm, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("architecture", "normalisation"),
    [("deepsets", "none"), ("deepsets", "layer"), ("deepsets", "batch"), ("transformer", "none")],
)
def test_padding_invariance_and_empty_jets(architecture, normalisation):
    model = _model(normalisation, architecture)
    tracks, valid, jets = _batch()
    padded_tracks = torch.cat([tracks, 99.0 * torch.ones(6, 4, 5)], dim=1)  # garbage padding
    padded_valid = torch.cat([valid, torch.zeros(6, 4, dtype=torch.bool)], dim=1)
    out = model(tracks, valid, jets)
    torch.testing.assert_close(out, model(padded_tracks, padded_valid, jets), rtol=1e-5, atol=1e-6)
    assert torch.isfinite(out[0]).all()  # the zero-track jet


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_zero_track_jets_have_finite_gradients(architecture):
    model = _model(architecture=architecture).train()
    tracks, valid, jets = _batch()
    valid[:] = False
    out = model(tracks, valid, jets)
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_track_origin_head_is_per_track_and_equivariant(architecture):
    model = _model(architecture=architecture, origin_weight=0.5)
    tracks, valid, jets = _batch()
    logits, origin_logits, _ = model.forward_with_tracks(tracks, valid, jets)
    torch.testing.assert_close(logits, model(tracks, valid, jets))
    assert origin_logits.shape == (int(valid.sum()), 8)
    assert torch.isfinite(origin_logits).all()
    # permuting the tracks permutes the track logits the same way, jet logits unchanged
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(4))
    logits_p, origin_p, _ = model.forward_with_tracks(tracks[:, perm], valid[:, perm], jets)
    torch.testing.assert_close(logits_p, logits, rtol=1e-5, atol=1e-6)
    slot = torch.arange(8).expand(6, -1)
    order_p = slot[:, perm][valid[:, perm]] + 100 * valid[:, perm].nonzero()[:, 0]
    order = slot[valid] + 100 * valid.nonzero()[:, 0]
    lookup = {int(k): i for i, k in enumerate(order)}
    torch.testing.assert_close(
        origin_p, origin_logits[[lookup[int(k)] for k in order_p]], rtol=1e-5, atol=1e-6
    )
    with pytest.raises(RuntimeError, match="track-origin"):
        _model(architecture=architecture).forward_with_tracks(tracks, valid, jets)


def test_pair_head_is_symmetric_equivariant_and_matches_its_formula():
    raw = minimal_config()
    raw["models"]["dips"]["architecture"] = "transformer"
    raw["models"]["dips"].setdefault("training", {})["track_vertex_weight"] = 1.5
    raw["models"]["dips"]["transformer"] = {"embed_dim": 16, "num_heads": 2, "num_layers": 2}
    torch.manual_seed(0)
    model = build_model(cfg.model_config(cfg.validate_config(raw), "dips"), 5, 2, 3).eval()
    tracks, valid, jets = _batch()
    _, _, pair_logits = model.forward_with_tracks(tracks, valid, jets)
    n_tracks = valid.sum(dim=1)
    assert pair_logits.shape == (int((n_tracks * (n_tracks - 1) // 2).sum()),)

    def by_pair(tracks, valid, slot_of):
        """{(jet, {track ids}): logit} with the tracks named by their original slot."""
        _, _, logits = model.forward_with_tracks(tracks, valid, jets)
        out, k = {}, 0
        for jet in range(valid.shape[0]):
            slots = valid[jet].nonzero()[:, 0].tolist()
            for i, a in enumerate(slots):
                for b in slots[i + 1 :]:
                    out[(jet, frozenset((slot_of[a], slot_of[b])))] = logits[k]
                    k += 1
        assert k == logits.shape[0]
        return out

    plain = by_pair(tracks, valid, list(range(8)))
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(4))
    permuted = by_pair(tracks[:, perm], valid[:, perm], perm.tolist())
    assert plain.keys() == permuted.keys()
    for key, logit in plain.items():
        torch.testing.assert_close(permuted[key], logit, rtol=1e-5, atol=1e-6)

    # one pair by hand from the head's weights: s(a) + s(b) + u(a) u(b) + j(jet), then out
    x, mask, _ = model._encode(tracks, valid, jets)
    pooled = model.pooling(x, mask)
    head, jet, a, b = model.pair_head, 3, 2, 6
    w, bias = head.track.weight, head.track.bias
    h = w.shape[0] // 2
    s = [x[jet, t] @ w[:h].T + bias[:h] for t in (a, b)]
    u = [x[jet, t] @ w[h:].T + bias[h:] for t in (a, b)]
    hidden = torch.relu(s[0] + s[1] + u[0] * u[1] + pooled[jet] @ head.jet.weight.T)
    expected = hidden @ head.out.weight[0] + head.out.bias[0]
    torch.testing.assert_close(plain[(jet, frozenset((a, b)))], expected, rtol=1e-5, atol=1e-5)


def test_ip3d_baseline_separates_b_from_light(prepared):
    import h5py

    from jettag.models import ip3d

    with h5py.File(prepared / "train.h5") as f:
        jets, tracks = f["jets"][:], f["tracks"][:]
    templates = ip3d.fit_templates(tracks, jets["flavour_label"], ["b", "c", "light"],
                                   [-20, -5, -2, 0, 2, 5, 20], [-10, 0, 10])  # fmt: skip
    p = ip3d.score(templates, tracks)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-9)
    labels = jets["flavour_label"]
    assert p[labels == 0, 0].mean() > p[labels == 2, 0].mean() + 0.1
    roundtrip = ip3d.Templates.from_dict(templates.to_dict())
    np.testing.assert_allclose(ip3d.score(roundtrip, tracks), p)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_batched_prediction_keeps_jet_order(monkeypatch, architecture):
    """probabilities() sorts jets by multiplicity into batches; outputs come back in input order."""
    import jettag.evaluation.predict as predict

    model = _model(architecture=architecture)
    g = torch.Generator().manual_seed(3)
    n_jets, max_tracks = 50, 8
    n = torch.randint(0, max_tracks + 1, (n_jets,), generator=g)
    valid = torch.arange(max_tracks)[None, :] < n[:, None]
    tracks = torch.randn(n_jets, max_tracks, 5, generator=g) * valid[..., None]
    jets = torch.randn(n_jets, 2, generator=g)
    with torch.no_grad():
        one_by_one = torch.cat(
            [torch.softmax(model(tracks[i : i + 1], valid[i : i + 1], jets[i : i + 1]), 1)
             for i in range(n_jets)]
        ).numpy()  # fmt: skip
    monkeypatch.setattr(predict, "PREDICT_BATCH", 7)  # several batches, a short last one
    got = predict.probabilities(model, tracks.numpy(), valid.numpy(), jets.numpy())
    assert got.shape == (n_jets, 3)
    np.testing.assert_allclose(got, one_by_one, rtol=1e-5, atol=1e-6)
