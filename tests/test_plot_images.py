"""Figures against committed reference images: the ROC, a pT plot, a score plot and a saliency
map, drawn from fixed numbers files, compared with matplotlib's image comparison (RMS of the
pixel differences below TOLERANCE). A plot that changes fails here.

To accept a deliberate change, redraw the references and look at them before committing:
    JETTAG_UPDATE_REFERENCE_IMAGES=1 python -m pytest tests/test_plot_images.py
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.testing.compare import compare_images

from jettag.config import RocGrid
from jettag.evaluation.evaluate import Metrics, evaluate
from jettag.evaluation.working_points import (
    EfficiencyVsPt,
    ScoreHistograms,
    WorkingPointTable,
    efficiency_vs_pt,
    score_histograms,
    working_point_table,
)
from jettag.io.results import SaliencyMaps
from jettag.plotting.performance import plot_efficiency_vs_pt, plot_score_histograms
from jettag.plotting.roc import ensemble_legend, plot_roc
from jettag.plotting.saliency import plot_saliency
from jettag.plotting.style import FigureText
from tests.conftest import d_b
from tests.test_working_points import write_predictions

REFERENCES = Path(__file__).parent / "reference_images"
TOLERANCE = 2.0  # RMS over pixels, 0-255 scale: fonts may antialias differently, curves may not
TEXT = FigureText("ATLAS", "Simulation Internal", 13.0, "$t\\bar{t}$, reference figure")
UPDATE = bool(os.environ.get("JETTAG_UPDATE_REFERENCE_IMAGES"))


def _predictions(path: Path, tagger: str, seed: int, separation: float) -> Path:
    """Fixed softmax-like outputs of 6000 jets with pT from 20 GeV to 400 GeV."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1, 2], [1500, 1500, 3000])
    alpha = np.array([[2 + separation, 1.5, 1.0], [1.5, 3.0, 1.5], [0.6, 1.2, 2 + separation]])
    p = rng.gamma(alpha[labels])
    p /= p.sum(axis=1, keepdims=True)
    # the same test jets for every tagger (paired ratios need them): pT from a fixed seed
    pt = np.exp(np.random.default_rng(0).uniform(np.log(20), np.log(400), len(labels)))
    return write_predictions(path, tagger, p[:, 0], p[:, 1], p[:, 2], labels, pt)


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> dict[str, Path]:
    """The four figures, drawn from numbers files made here: name -> PNG."""
    out = tmp_path_factory.mktemp("figures")
    paths = [_predictions(out / "A.h5", "A", 1, 1.0), _predictions(out / "B.h5", "B", 2, 2.5)]
    # each result goes through its file, as the plot stages read them
    metrics = []
    for path in paths:
        evaluate(path, d_b(0.018), [0.7, 0.77], RocGrid(0.5, 0.95, 46)).write(out / "m.json")
        metrics.append(Metrics.read(out / "m.json"))
    table = working_point_table(paths, d_b(0.018), [0.7, 0.77], reference="A",
                                roc_efficiencies=np.linspace(0.5, 0.95, 46), replicas=50,
                                seed=1)  # fmt: skip
    table.write(out / "wp.json")
    comparison = WorkingPointTable.read(out / "wp.json")
    plot_roc(metrics, ["Tagger A", "Tagger B"], comparison, out / "roc", TEXT, ["png"])
    pt = []
    for path in paths:
        efficiency_vs_pt(path, d_b(0.018), 0.77, [20, 40, 80, 150, 400]).write(out / "pt.json")
        pt.append(EfficiencyVsPt.read(out / "pt.json"))
    plot_efficiency_vs_pt(pt, ["Tagger A", "Tagger B"], out / "pt", TEXT, ["png"])
    score_histograms(paths[1], d_b(0.018), [0.7, 0.77]).write(out / "scores.json")
    scores = ScoreHistograms.read(out / "scores.json")
    plot_score_histograms(scores, "Tagger B", out / "scores", TEXT, ["png"])
    n_inputs, n_tracks = 4, 6
    grid = np.add.outer(np.linspace(-1, 1, n_inputs), np.linspace(1, 0, n_tracks))
    saliency = {
        "tagger": "B", "inputs": ["IP3D_signed_d0_significance", "ptfrac", "dr", "d0"],
        "checkpoint": "best.pt", "split_file": "test.h5", "cut": 2.1, "transforms": {},
        "n_tracks": n_tracks, "track_order": "IP3D_signed_d0_significance",
        "b_efficiency": 0.77, "discriminant": d_b(0.018).to_dict(), "n_b_jets": 400,
        "maps": {"passing": grid.tolist(), "failing": (-0.5 * grid).tolist()},
        "map_errors": {"passing": None, "failing": None},
        "n_jets": {"passing": 120, "failing": 40},
    }  # fmt: skip
    (out / "saliency.json").write_text(json.dumps(saliency))
    maps = SaliencyMaps.read(out / "saliency.json")
    plot_saliency(maps, "Tagger B", out / "saliency", TEXT, ["png"])
    return {
        "roc": out / "roc.png",
        "pt_b_efficiency": out / "pt_b_efficiency.png",
        "pt_light_rejection": out / "pt_light_rejection.png",
        "scores": out / "scores.png",
        "saliency": out / "saliency.png",
    }


@pytest.mark.parametrize(
    "name", ["roc", "pt_b_efficiency", "pt_light_rejection", "scores", "saliency"]
)
def test_figure_matches_its_reference(figures, name):
    reference = REFERENCES / f"{name}.png"
    if UPDATE:
        REFERENCES.mkdir(exist_ok=True)
        shutil.copyfile(figures[name], reference)
        pytest.skip(f"reference redrawn: {reference}; look at it before committing")
    assert reference.exists(), f"no reference image {reference}: redraw them (module docstring)"
    difference = compare_images(str(reference), str(figures[name]), tol=TOLERANCE)
    assert difference is None, difference


def test_ensemble_band_legend_says_how_many_members():
    # the default analysis draws a 5-member DIPS beside a 2-member transformer
    assert ensemble_legend({5}) == "Ensemble std (5 members)"
    assert ensemble_legend({2, 5}) == "Ensemble std (2-5 members)"
    assert ensemble_legend({5, 3, 2}) == "Ensemble std (2-5 members)"
