"""Training on the small generated sample: learning, checkpoints, resume, predictions."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import pickle
import signal

import h5py
import numpy as np
import pytest
import torch

from jettag import config as cfg
from jettag.errors import InputError, TrainingInterruptedError
from jettag.evaluation.predict import predict
from jettag.training import loop
from jettag.training.checkpoint import load_checkpoint, load_trained_model
from jettag.training.data import load_split
from jettag.training.loop import train_model


def _model_config(config, epochs=3):
    model = cfg.model_config(config, "dips")
    return dataclasses.replace(model, training=dataclasses.replace(model.training, epochs=epochs))


def test_training_learns_and_writes_outputs(tmp_path, config, prepared):
    history = train_model("dips", _model_config(config, 6), prepared, tmp_path, seed=1)
    assert [row["epoch"] for row in history] == list(range(len(history)))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # better than a flat guess, whose class-weighted cross-entropy is log(3)
    assert min(row["val_loss"] for row in history) < np.log(3) - 0.1
    assert (tmp_path / "history.csv").read_text().startswith("epoch,train_loss,val_loss")
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["val_loss"] == pytest.approx(min(r["val_loss"] for r in history))
    model, spec = load_trained_model(tmp_path / "best.pt")
    assert spec.classes == ("b", "c", "light") and not model.training

    out = tmp_path / "pred.h5"
    predict("dips", prepared / "test.h5", [tmp_path / "best.pt"], "network", out)
    with h5py.File(out) as f:
        jets = f["jets"][:]
        assert {"dips_pb", "dips_pc", "dips_pu", "pt", "eta", "HadronConeExclTruthLabelID"} <= set(
            jets.dtype.names
        )
        assert f["member_probabilities"].shape == (1, len(jets), 3)
    total = jets["dips_pb"] + jets["dips_pc"] + jets["dips_pu"]
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)


def _sigterm_once_training_runs(monkeypatch, directory):
    """Make training raise a real SIGTERM at the second batch after the first epoch's checkpoint.

    Raised from the loop's own per-batch check rather than from a timer thread, so the kill
    lands inside the second epoch however fast or loaded the machine is.
    """
    real_flag = loop._sigterm_flag
    checks_after_checkpoint = 0  # across calls: only the first training is killed

    @contextlib.contextmanager
    def flag_with_kill():
        with real_flag() as stop_requested:

            def check() -> bool:
                nonlocal checks_after_checkpoint
                if (directory / "last.pt").exists():
                    checks_after_checkpoint += 1
                    if checks_after_checkpoint == 2:
                        signal.raise_signal(signal.SIGTERM)  # runs the handler before returning
                return stop_requested()

            yield check

    monkeypatch.setattr(loop, "_sigterm_flag", flag_with_kill)


def test_sigterm_then_resume_gives_the_same_result(tmp_path, config, prepared, monkeypatch):
    model = _model_config(config, 4)
    schedule = dataclasses.replace(model.training.schedule, name="cosine", warmup_fraction=0.1)
    training = dataclasses.replace(model.training, batch_size=16, schedule=schedule)
    model = dataclasses.replace(model, training=training)
    full = tmp_path / "full"
    train_model("dips", model, prepared, full, seed=5)
    part = tmp_path / "part"
    _sigterm_once_training_runs(monkeypatch, part)
    with pytest.raises(TrainingInterruptedError, match="rerun the same command to resume"):
        train_model("dips", model, prepared, part, seed=5)
    interrupted = load_checkpoint(part / "last.pt")
    assert not interrupted["finished"]
    assert interrupted["epoch_progress"]["batches_done"] > 0  # stopped inside an epoch
    history = train_model("dips", model, prepared, part, seed=5)
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(part / "last.pt")
    for key in a["model_state"]:
        assert torch.equal(a["model_state"][key], b["model_state"][key]), key
    keep = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate")
    assert [{k: r[k] for k in keep} for r in a["history"]] == [
        {k: r[k] for k in keep} for r in history
    ]
    assert a["scheduler_state"]["last_epoch"] == b["scheduler_state"]["last_epoch"]


def test_pickled_object_in_checkpoint_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"model_state": Payload()}, f)
    with pytest.raises(ValueError, match=r"evil\.pt: not a loadable jettag checkpoint"):
        load_checkpoint(path)


def test_too_few_jets_for_a_batch(tmp_path, config, prepared):
    model = _model_config(config)
    model = dataclasses.replace(
        model, training=dataclasses.replace(model.training, batch_size=10**6)
    )
    with pytest.raises(ValueError, match="fewer than one batch"):
        train_model("dips", model, prepared, tmp_path, seed=1)


def test_track_origin_task_learns_origins(tmp_path, config, prepared):
    model = _model_config(config, 4)
    model = dataclasses.replace(
        model, training=dataclasses.replace(model.training, track_origin_weight=0.5)
    )
    history = train_model("dips", model, prepared, tmp_path, seed=1)
    origin_losses = [row["val_track_origin_loss"] for row in history]
    assert origin_losses[-1] < origin_losses[0]
    # a flat guess over the 8 origins costs log(8); the task must learn far more than that
    assert origin_losses[-1] < np.log(8) - 0.5
    assert np.isfinite(history[-1]["val_loss"])
    # the jet loss stays the headline: best.pt follows it, and predictions ignore the head
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["val_loss"] == pytest.approx(min(r["val_loss"] for r in history))
    assert any(k.startswith("track_head.") for k in best["model_state"])
    predict("dips", prepared / "test.h5", [tmp_path / "best.pt"], "network", tmp_path / "p.h5")


def _vertexing_transformer(config, embed_dim: int, num_layers: int, **training):
    """The test config's model as a small transformer with the given training settings."""
    base = cfg.model_config(config, "dips")
    return dataclasses.replace(
        base,
        architecture="transformer",
        transformer=dataclasses.replace(
            base.transformer, embed_dim=embed_dim, num_layers=num_layers
        ),
        training=dataclasses.replace(base.training, **training),
    )


def test_vertexing_task_learns_which_tracks_share_a_vertex(tmp_path, config, prepared):
    model = _vertexing_transformer(
        config, 32, 2, epochs=6, track_origin_weight=0.5, track_vertex_weight=1.5
    )
    history = train_model("gn2", model, prepared, tmp_path, seed=1)
    train_losses = [row["train_track_vertex_loss"] for row in history]
    val_losses = [row["val_track_vertex_loss"] for row in history]
    assert train_losses[-1] < train_losses[0] and val_losses[-1] < val_losses[0]
    # the class-balanced loss of a constant guess is log(2) = 0.693 at best
    assert val_losses[-1] < np.log(2) - 0.2
    best = load_checkpoint(tmp_path / "best.pt")
    assert any(k.startswith("pair_head.") for k in best["model_state"])
    assert "train_track_vertex_loss" in (tmp_path / "history.csv").read_text().splitlines()[0]

    # the vertexing stage on the test split: its pair counts against a count by hand
    from jettag.evaluation.track_tasks import evaluate_vertexing

    bins = [0.0, 50.0, 100.0, 1e4]
    result = evaluate_vertexing("gn2", tmp_path / "best.pt", prepared / "test.h5", bins)
    with h5py.File(prepared / "test.h5") as f:
        jets, tracks = f["jets"][:], f["tracks"][:]
    truth_same = 0
    for k in range(len(jets)):
        index = tracks["ftagTruthVertexIndex"][k][tracks["valid"][k]]
        truth_same += sum(
            int(a == b and a >= 0) for i, a in enumerate(index) for b in index[i + 1 :]
        )
    assert sum(result.pairs[c]["all"]["truth_same"] for c in result.classes) == truth_same
    n_jets = [sum(result.counts[c]["n_jets"]) for c in result.classes]
    assert n_jets == [int((jets["flavour_label"] == i).sum()) for i in range(3)]
    # a trained head finds most same-vertex pairs, and most pairs it joins are right
    pairs = {key: sum(result.pairs[c]["all"][key] for c in result.classes)
             for key in ("truth_same", "predicted_same", "both")}  # fmt: skip
    assert pairs["both"] > 0.5 * pairs["truth_same"]
    assert pairs["both"] > 0.5 * pairs["predicted_same"]


def test_vertexing_epoch_without_a_track_pair_stops_with_the_key_to_turn_it_off(
    tmp_path, config, prepared
):
    # one valid track per jet: the labels are there, but no pair is, so the pair loss has no
    # value; the loop refuses before writing a NaN into the history
    import shutil

    data = tmp_path / "prepared"
    shutil.copytree(prepared, data)
    for split in ("train.h5", "val.h5"):
        with h5py.File(data / split, "r+") as f:
            valid = f["model_inputs/valid"][:]
            valid[:, 1:] = False
            f["model_inputs/valid"][...] = valid
    model = _vertexing_transformer(config, 16, 1, epochs=1, track_vertex_weight=1.5)
    out = tmp_path / "model"
    with pytest.raises(InputError) as info:
        train_model("gn2", model, data, out, seed=1)
    message = str(info.value)
    assert message.startswith(f"{data}: the training jets have no pair of valid tracks")
    assert "set models.gn2.training.track_vertex_weight to 0" in message
    assert not (out / "history.csv").exists()


def test_track_origin_task_needs_the_origin_field(tmp_path, prepared):
    import shutil

    for name in ("norm.yaml", "weights.yaml"):
        shutil.copy(prepared / name, tmp_path / name)
    with h5py.File(prepared / "val.h5") as f:
        jets, tracks = f["jets"][:], f["tracks"][:]
    names = [n for n in tracks.dtype.names if n != "ftagTruthOriginLabel"]
    with h5py.File(tmp_path / "val.h5", "w") as f:
        f["jets"], f["tracks"] = jets, tracks[names]
    from jettag.io.model_inputs import input_spec

    spec = input_spec(tmp_path)
    assert (load_split(tmp_path / "val.h5", spec).track_origin == -1).all()
    with pytest.raises(Exception, match=r"val\.h5: tracks have no 'ftagTruthOriginLabel'"):
        load_split(tmp_path / "val.h5", spec, need_track_origin=True)


@pytest.mark.parametrize("name", ["constant", "cosine", "onecycle"])
def test_learning_rate_schedules(name):
    from jettag.config import ScheduleConfig
    from jettag.training.schedules import lr_factor

    config = ScheduleConfig(name=name, warmup_fraction=0.1, min_lr_factor=0.05)
    factors = [lr_factor(step, 100, config) for step in range(100)]
    assert factors[:10] == pytest.approx([(k + 1) / 10 for k in range(10)])  # linear warm-up
    assert max(factors) == pytest.approx(1.0)
    if name == "constant":
        assert factors[-1] == 1.0
    else:
        assert all(a >= b for a, b in itertools.pairwise(factors[10:]))  # decays
        assert factors[-1] < (0.06 if name == "cosine" else 0.01)


def test_rotation_about_the_jet_axis(tmp_path, config, prepared):
    from jettag.io.model_inputs import input_spec
    from jettag.training.augment import AxisRotation

    spec = input_spec(prepared)
    data = load_split(prepared / "val.h5", spec)
    rotate = AxisRotation(spec)
    rotated = rotate(data.tracks, data.valid, torch.Generator().manual_seed(0))
    names = spec.track_names
    norms = {n.name: n for n in spec.track_norms}

    def raw(t, name):
        return t[..., names.index(name)] * norms[name].std + norms[name].mean

    dr = torch.hypot(raw(data.tracks, "deta"), raw(data.tracks, "dphi"))
    dr_rotated = torch.hypot(raw(rotated, "deta"), raw(rotated, "dphi"))
    valid = data.valid
    torch.testing.assert_close(dr_rotated[valid], dr[valid], rtol=1e-4, atol=1e-5)  # a rotation
    assert not torch.allclose(rotated[valid], data.tracks[valid])  # deta, dphi did change
    assert (rotated[~valid] == 0).all()  # padding stays zero
    # d0 and z0 sin(theta) are re-signed (tests/test_augment.py); nothing else changes
    others = [k for k, n in enumerate(names) if n not in ("deta", "dphi", "d0", "z0SinTheta")]
    assert torch.equal(rotated[..., others], data.tracks[..., others])
    for name in ("d0", "z0SinTheta"):
        torch.testing.assert_close(
            raw(rotated, name).abs()[valid], raw(data.tracks, name).abs()[valid]
        )

    # a model trained with rotation on rotation-invariant inputs: rotating changes nothing
    model = _model_config(config, 2)
    invariant = [n for n in names if n not in ("deta", "dphi", "d0", "z0SinTheta")]
    model = dataclasses.replace(
        model, track_inputs=tuple(invariant),
        training=dataclasses.replace(model.training, rotate_about_jet_axis=False),
    )  # fmt: skip
    train_model("dips", model, prepared, tmp_path, seed=2)
    network, model_spec = load_trained_model(tmp_path / "best.pt")
    columns = [names.index(n) for n in model_spec.track_names]
    with torch.no_grad():
        before = network(data.tracks[..., columns], valid, data.jets)
        after = network(rotated[..., columns], valid, data.jets)
    torch.testing.assert_close(before, after)
    # and training with the augmentation on runs and learns
    augmented = dataclasses.replace(
        _model_config(config, 3),
        training=dataclasses.replace(_model_config(config, 3).training, rotate_about_jet_axis=True),
    )
    history = train_model("dips", augmented, prepared, tmp_path / "aug", seed=2)
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_bucketed_batches_cover_every_jet_once(config, prepared):
    from jettag.io.model_inputs import input_spec

    data = load_split(prepared / "train.h5", input_spec(prepared))
    batches = data.batch_indices(32, torch.Generator().manual_seed(3), bucket=True)
    rows = torch.cat(batches)
    assert torch.equal(torch.sort(rows).values, torch.arange(len(data)))
    spread = [int(data.valid[b].sum(1).max() - data.valid[b].sum(1).min()) for b in batches]
    plain = data.batch_indices(32, torch.Generator().manual_seed(3))
    spread_plain = [int(data.valid[b].sum(1).max() - data.valid[b].sum(1).min()) for b in plain]
    assert np.mean(spread) < 0.5 * np.mean(spread_plain)
    # evaluation batches (no generator) are sorted by multiplicity and still cover every jet
    ordered = data.batch_indices(32, bucket=True)
    assert torch.equal(torch.sort(torch.cat(ordered)).values, torch.arange(len(data)))
    counts = torch.cat([data.valid[b].sum(1) for b in ordered])
    assert torch.all(counts[1:] >= counts[:-1])


def test_ensemble_predictions_keep_members_and_their_spread(tmp_path, config, prepared):
    from jettag.training.checkpoint import save_checkpoint

    train_model("dips", _model_config(config, 1), prepared, tmp_path / "m0", seed=1)
    # a second member: the same network with perturbed weights
    state = load_checkpoint(tmp_path / "m0/best.pt")
    generator = torch.Generator().manual_seed(5)
    state["model_state"] = {
        k: v + 0.05 * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
        for k, v in state["model_state"].items()
    }
    save_checkpoint(tmp_path / "m1.pt", state)
    members = [tmp_path / "m0/best.pt", tmp_path / "m1.pt"]
    predict("ens", prepared / "test.h5", members, "network", tmp_path / "ens.h5")
    with h5py.File(tmp_path / "ens.h5") as f:
        jets, probabilities = f["jets"][:], f["member_probabilities"][:]
    assert probabilities.shape[0] == 2
    assert not np.allclose(probabilities[0], probabilities[1])
    for k, short in enumerate(("pb", "pc", "pu")):
        np.testing.assert_allclose(jets[f"ens_{short}"], probabilities[..., k].mean(0), rtol=1e-6)
        np.testing.assert_allclose(
            jets[f"ens_{short}_std"], probabilities[..., k].std(0, ddof=1), rtol=1e-5, atol=1e-7
        )


def test_kfold_members_hold_out_disjoint_folds_of_whole_events(tmp_path, config, prepared):
    from jettag.features.split import assign_fold
    from jettag.io.model_inputs import input_spec
    from jettag.training.data import kfold_splits

    spec = input_spec(prepared)
    n_pool = sum(len(load_split(prepared / f"{s}.h5", spec)) for s in ("train", "val"))
    held_out_events = []
    for fold in range(3):
        train, val = kfold_splits(prepared, spec, 3, fold)
        assert len(train) + len(val) == n_pool
        assert 0.2 * n_pool < len(val) < 0.47 * n_pool  # about a third
        train_events, val_events = set(train.event_number.tolist()), set(val.event_number.tolist())
        assert not train_events & val_events  # an event's jets never straddle the cut
        assert (assign_fold(val.event_number.numpy(), 3) == fold).all()
        held_out_events.append(val_events)
    assert not held_out_events[0] & held_out_events[1]
    # and a K-fold member trains, validating on its own fold
    model = cfg.model_config(config, "dips")
    model = dataclasses.replace(
        model, members=3, kfold=True, training=dataclasses.replace(model.training, epochs=1)
    )
    history = train_model("dips", model, prepared, tmp_path, seed=1, member=2)
    assert len(history) == 1 and np.isfinite(history[0]["val_loss"])
    with pytest.raises(cfg.ConfigError, match=r"models\.dips\.kfold needs members >= 2"):
        raw = _raw_config()
        raw["models"]["dips"]["kfold"] = True
        cfg.validate_config(raw)


def _raw_config() -> dict:
    """The test fixtures' minimal config, as a mutable mapping."""
    from tests.conftest import minimal_config

    return minimal_config()


def test_checkpoint_from_before_a_config_key_existed_still_loads(tmp_path, config, prepared):
    from jettag.training.checkpoint import save_checkpoint

    train_model("dips", _model_config(config, 1), prepared, tmp_path, seed=1)
    state = load_checkpoint(tmp_path / "best.pt")
    del state["model_config"]["kfold"]  # keys added to the schema after it was written
    del state["model_config"]["training"]["track_origin_weight"]
    save_checkpoint(tmp_path / "old.pt", state)
    model, _ = load_trained_model(tmp_path / "old.pt")
    assert model.track_head is None  # the default: no auxiliary head


def test_class_weight_tensor_reads_weights_yaml_or_gives_ones(tmp_path):
    from jettag.errors import InputError
    from jettag.training.data import class_weight_tensor

    (tmp_path / "weights.yaml").write_text("class_weights: [0.5, 2.0, 1.25]\n")
    assert class_weight_tensor(tmp_path, True, 3).tolist() == [0.5, 2.0, 1.25]
    assert class_weight_tensor(tmp_path, False, 3).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(InputError, match="3 class_weights for 2 classes"):
        class_weight_tensor(tmp_path, True, 2)
    with pytest.raises(InputError, match=r"weights\.yaml"):
        class_weight_tensor(tmp_path / "missing", True, 3)


def test_checkpoint_whose_layers_differ_is_refused_naming_it(tmp_path, config, prepared):
    # a checkpoint of an older jettag whose layers differ (the transformer's pair head
    # changed shape at 65a6b93) is refused with its path, not a bare load_state_dict error
    train_model("dips", _model_config(config, 1), prepared, tmp_path, seed=1)
    state = load_checkpoint(tmp_path / "best.pt")
    state["model_state"]["pair_head.product.weight"] = torch.zeros(4, 4)
    old = tmp_path / "old.pt"
    torch.save(state, old)
    with pytest.raises(ValueError, match="do not fit the network") as info:
        load_trained_model(old)
    assert str(info.value).startswith(f"{old}: ")
    assert "pair_head.product.weight" in str(info.value)
