"""The transformer's pairwise attention bias (Particle Transformer's interaction terms)."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from jettag import config as cfg
from jettag.io.model_inputs import input_spec, read_model_inputs
from jettag.models.registry import build_model
from jettag.training.checkpoint import load_trained_model
from jettag.training.loop import train_model


def _transformer(config, pairwise: bool, **training):
    model = cfg.model_config(config, "dips")
    return dataclasses.replace(
        model,
        architecture="transformer",
        transformer=dataclasses.replace(
            model.transformer, embed_dim=16, num_heads=2, num_layers=2, pairwise_features=pairwise
        ),
        training=dataclasses.replace(model.training, **training),
    )


def _inputs(prepared, n=64):
    spec = input_spec(prepared)
    arrays = read_model_inputs(prepared / "test.h5", spec, max_jets=n)
    tensors = [torch.from_numpy(arrays[k]) for k in ("tracks", "valid", "jets")]
    return spec, arrays, tensors


def test_kinematics_are_recovered_from_the_normalised_inputs(config, prepared):
    spec, _, (tracks, valid, jets) = _inputs(prepared)
    model = build_model(_transformer(config, True), len(spec.track_norms), len(spec.jet_norms),
                        3, (spec.track_norms, spec.jet_norms))  # fmt: skip
    kinematics = model.pair_kinematics(tracks, jets)
    # the same quantities from the canonical tables, GeV and radians
    with h5py.File(prepared / "test.h5") as f:
        table, jet_table = f["tracks"][:64], f["jets"][:64]
    mask = valid.numpy()
    expected_pt = table["pt"][mask]
    if "pt" not in spec.jet_names:  # without the jet pT the model works in units of it
        expected_pt = (table["pt"] / jet_table["pt"][:, None])[mask]
    np.testing.assert_allclose(kinematics[..., 0].numpy()[mask], expected_pt, rtol=2e-4)
    np.testing.assert_allclose(kinematics[..., 1].numpy()[mask], table["deta"][mask], atol=2e-5)
    np.testing.assert_allclose(kinematics[..., 2].numpy()[mask], table["dphi"][mask], atol=2e-5)


def test_a_fresh_pairwise_model_is_the_plain_transformer_and_stays_a_set_function(config, prepared):
    spec, _, (tracks, valid, jets) = _inputs(prepared)
    sizes = (len(spec.track_norms), len(spec.jet_norms), 3)
    torch.manual_seed(0)
    plain = build_model(_transformer(config, False), *sizes).eval()
    torch.manual_seed(0)
    pairwise = build_model(
        _transformer(config, True), *sizes, (spec.track_norms, spec.jet_norms)
    ).eval()
    missing = pairwise.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith(("pairwise_bias.", "pair_kinematics.")) for k in missing)
    # the bias MLP starts at zero: the same outputs as the plain transformer
    torch.testing.assert_close(pairwise(tracks, valid, jets), plain(tracks, valid, jets))
    with torch.no_grad():  # a bias that is not zero changes them, and keeps invariance
        pairwise.pairwise_bias.mlp[-1].bias.fill_(0.5)
        pairwise.pairwise_bias.mlp[-1].weight.normal_(0.0, 0.5)
    out = pairwise(tracks, valid, jets)
    assert not torch.allclose(out, plain(tracks, valid, jets), atol=1e-4)
    perm = torch.randperm(tracks.shape[1], generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(pairwise(tracks[:, perm], valid[:, perm], jets), out,
                               rtol=1e-4, atol=1e-5)  # fmt: skip


def test_pairwise_transformer_trains_and_reloads(tmp_path, config, prepared):
    model = _transformer(config, True, epochs=3)
    history = train_model("part", model, prepared, tmp_path, seed=1)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    loaded, spec = load_trained_model(tmp_path / "best.pt")
    assert loaded.pairwise_bias is not None
    weights = loaded.pairwise_bias.mlp[-1].weight
    assert weights.abs().sum() > 0  # trained away from its zero start
    # the checkpoint carries where the kinematics sit and how they were normalised
    norms = {n.name: n for n in spec.track_norms}
    expected = [norms[name].mean for name in ("ptfrac", "deta", "dphi")]
    torch.testing.assert_close(loaded.pair_kinematics.mean, torch.tensor(expected))
    _, _, (tracks, valid, jets) = _inputs(prepared)
    assert torch.isfinite(loaded(tracks, valid, jets)).all()


def test_pairwise_features_need_the_kinematic_inputs(config, prepared):
    spec = input_spec(prepared)
    kept = [n for n in spec.track_norms if n.name != "deta"]
    with pytest.raises(ValueError, match=r"\['deta'\] are not among"):
        build_model(_transformer(config, True), len(kept), len(spec.jet_norms), 3,
                    (kept, spec.jet_norms))  # fmt: skip
