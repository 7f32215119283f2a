"""Sharded ingest (one job per input file) and prepare over the parts: the map-reduce.

The parts of a sample prepare to the same files as one ingest over all of its files; a file
without event numbers is numbered on from the sample's earlier files; attributes add up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from jettag import config as cfg
from jettag.commands import stage_settings
from jettag.errors import InputError
from jettag.features.prepare import prepare_dataset
from jettag.io.canonical import iterate_blocks, merged_attrs, read_all
from jettag.io.ingest import entries_before, ingest_sample
from tests.conftest import copy_workflow, minimal_config
from tests.ntuple_layouts import write_jetclass_root

N_FILES = 3
JETS_PER_FILE = 200
# JetClass files have no hit counts, origins or impact-parameter-free inputs to spare
TRACK_INPUTS = [
    {"name": "IP3D_signed_d0_significance", "transform": "signed_log"},
    {"name": "IP3D_signed_z0_significance", "transform": "signed_log"},
    {"name": "ptfrac", "transform": "log"},
    {"name": "dr", "transform": "log"},
]


def _config(files: list[Path]) -> dict:
    """A validated config with one JetClass-layout sample (no event numbers) of the files."""
    raw = minimal_config(
        samples={
            "jc": {
                "source": "root",
                "files": [str(f) for f in files],
                "preset": "jetclass",
                "labels": {"one_hot": {"b": "label_b", "c": "label_c", "light": "label_l"}},
            }
        },
        prepare={"track_inputs": TRACK_INPUTS, "jet_inputs": []},
    )
    raw["models"]["dips"]["dataset"] = "jc"
    raw["baselines"]["ip3d"]["dataset"] = "jc"
    return cfg.validate_config(raw)


@pytest.fixture(scope="module")
def jetclass_files(ingested, tmp_path_factory) -> list[Path]:
    """The session's b, c and light jets in N_FILES JetClass-style ROOT files."""
    jets, tracks = read_all(ingested)
    keep = np.isin(jets["HadronConeExclTruthLabelID"], [0, 4, 5])
    jets, tracks = jets[keep], tracks[keep]
    assert len(jets) >= N_FILES * JETS_PER_FILE
    directory = tmp_path_factory.mktemp("jetclass_parts")
    files = []
    for k in range(N_FILES):
        rows = slice(k * JETS_PER_FILE, (k + 1) * JETS_PER_FILE)
        files.append(write_jetclass_root(directory / f"part{k}.root", jets[rows], tracks[rows]))
    return files


def _ingest_parts(config: dict, files: list[Path], directory: Path) -> list[Path]:
    """Each file ingested on its own, as the workflow's ingest jobs do."""
    ingest = cfg.section(cfg.IngestConfig, config["ingest"])
    sample = cfg.reading_config(config, "jc")
    parts = []
    for index, path in enumerate(files):
        settings = stage_settings("ingest", config, sample="jc", part=index).as_dict()
        first = entries_before(sample, [Path(p) for p in settings.get("earlier_files", [])])
        parts.append(directory / f"{index}.h5")
        ingest_sample(sample, [path], ingest, parts[-1], "jc", first)
    return parts


def _datasets(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file by its path."""
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset)
            else None
        )  # fmt: skip
    return out


def test_parts_prepare_to_the_same_files_as_one_ingest(jetclass_files, tmp_path):
    config = _config(jetclass_files)
    single = tmp_path / "single.h5"
    ingest = cfg.section(cfg.IngestConfig, config["ingest"])
    ingest_sample(cfg.reading_config(config, "jc"), jetclass_files, ingest, single, "jc")
    parts = _ingest_parts(config, jetclass_files, tmp_path / "parts")

    # no event numbers in the files: entries numbered 0.. across the sample, part by part
    part_events = np.concatenate([read_all(p)[0]["eventNumber"] for p in parts])
    np.testing.assert_array_equal(part_events, np.arange(N_FILES * JETS_PER_FILE))
    np.testing.assert_array_equal(read_all(single)[0]["eventNumber"], part_events)

    prepare = cfg.section(cfg.PrepareConfig, config["prepare"])
    prepare_dataset(single, prepare, 5, tmp_path / "from_single")
    prepare_dataset(parts, prepare, 5, tmp_path / "from_parts")
    for name in ("norm.yaml", "weights.yaml"):
        a = (tmp_path / "from_single" / name).read_bytes()
        assert a == (tmp_path / "from_parts" / name).read_bytes(), name
    for name in ("train.h5", "val.h5", "test.h5"):
        a, b = _datasets(tmp_path / "from_single" / name), _datasets(tmp_path / "from_parts" / name)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}:{key}")
        with (
            h5py.File(tmp_path / "from_single" / name) as fa,
            h5py.File(tmp_path / "from_parts" / name) as fb,
        ):
            attrs_a, attrs_b = dict(fa["jets"].attrs), dict(fb["jets"].attrs)
        assert attrs_a.keys() == attrs_b.keys()
        for key in attrs_a:
            assert np.array_equal(np.asarray(attrs_a[key]), np.asarray(attrs_b[key])), key


def test_blocks_cross_part_boundaries_as_in_one_file(jetclass_files, tmp_path):
    config = _config(jetclass_files)
    parts = _ingest_parts(config, jetclass_files, tmp_path)
    sizes = [len(jets) for jets, _ in iterate_blocks(parts, 150)]
    assert sizes == [150, 150, 150, 150]  # 600 jets in parts of 200
    jets = np.concatenate([j for j, _ in iterate_blocks(parts, 150)])
    np.testing.assert_array_equal(jets, np.concatenate([read_all(p)[0] for p in parts]))


def test_part_attributes_add_up(jetclass_files, tmp_path):
    config = _config(jetclass_files)
    parts = _ingest_parts(config, jetclass_files, tmp_path)
    counts = []
    for path in parts:
        with h5py.File(path) as f:
            counts.append(json.loads(f["jets"].attrs["lifetime_sign_counts"]))
    merged = merged_attrs(parts)
    total = json.loads(merged["lifetime_sign_counts"])
    for flavour in ("b", "c", "light"):
        for key in ("tracks", "positive", "negative"):
            assert total[flavour][key] == sum(c[flavour][key] for c in counts)
    fractions = json.loads(merged["lifetime_sign_fractions"])
    b = total["b"]
    assert fractions["b"]["above_plus_3"] == pytest.approx(b["positive"] / b["tracks"])
    sources = json.loads(merged["field_sources"])
    assert list(sources) == [str(f) for f in jetclass_files]


def test_parts_ingested_with_other_settings_are_refused(jetclass_files, tmp_path):
    config = _config(jetclass_files)
    parts = _ingest_parts(config, jetclass_files, tmp_path)
    with h5py.File(parts[1], "a") as f:
        f["jets"].attrs["track_sort_key"] = "pt"
    with pytest.raises(InputError, match=r"1\.h5: jets attribute 'track_sort_key'"):
        merged_attrs(parts)


def test_part_index_outside_the_sample_is_a_config_error(jetclass_files):
    config = _config(jetclass_files)
    with pytest.raises(cfg.ConfigError, match=r"part 3 of sample 'jc' outside 0\.\.2"):
        stage_settings("ingest", config, sample="jc", part=3)


@pytest.mark.slow
def test_appending_a_file_ingests_only_that_file(jetclass_files, tmp_path):
    """The workflow: one ingest job per file; a new file reruns its ingest and the reduce."""
    copy_workflow(tmp_path)
    files = []
    for path in jetclass_files:
        files.append(tmp_path / path.name)
        files[-1].write_bytes(path.read_bytes())
    raw = _config(files[:2])
    raw_config = {k: raw[k] for k in ("seed", "samples", "models", "baselines", "prepare")}
    config_path = tmp_path / "analysis.yaml"
    config_path.write_text(yaml.safe_dump(raw_config))
    run = [sys.executable, "-m", "snakemake", "data/prepared/jc/train.h5", "--cores", "2",
           "--configfile", str(config_path)]  # fmt: skip
    subprocess.run(run, cwd=tmp_path, check=True, capture_output=True)
    assert sorted(p.name for p in (tmp_path / "data/ingested/jc").iterdir()) == ["0.h5", "1.h5"]
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "data/ingested/jc").iterdir()}

    raw_config["samples"]["jc"]["files"].append(str(files[2]))
    config_path.write_text(yaml.safe_dump(raw_config))
    subprocess.run(run, cwd=tmp_path, check=True, capture_output=True)
    log = (tmp_path / ".snakemake/log").glob("*.snakemake.log")
    last = max(log, key=lambda p: p.stat().st_mtime).read_text()
    assert last.count("rule ingest:") == 1, last
    assert "part=2" in last or "part: 2" in last or "/2.h5" in last
    for path, mtime in before.items():  # the earlier parts were not redone
        assert path.stat().st_mtime_ns == mtime, path
    assert (tmp_path / "data/ingested/jc/2.h5").exists()
