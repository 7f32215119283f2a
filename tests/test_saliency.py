"""Saliency maps, permutation importance and their plots, on the small generated sample."""

from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest
import torch

from jettag import config as cfg
from jettag.evaluation.importance import permutation_importance
from jettag.evaluation.metrics import cut_for_efficiency
from jettag.evaluation.predict import probabilities
from jettag.evaluation.saliency import SD0, saliency_maps
from jettag.io.model_inputs import build_inputs, input_spec
from jettag.io.results import SaliencyMaps, read_importance
from jettag.models.registry import build_model
from jettag.plotting.saliency import plot_permutation_importance, plot_saliency
from jettag.plotting.style import FigureText
from jettag.training.checkpoint import load_trained_model, save_checkpoint
from jettag.training.loop import train_model
from tests.conftest import d_b, written

F_C = 0.1
D_B = d_b(F_C)
TEXT = FigureText("ATLAS", "Simulation Internal", 13.0, "$t\\bar{t}$")
IGNORED = "IP3D_signed_z0_significance"


@pytest.fixture(scope="module")
def ignoring_checkpoint(tmp_path_factory, config, prepared):
    """best.pt of an untrained DeepSets whose first layer has a zero column for IGNORED."""
    model_config = cfg.model_config(config, "dips")
    spec = input_spec(prepared)
    torch.manual_seed(0)
    model = build_model(model_config, len(spec.track_norms), len(spec.jet_norms), 3)
    with torch.no_grad():
        model.track_network[0].weight[:, spec.track_names.index(IGNORED)] = 0.0
    path = tmp_path_factory.mktemp("ignoring") / "best.pt"
    save_checkpoint(
        path,
        {
            "model_name": "dips",
            "member": 0,
            "model_config": json.loads(json.dumps(dataclasses.asdict(model_config))),
            "inputs": spec.to_dict(),
            "epoch": 0,
            "val_loss": float("nan"),
            "model_state": model.state_dict(),
        },
    )
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config, prepared):
    """The small DIPS trained for a few epochs, with its saliency and importance JSON."""
    model = cfg.model_config(config, "dips")
    model = dataclasses.replace(model, training=dataclasses.replace(model.training, epochs=6))
    out = tmp_path_factory.mktemp("trained")
    # one thread: the test machine is small and shared, and more threads only contend
    train_model("dips", model, prepared, out, seed=1, threads=1)
    test = prepared / "test.h5"
    return {
        "checkpoint": out / "best.pt",
        "saliency": written(saliency_maps(out / "best.pt", test, D_B), out / "saliency.json"),
        "importance": written(
            permutation_importance(out / "best.pt", test, D_B, repeats=2),
            out / "importance.json",
        ),
        "dir": out,
    }


def _discriminant(checkpoint, jets, tracks):
    """D_b of each jet from its tables, through the predict stage's code (classes b, c, light)."""
    model, spec = load_trained_model(checkpoint)
    prob = probabilities(model, *build_inputs(jets, tracks, spec)).astype(np.float64)
    return np.log(prob[:, 0] / (F_C * prob[:, 1] + (1 - F_C) * prob[:, 2]))  # D_b by hand


def _test_jets(prepared, checkpoint):
    """Jets, tracks and D_b of the test split."""
    with h5py.File(prepared / "test.h5") as f:
        jets, tracks = f["jets"][:], f["tracks"][:]
    return jets, tracks, _discriminant(checkpoint, jets, tracks)


def _straddling_multiplicity(prepared, checkpoint) -> int:
    """The b-jet track multiplicity (4-12) with the most jets on the rarer side of the 77 % cut.

    The maps are per multiplicity and per side of the cut; an untrained network's D_b grows
    with the number of tracks (sum pooling), so at some multiplicities every b jet passes.
    """
    jets, tracks, db = _test_jets(prepared, checkpoint)
    is_b = jets["flavour_label"] == 0
    cut = cut_for_efficiency(db[is_b], np.ones(is_b.sum()), 0.77)
    n = tracks["valid"].sum(axis=1)
    sides = {
        k: min((db[is_b & (n == k)] > cut).sum(), (db[is_b & (n == k)] <= cut).sum())
        for k in range(4, 13)
    }
    return max(sides, key=sides.get)


def test_ignored_input_has_zero_saliency(tmp_path, prepared, ignoring_checkpoint):
    out = tmp_path / "saliency.json"
    n_tracks = _straddling_multiplicity(prepared, ignoring_checkpoint)
    result = written(saliency_maps(ignoring_checkpoint, prepared / "test.h5", D_B, n_tracks), out)
    assert json.loads(out.read_text()) == result
    assert result["track_order"] == SD0 and result["n_tracks"] == n_tracks

    jets, tracks, db = _test_jets(prepared, ignoring_checkpoint)
    is_b = jets["flavour_label"] == 0
    assert result["cut"] == cut_for_efficiency(db[is_b], np.ones(is_b.sum()), 0.77)
    chosen = is_b & (tracks["valid"].sum(axis=1) == n_tracks)
    assert result["n_jets"] == {
        "passing": int((db[chosen] > result["cut"]).sum()),
        "failing": int((db[chosen] <= result["cut"]).sum()),
    }
    assert min(result["n_jets"].values()) > 0  # both categories are tested below

    ignored = result["inputs"].index(IGNORED)
    for category in ("passing", "failing"):
        saliency = np.array(result["maps"][category])
        assert saliency.shape == (len(result["inputs"]), n_tracks)
        assert (saliency[ignored] == 0.0).all()
        others = np.delete(saliency, ignored, axis=0)
        assert (np.abs(others).max(axis=1) > 0).all()


@pytest.mark.parametrize("first", [True, False])
def test_saliency_is_the_derivative_of_the_mean_discriminant(
    tmp_path, prepared, ignoring_checkpoint, first
):
    """Shifting an input of the rank-th track (by sd0) of each jet by eps moves mean D_b by
    eps * map: the map is the derivative of the mean discriminant, and ranks are by sd0.
    """
    n_tracks = _straddling_multiplicity(prepared, ignoring_checkpoint)
    rank = 0 if first else n_tracks - 1  # the highest-sd0 track, or the lowest
    output = tmp_path / "s.json"
    result = written(
        saliency_maps(ignoring_checkpoint, prepared / "test.h5", D_B, n_tracks), output
    )
    jets, tracks, db = _test_jets(prepared, ignoring_checkpoint)
    chosen = (jets["flavour_label"] == 0) & (tracks["valid"].sum(axis=1) == n_tracks)
    norms = input_spec(prepared).track_norms
    # continuous inputs without a transform: x = (v - mean) / std, so v moves by eps * std
    plain = [
        k for k, n in enumerate(norms) if n.transform == "none" and tracks.dtype[n.name].kind == "f"
    ]
    sd0 = np.where(tracks["valid"], tracks[SD0], -np.inf)
    track = np.argsort(-sd0, axis=1, kind="stable")[:, rank]
    for category, rows in (("passing", db > result["cut"]), ("failing", db <= result["cut"])):
        jet_rows = np.flatnonzero(chosen & rows)
        saliency = np.array(result["maps"][category])[:, rank]
        k = max(plain, key=lambda k: abs(saliency[k]))
        name, std, eps = norms[k].name, norms[k].std, 1e-3
        shifted_db = []
        for sign in (1, -1):
            shifted = tracks.copy()
            shifted[name][jet_rows, track[jet_rows]] += sign * eps * std
            moved = _discriminant(ignoring_checkpoint, jets, shifted)
            shifted_db.append(moved[jet_rows].mean())
        derivative = (shifted_db[0] - shifted_db[1]) / (2 * eps)
        expected = saliency[k]
        assert abs(expected) > 1e-2, name
        assert derivative == pytest.approx(expected, rel=0.02, abs=1e-4)


def test_ignored_input_loses_no_rejection(tmp_path, prepared, ignoring_checkpoint):
    groups = {"ignored": [IGNORED], "impact parameters": [SD0, IGNORED, "d0", "z0SinTheta"]}
    out = tmp_path / "importance.json"
    result = written(
        permutation_importance(ignoring_checkpoint, prepared / "test.h5", D_B, groups, repeats=2),
        out,
    )
    assert json.loads(out.read_text()) == result
    assert list(result["groups"]) == list(groups)
    ignored = result["groups"]["ignored"]
    for bkg in ("light", "c"):
        assert ignored[f"{bkg}_rejection"] == result["nominal"][f"{bkg}_rejection"]
        assert ignored[f"{bkg}_rejection_loss"] == 0.0
        assert ignored[f"{bkg}_rejection_loss_std"] == 0.0

    # the nominal rejection is the one of the predict stage's scores at the 77 % WP
    jets, _, db = _test_jets(prepared, ignoring_checkpoint)
    is_b, is_light = jets["flavour_label"] == 0, jets["flavour_label"] == 2
    cut = cut_for_efficiency(db[is_b], np.ones(is_b.sum()), 0.77)
    assert result["nominal"]["cut"] == pytest.approx(cut, rel=1e-6)
    passed = (db[is_light] > cut).mean()
    assert result["nominal"]["light_rejection"] == pytest.approx(1 / passed)

    with pytest.raises(ValueError, match=r"group 'bad': \['pt'\] not track inputs"):
        permutation_importance(ignoring_checkpoint, prepared / "test.h5", D_B, {"bad": ["pt"]})


def test_trained_tagger_relies_on_sd0(prepared, trained):
    groups = trained["importance"]["groups"]
    assert list(groups) == input_spec(prepared).track_names  # one group per input
    losses = {g: e["light_rejection_loss"] for g, e in groups.items()}
    assert losses[SD0] > 0.3
    assert max(losses, key=lambda g: losses[g] or -np.inf) == SD0
    assert all(e["light_rejection_loss_std"] is not None for e in groups.values())

    saliency = trained["saliency"]
    # a more displaced leading track makes a b jet look more like a b jet
    assert saliency["maps"]["passing"][saliency["inputs"].index(SD0)][0] > 0


def test_plots_are_written(tmp_path, prepared, trained, ignoring_checkpoint):
    # no b jet has 1000 tracks: both categories are empty and drawn as such
    empty = written(
        saliency_maps(trained["checkpoint"], prepared / "test.h5", D_B, n_tracks=1000),
        tmp_path / "empty.json",
    )
    assert empty["n_jets"] == {"passing": 0, "failing": 0}
    assert empty["maps"] == {"passing": None, "failing": None}
    groups = {"impact parameters": [SD0, IGNORED], "hits": ["numberOfPixelHits", "numberOfSCTHits"]}
    permutation_importance(ignoring_checkpoint, prepared / "test.h5", D_B, groups).write(
        tmp_path / "groups.json"
    )
    formats = ["png", "pdf"]
    maps = SaliencyMaps.read(trained["dir"] / "saliency.json")
    figures = plot_saliency(maps, "DIPS", tmp_path / "saliency", TEXT, formats)
    figures += plot_permutation_importance(
        read_importance(trained["dir"] / "importance.json"), "DIPS", tmp_path / "importance",
        TEXT, formats,
    )  # fmt: skip
    empty_maps = SaliencyMaps.read(tmp_path / "empty.json")
    figures += plot_saliency(empty_maps, "DIPS", tmp_path / "empty", TEXT, ["png"])
    figures += plot_permutation_importance(
        read_importance(tmp_path / "groups.json"), "DIPS", tmp_path / "groups", TEXT, ["png"]
    )
    expected = ["saliency.png", "saliency.pdf", "importance.png", "importance.pdf"]
    assert [p.name for p in figures] == [*expected, "empty.png", "groups.png"]
    for path in figures:
        assert path.parent == tmp_path and path.stat().st_size > 1000, path
