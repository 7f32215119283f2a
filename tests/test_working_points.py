"""Working-point table, efficiency vs pT and D_b histograms on hand-built predictions files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from jettag.evaluation.working_points import (
    efficiency_vs_pt,
    score_histograms,
    working_point_table,
)
from jettag.plotting.performance import plot_efficiency_vs_pt, plot_score_histograms

WORKING_POINTS = (0.60, 0.70, 0.77, 0.85)
TRUTH_ID = np.array([5, 4, 0])  # HadronConeExclTruthLabelID of flavour_label 0, 1, 2


def write_predictions(
    path: Path, tagger: str, pb, pc, pu, labels, pt_gev=None, sample_label="Test sample"
) -> Path:
    """A predictions file in the FTAG layout: `jets` with <tagger>_pb/_pc/_pu, pt in GeV."""
    labels = np.asarray(labels)
    dtype = [
        ("pt", "f4"),
        ("eta", "f4"),
        ("HadronConeExclTruthLabelID", "i4"),
        ("flavour_label", "i4"),
        (f"{tagger}_pb", "f4"),
        (f"{tagger}_pc", "f4"),
        (f"{tagger}_pu", "f4"),
    ]
    jets = np.zeros(len(labels), dtype=dtype)
    jets["pt"] = 50.0 if pt_gev is None else pt_gev
    jets["flavour_label"] = labels
    jets["HadronConeExclTruthLabelID"] = TRUTH_ID[labels]
    jets[f"{tagger}_pb"], jets[f"{tagger}_pc"], jets[f"{tagger}_pu"] = pb, pc, pu
    with h5py.File(path, "w") as f:
        f["jets"] = jets
        f["jets"].attrs["flavour_label"] = ["b", "c", "light"]
        f["jets"].attrs["tagger"] = tagger
        f["jets"].attrs["sample_label"] = sample_label
    return path


def write_discriminant(path: Path, tagger: str, db, labels, pt_gev=None) -> Path:
    """Predictions whose D_b is exactly db for any f_c: p_c = p_light = q, p_b = e^db q."""
    db = np.asarray(db, dtype=np.float64)
    q = 1.0 / (np.exp(db) + 2.0)
    return write_predictions(path, tagger, np.exp(db) * q, q, q, labels, pt_gev)


def dirichlet_predictions(path: Path, tagger: str, seed: int) -> Path:
    """Random softmax-like outputs: each flavour's own probability tends to be the largest."""
    rng = np.random.default_rng(seed)
    counts = {0: 1000, 1: 3000, 2: 6000}
    labels = np.concatenate([np.full(n, label) for label, n in counts.items()])
    alpha = np.array([[4.0, 1.5, 1.0], [1.5, 3.0, 1.5], [0.6, 1.2, 4.0]])[labels]
    p = rng.gamma(alpha)
    p /= p.sum(axis=1, keepdims=True)
    return write_predictions(path, tagger, p[:, 0], p[:, 1], p[:, 2], labels)


def stratified_logistic(mean: float, n: int) -> np.ndarray:
    """n equally spaced quantiles of a logistic distribution: a sample without random noise."""
    u = (np.arange(n) + 0.5) / n
    return mean + np.log(u / (1 - u))


def test_working_points_match_sort_and_count(tmp_path):
    f_c = 0.05
    files = [dirichlet_predictions(tmp_path / f"{t}.h5", t, s) for t, s in (("A", 1), ("B", 2))]
    table = working_point_table(
        files, f_c, WORKING_POINTS, tmp_path / "wp.json", tmp_path / "wp.md"
    )
    assert json.loads((tmp_path / "wp.json").read_text())["rows"][0]["tagger"] == "A"
    for path in files:
        with h5py.File(path, "r") as f:
            jets = f["jets"][:]
            tagger = str(f["jets"].attrs["tagger"])
        pb, pc, pu = (jets[f"{tagger}_{p}"].astype(np.float64) for p in ("pb", "pc", "pu"))
        db = np.log(pb / (f_c * pc + (1 - f_c) * pu))
        names = ("b", "c", "light")
        by_flavour = {name: db[jets["flavour_label"] == k] for k, name in enumerate(names)}
        b_sorted = np.sort(by_flavour["b"])[::-1]
        rows = {r["working_point"]: r for r in table["rows"] if r["tagger"] == tagger}
        for wp in WORKING_POINTS:
            n_pass_b = round(wp * len(b_sorted))  # 1000 b jets: the WP keeps exactly this many
            lowest_kept, highest_dropped = b_sorted[n_pass_b - 1], b_sorted[n_pass_b]
            # the cut is midway between the last b jet kept and the first one dropped
            hand_cut = 0.5 * (lowest_kept + highest_dropped)
            row = rows[wp]
            assert row["cut"] == pytest.approx(hand_cut, rel=1e-6)
            assert row["b_efficiency"] == pytest.approx(n_pass_b / len(b_sorted))
            for name in ("c", "light"):
                scores = by_flavour[name]
                n_pass = int(np.sum(scores > hand_cut))
                eff = n_pass / len(scores)
                assert row[f"{name}_efficiency"] == pytest.approx(eff, rel=1e-12)
                assert row[f"{name}_rejection"] == pytest.approx(len(scores) / n_pass, rel=1e-12)
                assert row[f"{name}_rejection_error"] == pytest.approx(
                    np.sqrt(eff * (1 - eff) / len(scores)) / eff**2, rel=1e-9
                )
    lines = (tmp_path / "wp.md").read_text().splitlines()
    table_rows = [line for line in lines if line.startswith("| ") and "Tagger" not in line]
    assert len(table_rows) == 2 * len(WORKING_POINTS)
    expected = [f"| {t} | {round(100 * wp)} % |" for t in ("A", "B") for wp in WORKING_POINTS]
    assert [row[: len(e)] for row, e in zip(table_rows, expected, strict=True)] == expected
    assert all(row.count("±") == 5 for row in table_rows)


def test_flat_per_bin_cut_is_flat_and_inclusive_cut_is_not(tmp_path):
    rng = np.random.default_rng(7)
    n = 30_000
    labels = rng.integers(0, 3, n)
    pt_gev = rng.uniform(20.0, 300.0, n)
    # the b-jet score rises with pT, as a real tagger's does; c and light do not depend on it
    mean = np.choose(labels, [pt_gev / 50.0, np.full(n, 0.5), np.full(n, -1.0)])
    path = write_discriminant(tmp_path / "p.h5", "t", rng.normal(mean, 1.0), labels, pt_gev)
    bins = [20.0, 50.0, 100.0, 150.0, 250.0]
    result = efficiency_vs_pt(path, 0.018, 0.70, bins, tmp_path / "pt.json")
    flat, inclusive = result["strategies"]["flat_per_bin"], result["strategies"]["inclusive"]
    for eff, err, n_b in zip(flat["b_efficiency"], flat["b_efficiency_error"],
                             result["n_jets"]["b"], strict=True):  # fmt: skip
        assert abs(eff - 0.70) <= err
        assert abs(eff - 0.70) <= 1.0 / n_b  # the cut is exact up to one jet
    pulls = np.abs(np.array(inclusive["b_efficiency"]) - 0.70) / inclusive["b_efficiency_error"]
    assert pulls.max() > 5
    assert inclusive["b_efficiency"][0] < 0.70 < inclusive["b_efficiency"][-1]
    # the inclusive cut is the working-point table's; jets above 250 GeV are in no bin
    table = working_point_table([path], 0.018, [0.70], tmp_path / "wp.json", tmp_path / "wp.md")
    assert result["inclusive_cut"] == table["rows"][0]["cut"]
    assert set(inclusive["cut"]) == {result["inclusive_cut"]}
    in_range = (pt_gev >= 20.0) & (pt_gev < 250.0)
    assert sum(sum(v) for v in result["n_jets"].values()) == int(in_range.sum())
    assert json.loads((tmp_path / "pt.json").read_text())["pt_bins_gev"] == bins


def test_binomial_errors_shrink_as_one_over_sqrt_n(tmp_path):
    errors = []
    for n in (5_000, 20_000):
        # the same distribution at each size, so only N changes between the two samples
        db = np.concatenate([stratified_logistic(m, n) for m in (3.0, 1.0, -1.0)])
        labels = np.repeat([0, 1, 2], n)
        path = write_discriminant(tmp_path / f"{n}.h5", "t", db, labels)
        rows = working_point_table(
            [path], 0.018, [0.77], tmp_path / f"{n}.json", tmp_path / f"{n}.md"
        )["rows"]
        errors.append(rows[0])
    small, large = errors
    for key in (
        "b_efficiency_error", "c_efficiency_error", "light_efficiency_error",
        "c_rejection_error", "light_rejection_error",
    ):  # fmt: skip
        assert small[key] / large[key] == pytest.approx(2.0, rel=0.03), key


def test_score_histograms_have_unit_area_and_wp_cuts(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 6000)
    db = rng.normal(np.choose(labels, [3.0, 1.0, -1.0]), 1.5)
    path = write_discriminant(tmp_path / "p.h5", "t", db, labels)
    hist = score_histograms(path, 0.018, WORKING_POINTS, tmp_path / "h.json")
    widths = np.diff(hist["edges"])
    for name in ("b", "c", "light"):
        density = np.array(hist["histograms"][name]["density"])
        assert np.sum(density * widths) == pytest.approx(1.0)
    table = working_point_table(
        [path], 0.018, WORKING_POINTS, tmp_path / "w.json", tmp_path / "w.md"
    )
    assert [wp["cut"] for wp in hist["working_points"]] == [r["cut"] for r in table["rows"]]
    assert json.loads((tmp_path / "h.json").read_text())["tagger"] == "t"


def test_plots_are_written(tmp_path):
    rng = np.random.default_rng(11)
    n = 8000
    labels = rng.integers(0, 3, n)
    pt_gev = rng.uniform(20.0, 250.0, n)
    pt_files = []
    for tagger, slope in (("dips", 80.0), ("gn2", 50.0)):
        mean = np.choose(labels, [pt_gev / slope + 1.0, np.full(n, 0.5), np.full(n, -1.5)])
        db = rng.normal(mean)
        path = write_discriminant(tmp_path / f"{tagger}.h5", tagger, db, labels, pt_gev)
        pt_files.append(tmp_path / f"{tagger}_pt.json")
        efficiency_vs_pt(path, 0.018, 0.77, [20, 40, 60, 100, 150, 250], pt_files[-1])
    score_histograms(path, 0.018, WORKING_POINTS, tmp_path / "h.json")
    formats = ["png", "pdf"]
    written = plot_efficiency_vs_pt(
        pt_files, ["DIPS", "GN2"], tmp_path / "plots" / "pt", "Internal", 13.6, formats
    )
    written += plot_score_histograms(
        tmp_path / "h.json", "GN2", tmp_path / "plots" / "db", "Internal", 13.6, formats
    )
    assert len(written) == 4 * len(formats)
    for path in written:
        assert path.exists() and path.stat().st_size > 1000, path
    assert (tmp_path / "plots" / "pt_light_rejection.png") in written


def test_ensemble_spread_is_the_members_std(tmp_path):
    from jettag import config as cfg
    from jettag.evaluation.evaluate import evaluate

    members = []
    for seed in (1, 2, 3):
        path = dirichlet_predictions(tmp_path / f"m{seed}.h5", "E", seed)
        with h5py.File(path) as f:
            jets = f["jets"][:]
        members.append(np.stack([jets["E_pb"], jets["E_pc"], jets["E_pu"]], axis=1))
    mean = np.mean(members, axis=0)
    path = write_predictions(tmp_path / "ens.h5", "E", *mean.T, jets["flavour_label"])
    with h5py.File(path, "a") as f:
        f["member_probabilities"] = np.stack(members)
    config = cfg.section(cfg.EvaluationConfig, cfg.validate_config(_minimal())["evaluation"])
    metrics = evaluate(path, config, tmp_path / "ens.json")
    # each member alone, through the same tool, gives the rejections whose spread is the band
    singles = []
    for k, probabilities in enumerate(members):
        single = write_predictions(
            tmp_path / f"s{k}.h5", "E", *probabilities.T, jets["flavour_label"]
        )
        singles.append(evaluate(single, config, tmp_path / f"s{k}.json"))
    for wp in ("70", "77"):
        light = [s["working_points"][wp]["light_rejection"] for s in singles]
        spread = metrics["ensemble"]["working_points"][wp]
        assert spread["light_rejection_members"] == pytest.approx(light, rel=1e-9)
        assert spread["light_rejection_std"] == pytest.approx(np.std(light, ddof=1), rel=1e-9)
        c_members = [s["working_points"][wp]["c_rejection"] for s in singles]
        averaged = metrics["working_points"][wp]["c_rejection"]
        assert spread["c_rejection_averaged"] == averaged
        assert spread["c_rejection_gain"] == pytest.approx(averaged / np.mean(c_members) - 1.0)
        # independent noise averages out: the averaged scores reject more than a single member
        assert spread["c_rejection_gain"] > 0
        # no light jet passes the averaged scores: an infinite rejection has no finite gain
        assert metrics["working_points"][wp]["light_rejection"] == np.inf
        assert spread["light_rejection_gain"] is None
    assert metrics["ensemble"]["n_members"] == 3
    band = np.array(metrics["ensemble"]["roc"]["light_rejection_std"])
    assert np.all(band[np.isfinite(band)] >= 0) and np.nanmax(band) > 0


def _minimal() -> dict:
    """A valid config (the test fixtures' minimal one)."""
    from tests.conftest import minimal_config

    return minimal_config()
