"""Bad input made from real generated data: truncation order, jets without tracks, a class
missing from a split, corrupted HDF5 files, and what a failure leaves on disk.

See docs/reliability.md for the table of every case and the test that covers it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from jettag import config as cfg
from jettag.atomic import temporaries, write_json
from jettag.errors import InputError
from jettag.evaluation.predict import predict
from jettag.features.prepare import prepare_dataset
from jettag.features.split import SPLITS, assign_split
from jettag.io.canonical import read_all
from jettag.io.ingest import ingest_sample
from jettag.models import ip3d
from jettag.training.loop import train_model
from tests.conftest import minimal_config

# The keys as the schema defines them, written out again here (not taken from the reader).
SORT_KEY_VALUES = {
    "abs_sd0": lambda t: np.abs(t["d0"]) / t["d0Uncertainty"],
    "abs_sz0": lambda t: np.abs(t["z0SinTheta"]) / t["z0SinThetaUncertainty"],
    "abs_d0": lambda t: np.abs(t["d0"]),
    "pt": lambda t: t["pt"],
}


def _ingest(config: dict, inputs, output: Path, **ingest_overrides) -> dict[str, int]:
    """Ingest the config's ttbar sample from inputs with some ingest keys changed."""
    ingest = cfg.section(cfg.IngestConfig, {**config["ingest"], **ingest_overrides})
    return ingest_sample(cfg.reading_config(config, "ttbar"), inputs, ingest, output)


def _write_input(path: Path, jets: np.ndarray, tracks: np.ndarray) -> Path:
    """An FTAG-layout HDF5 input file (what another framework would hand over)."""
    with h5py.File(path, "w") as f:
        f["jets"], f["tracks"] = jets, tracks
    return path


def test_truncation_keeps_the_top_tracks_of_the_configured_sort_key(
    tmp_path, config, generated_root, caplog
):
    _ingest(config, [generated_root], tmp_path / "all.h5", max_tracks=1000)
    full = read_all(tmp_path / "all.h5")[1]
    n_real = full["valid"].sum(axis=1)
    n_keep = 3
    truncated = n_real > n_keep
    assert truncated.sum() > 50  # the test needs jets that lose tracks
    kept_by = {}
    for key, value_of in SORT_KEY_VALUES.items():
        caplog.clear()
        out = tmp_path / f"{key}.h5"
        with caplog.at_level(logging.INFO, logger="jettag.io.ingest"):
            stats = _ingest(config, [generated_root], out, max_tracks=n_keep, sort_key=key)
        assert f"ingest.sort_key {key}" in caplog.text  # the log names the key
        assert stats["truncated_jets"] == truncated.sum()
        assert stats["tracks_dropped"] == (n_real - n_keep)[truncated].sum()
        jets, tracks = read_all(out)
        with h5py.File(out) as f:
            assert f["jets"].attrs["track_sort_key"] == key
        with np.errstate(invalid="ignore"):  # 0/0 on padding, never compared
            kept = value_of(tracks)
        for j in range(len(jets)):
            top = np.sort(value_of(full[j][full["valid"][j]]))[::-1][:n_keep]
            np.testing.assert_array_equal(kept[j][tracks["valid"][j]], top, err_msg=f"{key} {j}")
        kept_by[key] = tracks
    # the key matters: pT and |d0|/sigma keep different tracks in most truncated jets
    differ = (kept_by["pt"]["pt"] != kept_by["abs_sd0"]["pt"]).any(axis=1)
    assert differ.sum() > 0.5 * truncated.sum()

    raw = minimal_config(ingest={"sort_key": "d0 / d0Uncertainty"})
    with pytest.raises(cfg.ConfigError, match=r"ingest\.sort_key"):
        cfg.validate_config(raw)  # named keys only: no expression is ever evaluated


def test_jets_without_tracks_pass_every_stage_with_finite_outputs(
    tmp_path, ingested, generated_root, caplog
):
    jets, tracks = read_all(ingested)
    emptied = np.arange(len(jets)) % 4 == 1
    tracks[emptied] = np.zeros((), tracks.dtype)
    tracks["ftagTruthOriginLabel"][emptied] = -1
    source = _write_input(tmp_path / "input.h5", jets, tracks)
    n_empty = int((tracks["valid"].sum(axis=1) == 0).sum())
    assert n_empty > emptied.sum()  # the generated sample has a few of its own as well
    raw = minimal_config()
    raw["models"]["transformer"] = {
        "dataset": "ttbar", "architecture": "transformer",
        "transformer": {"embed_dim": 16, "num_heads": 2, "num_layers": 1, "init_layers": [16],
                        "jet_layers": [16]},
        "training": {"epochs": 1, "batch_size": 128, "bucket_by_multiplicity": True},
    }  # fmt: skip
    config = cfg.validate_config(raw)
    with caplog.at_level(logging.INFO, logger="jettag.io.ingest"):
        stats = _ingest(config, [source], tmp_path / "ingested.h5")
    assert stats["zero_track_jets"] == n_empty
    assert f"{n_empty} jets have no tracks" in caplog.text
    stats = _ingest(config, [generated_root], tmp_path / "plain.h5")
    assert stats["zero_track_jets"] == (read_all(ingested)[0]["n_tracks"] == 0).sum()

    data = tmp_path / "prepared"
    prepare = cfg.section(cfg.PrepareConfig, config["prepare"])
    prepare_dataset(tmp_path / "ingested.h5", prepare, 3, data)
    with h5py.File(data / "test.h5") as f:
        test_empty = f["jets"]["n_tracks"] == 0
    assert test_empty.sum() > 20
    for name in ("dips", "transformer"):
        model = cfg.model_config(config, name)
        model = dataclasses.replace(  # one epoch: every jet goes through forward and backward
            model, training=dataclasses.replace(model.training, epochs=1, batch_size=128)
        )
        history = train_model(name, model, data, tmp_path / name, seed=1)
        assert all(np.isfinite(row["train_loss"]) and np.isfinite(row["val_loss"])
                   for row in history)  # fmt: skip
        predict(name, data / "test.h5", [tmp_path / name / "best.pt"], "network",
                tmp_path / f"{name}.h5")  # fmt: skip
    with h5py.File(data / "train.h5") as f:
        train_jets, train_tracks = f["jets"][:], f["tracks"][:]
    baseline = cfg.baseline_config(config, "ip3d")
    templates = ip3d.fit_templates(train_tracks, train_jets["flavour_label"], prepare.class_names,
                                   baseline.sd0_bins, baseline.sz0_bins)  # fmt: skip
    write_json(tmp_path / "templates.json", templates.to_dict())
    predict("ip3d", data / "test.h5", [tmp_path / "templates.json"], "ip3d", tmp_path / "ip3d.h5")
    for name in ("dips", "transformer", "ip3d"):
        with h5py.File(tmp_path / f"{name}.h5") as f:
            scores = f["jets"][:]
        assert np.array_equal(scores["n_tracks"] == 0, test_empty)
        probs = np.stack([scores[f"{name}_{p}"] for p in ("pb", "pc", "pu")], axis=1)
        assert np.isfinite(probs).all(), name
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_a_class_missing_from_a_split_is_a_clear_error(tmp_path, ingested, config):
    jets, tracks = read_all(ingested)
    prepare = cfg.section(cfg.PrepareConfig, config["prepare"])
    c_labels = next(c.truth_labels for c in prepare.classes if c.name == "c")
    in_val = assign_split(jets["eventNumber"], vars(prepare.split)) == SPLITS.index("val")
    drop = in_val & np.isin(jets["HadronConeExclTruthLabelID"], c_labels)
    assert drop.sum() > 0
    source = _write_input(tmp_path / "no_val_c.h5", jets[~drop], tracks[~drop])
    out = tmp_path / "prepared"
    with pytest.raises(InputError, match=r"no_val_c\.h5: the val split has no 'c' jets"):
        prepare_dataset(source, prepare, 3, out)
    assert list(out.iterdir()) == []  # no split file, no scratch directory


def _chunk_span(path: Path, dataset: str, index: int) -> tuple[int, int]:
    """(byte offset, size) of one stored chunk of a dataset."""
    with h5py.File(path) as f:
        info = f[dataset].id.get_chunk_info(index)
    return info.byte_offset, info.size


def _corrupt(data: bytes, offset: int, rng: np.random.Generator, n: int = 16) -> bytes:
    """data with n random bytes written at offset (each differing from the byte it replaces)."""
    out = bytearray(data)
    for k in range(offset, min(offset + n, len(out))):
        out[k] = (out[k] + int(rng.integers(1, 256))) % 256
    return bytes(out)


def test_corrupted_hdf5_input_is_an_error_naming_the_file(tmp_path, ingested, config):
    with h5py.File(ingested) as f:
        assert f["tracks"].fletcher32 and f["jets"].fletcher32  # what makes data errors show
    data = ingested.read_bytes()
    clean = read_all(ingested)
    rng = np.random.default_rng(8)
    chunk_offset, chunk_size = _chunk_span(ingested, "tracks", 0)
    targeted = {
        "signature": 0,
        "metadata": 1024 + int(rng.integers(0, 1024)),
        "tracks chunk": chunk_offset + chunk_size // 2,
    }
    anywhere = {f"random {k}": int(o) for k, o in enumerate(rng.integers(0, len(data), 24))}
    outcomes = {}
    for case, offset in {**targeted, **anywhere}.items():
        broken = tmp_path / f"broken_{offset}.h5"
        broken.write_bytes(_corrupt(data, offset, rng))
        out = tmp_path / "out.h5"
        try:
            _ingest(config, [broken], out)
        except InputError as err:
            assert str(err).startswith(str(broken)), err  # the message names the file
            assert not out.exists() and not temporaries(out)
            outcomes[case] = "error"
            continue
        # bytes that no reader looks at (free space, unused header fields) may change
        got = read_all(out)
        assert all(np.array_equal(a, b) for a, b in zip(got, clean, strict=True)), case
        outcomes[case] = "same"
        out.unlink()
    assert all(outcomes[case] == "error" for case in targeted), outcomes
    assert sum(v == "error" for v in outcomes.values()) > len(anywhere) // 2, outcomes


def test_corrupted_root_input_is_an_error_naming_the_file(tmp_path, generated_root, config):
    clean_out = tmp_path / "clean.h5"
    _ingest(config, [generated_root], clean_out)
    clean = read_all(clean_out)
    data = generated_root.read_bytes()
    rng = np.random.default_rng(9)
    outcomes = []
    for offset in [0, *rng.integers(0, len(data), 16)]:  # the signature, then anywhere
        broken = tmp_path / f"broken_{offset}.root"
        broken.write_bytes(_corrupt(data, int(offset), rng))
        out = tmp_path / "out.h5"
        try:
            _ingest(config, [broken], out)
        except InputError as err:
            assert str(err).startswith(str(broken)), err
            assert not out.exists() and not temporaries(out)
            outcomes.append("error")
            continue
        assert all(np.array_equal(a, b) for a, b in zip(read_all(out), clean, strict=True))
        outcomes.append("same")
        out.unlink()
    assert outcomes[0] == "error", outcomes
    assert outcomes.count("error") > len(outcomes) // 2, outcomes


def test_missing_input_file_and_missing_hdf5_dataset_or_field(tmp_path, ingested, config):
    with pytest.raises(InputError, match=r"nowhere\.root: input file does not exist"):
        _ingest(config, [tmp_path / "nowhere.root"], tmp_path / "out.h5")
    jets, tracks = read_all(ingested)
    with h5py.File(tmp_path / "no_tracks.h5", "w") as f:
        f["jets"] = jets
    with pytest.raises(
        InputError, match=r"no_tracks\.h5: no dataset 'tracks'; the file has \['jets'\]"
    ):
        _ingest(config, [tmp_path / "no_tracks.h5"], tmp_path / "out.h5")
    # neither sigma(z0 sin theta) nor the significance it could be derived from
    gone = ("z0SinThetaUncertainty", "IP3D_signed_z0_significance")
    names = [n for n in tracks.dtype.names if n not in gone]
    source = _write_input(tmp_path / "no_sigma.h5", jets, tracks[names])
    with pytest.raises(InputError, match=r"no_sigma\.h5: sample .* cannot be read") as err:
        _ingest(config, [source], tmp_path / "out.h5")
    assert "trk_z0SinThetaUncertainty: set samples." in str(err.value)
    assert "trk_IP3D_signed_z0_significance: set samples." in str(err.value)
    assert "tracks: [" in str(err.value)  # what the file has
    assert list(tmp_path.glob("out.h5*")) == [] and list(tmp_path.glob(".out.h5*")) == []


def test_a_failed_ingest_leaves_other_samples_alone_and_no_partial_output(
    tmp_path, ingested, generated_root, config
):
    outputs = tmp_path / "data" / "ingested"
    finished = outputs / "ttbar.h5"
    _ingest(config, [generated_root], finished)
    before, stat = finished.read_bytes(), finished.stat()
    # the last chunk of tracks is corrupt: blocks before it are written, then reading fails
    with h5py.File(ingested) as f:
        n_jets, rows_per_chunk = f["tracks"].shape[0], f["tracks"].chunks[0]
        last = f["tracks"].id.get_num_chunks() - 1
    assert last >= 1 and n_jets > 600
    offset, size = _chunk_span(ingested, "tracks", last)
    broken = tmp_path / "zprime_0.h5"
    broken.write_bytes(
        _corrupt(ingested.read_bytes(), offset + size // 2, np.random.default_rng(2))
    )
    failed = outputs / "zprime.h5"
    first_bad_block = last * rows_per_chunk // 200 * 200
    with pytest.raises(
        InputError, match=rf"zprime_0\.h5: failed reading rows from {first_bad_block}"
    ):
        _ingest(config, [broken], failed, chunk_jets=200)
    assert sorted(p.name for p in outputs.iterdir()) == ["ttbar.h5"]  # no partial, no temp
    assert finished.read_bytes() == before
    assert finished.stat().st_mtime_ns == stat.st_mtime_ns


def test_atomic_outputs_are_as_readable_as_other_files_and_stale_temporaries_go(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    target = tmp_path / "metrics.json"
    killed = tmp_path / ".metrics.json.k1ll3d.json.tmp"  # what a SIGKILL mid-write leaves
    killed.write_text('{"half": ')
    os.utime(killed, (time.time() - 60, time.time() - 60))
    busy = tmp_path / ".metrics.json.busy00.json.tmp"  # another writer, still at work
    busy.write_text("{")
    os.utime(busy, (time.time() + 60, time.time() + 60))
    assert temporaries(target) == sorted([killed, busy])
    write_json(target, {"auc": 0.9})
    assert json.loads(target.read_text()) == {"auc": 0.9}
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777  # not mkstemp's 0600
    assert temporaries(target) == [busy]
