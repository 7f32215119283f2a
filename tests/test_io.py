"""Readers and the canonical writer on hand-built ROOT and HDF5 files."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot

from jettag import config as cfg
from jettag.errors import InputError
from jettag.io import fields
from jettag.io.canonical import TRACK_DTYPE, read_all
from jettag.io.ingest import ingest_sample
from tests.conftest import minimal_config

TRACKS = {
    "pt": [[1.0, 5.0, 2.0], [], [3.0]],
    "eta": [[0.1, 0.2, 0.3], [], [-1.0]],
    "phi": [[0.0, 0.1, -0.1], [], [2.0]],
    "charge": [[1.0, -1.0, 1.0], [], [-1.0]],
    "d0": [[0.01, 0.5, -0.02], [], [0.0]],
    "z0SinTheta": [[0.0, 0.1, 0.0], [], [0.2]],
    "d0Uncertainty": [[0.02, 0.02, 0.02], [], [0.05]],
    "z0SinThetaUncertainty": [[0.05, 0.05, 0.05], [], [0.05]],
}


def write_root(path: Path, tracks=None) -> Path:
    """A three-jet ROOT file in jettag's own branch layout."""
    jets = {
        "jet_pt": np.array([40.0, 25.0, 100.0], np.float32),
        "jet_eta": np.array([0.2, -1.0, 1.5], np.float32),
        "jet_phi": np.array([0.05, 1.0, 2.0], np.float32),
        "jet_mass": np.array([5.0, 3.0, 9.0], np.float32),
        "jet_HadronConeExclTruthLabelID": np.array([5, 0, 4], np.int32),
        "eventNumber": np.array([1, 1, 2], np.int64),
    }
    trk = ak.zip(
        {k: ak.values_astype(ak.Array(v), np.float32) for k, v in (tracks or TRACKS).items()}
    )
    with uproot.recreate(path) as f:
        data = jets
        f.mktree("jets", {k: v.dtype for k, v in data.items()} | {"trk": trk.type.content})
        f["jets"].extend({**data, "trk": trk})
    return path


def _sample(**extra):
    raw = minimal_config(samples={"s": {"source": "root", "files": ["x.root"], **extra}})
    raw["models"]["dips"]["dataset"] = "s"
    raw["baselines"]["ip3d"]["dataset"] = "s"
    return cfg.validate_config(raw)


def _ingest(config, sample, files, out, max_tracks=40):
    ingest = cfg.section(cfg.IngestConfig, {**config["ingest"], "max_tracks": max_tracks})
    return ingest_sample(cfg.reading_config(config, sample), files, ingest, out, sample)


def test_root_ingest_sorts_pads_and_truncates(tmp_path):
    path = write_root(tmp_path / "in.root")
    config = _sample()
    stats = _ingest(config, "s", [path], tmp_path / "out.h5", max_tracks=2)
    assert stats == {
        "jets": 3, "truncated_jets": 1, "tracks_dropped": 1, "zero_track_jets": 1,
        "non_finite_jets": 0, "degenerate_tracks_dropped": 0,
    }  # fmt: skip
    jets, tracks = read_all(tmp_path / "out.h5")
    assert jets["n_tracks"].tolist() == [3, 0, 1]
    assert tracks.shape == (3, 2)
    assert tracks["valid"].tolist() == [[True, True], [False, False], [True, False]]
    # sorted by |d0|/sigma descending: 0.5/0.02, then 0.02/0.02 (the 0.01 track is dropped)
    np.testing.assert_allclose(tracks["d0"][0], [0.5, -0.02])
    assert tracks["pt"][1].tolist() == [0.0, 0.0]  # padding is zero
    assert (tracks["ftagTruthOriginLabel"] == -1).all()  # absent in the input: unknown
    assert jets["HadronConeExclTruthLabelID"].tolist() == [5, 0, 4]


def test_h5_roundtrip_matches_root(tmp_path, ingested):
    config = _sample()
    again = tmp_path / "again.h5"
    _ingest(config, "s", [ingested], again)
    a_jets, a_tracks = read_all(ingested)
    b_jets, b_tracks = read_all(again)
    assert np.array_equal(a_jets, b_jets) and np.array_equal(a_tracks, b_tracks)
    with h5py.File(again) as f:  # plain h5py, a filter every install has
        assert f["tracks"].compression in ("lzf", "gzip", None)


def test_h5_with_other_field_names(tmp_path, ingested):
    jets, tracks = read_all(ingested)
    renamed = tmp_path / "renamed.h5"
    track_names = [("d0_pv" if n == "d0" else n) for n in tracks.dtype.names]
    jet_names = [("jet_pt_gev" if n == "pt" else n) for n in jets.dtype.names]
    tracks.dtype.names, jets.dtype.names = track_names, jet_names
    with h5py.File(renamed, "w") as f:
        f["jets"], f["tracks"] = jets, tracks
    config = _sample(branches={"trk_d0": "d0_pv", "jet_pt": "jet_pt_gev"})
    _ingest(config, "s", [renamed], tmp_path / "out.h5")
    out_jets, out_tracks = read_all(tmp_path / "out.h5")
    assert np.array_equal(out_jets["pt"], jets["jet_pt_gev"])
    assert np.array_equal(out_tracks["d0"], tracks["d0_pv"])


def test_missing_branch_lists_what_the_file_has(tmp_path):
    tracks = {k: v for k, v in TRACKS.items() if k != "z0SinTheta"}
    path = write_root(tmp_path / "in.root", tracks=tracks)
    with pytest.raises(InputError, match=r"in\.root: sample 's' cannot be read") as err:
        _ingest(_sample(), "s", [path], tmp_path / "out.h5")
    # the key to set, the derivations that would serve, and what the file has
    assert "trk_z0SinTheta: set samples.s.branches.trk_z0SinTheta" in str(err.value)
    assert "z0 sin(theta) from trk_z0, trk_theta" in str(err.value)
    assert "'trk_d0'" in str(err.value)
    assert not (tmp_path / "out.h5").exists()


def test_truncated_root_file_names_the_file(tmp_path):
    path = write_root(tmp_path / "in.root")
    data = path.read_bytes()
    broken = tmp_path / "broken.root"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"broken\.root"):
        _ingest(_sample(), "s", [broken], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_nan_is_an_error_naming_variable_and_jets(tmp_path):
    tracks = dict(TRACKS)
    tracks["d0"] = [[0.01, float("nan"), -0.02], [], [0.0]]
    path = write_root(tmp_path / "in.root", tracks=tracks)
    with pytest.raises(InputError, match=r"track variable 'd0' has NaN or inf values in 1 jets"):
        _ingest(_sample(), "s", [path], tmp_path / "out.h5")


def test_non_finite_jets_dropped_and_counted_when_asked(tmp_path):
    tracks = dict(TRACKS)
    tracks["d0"] = [[0.01, float("nan"), -0.02], [], [0.0]]
    tracks["pt"] = [[1.0, 5.0, 2.0], [], [float("inf")]]
    path = write_root(tmp_path / "in.root", tracks=tracks)
    config = _sample()
    config["ingest"]["non_finite"] = "drop"
    stats = _ingest(config, "s", [path], tmp_path / "out.h5")
    assert stats["jets"] == 1 and stats["non_finite_jets"] == 2
    jets, _ = read_all(tmp_path / "out.h5")
    assert jets["HadronConeExclTruthLabelID"].tolist() == [0]  # only the finite jet is left
    with h5py.File(tmp_path / "out.h5") as f:
        assert json.loads(f["jets"].attrs["dropped_non_finite"]) == {
            "jets": 2,
            "trk_d0": 1,
            "trk_pt": 1,
        }


def test_non_finite_in_h5_padding_is_ignored_and_real_tracks_count(tmp_path, ingested):
    jets, tracks = read_all(ingested)
    jets, tracks = jets[:50].copy(), tracks[:50].copy()
    padded = np.argwhere(~tracks["valid"])[0]
    tracks["z0SinTheta"][tuple(padded)] = np.nan  # padding: never read as a track
    real = np.argwhere(tracks["valid"])[[0, 1]]
    tracks["d0"][tuple(real[0])] = np.inf
    jets["eta"][7] = np.nan
    path = tmp_path / "with_nan.h5"
    with h5py.File(path, "w") as f:
        f["jets"], f["tracks"] = jets, tracks
    with pytest.raises(InputError, match=r"with_nan\.h5: jet variable 'eta' has NaN or inf"):
        _ingest(_sample(), "s", [path], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()
    config = _sample()
    config["ingest"]["non_finite"] = "drop"
    stats = _ingest(config, "s", [path], tmp_path / "out.h5")
    expected_dropped = len({7, int(real[0][0])})
    assert stats["non_finite_jets"] == expected_dropped
    assert stats["jets"] == 50 - expected_dropped


def test_canonical_fields_cover_requirements():
    track_fields = {k.removeprefix("trk_") for k in fields.REQUIRED + fields.OPTIONAL
                    if k.startswith("trk_")}  # fmt: skip
    assert track_fields <= set(TRACK_DTYPE.names)


def test_root_with_other_branch_names(tmp_path):
    path = tmp_path / "atlas_like.root"
    trk = ak.zip({k: ak.values_astype(ak.Array(v), np.float32) for k, v in TRACKS.items()})
    jets = {
        "pt": np.array([40.0, 25.0, 100.0], np.float32),
        "eta": np.array([0.2, -1.0, 1.5], np.float32),
        "phi": np.array([0.05, 1.0, 2.0], np.float32),
        "m": np.array([5.0, 3.0, 9.0], np.float32),
        "truth_flavour": np.array([5, 0, 4], np.int32),
        "event": np.array([1, 1, 2], np.int64),
    }
    with uproot.recreate(path) as f:
        f.mktree("ntuple", {k: v.dtype for k, v in jets.items()} | {"track": trk.type.content})
        f["ntuple"].extend({**jets, "track": trk})
    branches = {f"jet_{k}": k for k in ("pt", "eta", "phi")}
    branches |= {"jet_mass": "m", "jet_HadronConeExclTruthLabelID": "truth_flavour"}
    branches |= {"jet_eventNumber": "event"}
    branches |= {f"trk_{k}": f"track_{k}" for k in TRACKS}
    config = _sample(tree="ntuple", branches=branches)
    _ingest(config, "s", [path], tmp_path / "out.h5")
    out_jets, out_tracks = read_all(tmp_path / "out.h5")
    assert out_jets["mass"].tolist() == [5.0, 3.0, 9.0]
    assert out_tracks["pt"][0, :3].tolist() == [5.0, 2.0, 1.0]  # sorted by |d0|/sigma
    with pytest.raises(cfg.ConfigError, match=r"samples\.s\.branches': 'trk_d00' is not one of"):
        _sample(tree="ntuple", branches={"trk_d00": "x"})  # at validation, before any job
    wrong_tree = _sample(tree="jets")
    with pytest.raises(InputError, match=r"atlas_like\.root: no tree 'jets'.*ntuple"):
        _ingest(wrong_tree, "s", [path], tmp_path / "out3.h5")
