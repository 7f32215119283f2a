"""ONNX export: onnxruntime gives the PyTorch probabilities, for any batch and track count."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import onnx
import onnxruntime
import pytest

from jettag import config as cfg
from jettag.evaluation.predict import network_probabilities, probabilities
from jettag.export import export_onnx
from jettag.features.prepare import prepare_dataset
from jettag.io.model_inputs import build_inputs
from jettag.training.checkpoint import load_checkpoint, load_trained_model
from jettag.training.loop import train_model
from tests.conftest import minimal_config

JET_INPUTS = [{"name": "pt", "transform": "log"}, {"name": "eta", "transform": "abs"}]


@pytest.fixture(scope="module")
def prepared_with_jets(tmp_path_factory, ingested) -> Path:
    """The small ttbar sample prepared with jet pT and |eta| as model inputs."""
    raw = minimal_config()
    raw["prepare"] = {"jet_inputs": JET_INPUTS}
    config = cfg.validate_config(raw)
    out = tmp_path_factory.mktemp("prepared_jets") / "ttbar"
    prepare_dataset(ingested, cfg.section(cfg.PrepareConfig, config["prepare"]), 3, out)
    return out


def _trained(tmp_path: Path, data_dir: Path, architecture: str) -> Path:
    """best.pt of a small model trained for two epochs."""
    raw = minimal_config()
    raw["models"]["dips"].update(
        architecture=architecture,
        deepsets={"track_layers": [16, 16], "jet_layers": [16], "normalisation": "batch"},
        transformer={"embed_dim": 16, "num_heads": 2, "num_layers": 2, "init_layers": [16],
                     "jet_layers": [16]},
    )  # fmt: skip
    model = cfg.model_config(cfg.validate_config(raw), "dips")
    model = dataclasses.replace(model, training=dataclasses.replace(model.training, epochs=2))
    train_model("tagger", model, data_dir, tmp_path, seed=2)
    return tmp_path / "best.pt"


def _run_onnx(path: Path, track_x: np.ndarray, valid: np.ndarray, jet_x: np.ndarray):
    """Probabilities from onnxruntime, feeding jet inputs only when the graph has them."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"track_features": track_x, "track_valid": valid}
    if "jet_features" in {i.name for i in session.get_inputs()}:
        feed["jet_features"] = jet_x
    return session.run(["probabilities"], feed)[0]


@pytest.mark.parametrize(
    ("architecture", "with_jets"),
    [("deepsets", False), ("deepsets", True), ("transformer", False), ("transformer", True)],
)
def test_onnx_matches_pytorch(tmp_path, prepared, prepared_with_jets, architecture, with_jets):
    data_dir = prepared_with_jets if with_jets else prepared
    checkpoint = _trained(tmp_path, data_dir, architecture)
    metadata = export_onnx(checkpoint, tmp_path / "tagger.onnx")

    with h5py.File(data_dir / "test.h5") as f:
        jets, tracks = f["jets"][:], f["tracks"][:]
    expected = network_probabilities(checkpoint, data_dir / "test.h5")
    _, spec = load_trained_model(checkpoint)
    track_x, valid, jet_x = build_inputs(jets, tracks, spec)
    got = _run_onnx(tmp_path / "tagger.onnx", track_x, valid, jet_x)
    assert got.shape == expected.shape == (len(jets), 3)
    np.testing.assert_allclose(got, expected, atol=2e-5)

    # dynamic axes: another batch size and fewer track slots (jets cut to 4 tracks), the
    # same answer as PyTorch on the same cut inputs
    model, _ = load_trained_model(checkpoint)
    cut = (track_x[:37, :4].copy(), valid[:37, :4].copy(), jet_x[:37])
    np.testing.assert_allclose(_run_onnx(tmp_path / "tagger.onnx", *cut),
                               probabilities(model, *cut), atol=2e-5)  # fmt: skip

    stored = {p.key: p.value for p in onnx.load(tmp_path / "tagger.onnx").metadata_props}
    assert stored == metadata
    assert json.loads(stored["jettag_inputs"]) == load_checkpoint(checkpoint)["inputs"]
    assert json.loads(stored["jet_features"]) == (["pt", "eta"] if with_jets else [])
    assert json.loads(stored["classes"]) == ["b", "c", "light"]
