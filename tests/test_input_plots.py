"""Input histograms and plots of a prepared dataset: normalisation, reweighting, transforms."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from jettag import config as cfg
from jettag.evaluation.input_histograms import InputHistograms, input_histograms
from jettag.features.prepare import prepare_dataset
from jettag.features.split import SPLITS
from jettag.plotting.inputs import plot_inputs
from jettag.plotting.style import FigureText
from tests.conftest import minimal_config, written

# held-out splits: the normalisation was fitted elsewhere, so agreement is statistical only
# (a few hundred jets; a rare hit count's std fluctuates by ~0.15 here)
HELD_OUT_TOLERANCE = 0.3


@pytest.fixture(scope="module")
def histograms(prepared, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """The input histograms of every split: (JSON path, returned result)."""
    out = tmp_path_factory.mktemp("input_histograms")
    return {
        s: (out / f"{s}.json", written(input_histograms(prepared, s), out / f"{s}.json"))
        for s in SPLITS
    }


def _normalised_inputs(config: dict) -> list[str]:
    """Inputs standardised by prepare (normalise: false ones keep mean 0, std 1 as given)."""
    return [i["name"] for i in config["prepare"]["track_inputs"] if i["normalise"]]


def _n_valid_tracks(path: Path) -> int:
    """Valid tracks in a prepared split file."""
    with h5py.File(path, "r") as f:
        return int(f["tracks"]["valid"].sum())


def test_normalised_inputs_are_standard_on_train(histograms, prepared, config):
    """Over train, where norm.yaml was fitted, every normalised input has mean 0 and std 1."""
    path, result = histograms["train"]
    assert json.loads(path.read_text())["inputs"].keys() == result["inputs"].keys()
    n_tracks = _n_valid_tracks(prepared / "train.h5")
    names = _normalised_inputs(config)
    assert names and set(names) <= set(result["inputs"])
    for name in names:
        check = result["inputs"][name]["check"]
        assert check["n"] == n_tracks, name
        assert abs(check["mean"]) < 1e-3, (name, check)
        assert check["std"] == pytest.approx(1.0, rel=1e-3), (name, check)


def test_normalised_inputs_are_only_approximately_standard_on_held_out_splits(histograms, config):
    """On val and test the train normalisation gives mean ~0 and std ~1, but not exactly."""
    for split in ("val", "test"):
        checks = {n: histograms[split][1]["inputs"][n]["check"] for n in _normalised_inputs(config)}
        for name, check in checks.items():
            assert abs(check["mean"]) < HELD_OUT_TOLERANCE, (split, name, check)
            assert abs(check["std"] - 1.0) < HELD_OUT_TOLERANCE, (split, name, check)
        # the norm was not refitted on this split: somewhere it is visibly off
        assert any(abs(c["mean"]) > 1e-3 or abs(c["std"] - 1) > 1e-3 for c in checks.values())


def test_reweighted_pt_matches_the_target_shape(histograms, prepared, config):
    """After reweighting, c and light pT shapes equal b's within stat. errors where uncapped."""
    pt = histograms["train"][1]["jet_pt"]
    weights = yaml.safe_load((prepared / "weights.yaml").read_text())["reweighting"]
    assert pt["edges"] == weights["pt_bins_gev"] and pt["target"] == "b"
    counts = np.asarray(weights["train_counts"], dtype=np.float64)
    target_counts = np.asarray(pt["b"]["counts"])
    target_shape = target_counts / target_counts.sum()
    max_weight = config["prepare"]["reweight"]["max_weight"]
    for index, flavour in enumerate(("c", "light"), start=1):
        n = np.asarray(pt[flavour]["counts"])
        w = np.asarray(pt[flavour]["weighted"])
        sumw2 = np.asarray(pt[flavour]["weighted_sumw2"])
        assert np.array_equal(n, counts[index])  # the same jets prepare fitted on
        with np.errstate(divide="ignore", invalid="ignore"):
            uncapped = target_shape / (n / n.sum()) < max_weight
        good = (target_counts >= 10) & (n >= 10) & uncapped
        assert good.sum() >= 3, flavour
        sigma = np.sqrt(sumw2 / w.sum() ** 2 + target_counts / target_counts.sum() ** 2)
        after = np.abs(w / w.sum() - target_shape)
        assert np.all(after[good] < 3 * sigma[good]), (flavour, after[good] / sigma[good])
        ratio = np.asarray([pt["ratio_after"][flavour]["ratio"][k] for k in np.flatnonzero(good)])
        assert np.allclose(ratio, 1.0, atol=0.05), ratio
    # and the test has teeth: light jets are softer than b jets before reweighting
    light = np.asarray(pt["light"]["counts"])
    stat = np.sqrt(light / light.sum() ** 2 + target_counts / target_counts.sum() ** 2)
    assert np.any(np.abs(light / light.sum() - target_shape) > 3 * stat)


def test_log_transform_of_ptfrac_is_applied(histograms, prepared):
    """The transformed ptfrac range is the log of the raw range, with the mean norm.yaml fitted."""
    entry = histograms["train"][1]["inputs"]["ptfrac"]
    norm = yaml.safe_load((prepared / "norm.yaml").read_text())["tracks"]["ptfrac"]
    assert entry["transform"] == norm["transform"] == "log"
    raw = np.asarray(entry["stages"]["raw"]["edges"])
    transformed = np.asarray(entry["stages"]["transformed"]["edges"])
    normalised = np.asarray(entry["stages"]["normalised"]["edges"])
    assert 0 < raw[0] < raw[-1] <= 1.0  # a momentum fraction
    # quantiles are order statistics, which a monotonic transform maps onto each other
    assert transformed[[0, -1]] == pytest.approx(np.log(raw[[0, -1]]), rel=1e-5)
    assert transformed[-1] < 0  # log of a fraction; untransformed edges would be positive
    assert normalised == pytest.approx((transformed - norm["mean"]) / norm["std"])
    assert entry["check"]["transformed_mean"] == pytest.approx(norm["mean"], rel=1e-6)
    # the histogram itself: its mean lies within a bin of the fitted log mean
    hist = entry["stages"]["transformed"]
    counts = sum(np.asarray(hist[f]["counts"]) for f in ("b", "c", "light"))
    centres = (transformed[1:] + transformed[:-1]) / 2
    mean = (counts * centres).sum() / counts.sum()
    assert abs(mean - norm["mean"]) < transformed[1] - transformed[0]
    # every valid track is counted once per stage, in range or in the under/overflow
    n_tracks = _n_valid_tracks(prepared / "train.h5")
    for stage in ("raw", "transformed", "normalised"):
        h = entry["stages"][stage]
        total = sum(sum(h[f]["counts"]) + sum(h[f]["counts_flow"]) for f in ("b", "c", "light"))
        assert total == n_tracks, stage


def test_jet_inputs_are_histogrammed(ingested, tmp_path):
    """Jet inputs (here log pT and eta) get per-jet histograms and a normalisation check."""
    raw = minimal_config(
        prepare={"jet_inputs": [{"name": "pt", "transform": "log"}, {"name": "eta"}]}
    )
    config = cfg.validate_config(raw)
    prepared = tmp_path / "prepared"
    prepare_dataset(ingested, cfg.section(cfg.PrepareConfig, config["prepare"]), 3, prepared)
    result = input_histograms(prepared).to_dict()
    with h5py.File(prepared / "train.h5", "r") as f:
        pt = f["jets"]["pt"][:]
    for name in ("pt", "eta"):
        entry = result["inputs"][name]
        assert entry["group"] == "jets" and entry["check"]["n"] == pt.size
        assert abs(entry["check"]["mean"]) < 1e-3
        assert entry["check"]["std"] == pytest.approx(1.0, rel=1e-3)
    assert result["inputs"]["pt"]["check"]["transformed_mean"] == pytest.approx(
        np.log(pt.astype(np.float64)).mean(), rel=1e-5
    )


def test_input_plots_are_written(histograms, tmp_path):
    """Stage figures, the jet pT reweighting figure and the reweighted key inputs exist."""
    path, _ = histograms["train"]
    names = ["ptfrac", "IP3D_signed_d0_significance"]
    text = FigureText("ATLAS", "Simulation Internal", 13.0, "$t\\bar{t}$")
    figures = plot_inputs(InputHistograms.read(path), tmp_path / "inputs", text, ["png"],
                          inputs=names)  # fmt: skip
    stems = [*names, "jet_pt_reweighting", *(f"{n}_reweighted" for n in names)]
    assert sorted(figures) == sorted(tmp_path / f"inputs_{s}.png" for s in stems)
    for p in figures:
        assert p.stat().st_size > 10_000, p
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files
    with pytest.raises(ValueError, match="no inputs"):
        plot_inputs(InputHistograms.read(path), tmp_path / "x", text, ["png"], inputs=["nonsense"])
