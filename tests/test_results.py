"""Results files as dataclasses (jettag.io.results.Result): the same file back, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jettag.config import RocGrid
from jettag.errors import InputError
from jettag.evaluation.evaluate import Metrics, evaluate
from jettag.io.predictions import kept_jet_fields, write_predictions
from tests.conftest import d_b


def _predictions(path):
    """Hand-built predictions of 300 jets (b, c, light) of one model."""
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1, 2], 100)
    logits = rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[labels]
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    fields = kept_jet_fields()
    jets = np.zeros(300, dtype=[(name, "f4" if name in ("pt", "eta", "phi") else "i4")
                                for name in fields])  # fmt: skip
    jets["pt"], jets["flavour_label"] = 50.0, labels
    write_predictions(path, "t", ["b", "c", "light"], jets, prob.astype("f4")[None])
    return path


def test_a_result_writes_the_file_it_reads_back(tmp_path):
    metrics = evaluate(
        _predictions(tmp_path / "p.h5"), d_b(0.018), [0.7, 0.77], RocGrid(0.5, 0.9, 5)
    )
    metrics.write(tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text()
    again = Metrics.read(tmp_path / "m.json")
    assert again == metrics  # what the compute function returns is what a plot reads back
    again.write(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text
    data = json.loads(text)
    assert list(data) == [  # the keys, in the file's order; no ensemble for a single model
        "tagger", "discriminant", "n_jets", "auc", "rejection_limit_cl", "working_points",
        "roc", "predictions",
    ]  # fmt: skip
    assert again.curve.signal_efficiency.tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    assert again.definition == d_b(0.018)


def test_a_file_of_another_kind_names_itself_and_what_it_lacks(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"tagger": "t", "points": []}))
    with pytest.raises(InputError, match=r"other.json: no \['discriminant', .*not a Metrics"):
        Metrics.read(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match=r"broken\.json: cannot read results JSON"):
        Metrics.read(tmp_path / "broken.json")
