"""Real ntuples' defects never stop ingest without a way forward (issue 26, item 5).

Hand-built ATLAS-style ROOT and dumper HDF5 files (no uncertainty branches, as real ones)
with the defects found in held-out ATLAS files: tracks whose signed d0 (z0) significance is
exactly 0 while d0 (z0 sin theta) is not, so sigma = |d0 / sd0| cannot be derived; a derived
value that is not finite; a JetClass file already flipped by its preset; an LZ4 dumper file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

from jettag import config as cfg
from jettag.errors import InputError
from jettag.io.canonical import read_all
from jettag.io.ingest import ingest_sample
from tests.conftest import OWN_NTUPLE_JETS as N_JETS
from tests.conftest import minimal_config
from tests.ntuple_layouts import (
    write_atlas_root,
    write_atlas_tdd_h5,
    write_jetclass_root,
)
from tests.test_own_ntuples import SAMPLES

WRITERS = {"tdd": write_atlas_tdd_h5, "atlas_root": write_atlas_root}
N_ZERO_SD0, N_ZERO_SZ0 = 5, 3


def _ingest(name: str, path: Path, output: Path, **ingest_keys) -> dict:
    """Ingest one file of a sample with the given ingest settings."""
    raw = minimal_config(samples={name: SAMPLES[name]}, ingest=ingest_keys)
    raw["models"]["dips"]["dataset"] = name
    raw["baselines"]["ip3d"]["dataset"] = name
    config = cfg.validate_config(raw)
    settings = cfg.section(cfg.IngestConfig, config["ingest"])
    return ingest_sample(cfg.reading_config(config, name), [path], settings, output, name)


@pytest.fixture(scope="module")
def defects(source) -> dict:
    """The source with N_ZERO_SD0 tracks at sd0 = 0 and N_ZERO_SZ0 others at sz0 = 0."""
    jets, tracks = source
    tracks = tracks.copy()
    rng = np.random.default_rng(26)
    real = np.argwhere(tracks["valid"] & (tracks["d0"] != 0) & (tracks["z0SinTheta"] != 0))
    chosen = real[rng.choice(len(real), N_ZERO_SD0 + N_ZERO_SZ0, replace=False)]
    for row, col in chosen[:N_ZERO_SD0]:
        tracks["IP3D_signed_d0_significance"][row, col] = 0.0
    for row, col in chosen[N_ZERO_SD0:]:
        tracks["IP3D_signed_z0_significance"][row, col] = 0.0
    bad = np.zeros(tracks.shape, dtype=bool)
    bad[tuple(chosen.T)] = True
    return {"jets": jets, "tracks": tracks, "bad": bad}


@pytest.mark.parametrize("layout", ["tdd", "atlas_root"])
def test_degenerate_significance_drops_the_track_counts_and_logs_it(
    layout, defects, tmp_path, caplog
):
    path = WRITERS[layout](tmp_path / f"{layout}{Path(SAMPLES[layout]['files'][0]).suffix}",
                           defects["jets"], defects["tracks"])  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="jettag.io.ingest"):
        stats = _ingest(layout, path, tmp_path / "out.h5")
    jets, tracks = read_all(tmp_path / "out.h5")
    bad, source_tracks = defects["bad"], defects["tracks"]
    assert len(jets) == N_JETS and stats["degenerate_tracks_dropped"] == 8
    # each jet lost exactly its degenerate tracks (counted by hand from the defects)
    expected_n = source_tracks["valid"].sum(axis=1) - bad.sum(axis=1)
    np.testing.assert_array_equal(jets["n_tracks"], expected_n)
    np.testing.assert_array_equal(tracks["valid"].sum(axis=1), expected_n)
    # the kept tracks are the others, sigma(d0) = |d0 / sd0| as in the source
    kept = source_tracks["valid"] & ~bad
    np.testing.assert_allclose(
        np.sort(tracks["d0Uncertainty"][tracks["valid"]]),
        np.sort(source_tracks["d0Uncertainty"][kept]), rtol=2e-5,
    )  # fmt: skip
    assert np.isfinite(tracks["d0Uncertainty"][tracks["valid"]]).all()
    with h5py.File(tmp_path / "out.h5") as f:
        counts = json.loads(f["jets"].attrs["degenerate_significance"])
    assert counts == {"IP3D_signed_d0_significance": N_ZERO_SD0,
                      "IP3D_signed_z0_significance": N_ZERO_SZ0,
                      "tracks_dropped": N_ZERO_SD0 + N_ZERO_SZ0, "jets_dropped": 0}  # fmt: skip
    (record,) = [r for r in caplog.records if "degenerate" in r.getMessage()]
    assert str(path) in record.getMessage() and "dropped 8 tracks and 0 jets" in record.getMessage()


def test_degenerate_significance_drop_jet_and_error(defects, tmp_path):
    path = write_atlas_tdd_h5(tmp_path / "tdd.h5", defects["jets"], defects["tracks"])
    _ingest("tdd", path, tmp_path / "out.h5", degenerate_significance="drop_jet")
    jets, _ = read_all(tmp_path / "out.h5")
    bad_jets = defects["bad"].any(axis=1)
    assert len(jets) == N_JETS - int(bad_jets.sum())
    np.testing.assert_array_equal(jets["eventNumber"], defects["jets"]["eventNumber"][~bad_jets])
    with h5py.File(tmp_path / "out.h5") as f:
        counts = json.loads(f["jets"].attrs["degenerate_significance"])
    assert counts["jets_dropped"] == int(bad_jets.sum())
    assert counts["tracks_dropped"] == int(defects["tracks"]["valid"][bad_jets].sum())

    expected = (
        rf"{path}: {N_ZERO_SD0} with 'IP3D_signed_d0_significance' = 0, {N_ZERO_SZ0}"
        r" with 'IP3D_signed_z0_significance' = 0 .*ingest\.degenerate_significance"
    )
    with pytest.raises(InputError, match=expected):
        _ingest("tdd", path, tmp_path / "err.h5", degenerate_significance="error")
    assert not (tmp_path / "err.h5").exists()


def test_non_finite_governs_derived_fields(source, tmp_path):
    """q/p = 0 makes the derived track pT = sin(theta) / |q/p| infinite."""
    jets, tracks = source
    path = write_atlas_tdd_h5(tmp_path / "tdd.h5", jets, tracks)
    with h5py.File(path, "a") as f:
        table = f["tracks"][:]
        row = int(np.argmax(table["valid"].sum(axis=1) > 2))
        table["qOverP"][row, 1] = 0.0
        f["tracks"][...] = table
    expected = (rf"{path}: trk_pt = sin\(theta\) / \|q/p\|, derived from trk_qOverP, trk_theta"
                r" \(branches 'qOverP'\), is not finite for 1 of \d+ values in 1 jets;"
                r" ingest\.non_finite: drop")  # fmt: skip
    with pytest.raises(InputError, match=expected):
        _ingest("tdd", path, tmp_path / "err.h5")
    _ingest("tdd", path, tmp_path / "out.h5", non_finite="drop")
    out_jets, out_tracks = read_all(tmp_path / "out.h5")
    assert len(out_jets) == N_JETS - 1
    np.testing.assert_allclose(out_jets["pt"], np.delete(jets["pt"], row), rtol=1e-6)
    assert np.isfinite(out_tracks["pt"][out_tracks["valid"]]).all()
    with h5py.File(tmp_path / "out.h5") as f:
        assert json.loads(f["jets"].attrs["dropped_non_finite"]) == {"jets": 1, "trk_pt": 1}


def test_lifetime_sign_advice_follows_the_preset(source, tmp_path):
    """A JetClass file whose d0 already has ATLAS's sign, read with the preset's flip."""
    jets, tracks = source
    flipped = tracks.copy()
    flipped["d0"] = -tracks["d0"]  # the writer negates d0 (Delphes): ATLAS's sign on file
    path = write_jetclass_root(tmp_path / "jetclass.root", jets, flipped)
    with pytest.raises(InputError) as err:
        _ingest("jetclass", path, tmp_path / "out.h5")
    text = str(err.value)
    assert "d0_sign is already 'opposite' (set by the sample or its preset)" in text
    assert "set samples.jetclass.d0_sign: atlas" in text
    assert "d0_sign: opposite to flip" not in text


def test_lifetime_sign_advice_for_a_significance_read_as_given(source, tmp_path):
    jets, tracks = source
    flipped = tracks.copy()
    flipped["IP3D_signed_d0_significance"] = -tracks["IP3D_signed_d0_significance"]
    path = write_atlas_root(tmp_path / "atlas.root", jets, flipped)
    with pytest.raises(InputError) as err:
        _ingest("atlas_root", path, tmp_path / "out.h5")
    text = str(err.value)
    assert "from the file (samples.atlas_root.branches.trk_IP3D_signed_d0_significance)" in text
    assert "d0_sign does not change it" in text and "d0_sign: opposite" not in text


def test_lz4_compressed_dumper_file_reads(source, tmp_path):
    jets, tracks = source
    plain = write_atlas_tdd_h5(tmp_path / "plain.h5", jets, tracks)
    lz4 = tmp_path / "lz4.h5"
    with h5py.File(plain) as f, h5py.File(lz4, "w") as out:
        for name in ("jets", "tracks"):
            out.create_dataset(name, data=f[name][:], chunks=True, **hdf5plugin.LZ4())
    with h5py.File(lz4) as f:  # the filter really is LZ4 (HDF5 registered filter 32004)
        assert 32004 in f["tracks"]._filters or "32004" in f["tracks"]._filters
    _ingest("tdd", lz4, tmp_path / "from_lz4.h5")
    out_jets, out_tracks = read_all(tmp_path / "from_lz4.h5")
    np.testing.assert_allclose(out_jets["pt"], jets["pt"], rtol=1e-6)  # MeV -> GeV
    np.testing.assert_allclose(np.sort(out_tracks["d0"][out_tracks["valid"]]),
                               np.sort(tracks["d0"][tracks["valid"]]), rtol=1e-6)  # fmt: skip
    _ingest("tdd", plain, tmp_path / "from_plain.h5")
    # identical to the uncompressed file's, absent fields' NaN included: compare the bytes
    assert read_all(tmp_path / "from_plain.h5")[1].tobytes() == out_tracks.tobytes()
