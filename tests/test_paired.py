"""Paired bootstrap of rejection ratios between taggers scored on the same jets."""

from __future__ import annotations

import numpy as np
import pytest

from jettag.errors import InputError
from jettag.evaluation.paired import (
    _nominal_rejections,
    bootstrap_rejections,
    check_same_jets,
    paired_ratios,
)
from jettag.evaluation.performance import tagged_jets
from tests.conftest import d_b

GRID = np.array([0.6, 0.7, 0.77, 0.85])


def _tagger(name: str, labels: np.ndarray, db: np.ndarray, pt: np.ndarray):
    """TaggedJets whose D_b (f_c = 0) is db."""
    pb = 1.0 / (1.0 + np.exp(-db))
    probabilities = {"b": pb, "c": np.zeros_like(pb), "light": 1.0 - pb}
    return tagged_jets(name, probabilities, ("b", "c", "light"), labels, pt, d_b(0.0))


@pytest.fixture(scope="module")
def sample():
    """20000 jets: b, c and light with Gaussian D_b, and a tagger B that is A plus noise."""
    rng = np.random.default_rng(11)
    labels = rng.choice(3, 20000, p=[0.35, 0.15, 0.5])
    db_a = rng.normal(np.choose(labels, [3.0, 1.0, 0.0]), 1.0)
    db_b = db_a + rng.normal(0.0, 0.05, db_a.size)  # strongly correlated with A
    pt = rng.uniform(20.0, 200.0, labels.size)
    return labels, db_a, db_b, pt


def test_all_draws_once_reproduce_the_nominal_rejections(sample):
    labels, db_a, _, pt = sample
    jets = _tagger("a", labels, db_a, pt)
    once = bootstrap_rejections(jets, GRID, np.ones((1, labels.size)))
    nominal = _nominal_rejections(jets, GRID)
    for bkg in ("c", "light"):
        np.testing.assert_allclose(once[bkg][0], nominal[bkg], rtol=1e-12)


def test_two_identical_taggers_give_ratio_one_covered_by_its_interval(sample):
    labels, db_a, _, pt = sample
    a, twin = _tagger("a", labels, db_a, pt), _tagger("twin", labels, db_a, pt)
    result = paired_ratios([a, twin], "a", GRID, replicas=100, seed=3)
    for bkg in ("c", "light"):
        assert result["twin"][f"{bkg}_ratio"] == [1.0] * len(GRID)
        for low, high in result["twin"][f"{bkg}_ratio_interval"]:
            assert low == high == 1.0  # every replica draws the same jets for both
        assert result["twin"][f"{bkg}_ratio_replicas"] == [100] * len(GRID)


def test_paired_interval_is_narrower_than_independent_errors(sample):
    labels, db_a, db_b, pt = sample
    a, b = _tagger("a", labels, db_a, pt), _tagger("b", labels, db_b, pt)
    result = paired_ratios([a, b], "a", GRID, replicas=300, seed=5)
    boot_a = bootstrap_rejections(a, GRID, np.ones((1, labels.size)))
    nominal_a, nominal_b = _nominal_rejections(a, GRID), _nominal_rejections(b, GRID)
    for k in range(len(GRID)):
        ratio = result["b"]["light_ratio"][k]
        low, high = result["b"]["light_ratio_interval"][k]
        assert low <= ratio <= high
        # the same ratio's error if the two rejections were independent binomial estimates
        n_light = (labels == 2).sum()
        rel = np.hypot(*(np.sqrt(r / n_light) for r in (nominal_a["light"][k],
                                                         nominal_b["light"][k])))  # fmt: skip
        assert (high - low) / 2 < 0.6 * rel * ratio, (GRID[k], high - low, rel * ratio)
    assert boot_a["light"].shape == (1, len(GRID))


def test_taggers_on_other_jets_cannot_be_paired(sample):
    labels, db_a, _, pt = sample
    a = _tagger("a", labels, db_a, pt)
    other = _tagger("o", labels[::-1].copy(), db_a, pt)
    with pytest.raises(InputError, match="not scored on the same jets"):
        check_same_jets([a, other], ["a.h5", "o.h5"])
    with pytest.raises(InputError, match="reference tagger 'x'"):
        paired_ratios([a], "x", GRID, replicas=10, seed=1)
