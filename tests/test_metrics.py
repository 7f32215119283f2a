"""Metrics against answers computed by hand on hand-built predictions."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest

from jettag import config as cfg
from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.evaluate import evaluate as evaluate_stage
from jettag.evaluation.metrics import (
    INTERVAL_CL,
    REJECTION_LIMIT_CL,
    auc,
    cut_for_efficiency,
    effective_entries,
    efficiency,
    efficiency_interval,
    efficiency_upper_limit,
    rejection_interval,
    rejection_with_limit,
)
from tests.conftest import d_b, minimal_config


def evaluate(predictions, evaluation: cfg.EvaluationConfig, output) -> dict:
    """The evaluate stage with a config's evaluation section, its metrics written to output."""
    metrics = evaluate_stage(predictions, Discriminant.from_dict(evaluation.discriminant),
                             evaluation.working_points, evaluation.roc_b_efficiencies)  # fmt: skip
    metrics.write(output)
    return metrics.to_dict()


def test_discriminant_definition():
    db = d_b(0.1).scores({"b": np.array([0.5]), "c": np.array([0.3]), "light": np.array([0.2])})
    assert db[0] == pytest.approx(np.log(0.5 / (0.1 * 0.3 + 0.9 * 0.2)))


def test_cut_gives_the_target_efficiency():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=1000)
    for target in (0.6, 0.7, 0.77, 0.85):
        cut = cut_for_efficiency(scores, np.ones(1000), target)
        assert np.mean(scores > cut) == pytest.approx(target, abs=1e-3)


def test_weighted_efficiency_error_uses_n_eff():
    w = np.array([1.0, 1.0, 2.0, 2.0])
    assert effective_entries(w) == pytest.approx(36 / 10)
    eff, err = efficiency(np.array([True, False, True, False]), w)
    assert eff == pytest.approx(0.5)
    assert err == pytest.approx(np.sqrt(0.25 / 3.6))


def test_auc_matches_pair_counting():
    rng = np.random.default_rng(3)
    s, b = rng.normal(1, 1, 300), rng.normal(0, 1, 400)
    s[:10] = b[:10]  # ties count one half
    pairs = (s[:, None] > b[None, :]).mean() + 0.5 * (s[:, None] == b[None, :]).mean()
    assert auc(s, b) == pytest.approx(pairs, rel=1e-12)


def _predictions(path, pb, pc, pu, labels):
    dtype = [("pt", "f4"), ("flavour_label", "i4"), ("t_pb", "f4"), ("t_pc", "f4"), ("t_pu", "f4")]
    jets = np.zeros(len(labels), dtype=dtype)
    jets["pt"], jets["flavour_label"] = 50.0, labels
    jets["t_pb"], jets["t_pc"], jets["t_pu"] = pb, pc, pu
    with h5py.File(path, "w") as f:
        f["jets"] = jets
        f["jets"].attrs["flavour_label"] = ["b", "c", "light"]
        f["jets"].attrs["tagger"] = "t"


def test_rejection_at_working_point_by_hand(tmp_path):
    # 10 b jets with D_b = 1..10 (f_c = 0 makes D_b = log(pb/pu)); 70% WP keeps the top 7 b jets,
    # so the cut lies between b scores 3 and 4; light scores: 5 of 20 light jets above it.
    b_db = np.arange(1, 11, dtype=float)
    light_db = np.array([0.5] * 15 + [3.7, 5, 6, 7, 8])
    c_db = np.array([0.1, 0.2, 9.0, 0.3])
    db = np.concatenate([b_db, light_db, c_db])
    labels = np.array([0] * 10 + [2] * 20 + [1] * 4)
    pb = 1 / (1 + np.exp(-db))
    _predictions(tmp_path / "p.h5", pb, np.zeros_like(pb), 1 - pb, labels)
    evaluation = cfg.section(
        cfg.EvaluationConfig,
        cfg.validate_config(
            minimal_config(
                evaluation={
                    "discriminant": {"signal": "b", "fractions": {"c": 0.0, "light": 1.0}},
                    "working_points": [0.7],
                }
            )
        )["evaluation"],
    )
    metrics = evaluate(tmp_path / "p.h5", evaluation, tmp_path / "m.json")
    wp = metrics["working_points"]["70"]
    assert wp["b_efficiency"] == pytest.approx(0.7)
    assert 3 < wp["cut"] < 4
    assert wp["light_rejection"] == pytest.approx(20 / 5)
    assert wp["light_rejection_error"] == pytest.approx(np.sqrt(0.25 * 0.75 / 20) / 0.25**2)
    assert wp["c_rejection"] == pytest.approx(4 / 1)
    assert (tmp_path / "m.json").exists()


def test_binomial_band_shrinks_as_one_over_sqrt_n(tmp_path):
    rng = np.random.default_rng(5)
    widths = []
    evaluation = cfg.section(
        cfg.EvaluationConfig, cfg.validate_config(minimal_config())["evaluation"]
    )
    for n in (2_000, 32_000):
        labels = rng.integers(0, 3, n)
        db = rng.normal(np.where(labels == 0, 2.0, 0.0), 1.0)
        pb = 1 / (1 + np.exp(-db))
        _predictions(tmp_path / f"{n}.h5", pb, (1 - pb) / 2, (1 - pb) / 2, labels)
        wp = evaluate(tmp_path / f"{n}.h5", evaluation, tmp_path / f"{n}.json")["working_points"][
            "77"
        ]
        widths.append(wp["light_rejection_error"] / wp["light_rejection"])
    assert widths[0] / widths[1] == pytest.approx(4.0, rel=0.15)


def _brute_force_upper_limit(k: int, n: int, cl: float) -> float:
    """The p with sum_{i<=k} C(n,i) p^i (1-p)^(n-i) = 1 - cl, by bisection on exact sums."""
    low, high = 0.0, 1.0
    for _ in range(100):
        p = 0.5 * (low + high)
        cdf = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))
        low, high = (p, high) if cdf > 1 - cl else (low, p)
    return 0.5 * (low + high)


def test_clopper_pearson_upper_limit_known_values():
    assert REJECTION_LIMIT_CL == 0.95
    # k = 0: P(0 pass) = (1 - p)^n = 0.05
    assert efficiency_upper_limit(0, 100) == pytest.approx(1 - 0.05 ** (1 / 100), rel=1e-12)
    assert efficiency_upper_limit(0, 100) == pytest.approx(0.0295130, abs=1e-7)
    # Beta.ppf(0.95, 4, 47); found independently by the binomial-sum search below
    assert efficiency_upper_limit(3, 50) == pytest.approx(0.1478372, abs=1e-7)
    for k, n, cl in ((0, 1, 0.95), (1, 2, 0.95), (3, 50, 0.95), (7, 40, 0.68), (12, 300, 0.99),
                     (49, 50, 0.95), (0, 1000, 0.9)):  # fmt: skip
        assert efficiency_upper_limit(k, n, cl) == pytest.approx(
            _brute_force_upper_limit(k, n, cl), rel=1e-9
        ), (k, n, cl)
    assert efficiency_upper_limit(50, 50) == 1.0  # all pass: nothing below 1
    assert math.isnan(efficiency_upper_limit(0, 0))  # no jets: no limit
    with pytest.raises(ValueError, match="confidence level"):
        efficiency_upper_limit(1, 10, 1.0)


def test_clopper_pearson_upper_limit_is_monotonic():
    n = 60
    in_k = [efficiency_upper_limit(k, n) for k in np.arange(0, n + 0.5, 0.5)]
    assert np.all(np.diff(in_k) > 0)  # more passing jets: a higher limit
    assert all(efficiency_upper_limit(k, n) > k / n for k in range(n))
    in_n = [efficiency_upper_limit(3, n) for n in (4, 5, 10, 30, 100, 1000, 10**5, 10**7)]
    assert np.all(np.diff(in_n) < 0)  # more jets, the same number passing: a lower limit
    in_cl = [efficiency_upper_limit(3, 50, cl) for cl in (0.5, 0.68, 0.9, 0.95, 0.99)]
    assert np.all(np.diff(in_cl) > 0)


def test_weighted_counts_match_the_beta_quantile():
    stats = pytest.importorskip("scipy.stats")
    # N_eff-scaled counts are not integers: the Beta quantile still defines the limit
    for k, n in ((0.0, 37.4), (2.6, 37.4), (150.3, 12345.6), (3.0, 1e6)):
        assert efficiency_upper_limit(k, n) == pytest.approx(
            stats.beta.ppf(0.95, k + 1, n - k), rel=1e-7
        ), (k, n)


def _binomial_tail(k: int, n: int, p: float, at_least: bool) -> float:
    """P(X >= k) or P(X <= k) for X ~ Binomial(n, p), by the sum."""
    terms = range(k, n + 1) if at_least else range(k + 1)
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in terms)


def test_central_interval_by_the_binomial_sums():
    alpha = (1 - INTERVAL_CL) / 2
    for k, n in ((0, 10), (1, 10), (5, 40), (39, 40), (40, 40), (12, 300)):
        low, high = efficiency_interval(k, n)
        # Clopper-Pearson: each end is where the tail beyond the observation is alpha
        if k > 0:
            assert _binomial_tail(k, n, low, at_least=True) == pytest.approx(alpha, rel=1e-9)
        else:
            assert low == 0.0
        if k < n:
            assert _binomial_tail(k, n, high, at_least=False) == pytest.approx(alpha, rel=1e-9)
        else:
            assert high == 1.0
        assert low <= k / n <= high


def test_central_interval_covers_at_least_its_confidence_level():
    n = 25
    intervals = [efficiency_interval(k, n) for k in range(n + 1)]
    for p in np.linspace(0.01, 0.99, 50):
        coverage = sum(math.comb(n, k) * p**k * (1 - p) ** (n - k)
                       for k, (low, high) in enumerate(intervals) if low <= p <= high)  # fmt: skip
        assert coverage >= INTERVAL_CL - 1e-12, (p, coverage)


def test_rejection_intervals_of_few_passing_jets_are_the_garwood_ones():
    """5 and 10 of 16,738 light jets pass (60 % WP): the issue's 68 % Garwood intervals."""
    for k, garwood in ((5, (2001, 5875)), (10, (1175, 2424))):
        low, high = rejection_interval(*efficiency_interval(k, 16738))
        assert low == pytest.approx(garwood[0], rel=0.005)
        assert high == pytest.approx(garwood[1], rel=0.005)
        assert low < 16738 / k < high  # asymmetric about the measured rejection
    assert rejection_interval(*efficiency_interval(0, 100))[1] == math.inf


def test_rejection_with_limit_where_nothing_passes():
    none_pass = rejection_with_limit("light", 0.0, 0.0, 100.0)
    limit = 1 / (1 - 0.05 ** (1 / 100))
    assert none_pass["light_rejection"] == pytest.approx(limit, rel=1e-12)
    assert none_pass["light_rejection_lower_limit"] == none_pass["light_rejection"]
    assert none_pass["light_rejection_is_lower_limit"] is True
    assert math.isnan(none_pass["light_rejection_error"])
    some_pass = rejection_with_limit("c", 0.1, 0.03, 50.0)
    assert some_pass["c_rejection"] == pytest.approx(10.0)
    assert some_pass["c_rejection_error"] == pytest.approx(0.03 / 0.1**2)
    assert some_pass["c_rejection_is_lower_limit"] is False
    assert some_pass["c_rejection_lower_limit"] == pytest.approx(
        1 / _brute_force_upper_limit(5, 50, 0.95), rel=1e-9
    )
    assert some_pass["c_rejection_lower_limit"] < some_pass["c_rejection"]
    # weighted jets count as N_eff ones: 2 of N_eff = 20 pass
    weighted = rejection_with_limit("c", 0.1, 0.07, 20.0)
    assert weighted["c_rejection_lower_limit"] == pytest.approx(
        1 / _brute_force_upper_limit(2, 20, 0.95), rel=1e-9
    )
    for empty in (rejection_with_limit("c", float("nan"), float("nan"), 0.0),
                  rejection_with_limit("c", float("nan"), float("nan"), 30.0)):  # fmt: skip
        assert math.isnan(empty["c_rejection"]) and math.isnan(empty["c_rejection_lower_limit"])
        assert empty["c_rejection_is_lower_limit"] is False


def test_working_point_without_passing_light_jets_quotes_the_limit(tmp_path):
    # 100 b jets with D_b = 0.1..10; the 77 % WP cut lies between b scores 2.3 and 2.4. No
    # light jet (D_b <= 0) passes it; 2 of 10 c jets do.
    b_db = 0.1 * np.arange(1, 101)
    light_db = np.linspace(-3.0, 0.0, 200)
    c_db = np.array([5.0, 6.0] + [-1.0] * 8)
    db = np.concatenate([b_db, light_db, c_db])
    labels = np.array([0] * 100 + [2] * 200 + [1] * 10)
    pb = 1 / (1 + np.exp(-db))
    _predictions(tmp_path / "p.h5", pb, np.zeros_like(pb), 1 - pb, labels)
    evaluation = cfg.section(
        cfg.EvaluationConfig,
        cfg.validate_config(
            minimal_config(
                evaluation={
                    "discriminant": {"signal": "b", "fractions": {"c": 0.0, "light": 1.0}},
                    "working_points": [0.77],
                }
            )
        )["evaluation"],
    )
    evaluate(tmp_path / "p.h5", evaluation, tmp_path / "m.json")
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["rejection_limit_cl"] == 0.95
    wp = metrics["working_points"]["77"]
    assert wp["b_efficiency"] == pytest.approx(0.77)
    assert 2.3 < wp["cut"] < 2.4
    assert wp["light_efficiency"] == 0.0
    assert wp["light_rejection"] == pytest.approx(1 / (1 - 0.05 ** (1 / 200)), rel=1e-12)
    assert wp["light_rejection_lower_limit"] == wp["light_rejection"]
    assert wp["light_rejection_is_lower_limit"] is True
    assert wp["light_rejection_error"] is None
    assert wp["light_n_eff"] == pytest.approx(200)
    assert wp["c_rejection"] == pytest.approx(10 / 2)
    assert wp["c_rejection_is_lower_limit"] is False
    assert wp["c_rejection_lower_limit"] == pytest.approx(
        1 / _brute_force_upper_limit(2, 10, 0.95), rel=1e-9
    )
    assert wp["c_rejection_lower_limit"] < wp["c_rejection"]
    # the ROC grid is unchanged: an infinite rejection there is still null
    assert None in metrics["roc"]["light_rejection"]


def test_roc_round_trips_through_json_and_refuses_other_grids(tmp_path):
    from jettag.atomic import json_safe, write_json
    from jettag.evaluation.performance import Roc, roc, tagged_jets

    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 3000)
    db = rng.normal(np.where(labels == 0, 5.0, 0.0), 1.0)  # no light jet above the b median
    pb = 1 / (1 + np.exp(-db))
    probabilities = {"b": pb, "c": (1 - pb) / 2, "light": (1 - pb) / 2}
    jets = tagged_jets(
        "t", probabilities, ["b", "c", "light"], labels, np.full(3000, 50.0), d_b(0.018)
    )
    curve = roc(jets, np.linspace(0.5, 1.0, 26))
    assert np.isinf(curve.rejection["light"][0])  # no light jet passes the tightest cut
    write_json(tmp_path / "roc.json", curve.to_dict())
    read = Roc.from_dict(json.loads((tmp_path / "roc.json").read_text()))
    assert json_safe(read.to_dict()) == json_safe(curve.to_dict())
    assert np.isinf(read.rejection["light"][0])  # null in JSON reads back as no jet passing
    ratio, error = read.ratio(curve, "light")
    finite = np.isfinite(curve.rejection["light"])
    assert np.allclose(ratio[finite], 1.0) and np.isnan(ratio[~finite]).all()
    assert np.allclose(
        error[finite], (curve.rejection_error["light"] / curve.rejection["light"])[finite]
    )
    other = roc(jets, np.linspace(0.5, 1.0, 51))
    with pytest.raises(ValueError, match="different b-efficiency grids"):
        curve.ratio(other, "light")
