"""Rotations about the jet axis (training/augment.py) on jets made and prepared by the code."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from jettag import config as cfg
from jettag.features.prepare import prepare_dataset
from jettag.io.model_inputs import InputSpec, input_spec
from jettag.training.augment import AxisRotation
from jettag.training.data import load_split
from jettag.training.loop import train_model
from jettag.transforms import Normalisation

SD0, SZ0 = "IP3D_signed_d0_significance", "IP3D_signed_z0_significance"
MOVED = ("deta", "dphi", "d0", "z0SinTheta")  # what a rotation may change


def _physical(tracks: torch.Tensor, spec: InputSpec, name: str) -> torch.Tensor:
    """The transformed (before normalisation) value of one input, in float64."""
    k = spec.track_names.index(name)
    norm = spec.track_norms[k]
    return tracks[..., k].double() * norm.std + norm.mean


def _lifetime_signs(tracks: torch.Tensor, spec: InputSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """sign(sin(-dphi) d0) and sign(-deta z0 sin(theta)) recomputed from the inputs."""
    deta, dphi = _physical(tracks, spec, "deta"), _physical(tracks, spec, "dphi")
    d0, z0 = _physical(tracks, spec, "d0"), _physical(tracks, spec, "z0SinTheta")
    return torch.sign(torch.sin(-dphi) * d0), torch.sign(-deta * z0)


@pytest.fixture(scope="module")
def train(prepared):
    """(spec, the training split's tensors) with every prepared input."""
    spec = input_spec(prepared)
    return spec, load_split(prepared / "train.h5", spec)


def _rotated(spec, data, seed=0):
    return AxisRotation(spec)(data.tracks, data.valid, torch.Generator().manual_seed(seed))


def test_rotated_jets_are_possible_jets(prepared, train):
    spec, data = train
    valid, names = data.valid, spec.track_names
    rotated = _rotated(spec, data)
    assert (rotated[~valid] == 0).all()  # padding stays zero

    # every rotation-invariant input (sd0, sz0, dR, pT fraction, charge, hits) is kept exactly
    kept = [k for k, n in enumerate(names) if n not in MOVED]
    assert {SD0, SZ0, "dr", "ptfrac", "charge", "numberOfPixelHits"} <= {names[k] for k in kept}
    assert torch.equal(rotated[..., kept], data.tracks[..., kept])
    # a rotation: dR (from deta, dphi) and |d0|, |z0 sin(theta)| kept, the direction changed
    assert torch.isfinite(rotated).all()
    dr = torch.hypot(_physical(data.tracks, spec, "deta"), _physical(data.tracks, spec, "dphi"))
    dr_rot = torch.hypot(_physical(rotated, spec, "deta"), _physical(rotated, spec, "dphi"))
    torch.testing.assert_close(dr_rot[valid], dr[valid], rtol=1e-5, atol=1e-7)
    for name in ("d0", "z0SinTheta"):
        before, after = _physical(data.tracks, spec, name), _physical(rotated, spec, name)
        torch.testing.assert_close(after.abs()[valid], before.abs()[valid], rtol=1e-6, atol=1e-7)
        flipped = (torch.sign(after) != torch.sign(before)) & valid
        assert 0.2 < flipped.sum() / valid.sum() < 0.8  # re-signed: about half of them
    assert not torch.allclose(
        rotated[..., names.index("dphi")], data.tracks[..., names.index("dphi")]
    )

    # the lifetime signs recomputed from the rotated inputs are those of sd0, sz0 ...
    sd0, sz0 = _physical(rotated, spec, SD0), _physical(rotated, spec, SZ0)
    d0_sign, z0_sign = _lifetime_signs(rotated, spec)
    for recomputed, significance in ((d0_sign, sd0), (z0_sign, sz0)):
        checked = valid & (recomputed != 0) & (significance != 0)
        assert checked.sum() == valid.sum()  # no exact zero in this sample: every track checked
        assert torch.equal(recomputed[checked], torch.sign(significance[checked]))
    # ... and those of the physical significances in the file's tracks table (same rows)
    with h5py.File(prepared / "train.h5") as f:
        table = f["tracks"][: len(data)]
    assert np.array_equal(table["valid"], valid.numpy())
    for recomputed, field in ((d0_sign, SD0), (z0_sign, SZ0)):
        assert np.array_equal(recomputed[valid].numpy(), np.sign(table[field][valid]))
    # without re-signing (the old augmentation) a rotated jet was not a possible jet
    stale = rotated.clone()
    for name in ("d0", "z0SinTheta"):
        stale[..., names.index(name)] = data.tracks[..., names.index(name)]
    stale_d0, _ = _lifetime_signs(stale, spec)
    assert (stale_d0[valid] != torch.sign(sd0[valid])).float().mean() > 0.2


def test_rotation_by_zero_is_the_identity_and_back_again(train):
    spec, data = train
    rotation = AxisRotation(spec)
    zero = torch.zeros(len(data))
    assert torch.equal(rotation.rotate(data.tracks, data.valid, zero), data.tracks)
    # rotating back undoes a rotation, impact-parameter signs included
    angle = 2 * torch.pi * torch.rand(len(data), generator=torch.Generator().manual_seed(1))
    there = rotation.rotate(data.tracks, data.valid, angle)
    back = rotation.rotate(there, data.valid, -angle)
    torch.testing.assert_close(back, data.tracks, rtol=1e-5, atol=1e-5)
    for name in ("d0", "z0SinTheta"):
        before, after = _physical(data.tracks, spec, name), _physical(back, spec, name)
        assert torch.equal(torch.sign(after), torch.sign(before)), name


def test_without_significances_the_geometric_lifetime_sign_is_kept(prepared, train):
    """A model reading d0, z0 sin(theta) but not sd0, sz0: the signs its inputs imply survive."""
    full_spec, full = train
    names = [n for n in full_spec.track_names if n not in (SD0, SZ0)]
    spec = input_spec(prepared, track_inputs=names)
    data = load_split(prepared / "train.h5", spec)
    rotated = _rotated(spec, data)
    valid = data.valid
    for before, after in zip(
        _lifetime_signs(data.tracks, spec), _lifetime_signs(rotated, spec), strict=True
    ):
        assert (after[valid] != 0).all()
        assert torch.equal(after[valid], before[valid])
    # the same as taking the sign from sd0, sz0 on this sample (which obeys the convention)
    columns = [full_spec.track_names.index(n) for n in names]
    torch.testing.assert_close(_rotated(full_spec, full)[..., columns], rotated)
    # a significance stored without its sign ('abs') is no lifetime sign either
    unsigned = dataclasses.replace(
        full_spec,
        track_norms=tuple(
            dataclasses.replace(n, transform="abs") if n.name in (SD0, SZ0) else n
            for n in full_spec.track_norms
        ),
    )
    assert torch.equal(_rotated(unsigned, full)[..., columns], _rotated(spec, data))


def test_unsigned_impact_parameters_are_left_alone(train):
    spec, data = train
    unsigned = dataclasses.replace(
        spec,
        track_norms=tuple(
            dataclasses.replace(n, transform="abs") if n.name in ("d0", "z0SinTheta") else n
            for n in spec.track_norms
        ),
    )
    rotated = _rotated(unsigned, data)
    moved = [spec.track_names.index(n) for n in ("deta", "dphi")]
    kept = [k for k in range(len(spec.track_names)) if k not in moved]
    assert torch.equal(rotated[..., kept], data.tracks[..., kept])


def test_signed_log_impact_parameters(tmp_path_factory, config, ingested):
    """d0 and z0 sin(theta) stored as signed_log are re-signed the same way."""
    prepare = cfg.section(cfg.PrepareConfig, config["prepare"])
    inputs = tuple(
        dataclasses.replace(i, transform="signed_log") if i.name in ("d0", "z0SinTheta") else i
        for i in prepare.track_inputs
    )
    out = tmp_path_factory.mktemp("prepared_signed_log") / "ttbar"
    prepare_dataset(ingested, dataclasses.replace(prepare, track_inputs=inputs), 3, out)
    spec = input_spec(out)
    assert {n.name: n.transform for n in spec.track_norms}["d0"] == "signed_log"
    data = load_split(out / "train.h5", spec)
    rotated, valid = _rotated(spec, data), data.valid
    d0_sign, z0_sign = _lifetime_signs(rotated, spec)
    assert torch.equal(d0_sign[valid], torch.sign(_physical(rotated, spec, SD0))[valid])
    assert torch.equal(z0_sign[valid], torch.sign(_physical(rotated, spec, SZ0))[valid])
    for name in ("d0", "z0SinTheta"):
        before, after = _physical(data.tracks, spec, name), _physical(rotated, spec, name)
        torch.testing.assert_close(after.abs()[valid], before.abs()[valid], rtol=1e-6, atol=1e-7)
    assert (rotated[~valid] == 0).all()


def test_inputs_that_cannot_follow_a_rotation_are_refused(train):
    spec, _ = train
    with_phi = dataclasses.replace(
        spec, track_norms=(*spec.track_norms, Normalisation("phi", "none", 0.0, 1.0))
    )
    with pytest.raises(ValueError, match=r"absolute track directions \['phi'\]"):
        AxisRotation(with_phi)
    without_dphi = dataclasses.replace(
        spec, track_norms=tuple(n for n in spec.track_norms if n.name != "dphi")
    )
    with pytest.raises(ValueError, match=r"needs track inputs \['dphi'\]"):
        AxisRotation(without_dphi)


def test_dips_trains_with_rotation(tmp_path, config, prepared):
    model = cfg.model_config(config, "dips")
    training = dataclasses.replace(model.training, epochs=2, rotate_about_jet_axis=True)
    history = train_model(
        "dips", dataclasses.replace(model, training=training), prepared, tmp_path, seed=4
    )
    assert len(history) == 2
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
