"""Other class sets by configuration alone: JetClass's ten one-hot classes, ATLAS's Xbb classes
from R10TruthLabel_R22v1, and FTAG's four (b, c, light, tau), each through the whole workflow.

The jets are the small generated sample's (real Pythia jets and tracks); their labels are
mapped onto each class set (b jets become H->bb, c jets H->cc, light jets the other classes at
random), written in each layout's own way (one-hot branches, an integer label field), and
the analysis runs with `snakemake` on a config that names the class set. Expected numbers are
recounted from the files the workflow wrote, not taken from the code under test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import h5py
import numpy as np
import numpy.lib.recfunctions as rfn
import pytest
import yaml

from jettag.evaluation.metrics import auc
from tests.conftest import copy_workflow
from tests.ntuple_layouts import write_atlas_tdd_h5, write_jetclass_root

pytestmark = pytest.mark.slow
JETCLASS = ["QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl"]
TRACK_INPUTS = [  # what every layout here offers (JetClass has no hit counts)
    {"name": "IP3D_signed_d0_significance", "transform": "signed_log"},
    {"name": "IP3D_signed_z0_significance", "transform": "signed_log"},
    {"name": "ptfrac", "transform": "log"},
    {"name": "dr", "transform": "log"},
    {"name": "d0"},
    {"name": "z0SinTheta"},
]


def _config(sample: dict, **sections) -> dict:
    """A small analysis of one file sample: a DIPS and the IP3D-like baseline."""
    return {
        "seed": 5,
        "samples": {"s": {"label": "hand-built", **sample}},
        "prepare": {"track_inputs": TRACK_INPUTS},
        "models": {
            "dips": {
                "dataset": "s", "architecture": "deepsets", "label": "DIPS",
                "deepsets": {"track_layers": [32, 32], "jet_layers": [32]},
                "training": {"epochs": 6, "batch_size": 64, "learning_rate": 0.005},
            },
        },
        "baselines": {"ip3d": {"dataset": "s", "kind": "ip3d"}},
        "plots": {"formats": ["png"]},
        **sections,
    }  # fmt: skip


def _run(workdir: Path, config: dict) -> subprocess.CompletedProcess:
    """The whole analysis of a config through snakemake, in a copy of the workflow."""
    copy_workflow(workdir)
    (workdir / "analysis.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(["snakemake", "--cores", "2", "--configfile", "analysis.yaml"],
                         cwd=workdir, capture_output=True, text=True, timeout=1500)  # fmt: skip
    assert run.returncode == 0, run.stderr[-6000:]
    return run


def _light_classes(jets: np.ndarray, others: list[int], seed: int) -> np.ndarray:
    """A class index per jet: b -> 1, c -> 2, light and tau -> one of `others` at random."""
    label = jets["HadronConeExclTruthLabelID"]
    drawn = np.random.default_rng(seed).choice(others, size=len(jets))
    return np.where(label == 5, 1, np.where(label == 4, 2, drawn))


def _test_split(workdir: Path) -> tuple[list[str], np.ndarray, dict]:
    """Classes, class index and attributes of the prepared test split."""
    with h5py.File(workdir / "data/prepared/s/test.h5") as f:
        return ([str(c) for c in f["jets"].attrs["flavour_label"]],
                f["jets"]["flavour_label"][:], dict(f["jets"].attrs))  # fmt: skip


@pytest.fixture(scope="module")
def jetclass_run(source, tmp_path_factory) -> Path:
    """A JetClass-layout ROOT file with the ten real label branches, analysed by config."""
    jets, tracks = source
    workdir = tmp_path_factory.mktemp("jetclass")
    index = _light_classes(jets, [0, 3, 4, 5, 6, 7, 8, 9], seed=1)
    one_hot = {f"label_{name}": index == k for k, name in enumerate(JETCLASS)}
    (workdir / "ntuples").mkdir()
    write_jetclass_root(workdir / "ntuples/jetclass.root", jets, tracks, one_hot=one_hot)
    np.save(workdir / "truth_index.npy", index)
    sample = {"source": "root", "files": ["ntuples/jetclass.root"], "preset": "jetclass"}
    _run(workdir, _config(sample, class_set="jetclass"))
    return workdir


def test_jetclass_ten_classes_ingested_trained_and_evaluated(jetclass_run, source):
    workdir = jetclass_run
    index = np.load(workdir / "truth_index.npy")
    # ingest: the one-hot flags became the canonical jetclass_label, every jet kept
    with h5py.File(next((workdir / "data/ingested/s").glob("*.h5"))) as f:
        ingested = f["jets"]["jetclass_label"][:]
        assert "HadronConeExclTruthLabelID" not in f["jets"].dtype.names
    assert np.bincount(ingested, minlength=10).tolist() == np.bincount(index, minlength=10).tolist()
    classes, labels, attrs = _test_split(workdir)
    assert classes == JETCLASS and attrs["label_variable"] == "jetclass_label"
    # predictions: puma's column per class, probabilities that add up to one
    with h5py.File(workdir / "results/predictions/dips.h5") as f:
        pred = f["jets"][:]
    prob = np.stack([pred[f"dips_p{name}"] for name in JETCLASS], axis=1).astype(np.float64)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-5)
    # the default discriminant: Hbb against QCD (ParT's task), recomputed by hand
    metrics = json.loads((workdir / "results/metrics/dips.json").read_text())
    assert metrics["discriminant"] == {"signal": "Hbb", "fractions": {"QCD": 1.0}}
    score = np.log(prob[:, 1] / prob[:, 0])
    by_hand = auc(score[labels == 1], score[labels == 0])
    assert metrics["auc"]["Hbb_vs_QCD"] == pytest.approx(by_hand, abs=1e-6)
    assert by_hand > 0.7  # b-hadron decays against light jets: real physics in the tracks
    # multi-class: the confusion matrix recounted from the probabilities
    multi = json.loads((workdir / "results/multiclass/dips.json").read_text())
    counts = np.zeros((10, 10), dtype=int)
    np.add.at(counts, (labels, prob.argmax(axis=1)), 1)
    assert multi["confusion_counts"] == counts.tolist()
    assert multi["accuracy"] == pytest.approx(np.trace(counts) / counts.sum())
    assert [t["name"] for t in multi["tasks"]] == [f"{n} vs QCD" for n in JETCLASS[1:]]
    for name in ("confusion", "tasks"):
        assert (workdir / f"results/plots/multiclass_dips_{name}.png").stat().st_size > 0
    assert (workdir / "results/plots/roc.png").exists()
    assert not (workdir / "results/plots/fraction_scan_s.png").exists()  # one background


@pytest.fixture(scope="module")
def xbb_run(source, tmp_path_factory) -> Path:
    """A dumper-layout HDF5 file labelled with R10TruthLabel_R22v1 (ATLAS's Xbb classes)."""
    jets, tracks = source
    workdir = tmp_path_factory.mktemp("xbb")
    (workdir / "ntuples").mkdir()
    path = write_atlas_tdd_h5(workdir / "ntuples/xbb.h5", jets, tracks)
    # b -> H->bb (11), c -> H->cc (12), light: inclusive top (1, 6 or 7) or QCD (10)
    index = _light_classes(jets, [3, 4, 5, 6], seed=2)
    r10 = np.select([index == 1, index == 2, index == 3, index == 4, index == 5],
                    [11, 12, 1, 6, 7], 10)  # fmt: skip
    with h5py.File(path, "r+") as f:
        table = rfn.append_fields(f["jets"][:], "R10TruthLabel_R22v1", r10.astype(np.int32),
                                  usemask=False)  # fmt: skip
        table = rfn.drop_fields(table, "HadronConeExclTruthLabelID", usemask=False)
        del f["jets"]
        f.create_dataset("jets", data=table)
    np.save(workdir / "r10.npy", r10)
    sample = {"source": "h5", "files": ["ntuples/xbb.h5"], "preset": "atlas_tdd"}
    _run(workdir, _config(sample, class_set="xbb"))
    return workdir


def test_xbb_classes_from_r10_truth_label(xbb_run):
    workdir = xbb_run
    r10 = np.load(workdir / "r10.npy")
    classes, labels, _ = _test_split(workdir)
    assert classes == ["hbb", "hcc", "top", "qcd"]
    with h5py.File(next((workdir / "data/ingested/s").glob("*.h5"))) as f:
        written = f["jets"]["R10TruthLabel_R22v1"][:]
    # top's three values become its first (1); the others as they were
    expected = np.where(np.isin(r10, [1, 6, 7]), 1, r10)
    assert (
        np.bincount(written, minlength=13).tolist() == np.bincount(expected, minlength=13).tolist()
    )
    metrics = json.loads((workdir / "results/metrics/dips.json").read_text())
    assert metrics["discriminant"] == {
        "signal": "hbb", "fractions": {"hcc": 0.02, "top": 0.25, "qcd": 0.73},
    }  # fmt: skip
    wp = metrics["working_points"]["77"]
    assert set(wp) >= {"hbb_efficiency", "hcc_rejection", "top_rejection", "qcd_rejection"}
    assert wp["hbb_efficiency"] == pytest.approx(0.77, abs=0.02)
    table = (workdir / "results/working_points/s.md").read_text()
    assert "# hbb-tagging working points" in table and "qcd rejection" in table
    # three backgrounds: a fraction scan of hcc (the first), the rest keeping their ratio
    scan = json.loads((workdir / "results/fraction_scan/s.json").read_text())
    assert scan["scanned"] == "hcc"
    first = scan["taggers"]["dips"][0]["fractions"]
    assert first == pytest.approx({"hcc": 0.0, "top": 0.25 / 0.98, "qcd": 0.73 / 0.98})
    for name in ("multiclass_dips_confusion", "fraction_scan_s", "pt_s_hbb_efficiency"):
        assert (workdir / f"results/plots/{name}.png").stat().st_size > 0
    assert np.bincount(labels, minlength=4).min() > 0


@pytest.fixture(scope="module")
def four_class_run(tmp_path_factory) -> Path:
    """The generated sample with tau jets trained as a fourth class (FTAG's b, c, light, tau)."""
    workdir = tmp_path_factory.mktemp("four_classes")
    config = yaml.safe_load((Path(__file__).parents[1] / "workflow/configs/ci.yaml").read_text())
    config["prepare"] = {"classes": ["b", "c", "light", "tau"]}
    for key in ("search", "transfer"):
        config.pop(key, None)
    config["samples"].pop("zprime")
    config.pop("datasets")  # the ttbar + Z' hybrid
    config["evaluation"] = {"ablation": None}
    config["models"].pop("transformer")
    _run(workdir, config)
    return workdir


def test_four_ftag_classes(four_class_run):
    workdir = four_class_run
    with h5py.File(workdir / "data/prepared/ttbar/test.h5") as f:
        classes = [str(c) for c in f["jets"].attrs["flavour_label"]]
        truth = f["jets"]["HadronConeExclTruthLabelID"][:]
        labels = f["jets"]["flavour_label"][:]
    assert classes == ["b", "c", "light", "tau"]
    assert (truth[labels == 3] == 15).all() and (labels == 3).sum() > 0
    metrics = json.loads((workdir / "results/metrics/dips.json").read_text())
    # D_b keeps f_c = 0.018; tau is a background with fraction 0: reported, not in D_b
    assert metrics["discriminant"] == {
        "signal": "b", "fractions": {"c": 0.018, "light": 0.982, "tau": 0.0},
    }  # fmt: skip
    assert metrics["working_points"]["77"]["tau_rejection"] > 1.0
    with h5py.File(workdir / "results/predictions/dips.h5") as f:
        assert "dips_ptau" in f["jets"].dtype.names
    multi = json.loads((workdir / "results/multiclass/dips.json").read_text())
    assert [t["name"] for t in multi["tasks"]] == ["b vs c+light+tau", "c vs b+light+tau"]
    assert len(multi["confusion_counts"]) == 4
