"""Users' own ntuples by configuration alone: the same jets in three layouts ingest alike.

The jets are Pythia 8 jets made by the code (the session's ingested sample), written as an
ATLAS training-dataset-dumper HDF5 file (MeV), an ATLAS-style ROOT ntuple (MeV, jagged
jet_trk_* branches) and a JetClass-style ROOT file (four-vectors, Delphes's d0 sign, one-hot
labels, no event number); each is read with a preset or a hand-written branch map.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from jettag import config as cfg
from jettag.errors import InputError
from jettag.evaluation.metrics import auc
from jettag.io.canonical import read_all
from jettag.io.ingest import ingest_sample
from jettag.models import ip3d
from tests.conftest import minimal_config
from tests.ntuple_layouts import (
    ATLAS_ROOT_BRANCHES,
    ATLAS_ROOT_TREE,
    write_atlas_root,
    write_atlas_tdd_h5,
    write_jetclass_root,
)

SAMPLES = {
    "tdd": {"source": "h5", "files": ["tdd.h5"], "preset": "atlas_tdd"},
    "atlas_root": {
        "source": "root", "files": ["atlas.root"], "tree": ATLAS_ROOT_TREE,
        "units": {"energy": "MeV"}, "branches": ATLAS_ROOT_BRANCHES,
    },
    # a JetClass-style file labelled b/c/light (ntuple_layouts.write_jetclass_root)
    "jetclass": {"source": "root", "files": ["jetclass.root"], "preset": "jetclass",
                 "labels": {"one_hot": {"b": "label_b", "c": "label_c", "light": "label_l"}}},
}  # fmt: skip


def config_with(samples: dict) -> dict:
    """A validated config whose models train on the first of the given samples."""
    raw = minimal_config(samples=samples)
    first = next(iter(samples))
    raw["models"]["dips"]["dataset"] = first
    raw["baselines"]["ip3d"]["dataset"] = first
    return cfg.validate_config(raw)


def ingest(config: dict, name: str, files: list[Path], output: Path) -> dict:
    """Run the ingest stage on one sample of a config."""
    ingest_config = cfg.section(cfg.IngestConfig, config["ingest"])
    return ingest_sample(cfg.reading_config(config, name), files, ingest_config, output, name)


@pytest.fixture(scope="module")
def layouts(source, tmp_path_factory) -> dict[str, Path]:
    """The three layouts ingested: sample name -> canonical file."""
    jets, tracks = source
    directory = tmp_path_factory.mktemp("layouts")
    files = {
        "tdd": write_atlas_tdd_h5(directory / "tdd.h5", jets, tracks),
        "atlas_root": write_atlas_root(directory / "atlas.root", jets, tracks),
        "jetclass": write_jetclass_root(directory / "jetclass.root", jets, tracks),
    }
    config = config_with(SAMPLES)
    out = {}
    for name, path in files.items():
        out[name] = directory / f"{name}.h5"
        ingest(config, name, [path], out[name])
    return out


JET_FIELDS = ("pt", "eta", "HadronConeExclTruthLabelID")
TRACK_FIELDS = (
    "valid", "pt", "eta", "charge", "d0", "z0SinTheta", "d0Uncertainty",
    "z0SinThetaUncertainty", "IP3D_signed_d0_significance", "IP3D_signed_z0_significance",
    "deta", "dphi",
)  # fmt: skip


def _assert_same(a: np.ndarray, b: np.ndarray, names, what: str) -> None:
    for name in names:
        if a[name].dtype.kind == "f":
            np.testing.assert_allclose(a[name], b[name], rtol=2e-5, atol=2e-6,
                                       err_msg=f"{what}: {name}")  # fmt: skip
        else:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{what}: {name}")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_layout_gives_the_canonical_file(name, layouts, source):
    jets, tracks = read_all(layouts[name])
    ref_jets, ref_tracks = source
    assert len(jets) == len(ref_jets)
    _assert_same(jets, ref_jets, JET_FIELDS, name)
    _assert_same(tracks, ref_tracks, TRACK_FIELDS, name)
    with h5py.File(layouts[name]) as f:
        absent = json.loads(f["jets"].attrs["absent_fields"])
        sources = json.loads(f["jets"].attrs["field_sources"])
    lines = next(iter(sources.values()))
    if name == "tdd":  # no jet phi or mass, no track phi: placeholders, listed
        # (these hand-made dumper files carry no truth vertex index either)
        assert absent == ["ftagTruthVertexIndex", "jet_mass", "jet_phi", "phi"]
        assert np.isnan(jets["phi"]).all() and np.isnan(tracks["phi"][tracks["valid"]]).all()
        _assert_same(jets, ref_jets, ["eventNumber"], name)
        _assert_same(tracks, ref_tracks, ["ftagTruthOriginLabel", "numberOfPixelHits"], name)
        assert "trk_pt = sin(theta) / |q/p| (from trk_qOverP, trk_theta)" in lines
        assert "trk_d0Uncertainty = |d0 / sd0| (from trk_d0, trk_IP3D_signed_d0_significance)" in (
            lines
        )
        assert "jet_pt <- 'pt_btagJes' [MeV]" in lines
    elif name == "atlas_root":
        assert absent == ["ftagTruthVertexIndex"]
        _assert_same(jets, ref_jets, ["phi", "mass", "eventNumber"], name)
        _assert_same(tracks, ref_tracks, ["phi", "ftagTruthOriginLabel", "numberOfSCTHits"], name)
    else:  # JetClass: no hits, no origins, no event number; neutrals dropped
        assert "ftagTruthOriginLabel" in absent and "numberOfPixelHits" in absent
        assert jets["eventNumber"].tolist() == list(range(len(jets)))
        _assert_same(jets, ref_jets, ["phi"], name)
        _assert_same(tracks, ref_tracks, ["phi"], name)
        # sqrt(E^2 - p^2) of a float32 energy and momentum: dm = E dE / m, dE a few float
        # roundings of E (relative 1e-3 of m for most jets, more for light, energetic ones)
        m = ref_jets["mass"].astype(np.float64)
        energy = np.hypot(ref_jets["pt"] * np.cosh(ref_jets["eta"]), m)
        tolerance = 8 * np.finfo(np.float32).eps * energy**2 / m
        assert np.all(np.abs(jets["mass"] - m) <= tolerance)
        assert np.median(np.abs(jets["mass"] / m - 1)) < 1e-4
        assert (tracks["ftagTruthOriginLabel"][tracks["valid"]] == -1).all()
        assert "jet_eventNumber = entry number (the file has none)" in lines


def _ip3d_auc(path: Path) -> float:
    """IP3D-like AUC (b vs light): templates from even jets, scored on odd ones."""
    jets, tracks = read_all(path)
    label = jets["HadronConeExclTruthLabelID"]
    classes = ["b", "c", "light"]
    index = np.select([label == 5, label == 4], [0, 1], 2)
    edges = np.linspace(-20, 20, 41)
    templates = ip3d.fit_templates(tracks[::2], index[::2], classes, edges, edges)
    prob = ip3d.score(templates, tracks[1::2])
    db = np.log(prob[:, 0] / (0.018 * prob[:, 1] + 0.982 * prob[:, 2]))  # D_b by hand
    test = index[1::2]
    return auc(db[test == 0], db[test == 2])


def test_same_ip3d_auc_for_every_layout(layouts, ingested, source, tmp_path):
    aucs = {name: _ip3d_auc(path) for name, path in layouts.items()}
    jets, tracks = source
    reference = tmp_path / "reference.h5"
    with h5py.File(reference, "w") as f:
        f["jets"], f["tracks"] = jets, tracks
    expected = _ip3d_auc(reference)
    assert expected > 0.7  # the baseline separates b from light on these jets
    for name, value in aucs.items():
        assert value == pytest.approx(expected, abs=1e-6), name


def test_mev_file_read_as_gev_is_an_error_naming_the_units_key(source, tmp_path):
    path = write_atlas_root(tmp_path / "atlas.root", *source)
    sample = {**SAMPLES["atlas_root"], "units": {"energy": "GeV"}}
    config = config_with({"atlas": sample})
    with pytest.raises(InputError, match=r"median \|jet_pt\| .* looks like MeV: set "
                                         r"samples\.atlas\.units\.energy: MeV"):  # fmt: skip
        ingest(config, "atlas", [path], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_micrometre_d0_is_an_error_naming_the_length_key(source, tmp_path):
    jets, tracks = source
    tracks = tracks.copy()
    for name in ("d0", "z0SinTheta"):
        tracks[name] *= 1000.0
    path = write_atlas_root(tmp_path / "atlas.root", jets, tracks)
    config = config_with({"atlas": SAMPLES["atlas_root"]})
    with pytest.raises(
        InputError,
        match=r"median \|trk_d0\| .* looks like um: set samples\.atlas\.units\.length: um",
    ):
        ingest(config, "atlas", [path], tmp_path / "out.h5")
    sample = {**SAMPLES["atlas_root"], "units": {"energy": "MeV", "length": "um"}}
    ingest(config_with({"atlas": sample}), "atlas", [path], tmp_path / "out.h5")
    _, out = read_all(tmp_path / "out.h5")
    np.testing.assert_allclose(out["d0"], source[1]["d0"], rtol=1e-5, atol=1e-8)


def test_mis_mapped_branch_is_an_ingest_error_naming_branch_and_key(source, tmp_path):
    path = write_atlas_tdd_h5(tmp_path / "tdd.h5", *source)
    sample = {**SAMPLES["tdd"], "branches": {"trk_pt": "qOverP"}}
    config = config_with({"tdd": sample})
    with pytest.raises(InputError, match=r"trk_pt \(branch 'qOverP'\) has \d+ values <= 0 .*"
                                         r"samples\.tdd\.branches\.trk_pt"):  # fmt: skip
        ingest(config, "tdd", [path], tmp_path / "out.h5")


def test_flipped_d0_sign_stops_ingest_and_explains(source, tmp_path):
    sample = {**SAMPLES["jetclass"], "d0_sign": "atlas"}  # the Delphes sign left as it is
    path = write_jetclass_root(tmp_path / "jetclass.root", *source)
    config = config_with({"jetclass": sample})
    with pytest.raises(InputError, match=r"b-jet tracks have more sd0 < -3 .*\.d0_sign: opposite"):
        ingest(config, "jetclass", [path], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()
    accepted = config_with({"jetclass": {**sample, "lifetime_sign_check": "warn"}})
    ingest(accepted, "jetclass", [path], tmp_path / "out.h5")
    with h5py.File(tmp_path / "out.h5") as f:
        fractions = json.loads(f["jets"].attrs["lifetime_sign_fractions"])
    assert fractions["b"]["below_minus_3"] > fractions["b"]["above_plus_3"]


def test_default_sample_b_tracks_lean_positive(ingested):
    with h5py.File(ingested) as f:
        fractions = json.loads(f["jets"].attrs["lifetime_sign_fractions"])
    b, light = fractions["b"], fractions["light"]
    assert b["above_plus_3"] > 4 * b["below_minus_3"]  # lifetime: far more in front
    assert b["above_plus_3"] > 3 * light["above_plus_3"]


def test_every_missing_field_reported_at_once_with_keys(source, tmp_path):
    jets, tracks = source
    path = write_atlas_tdd_h5(tmp_path / "tdd.h5", jets, tracks)
    with h5py.File(path, "a") as f:  # a dumper file without qOverP or significances
        data = f["tracks"][:]
        del f["tracks"]
        keep = [n for n in data.dtype.names if n not in ("qOverP", "IP3D_signed_d0_significance")]
        f["tracks"] = data[keep]
    config = config_with({"tdd": SAMPLES["tdd"]})
    with pytest.raises(InputError) as err:
        ingest(config, "tdd", [path], tmp_path / "out.h5")
    text = str(err.value)
    for key in ("trk_pt", "trk_charge", "trk_d0Uncertainty", "trk_IP3D_signed_d0_significance"):
        assert f"{key}: set samples.tdd.branches.{key}" in text
    assert "sin(theta) / |q/p| from trk_qOverP, trk_theta" in text


def test_labels_from_a_mapped_integer_branch(source, tmp_path):
    jets, tracks = source
    jets = jets.copy()
    cms = {5: 5, 4: 4, 0: 21}  # a parton-flavour-like code: light jets as gluons
    jets["HadronConeExclTruthLabelID"] = [cms[v] for v in jets["HadronConeExclTruthLabelID"]]
    path = write_atlas_root(tmp_path / "atlas.root", jets, tracks)
    sample = {**SAMPLES["atlas_root"]}
    with pytest.raises(InputError, match=r"has values \[21\] .*\.labels\.values"):
        ingest(config_with({"atlas": sample}), "atlas", [path], tmp_path / "out.h5")
    sample["labels"] = {"values": {"b": [5], "c": [4], "light": [1, 2, 3, 21]}}
    ingest(config_with({"atlas": sample}), "atlas", [path], tmp_path / "out.h5")
    out_jets, _ = read_all(tmp_path / "out.h5")
    assert (
        out_jets["HadronConeExclTruthLabelID"].tolist()
        == source[0]["HadronConeExclTruthLabelID"].tolist()
    )


def test_preset_resolved_with_user_overrides():
    config = config_with({"jc": {**SAMPLES["jetclass"], "branches": {"trk_d0": "part_dxy"}}})
    sample = config["samples"]["jc"]
    assert sample["branches"]["trk_d0"] == "part_dxy"  # the user's key wins
    assert sample["branches"]["trk_px"] == "part_px"  # the rest of the preset stays
    assert sample["d0_sign"] == "opposite" and sample["tree"] == "tree"
    tdd = config_with({"tdd": SAMPLES["tdd"]})["samples"]["tdd"]
    assert tdd["units"] == {"energy": "MeV", "length": "mm"}


def test_one_hot_labels_must_be_exclusive(source, tmp_path):
    jets, tracks = source
    path = write_jetclass_root(tmp_path / "jetclass.root", jets, tracks)
    sample = {**SAMPLES["jetclass"], "labels": {"one_hot": {"b": "label_b", "c": "label_b"}}}
    with pytest.raises(InputError, match=r"\d+ jets have more than one of the one-hot labels"):
        ingest(config_with({"jetclass": sample}), "jetclass", [path], tmp_path / "out.h5")


def test_check_refuses_an_origin_task_on_a_sample_without_origins(source, tmp_path, monkeypatch):
    from jettag.io.inspect import check_input_files

    monkeypatch.chdir(tmp_path)
    write_jetclass_root(tmp_path / "jetclass.root", *source)
    raw = minimal_config(samples={"jetclass": SAMPLES["jetclass"]})
    raw["models"]["dips"].update(dataset="jetclass", track_inputs=["d0", "z0SinTheta"])
    raw["models"]["dips"]["training"]["track_origin_weight"] = 0.5
    raw["baselines"]["ip3d"]["dataset"] = "jetclass"
    raw["prepare"] = {"track_inputs": [{"name": "d0"}, {"name": "z0SinTheta"}]}
    config = cfg.validate_config(raw)
    with pytest.raises(cfg.ConfigError) as err:
        check_input_files(config)
    assert "models.dips.training.track_origin_weight > 0 needs track truth origins" in str(
        err.value
    )
    assert "prepare.track_inputs" not in str(err.value)  # the inputs it has are fine
    raw["models"]["dips"]["training"]["track_origin_weight"] = 0.0
    layouts = check_input_files(cfg.validate_config(raw))
    assert "trk_ftagTruthOriginLabel" in layouts["jetclass"]["jetclass.root"].plan.absent
