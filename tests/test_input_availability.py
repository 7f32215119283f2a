"""Inputs a sample does not provide, and bad input values, fail early and say what to change.

Canonical files are built by hand (CanonicalWriter, the FTAG layout) with or without the
`absent_fields` attribute that ingest writes, then prepared and trained on by the real code.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from jettag import cli
from jettag import config as cfg
from jettag.config import InputConfig
from jettag.errors import InputError
from jettag.features.prepare import prepare_dataset
from jettag.features.split import assign_split
from jettag.io.canonical import HIT_FIELDS, JET_DTYPE, TRACK_DTYPE, CanonicalWriter
from jettag.training import loop
from jettag.training.loop import train_model
from tests.conftest import minimal_config

N_JETS, MAX_TRACKS = 900, 6
# inputs every canonical file has (required or derived from required fields)
PROVIDED_TRACK_INPUTS = (
    InputConfig("IP3D_signed_d0_significance", "signed_log", True),
    InputConfig("ptfrac", "log", True),
    InputConfig("dr", "log", True),
    InputConfig("d0", "none", True),
    InputConfig("charge", "none", False),
)


def _tables(seed: int = 0, origins: bool = True, hits: bool = True):
    """(jets, tracks) of N_JETS b, c, light and a few tau jets with 1..MAX_TRACKS tracks each."""
    rng = np.random.default_rng(seed)
    jets = np.zeros(N_JETS, JET_DTYPE)
    jets["pt"] = rng.uniform(25, 200, N_JETS)
    jets["eta"] = rng.uniform(-2, 2, N_JETS)
    jets["phi"] = rng.uniform(-np.pi, np.pi, N_JETS)
    jets["mass"] = rng.uniform(2, 20, N_JETS)
    jets["HadronConeExclTruthLabelID"] = rng.choice([5, 4, 0, 15], N_JETS, p=[0.3, 0.3, 0.3, 0.1])
    jets["eventNumber"] = np.arange(N_JETS)
    n_tracks = rng.integers(1, MAX_TRACKS + 1, N_JETS)
    jets["n_tracks"] = n_tracks
    tracks = np.zeros((N_JETS, MAX_TRACKS), TRACK_DTYPE)
    valid = np.arange(MAX_TRACKS)[None, :] < n_tracks[:, None]
    shape = tracks.shape
    columns = {
        "pt": rng.uniform(1, 20, shape),
        "eta": jets["eta"][:, None] + rng.normal(0, 0.1, shape),
        "phi": jets["phi"][:, None] + rng.normal(0, 0.1, shape),
        "charge": rng.choice([-1.0, 1.0], shape),
        "d0": rng.normal(0, 0.05, shape),
        "z0SinTheta": rng.normal(0, 0.1, shape),
        "d0Uncertainty": rng.uniform(0.01, 0.05, shape),
        "z0SinThetaUncertainty": rng.uniform(0.02, 0.1, shape),
        "ftagTruthOriginLabel": rng.integers(0, 8, shape) if origins else np.full(shape, -1),
    }
    for name in HIT_FIELDS:
        columns[name] = rng.integers(0, 4, shape) if hits else np.full(shape, -1)
    # fields a canonical file may carry already computed (ATLAS signs)
    deta = columns["eta"] - jets["eta"][:, None]
    dphi = (columns["phi"] - jets["phi"][:, None] + np.pi) % (2 * np.pi) - np.pi
    sd0 = np.abs(columns["d0"] / columns["d0Uncertainty"])
    sz0 = np.abs(columns["z0SinTheta"] / columns["z0SinThetaUncertainty"])
    derived = {
        "deta": deta,
        "dphi": dphi,
        "IP3D_signed_d0_significance": sd0 * np.sign(np.sin(-dphi) * columns["d0"]),
        "IP3D_signed_z0_significance": sz0 * np.sign(-deta * columns["z0SinTheta"]),
    }
    columns.update({k: v for k, v in derived.items() if k in TRACK_DTYPE.names})
    tracks["valid"] = valid
    for name, values in columns.items():
        tracks[name] = np.where(valid, values, -1 if name == "ftagTruthOriginLabel" else 0)
    return jets, tracks


def _write(path: Path, jets, tracks, absent: list[str] | None) -> Path:
    """A canonical file; absent: its `absent_fields` attribute (None: a file from before it)."""
    attrs = {} if absent is None else {"absent_fields": json.dumps(absent)}
    with CanonicalWriter(path, JET_DTYPE, TRACK_DTYPE, MAX_TRACKS, attrs=attrs) as writer:
        writer.append(jets, tracks)
    return path


def _prepare_config(config, track_inputs=PROVIDED_TRACK_INPUTS, jet_inputs=()):
    prepare = cfg.section(cfg.PrepareConfig, config["prepare"])
    return dataclasses.replace(prepare, track_inputs=tuple(track_inputs), jet_inputs=jet_inputs)


def _by_name(config, names):
    """The default config's track inputs with these names (their default transforms)."""
    prepare = cfg.section(cfg.PrepareConfig, config["prepare"])
    return tuple(s for s in prepare.track_inputs if s.name in names)


# --- prepare: inputs the sample does not provide -------------------------------------------


def test_prepare_names_every_absent_input_and_the_key(tmp_path, config):
    jets, tracks = _tables(hits=False)
    absent = ["numberOfPixelHits", "numberOfSCTHits", "jet_phi", "jet_mass"]
    path = _write(tmp_path / "atlas.h5", jets, tracks, absent)
    track_inputs = (*PROVIDED_TRACK_INPUTS, *_by_name(config, absent))
    prepare = _prepare_config(config, track_inputs)
    out = tmp_path / "prepared"
    with pytest.raises(InputError) as info:
        prepare_dataset(path, prepare, 3, out)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "prepare.track_inputs names ['numberOfPixelHits', 'numberOfSCTHits']" in message
    assert "sample 'atlas' does not provide" in message
    assert message.endswith("remove them from prepare.track_inputs")
    assert not out.exists()  # refused before any work


def test_prepare_names_absent_jet_inputs_by_their_config_name(tmp_path, config):
    jets, tracks = _tables()
    path = _write(tmp_path / "x.h5", jets, tracks, ["jet_mass", "numberOfPixelHoles"])
    with h5py.File(path, "a") as f:
        f["jets"].attrs["sample"] = "zprime_atlas"
    prepare = _prepare_config(
        config,
        (*PROVIDED_TRACK_INPUTS, *_by_name(config, ["numberOfPixelHoles"])),
        jet_inputs=(InputConfig("pt", "log", True), InputConfig("mass", "none", True)),
    )
    with pytest.raises(InputError) as info:
        prepare_dataset(path, prepare, 3, tmp_path / "out")
    message = str(info.value)
    assert "prepare.track_inputs names ['numberOfPixelHoles']" in message
    assert "prepare.jet_inputs names ['mass']" in message  # 'pt' is provided
    assert "sample 'zprime_atlas'" in message
    assert message.endswith("remove them from prepare.track_inputs and prepare.jet_inputs")


def test_absent_fields_not_used_as_inputs_are_fine(tmp_path, config):
    jets, tracks = _tables(origins=False, hits=False)
    absent = [*HIT_FIELDS, "ftagTruthOriginLabel", "jet_phi", "jet_mass"]
    path = _write(tmp_path / "atlas.h5", jets, tracks, absent)
    prepare_dataset(path, _prepare_config(config), 3, tmp_path / "out")
    with h5py.File(tmp_path / "out" / "train.h5") as f:  # the attribute travels to the splits
        assert json.loads(f["jets"].attrs["absent_fields"]) == absent


def test_files_without_the_attribute_prepare_as_before(tmp_path, config):
    jets, tracks = _tables()
    old = _write(tmp_path / "old.h5", jets, tracks, None)
    new = _write(tmp_path / "new.h5", jets, tracks, [])
    names = [*(s.name for s in PROVIDED_TRACK_INPUTS), *HIT_FIELDS]
    prepare = _prepare_config(config, _by_name(config, names))
    counts = [prepare_dataset(p, prepare, 3, tmp_path / p.stem) for p in (old, new)]
    assert counts[0] == counts[1]
    norms = [yaml.safe_load((tmp_path / s / "norm.yaml").read_text()) for s in ("old", "new")]
    assert norms[0] == norms[1]
    assert set(norms[0]["tracks"]) == {s.name for s in prepare.track_inputs}
    assert norms[0]["tracks"]["numberOfPixelHits"]["std"] > 0  # real hit counts, not -1
    with h5py.File(tmp_path / "old" / "train.h5") as f:
        assert "absent_fields" not in f["jets"].attrs


def test_cli_reports_absent_inputs_with_exit_status_2(tmp_path, capsys):
    jets, tracks = _tables(hits=False)
    path = _write(tmp_path / "ttbar.h5", jets, tracks, list(HIT_FIELDS))
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(minimal_config()))  # default inputs use hit counts
    argv = ["prepare", "--config", str(config_path), "--dataset", "ttbar", "--input", str(path),
            "--output-dir", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jettag prepare: error: {path}: prepare.track_inputs names")
    assert str(list(HIT_FIELDS)) in err


# --- prepare: values a transform cannot take -----------------------------------------------


def _kept_valid(jets, tracks):
    """(jets in a class, valid-track mask of those jets): what prepare transforms."""
    keep = np.isin(jets["HadronConeExclTruthLabelID"], [5, 4, 0])
    return keep, tracks["valid"] & keep[:, None]


def test_log_transform_failure_names_file_variable_and_count(tmp_path, config):
    jets, tracks = _tables()
    rng = np.random.default_rng(1)
    flip = tracks["valid"] & (rng.random(tracks.shape) < 0.1)
    tracks["pt"][flip] *= -1  # e.g. a signed branch (q/p) mapped onto pt
    path = _write(tmp_path / "x.h5", jets, tracks, [])
    _, valid = _kept_valid(jets, tracks)
    n_negative, n_valid = int((flip & valid).sum()), int(valid.sum())
    assert 0 < n_negative < int(flip.sum())  # tau jets are dropped and not counted
    with pytest.raises(InputError) as info:
        prepare_dataset(path, _prepare_config(config), 3, tmp_path / "out")
    assert str(info.value) == (
        f"{path}: prepare.track_inputs 'ptfrac': log transform of {n_negative} negative values"
        f" (of {n_valid} valid tracks); check the branch mapped to this variable"
    )
    assert isinstance(info.value.__cause__, ValueError)
    assert re.fullmatch(r"log transform of \d+ negative values", str(info.value.__cause__))
    assert not (tmp_path / "out" / "train.h5").exists()


def test_every_failing_variable_is_named_at_once(tmp_path, config):
    jets, tracks = _tables()
    tracks["pt"][0, 0] = -3.0  # one negative pT: jet 0 is a b, c or light jet
    jets["HadronConeExclTruthLabelID"][0] = 5
    path = _write(tmp_path / "x.h5", jets, tracks, None)
    inputs = (*PROVIDED_TRACK_INPUTS[:3], InputConfig("d0", "log", True))
    _, valid = _kept_valid(jets, tracks)
    n_negative_d0 = int((tracks["d0"][valid] < 0).sum())
    with pytest.raises(InputError) as info:
        prepare_dataset(path, _prepare_config(config, inputs), 3, tmp_path / "out")
    message = str(info.value)
    assert "prepare.track_inputs 'ptfrac': log transform of 1 negative values" in message
    assert f"prepare.track_inputs 'd0': log transform of {n_negative_d0} negative values" in message
    assert message.endswith("check the branch mapped to these variables")


def test_bad_value_outside_the_training_split_is_named_too(tmp_path, config):
    # normalisation is fitted on train only, but val and test are transformed as well
    jets, tracks = _tables()
    split = assign_split(jets["eventNumber"], vars(_prepare_config(config).split))
    row = int(np.flatnonzero((split == 2) & (jets["HadronConeExclTruthLabelID"] != 15))[0])
    tracks["pt"][row, 0] = -1.0
    path = _write(tmp_path / "x.h5", jets, tracks, [])
    with pytest.raises(InputError, match=r"'ptfrac': log transform of 1 negative values \(of"):
        prepare_dataset(path, _prepare_config(config), 3, tmp_path / "out")


def test_jet_input_failure_names_the_jet_group(tmp_path, config):
    jets, tracks = _tables()
    # eta is signed: a log of it is a config mistake
    keep, _ = _kept_valid(jets, tracks)
    n_negative, n_jets = int((jets["eta"][keep] < 0).sum()), int(keep.sum())
    path = _write(tmp_path / "x.h5", jets, tracks, [])
    prepare = _prepare_config(config, jet_inputs=(InputConfig("eta", "log", True),))
    with pytest.raises(InputError) as info:
        prepare_dataset(path, prepare, 3, tmp_path / "out")
    assert f"{path}: prepare.jet_inputs 'eta': log transform of {n_negative} negative values" in (
        str(info.value)
    )
    assert f"(of {n_jets} jets)" in str(info.value)


# --- training: the track-origin task on data without origins -------------------------------


def _prepared(tmp_path: Path, config, origins: bool, absent: list[str] | None) -> Path:
    jets, tracks = _tables(origins=origins)
    path = _write(tmp_path / "sample.h5", jets, tracks, absent)
    out = tmp_path / "prepared"
    prepare_dataset(path, _prepare_config(config), 3, out)
    return out


def _origin_model(config, weight=0.5):
    model = cfg.model_config(config, "dips")
    training = dataclasses.replace(
        model.training, epochs=1, batch_size=64, track_origin_weight=weight
    )
    return dataclasses.replace(model, training=training)


@pytest.mark.parametrize(
    ("absent", "says"),
    [
        (["ftagTruthOriginLabel"], "which its sample does not provide"),
        (None, "'ftagTruthOriginLabel' is -1 (unknown) on all"),  # a file from before the attr
    ],
)
def test_track_origin_task_without_origins_is_refused(tmp_path, config, absent, says):
    data = _prepared(tmp_path, config, origins=False, absent=absent)
    out = tmp_path / "model"
    with pytest.raises(InputError) as info:
        train_model("dips", _origin_model(config), data, out, seed=1)
    message = str(info.value)
    assert message.startswith(f"{data / 'train.h5'}: ")
    assert says in message
    assert "set models.dips.training.track_origin_weight to 0" in message
    assert not (out / "history.csv").exists() and not (out / "last.pt").exists()


def test_cli_reports_missing_origins_with_exit_status_2(tmp_path, capsys, config):
    data = _prepared(tmp_path, config, origins=False, absent=["ftagTruthOriginLabel"])
    raw = minimal_config()
    raw["models"]["dips"]["training"].update(epochs=1, track_origin_weight=0.5)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    argv = ["train", "--config", str(config_path), "--model", "dips", "--data-dir", str(data),
            "--output-dir", str(tmp_path / "model")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jettag train: error: {data / 'train.h5'}: ")
    assert "models.dips.training.track_origin_weight" in err


def test_an_epoch_without_labelled_tracks_never_writes_a_nan_loss(tmp_path, config, monkeypatch):
    # should the file check miss a case, the loop itself refuses before writing the epoch
    data = _prepared(tmp_path, config, origins=False, absent=None)
    monkeypatch.setattr(loop, "check_track_origins", lambda paths, model_name: None)
    out = tmp_path / "model"
    with pytest.raises(InputError, match=r"set models\.dips\.training\.track_origin_weight to 0"):
        train_model("dips", _origin_model(config), data, out, seed=1)
    assert not (out / "history.csv").exists()


def test_track_origin_task_with_origins_trains_with_finite_losses(tmp_path, config):
    data = _prepared(tmp_path, config, origins=True, absent=list(HIT_FIELDS))
    out = tmp_path / "model"
    history = train_model("dips", _origin_model(config), data, out, seed=1)
    assert len(history) == 1
    with (out / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    for column in ("train_track_origin_loss", "val_track_origin_loss"):
        assert np.isfinite(float(rows[0][column])), column
