"""Metrics against answers computed by hand on hand-built predictions."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from jettag import config as cfg
from jettag.evaluation.evaluate import evaluate
from jettag.evaluation.metrics import (
    auc,
    b_discriminant,
    cut_for_efficiency,
    effective_entries,
    efficiency,
)
from tests.conftest import minimal_config


def test_discriminant_definition():
    db = b_discriminant(np.array([0.5]), np.array([0.3]), np.array([0.2]), 0.1)
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
        cfg.validate_config(minimal_config(evaluation={"f_c": 0.0, "working_points": [0.7]}))[
            "evaluation"
        ],
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
