"""The feature-transform study's input layer (training/network.py) on generated jets.

The network's first layer maps prepared inputs back to raw pT fraction and dR (and, when
asked, the IP significances), re-standardised on training jets or not at all; by default
there is no such layer and the model is today's, bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil

import h5py
import numpy as np
import pytest
import torch

from jettag import config as cfg
from jettag.config import InputTransformsConfig
from jettag.errors import ConfigError, TrainingInterruptedError
from jettag.evaluation.predict import network_probabilities
from jettag.io.history import read_history
from jettag.io.model_inputs import input_spec, read_model_inputs
from jettag.models.deepsets import DeepSets
from jettag.models.input_transforms import ColumnMap, InputTransform, column_plan
from jettag.models.registry import build_model
from jettag.training import loop
from jettag.training.checkpoint import load_checkpoint, load_trained_model
from jettag.training.loop import train_model
from jettag.training.network import build_network
from jettag.transforms import LOG_FLOOR, MeanVarianceAccumulator

LOGGED = ("ptfrac", "dr")
SIGNIFICANCES = ("IP3D_signed_d0_significance", "IP3D_signed_z0_significance")


def _model_config(config: dict, **transforms) -> cfg.ModelConfig:
    """The test config's DIPS, with training.input_transforms set when given."""
    model = cfg.model_config(config, "dips")
    if not transforms:
        return model
    training = dataclasses.replace(
        model.training, input_transforms=InputTransformsConfig(**transforms)
    )
    return dataclasses.replace(model, training=training)


def _raw_tracks(path, names) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The physical track values of a prepared split (the tables prepare transformed)."""
    with h5py.File(path, "r") as f:
        tracks = f["tracks"][:]
    return {n: tracks[n].astype(np.float64) for n in names}, tracks["valid"]


def test_the_inverse_gives_back_the_variables_before_prepare(prepared):
    spec = input_spec(prepared)
    config = InputTransformsConfig(log=False, log_inputs=LOGGED + SIGNIFICANCES)
    plan = column_plan(spec.track_norms, config)
    column_map = ColumnMap(len(spec.track_norms))
    column_map.set(plan)
    inputs = read_model_inputs(prepared / "test.h5", spec)
    raw, valid = _raw_tracks(prepared / "test.h5", LOGGED + SIGNIFICANCES)
    assert np.array_equal(valid, inputs["valid"])
    mapped = column_map.raw(torch.from_numpy(inputs["tracks"][inputs["valid"]])).numpy()
    for name in LOGGED + SIGNIFICANCES:
        k = spec.track_names.index(name)
        expected = raw[name][valid]
        if name in LOGGED:  # prepare floors exact zeros (dR of a one-track jet) before the log
            expected = np.maximum(expected, LOG_FLOOR)
        np.testing.assert_allclose(mapped[:, k], expected, rtol=2e-4, atol=1e-6, err_msg=name)
        assert np.ptp(expected) > 0.1 * np.abs(expected).max()  # real spread, not a constant
    # the other columns are not touched: sd0's neighbours keep their prepared values
    untouched = [k for k, n in enumerate(spec.track_names) if n not in LOGGED + SIGNIFICANCES]
    assert not plan["changed"][untouched].any()


def test_padding_stays_finite_and_zero_in_the_changed_columns(prepared):
    spec = input_spec(prepared)
    layer = InputTransform(len(spec.track_norms), 0)
    plan = column_plan(spec.track_norms, InputTransformsConfig(log=False, normalise=False))
    layer.tracks.set(plan)
    inputs = read_model_inputs(prepared / "val.h5", spec, max_jets=50)
    tracks, valid = torch.from_numpy(inputs["tracks"]), torch.from_numpy(inputs["valid"])
    garbage = torch.where(valid[..., None], tracks, torch.full_like(tracks, 1e4))
    garbage.requires_grad_(True)
    dense, _, _ = layer(garbage, valid, None, dense=True)  # the export's path
    out, out_valid, _ = layer(garbage, valid, None)
    assert out_valid is valid and torch.isfinite(out).all() and (out[~valid] == 0).all()
    assert torch.equal(dense, out)
    out.sum().backward()  # saliency takes gradients through it: finite, none from padding
    assert torch.isfinite(garbage.grad).all() and (garbage.grad[~valid] == 0).all()
    assert (garbage.grad[valid][:, torch.from_numpy(plan["changed"])] != 0).any()


def test_the_default_builds_todays_network_bit_for_bit(config):
    explicit = _model_config(config, log=True, normalise=True)
    for model_config in (_model_config(config), explicit):
        torch.manual_seed(5)
        built = build_model(model_config, 15, 0, 3)
        torch.manual_seed(5)
        today = DeepSets(15, 0, 3, model_config.deepsets)
        assert type(built) is DeepSets
        state, reference = built.state_dict(), today.state_dict()
        assert state.keys() == reference.keys()
        assert all(torch.equal(state[k], reference[k]) for k in reference)
    # the layer passes unchanged columns of real tracks through exactly; padding comes out 0
    layer = InputTransform(4, 2)
    tracks, jets = 100 * torch.randn(3, 5, 4), torch.randn(3, 2)
    valid = torch.rand(3, 5, generator=torch.Generator().manual_seed(1)) > 0.5
    assert valid.any() and not valid.all()
    for dense in (False, True):
        out_tracks, _, out_jets = layer(tracks, valid, jets, dense=dense)
        assert torch.equal(out_tracks[valid], tracks[valid]) and torch.equal(out_jets, jets)
        assert (out_tracks[~valid] == 0).all()


def test_default_training_is_unchanged_by_the_explicit_default(prepared, config, tmp_path):
    runs = {}
    for name, model_config in (
        ("absent", _model_config(config)),
        ("explicit", _model_config(config, log=True, normalise=True)),
    ):
        train_model("dips", model_config, prepared, tmp_path / name, seed=2)
        runs[name] = load_checkpoint(tmp_path / name / "best.pt")["model_state"]
    assert runs["absent"].keys() == runs["explicit"].keys()
    assert all(torch.equal(runs["absent"][k], runs["explicit"][k]) for k in runs["absent"])


def test_the_refitted_normalisation_uses_training_jets_only(prepared, config, tmp_path):
    model_config = _model_config(config, log=False)
    spec = input_spec(prepared)
    model = build_network(model_config, spec, prepared)
    raw, valid = _raw_tracks(prepared / "train.h5", LOGGED)
    for name in LOGGED:
        k = spec.track_names.index(name)
        accumulator = MeanVarianceAccumulator()
        accumulator.update(np.maximum(raw[name][valid], LOG_FLOOR))
        mean, std = accumulator.result()
        assert model.inputs.tracks.mean[k].item() == pytest.approx(mean, rel=1e-4)
        assert model.inputs.tracks.std[k].item() == pytest.approx(std, rel=1e-4)
    # the rest keep prepare's normalisation: no change, no refit
    assert model.inputs.tracks.changed.sum().item() == len(LOGGED)
    # val and test play no part: spoil them and the fit is the same
    spoilt = tmp_path / "spoilt"
    shutil.copytree(prepared, spoilt)
    for split in ("val.h5", "test.h5"):
        with h5py.File(spoilt / split, "r+") as f:
            f["model_inputs/tracks"][...] = 3.0 * f["model_inputs/tracks"][...] + 1.0
    again = build_network(model_config, spec, spoilt)
    for key in ("mean", "std"):
        assert torch.equal(getattr(again.inputs.tracks, key), getattr(model.inputs.tracks, key))
    # and the network then sees the un-logged training inputs standardised
    inputs = read_model_inputs(prepared / "train.h5", spec)
    mapped, _, _ = model.inputs(
        torch.from_numpy(inputs["tracks"]), torch.from_numpy(inputs["valid"]), None
    )
    for name in LOGGED:
        values = mapped[..., spec.track_names.index(name)][torch.from_numpy(inputs["valid"])]
        assert abs(values.mean().item()) < 1e-3 and values.std().item() == pytest.approx(1, 1e-3)


def test_log_inputs_must_be_logged_inputs_of_the_model(prepared, config):
    spec = input_spec(prepared)
    with pytest.raises(ValueError, match=r"log_inputs names \['deta'\]"):
        column_plan(spec.track_norms, InputTransformsConfig(log=False, log_inputs=("deta",)))
    with pytest.raises(ConfigError, match="none of log_inputs"):
        build_network(_model_config(config, log=False), input_spec(prepared, ["d0"]), prepared)


def test_a_checkpoint_carries_the_layer_through_predict(prepared, config, tmp_path):
    model_config = _model_config(config, log=False, normalise=False)
    history = train_model("dips", model_config, prepared, tmp_path, seed=3)
    # history.csv: the running wall time beside each epoch's time
    written = read_history(tmp_path / "history.csv")
    np.testing.assert_allclose(written["wall_seconds"], np.cumsum(written["epoch_seconds"]))
    assert len(history) == written["epoch"].size
    model, spec = load_trained_model(tmp_path / "best.pt")  # torch.load(weights_only=True)
    fitted = build_network(model_config, spec, prepared).inputs.tracks
    for key, value in model.inputs.tracks.state_dict().items():
        assert torch.equal(value, getattr(fitted, key)), key
    # without normalisation every standardised input changes; charge (normalise: false) does not
    assert model.inputs.tracks.changed.sum().item() == len(spec.track_names) - 1
    probabilities = network_probabilities(tmp_path / "best.pt", prepared / "test.h5")
    inputs = read_model_inputs(prepared / "test.h5", spec)
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs["tracks"]), torch.from_numpy(inputs["valid"]))
    np.testing.assert_allclose(probabilities, torch.softmax(logits, 1).numpy(), atol=1e-6)
    assert np.isfinite(probabilities).all() and probabilities.std(axis=0).min() > 1e-3


def test_a_resumed_epoch_keeps_its_time_before_the_kill(prepared, config, tmp_path, monkeypatch):
    calls = []

    @contextlib.contextmanager
    def sigterm_on_second_batch():
        yield lambda: calls.append(1) or len(calls) >= 2

    monkeypatch.setattr(loop, "_sigterm_flag", sigterm_on_second_batch)
    with pytest.raises(TrainingInterruptedError):
        train_model("dips", _model_config(config), prepared, tmp_path, seed=6)
    before = load_checkpoint(tmp_path / "last.pt")["epoch_progress"]
    assert before["batches_done"] == 2 and before["seconds"] > 0
    monkeypatch.undo()
    train_model("dips", _model_config(config), prepared, tmp_path, seed=6)
    history = read_history(tmp_path / "history.csv")
    assert history["epoch_seconds"][0] > before["seconds"]  # the time before the kill counts
    np.testing.assert_allclose(history["wall_seconds"], np.cumsum(history["epoch_seconds"]))


def test_every_transform_is_configurable_and_each_inverse_undoes_it():
    """jettag.transforms names the transforms (the schema's enum) and their inverses; the
    network layer's inverse, given one standardised column per transform, gives back values
    computed by hand."""
    from jettag.config.schema import schema
    from jettag.transforms import INVERSES, TRANSFORMS, Normalisation, apply_transform

    def find_enum(node):
        if isinstance(node, dict):
            if node.get("enum") and "signed_log" in node["enum"]:
                return node["enum"]
            return next((e for v in node.values() if (e := find_enum(v))), None)
        if isinstance(node, list):
            return next((e for v in node if (e := find_enum(v))), None)
        return None

    assert sorted(find_enum(schema())) == sorted(TRANSFORMS)
    assert set(INVERSES) <= set(TRANSFORMS)
    values = np.array([1e-3, 0.02, 0.5, 3.0, 40.0, -0.7, -12.0])
    by_hand = {
        "log": np.log(np.abs(values[:5])),
        "signed_log": np.sign(values) * np.log(1 + abs(values)),
    }
    norms = []
    for name in INVERSES:
        v = np.abs(values[:5]) if name == "log" else values
        np.testing.assert_allclose(apply_transform(name, v), by_hand[name], rtol=1e-12)
        norms.append(Normalisation(name, name, 0.3, 1.7))
    config = InputTransformsConfig(log=False, log_inputs=tuple(INVERSES), normalise=False)
    column_map = ColumnMap(len(norms))
    column_map.set(column_plan(norms, config))
    prepared = np.stack(
        [
            norm.apply(np.abs(values[:5]) if norm.transform == "log" else values[:5])
            for norm in norms
        ],
        axis=1,
    )
    back = column_map.raw(torch.from_numpy(prepared.astype(np.float32))).numpy()
    np.testing.assert_allclose(back[:, 0], np.abs(values[:5]), rtol=1e-5)
    np.testing.assert_allclose(back[:, 1], values[:5], rtol=1e-5)
