"""Working-point table, efficiency vs pT and D_b histograms on hand-built predictions files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from jettag.errors import InputError
from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.metrics import efficiency_interval
from jettag.evaluation.working_points import (
    EfficiencyVsPt,
    ScoreHistograms,
    efficiency_vs_pt,
    score_histograms,
)
from jettag.plotting import style
from jettag.plotting.performance import plot_efficiency_vs_pt, plot_score_histograms
from jettag.plotting.style import FigureText
from tests.conftest import d_b, write_table, written

WORKING_POINTS = (0.60, 0.70, 0.77, 0.85)
TEXT = FigureText("ATLAS", "Simulation Internal", 13.6, "Test sample")
TRUTH_ID = np.array([5, 4, 0])  # HadronConeExclTruthLabelID of flavour_label 0, 1, 2


def write_predictions(path: Path, tagger: str, pb, pc, pu, labels, pt_gev=None) -> Path:
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
    table = write_table(files, d_b(f_c), WORKING_POINTS, tmp_path / "wp.json", tmp_path / "wp.md")
    assert json.loads((tmp_path / "wp.json").read_text())["rows"][0]["tagger"] == "A"
    per_tagger = {}
    for path in files:
        with h5py.File(path, "r") as f:
            jets = f["jets"][:]
            tagger = str(f["jets"].attrs["tagger"])
        pb, pc, pu = (jets[f"{tagger}_{p}"].astype(np.float64) for p in ("pb", "pc", "pu"))
        db = np.log(pb / (f_c * pc + (1 - f_c) * pu))
        names = ("b", "c", "light")
        by_flavour = {name: db[jets["flavour_label"] == k] for k, name in enumerate(names)}
        per_tagger[tagger] = by_flavour
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
                low, high = efficiency_interval(n_pass, len(scores))
                assert row[f"{name}_efficiency_interval"] == pytest.approx([low, high])
                assert row[f"{name}_rejection_interval"] == pytest.approx([1 / high, 1 / low])
                assert row[f"{name}_passing"] == pytest.approx(n_pass)
    text, pseudo_continuous = (tmp_path / "wp.md").read_text().split("## Pseudo-continuous")
    lines = text.splitlines()
    table_rows = [line for line in lines if line.startswith("| ") and "Tagger" not in line]
    assert len(table_rows) == 2 * len(WORKING_POINTS)
    expected = [f"| {t} | {round(100 * wp)} % |" for t in ("A", "B") for wp in WORKING_POINTS]
    assert [row[: len(e)] for row, e in zip(table_rows, expected, strict=True)] == expected
    assert all(row.count(" [") == 5 for row in table_rows)  # value [low, high] each
    # pseudo-continuous bins, counted by hand between the sorted cuts of the WPs
    for tagger, scores in per_tagger.items():
        bins = table["pseudo_continuous"][tagger]
        cuts = [
            next(
                r["cut"]
                for r in table["rows"]
                if r["tagger"] == tagger and r["working_point"] == wp
            )
            for wp in sorted(WORKING_POINTS)[::-1]
        ]
        assert bins["edges"] == pytest.approx(cuts)
        assert bins["labels"] == ["100-85 %", "85-77 %", "77-70 %", "70-60 %", "60-0 %"]
        for name, values in scores.items():
            lows, highs = [-np.inf, *cuts], [*cuts, np.inf]
            counts = [
                np.sum((values > low) & (values <= high))
                for low, high in zip(lows, highs, strict=True)
            ]
            assert bins[f"{name}_fraction"] == pytest.approx(np.array(counts) / len(values))
        # b jets: each bin holds the efficiency step between its working points
        assert bins["b_fraction"][::-1][:4] == pytest.approx([0.60, 0.10, 0.07, 0.08], abs=2e-3)
    assert "| light |" in pseudo_continuous


def test_flat_per_bin_cut_is_flat_and_inclusive_cut_is_not(tmp_path):
    rng = np.random.default_rng(7)
    n = 30_000
    labels = rng.integers(0, 3, n)
    pt_gev = rng.uniform(20.0, 300.0, n)
    # the b-jet score rises with pT, as a real tagger's does; c and light do not depend on it
    mean = np.choose(labels, [pt_gev / 50.0, np.full(n, 0.5), np.full(n, -1.0)])
    path = write_discriminant(tmp_path / "p.h5", "t", rng.normal(mean, 1.0), labels, pt_gev)
    bins = [20.0, 50.0, 100.0, 150.0, 250.0]
    result = written(efficiency_vs_pt(path, d_b(0.018), 0.70, bins), tmp_path / "pt.json")
    flat, inclusive = result["strategies"]["flat_per_bin"], result["strategies"]["inclusive"]
    for eff, err, n_b in zip(flat["b_efficiency"], flat["b_efficiency_error"],
                             result["n_jets"]["b"], strict=True):  # fmt: skip
        assert abs(eff - 0.70) <= err
        assert abs(eff - 0.70) <= 1.0 / n_b  # the cut is exact up to one jet
    pulls = np.abs(np.array(inclusive["b_efficiency"]) - 0.70) / inclusive["b_efficiency_error"]
    assert pulls.max() > 5
    assert inclusive["b_efficiency"][0] < 0.70 < inclusive["b_efficiency"][-1]
    # the inclusive cut is the working-point table's; jets above 250 GeV are in no bin
    table = write_table([path], d_b(0.018), [0.70], tmp_path / "wp.json", tmp_path / "wp.md")
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
        rows = write_table(
            [path], d_b(0.018), [0.77], tmp_path / f"{n}.json", tmp_path / f"{n}.md"
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
    hist = written(score_histograms(path, d_b(0.018), WORKING_POINTS), tmp_path / "h.json")
    widths = np.diff(hist["edges"])
    for name in ("b", "c", "light"):
        density = np.array(hist["histograms"][name]["density"])
        assert np.sum(density * widths) == pytest.approx(1.0)
    table = write_table([path], d_b(0.018), WORKING_POINTS, tmp_path / "w.json", tmp_path / "w.md")
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
        efficiency_vs_pt(path, d_b(0.018), 0.77, [20, 40, 60, 100, 150, 250]).write(pt_files[-1])
    score_histograms(path, d_b(0.018), WORKING_POINTS).write(tmp_path / "h.json")
    formats = ["png", "pdf"]
    figures = plot_efficiency_vs_pt(
        [EfficiencyVsPt.read(p) for p in pt_files], ["DIPS", "GN2"], tmp_path / "plots" / "pt",
        TEXT, formats,
    )  # fmt: skip
    figures += plot_score_histograms(
        ScoreHistograms.read(tmp_path / "h.json"), "GN2", tmp_path / "plots" / "db", TEXT, formats
    )
    assert len(figures) == 4 * len(formats)
    for path in figures:
        assert path.exists() and path.stat().st_size > 1000, path
    assert (tmp_path / "plots" / "pt_light_rejection.png") in figures


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
    grid = (Discriminant.from_dict(config.discriminant), config.working_points,
            config.roc_b_efficiencies)  # fmt: skip
    metrics = written(evaluate(path, *grid), tmp_path / "ens.json")
    # each member's rejections counted by hand: D_b with f_c = 0.018, the cut midway between
    # the last b jet kept and the first dropped (1000 b jets), background jets above it
    labels = jets["flavour_label"]

    def by_hand(probabilities: np.ndarray, wp: float, flavour: int) -> float:
        pb, pc, pu = probabilities.T.astype(np.float64)
        db = np.log(pb / (0.018 * pc + 0.982 * pu))
        b_sorted = np.sort(db[labels == 0])[::-1]
        kept = round(wp * len(b_sorted))
        cut = 0.5 * (b_sorted[kept - 1] + b_sorted[kept])
        return (labels == flavour).sum() / (db[labels == flavour] > cut).sum()

    for wp in ("70", "77"):
        light = [by_hand(m, int(wp) / 100, 2) for m in members]
        spread = metrics["ensemble"]["working_points"][wp]
        assert spread["light_rejection_members"] == pytest.approx(light, rel=1e-9)
        assert spread["light_rejection_std"] == pytest.approx(np.std(light, ddof=1), rel=1e-9)
        c_members = [by_hand(m, int(wp) / 100, 1) for m in members]
        averaged = metrics["working_points"][wp]["c_rejection"]
        assert averaged == pytest.approx(by_hand(mean, int(wp) / 100, 1), rel=1e-9)
        assert spread["c_rejection_averaged"] == averaged
        assert spread["c_rejection_gain"] == pytest.approx(averaged / np.mean(c_members) - 1.0)
        # independent noise averages out: the averaged scores reject more than a single member
        assert spread["c_rejection_gain"] > 0
        # no light jet passes the averaged scores: the rejection is a lower limit, no gain
        averaged_light = metrics["working_points"][wp]
        assert averaged_light["light_rejection_is_lower_limit"] is True
        assert averaged_light["light_rejection"] == averaged_light["light_rejection_lower_limit"]
        assert averaged_light["light_rejection"] == pytest.approx(1 / (1 - 0.05 ** (1 / 6000)))
        assert spread["light_rejection_averaged_is_lower_limit"] is True
        assert spread["light_rejection_gain"] is None
        assert spread["light_rejection_is_lower_limit_members"] == [False] * 3
        assert spread["c_rejection_averaged_is_lower_limit"] is False
    assert metrics["ensemble"]["n_members"] == 3
    band = np.array(metrics["ensemble"]["roc"]["light_rejection_std"])
    assert np.all(band[np.isfinite(band)] >= 0) and np.nanmax(band) > 0


LIMIT_LABELS = np.repeat([0, 2, 1], [100, 200, 10])


def limit_discriminant(light_db=None) -> np.ndarray:
    """100 b jets (D_b 0.1..10), 200 light jets (D_b <= 0 by default), 10 c jets (2 score high).

    At the 77 % WP (cut between b scores 2.3 and 2.4) no light jet passes and 2 c jets do.
    """
    light_db = np.linspace(-3.0, 0.0, 200) if light_db is None else light_db
    return np.concatenate([0.1 * np.arange(1, 101), light_db, [5.0, 6.0] + [-1.0] * 8])


def test_no_light_jet_passing_gives_a_lower_limit_in_json_and_markdown(tmp_path):
    path = write_discriminant(tmp_path / "p.h5", "t", limit_discriminant(), LIMIT_LABELS)
    write_table([path], d_b(0.018), [0.77], tmp_path / "wp.json", tmp_path / "wp.md")
    table = json.loads((tmp_path / "wp.json").read_text())
    assert table["rejection_limit_cl"] == 0.95
    (row,) = table["rows"]
    assert row["b_efficiency"] == pytest.approx(0.77)
    assert row["light_efficiency"] == 0.0
    limit = 1 / (1 - 0.05 ** (1 / 200))  # Clopper-Pearson, 0 of 200 pass
    assert row["light_rejection"] == pytest.approx(limit, rel=1e-12)
    assert row["light_rejection_lower_limit"] == row["light_rejection"]
    assert row["light_rejection_is_lower_limit"] is True
    assert row["light_rejection_error"] is None
    # 2 of 10 c jets pass: a central value with an error, and a limit below it
    assert row["c_rejection"] == pytest.approx(5.0)
    assert row["c_rejection_is_lower_limit"] is False
    assert row["c_rejection_error"] == pytest.approx(np.sqrt(0.2 * 0.8 / 10) / 0.2**2)
    assert 1.0 < row["c_rejection_lower_limit"] < row["c_rejection"]
    (md_row,) = [r for r in (tmp_path / "wp.md").read_text().splitlines() if r.startswith("| t ")]
    cells = [c.strip() for c in md_row.strip("|").split("|")]
    assert cells[-1] == f"> {limit:.1f} (95 % CL)" == "> 67.3 (95 % CL)"
    # c rejection: 2 of 10 c jets pass, so no '>', but a mark for so few passing jets
    assert cells[5] == "5.0 [2.5, 13.9] †"
    assert "inf" not in md_row and "∞" not in md_row


def test_light_jets_passing_give_no_limit_flag(tmp_path):
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 3000)
    db = rng.normal(np.choose(labels, [2.0, 0.5, -1.0]), 1.0)
    path = write_discriminant(tmp_path / "p.h5", "t", db, labels)
    rows = write_table(
        [path], d_b(0.018), WORKING_POINTS, tmp_path / "wp.json", tmp_path / "wp.md"
    )["rows"]
    for row in rows:
        for bkg in ("c", "light"):
            assert row[f"{bkg}_efficiency"] > 0
            assert row[f"{bkg}_rejection_is_lower_limit"] is False
            assert row[f"{bkg}_rejection"] == pytest.approx(1 / row[f"{bkg}_efficiency"])
            assert row[f"{bkg}_rejection_lower_limit"] < row[f"{bkg}_rejection"]
    assert ">" not in (tmp_path / "wp.md").read_text().split("|---|")[-1]


def test_pt_bins_quote_limits_and_the_plot_draws_them(tmp_path, monkeypatch):
    # low pT: no light jet passes; high pT: 47 of the 200 light jets score above the cut
    db = np.concatenate([limit_discriminant(), limit_discriminant(np.linspace(-3.0, 4.0, 200))])
    labels = np.concatenate([LIMIT_LABELS, LIMIT_LABELS])
    pt_gev = np.repeat([30.0, 200.0], len(LIMIT_LABELS))
    write_discriminant(tmp_path / "p.h5", "t", db, labels, pt_gev)
    result = written(
        efficiency_vs_pt(tmp_path / "p.h5", d_b(0.018), 0.77, [20, 100, 300]), tmp_path / "pt.json"
    )
    saved = json.loads((tmp_path / "pt.json").read_text())
    assert saved["rejection_limit_cl"] == 0.95
    flat = saved["strategies"]["flat_per_bin"]
    assert flat["light_rejection_is_lower_limit"] == [True, False]
    assert flat["light_rejection"][0] == pytest.approx(1 / (1 - 0.05 ** (1 / 200)))
    assert flat["light_rejection_error"][0] is None
    assert flat["light_rejection"][1] == pytest.approx(200 / 47)
    assert flat["light_rejection_lower_limit"][1] < flat["light_rejection"][1]
    assert result["strategies"]["inclusive"]["c_rejection_is_lower_limit"] == [False, False]

    figures = {}
    save = style.save_figure

    def keep(fig, stem, formats):
        figures[Path(stem).name] = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        return save(fig, stem, formats)

    monkeypatch.setattr(style, "save_figure", keep)
    pt = [EfficiencyVsPt.read(tmp_path / "pt.json")]
    written_files = plot_efficiency_vs_pt(pt, ["T"], tmp_path / "pt", TEXT, ["png"])
    assert all(path.stat().st_size > 1000 for path in written_files)
    note = "No jet passes: lower limit (95% CL)"
    assert note in figures["pt_light_rejection"]
    assert note not in figures["pt_c_rejection"] and note not in figures["pt_b_efficiency"]


def test_ablation_takes_no_loss_from_a_lower_limit(tmp_path):
    from jettag.evaluation.ablation import ablation_summary

    nominal = write_discriminant(tmp_path / "n.h5", "t", limit_discriminant(), LIMIT_LABELS)
    light_db = np.linspace(-3.0, 4.0, 200)  # 47 light jets pass
    variant = write_discriminant(tmp_path / "v.h5", "t", limit_discriminant(light_db), LIMIT_LABELS)
    result = ablation_summary("t", nominal, {"g": variant}, {"g": ["sd0"]}, d_b(0.018), 0.77)
    result.write(tmp_path / "a.json")
    saved = json.loads((tmp_path / "a.json").read_text())
    assert saved["rejection_limit_cl"] == 0.95
    assert saved["nominal"]["light_rejection_is_lower_limit"] is True
    group = saved["groups"]["g"]
    assert group["light_rejection"] == pytest.approx(200 / 47)
    assert group["light_rejection_loss"] is None  # 1 - R / (a lower limit) is no loss
    assert group["c_rejection_loss"] == pytest.approx(0.0)  # the c jets are the same
    assert result.nominal["light_rejection"] == pytest.approx(1 / (1 - 0.05 ** (1 / 200)))


def _minimal() -> dict:
    """A valid config (the test fixtures' minimal one)."""
    from tests.conftest import minimal_config

    return minimal_config()


def test_table_states_paired_ratios_to_the_reference(tmp_path):
    rng = np.random.default_rng(7)
    labels = rng.choice(3, 6000, p=[0.35, 0.15, 0.5])
    db_a = rng.normal(np.choose(labels, [3.0, 1.0, 0.0]), 1.0)
    db_b = db_a + rng.normal(0.0, 0.8, labels.size)  # B: A degraded by noise, same jets
    files = [write_discriminant(tmp_path / f"{t}.h5", t, db, labels)
             for t, db in (("A", db_a), ("B", db_b))]  # fmt: skip
    grid = np.linspace(0.5, 0.9, 5)
    table = write_table(files, d_b(0.018), [0.70, 0.77], tmp_path / "wp.json",
                                tmp_path / "wp.md", reference="A", roc_efficiencies=grid,
                                replicas=50, seed=3)  # fmt: skip
    paired = json.loads((tmp_path / "wp.json").read_text())["paired"]
    assert paired["reference"] == "A" and paired["replicas"] == 50
    assert paired["roc"]["signal_efficiency"] == pytest.approx(grid.tolist())
    assert paired["working_points"]["A"]["light_ratio"] == [1.0, 1.0]
    rows = {(r["tagger"], r["working_point"]): r for r in table["rows"]}
    for k, wp in enumerate((0.70, 0.77)):
        ratio = paired["working_points"]["B"]["light_ratio"][k]
        assert ratio == pytest.approx(
            rows["B", wp]["light_rejection"] / rows["A", wp]["light_rejection"]
        )
        low, high = paired["working_points"]["B"]["light_ratio_interval"][k]
        assert low <= ratio <= high < 1.0  # the noisier tagger rejects less, significantly
    md = (tmp_path / "wp.md").read_text()
    assert "light rej. / A | c rej. / A |" in md and "paired bootstrap" in md
    a_row = next(line for line in md.splitlines() if line.startswith("| A | 77 %"))
    assert a_row.endswith("| 1 [1, 1] | 1 [1, 1] |")
    other = write_discriminant(tmp_path / "C.h5", "C", db_a[::-1].copy(), labels[::-1].copy())
    with pytest.raises(InputError, match="not scored on the same jets"):
        write_table([files[0], other], d_b(0.018), [0.77], tmp_path / "x.json",
                            tmp_path / "x.md", reference="A")  # fmt: skip


def test_fraction_scan_recounted_by_hand(tmp_path):
    from jettag.evaluation.fraction_scan import fraction_scan

    path = dirichlet_predictions(tmp_path / "A.h5", "A", 4)
    values = [0.0, 0.05, 0.3, 1.0]
    result = fraction_scan([path], d_b(0.018), None, values, 0.7).to_dict()
    assert (
        result["scanned"] == "c" and [e["fractions"]["c"] for e in result["taggers"]["A"]] == values
    )
    with h5py.File(path) as f:
        jets = f["jets"][:]
    pb, pc, pu = (jets[f"A_{p}"].astype(np.float64) for p in ("pb", "pc", "pu"))
    labels = jets["flavour_label"]
    rejections = []
    for f_c, entry in zip(values, result["taggers"]["A"], strict=True):
        db = np.log(pb / (f_c * pc + (1 - f_c) * pu))
        b_sorted = np.sort(db[labels == 0])[::-1]
        cut = 0.5 * (b_sorted[699] + b_sorted[700])  # 1000 b jets: 700 kept
        for k, name in ((1, "c"), (2, "light")):
            by_hand = (labels == k).sum() / (db[labels == k] > cut).sum()
            assert entry[f"{name}_rejection"] == pytest.approx(by_hand, rel=1e-12), (f_c, name)
        rejections.append((entry["c_rejection"], entry["light_rejection"]))
    # a larger f_c buys c rejection with light rejection
    assert rejections[-1][0] > rejections[0][0] and rejections[-1][1] < rejections[0][1]


def test_confusion_matrix_counts_by_hand():
    from jettag.evaluation.multiclass import confusion_matrix

    truth = np.array([0, 0, 1, 2, 2, 2])
    prob = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1],
                     [0.3, 0.3, 0.4], [0.5, 0.1, 0.4], [0.0, 0.2, 0.8]])  # fmt: skip
    assert confusion_matrix(truth, prob).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_fraction_scan_figure_fits_its_curves(tmp_path, monkeypatch):
    """The scan's curves span less than a decade: the frame hugs them (not 1 to 10^5, as
    decade-rounded log axes gave), the label and legend above, ticks as plain numbers."""
    from jettag.evaluation.fraction_scan import fraction_scan
    from jettag.plotting import style
    from jettag.plotting.multiclass import plot_fraction_scan

    path = dirichlet_predictions(tmp_path / "A.h5", "A", 4)
    scan = fraction_scan([path], d_b(0.018), None, [0.0, 0.018, 0.3, 1.0], 0.7)
    xs = [e["c_rejection"] for e in scan.taggers["A"]]
    ys = [e["light_rejection"] for e in scan.taggers["A"]]
    axes = {}

    def keep(fig, stem, formats):
        ax = fig.axes[0]
        axes.update(x=ax.get_xlim(), y=ax.get_ylim(), ticks=[t.get_text() for t in
                    ax.get_xticklabels(which="both") if t.get_text()])  # fmt: skip
        return []

    monkeypatch.setattr(style, "save_figure", keep)
    plot_fraction_scan(scan, ["Tagger A"], tmp_path / "scan", TEXT, ["png"])
    assert min(xs) / 1.2 < axes["x"][0] < min(xs) and max(xs) < axes["x"][1] < max(xs) * 1.3
    low, high = np.log10(axes["y"])
    # the data (with 30 % margins) fill the lower 55 % of the log axis, the rest is headroom
    assert low == pytest.approx(np.log10(min(ys) / 1.3))
    assert high == pytest.approx(low + np.log10(max(ys) * 1.3 / (min(ys) / 1.3)) / 0.55)
    assert not any("times" in t or "^" in t for t in axes["ticks"]), axes["ticks"]
