"""Training paths that differ on an accelerator: device-resident splits, pinned copies,
bf16 autocast, torch.compile, resume after SIGTERM, one-process NCCL DDP.

Each test runs on the CPU here and on CUDA where there is a GPU (`pytest -m device`, which
benchmarks/gpu_check.sh runs); the CUDA cases are skipped without one.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from jettag import config as cfg
from jettag.errors import TrainingInterruptedError
from jettag.evaluation.predict import probabilities
from jettag.training.checkpoint import load_checkpoint, load_trained_model
from jettag.training.data import load_split, place_on_device, to_device
from jettag.training.loop import train_model
from tests.conftest import minimal_config
from tests.test_training import _sigterm_once_training_runs

pytestmark = pytest.mark.device
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


def _model(config, device, epochs=3, **training):
    model = cfg.model_config(config, "dips")
    settings = {"epochs": epochs, "device": device, **training}
    return dataclasses.replace(model, training=dataclasses.replace(model.training, **settings))


def _history(path: Path) -> dict[str, np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


@pytest.mark.parametrize("device", DEVICES)
def test_device_split_gives_the_host_batches(config, prepared, device):
    model = cfg.model_config(config, "dips")
    from jettag.io.model_inputs import input_spec

    data = load_split(prepared / "train.h5", input_spec(prepared, model.track_inputs, []))
    held = data.to(torch.device(device))
    assert len(held) == len(data)
    for bucket in (False, True):
        host = data.batches(16, torch.Generator().manual_seed(3), bucket=bucket)
        there = held.batches(16, torch.Generator().manual_seed(3), bucket=bucket)
        n = 0
        for a, b in zip(host, there, strict=True):
            n += 1
            assert all(t.device.type == device for t in b)
            for x, y in zip(a, b, strict=True):
                assert torch.equal(x, y.cpu())
        assert n == -(-len(data) // 16)


def test_splits_go_to_the_device_only_when_asked_and_they_fit(config, prepared):
    from jettag.io.model_inputs import input_spec

    model = cfg.model_config(config, "dips")
    data = load_split(prepared / "train.h5", input_spec(prepared, model.track_inputs, []))
    cuda = torch.device("cuda")
    assert place_on_device([data], torch.device("cpu"), "auto")[0] is data
    assert place_on_device([data], cuda, "never")[0] is data
    # needs more than half the free memory: stays on the host (decided before any CUDA call)
    assert place_on_device([data], cuda, "auto", free_bytes=data.nbytes())[0] is data
    if torch.cuda.is_available():
        placed = place_on_device([data], cuda, "auto", free_bytes=4 * data.nbytes())[0]
        assert placed is not data and placed.tracks.is_cuda


@pytest.mark.parametrize("device", DEVICES)
def test_host_batches_reach_the_device_unchanged(device):
    tensors = [torch.randn(5, 3), torch.arange(5), torch.ones(5, dtype=torch.bool)]
    moved = to_device(tensors, torch.device(device))
    for a, b in zip(tensors, moved, strict=True):
        assert b.device.type == device and torch.equal(a, b.cpu())


@CUDA
def test_bf16_autocast_predictions_match_fp32(tmp_path, config, prepared):
    """Stated tolerance: probabilities within 0.02 of fp32; best validation loss within 2 %."""
    histories = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        model = _model(config, "cuda", epochs=4, precision=precision)
        histories[precision] = train_model("dips", model, prepared, out, seed=3)
    best = {k: min(r["val_loss"] for r in h) for k, h in histories.items()}
    assert best["bf16"] == pytest.approx(best["fp32"], rel=0.02)

    network, spec = load_trained_model(tmp_path / "fp32" / "best.pt")
    network = network.cuda()
    from jettag.io.model_inputs import read_model_inputs

    inputs = read_model_inputs(prepared / "test.h5", spec)
    args = [torch.from_numpy(inputs[k]).cuda() for k in ("tracks", "valid", "jets")]
    with torch.no_grad():
        fp32 = torch.softmax(network(*args).float(), 1)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = torch.softmax(network(*args).float(), 1)
    assert (fp32 - bf16).abs().max().item() < 0.02


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_training_matches_eager(tmp_path, config, prepared, device):
    if device == "cpu" and shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("torch.compile on the CPU needs a C++ compiler")
    histories = {}
    for compiled in (False, True):
        model = _model(config, device, epochs=2, compile=compiled, precision="fp32")
        histories[compiled] = train_model("dips", model, prepared, tmp_path / str(compiled), 4)
    for key in ("train_loss", "val_loss"):
        a = [r[key] for r in histories[False]]
        b = [r[key] for r in histories[True]]
        np.testing.assert_allclose(b, a, rtol=2e-3, err_msg=key)
    # the checkpoint holds the plain model's weights: it loads and predicts without compile
    network, spec = load_trained_model(tmp_path / "True" / "best.pt")
    from jettag.io.model_inputs import read_model_inputs

    inputs = read_model_inputs(prepared / "test.h5", spec)
    p = probabilities(network, inputs["tracks"], inputs["valid"], inputs["jets"])
    assert np.isfinite(p).all() and p.shape == (len(inputs["labels"]), 3)


@CUDA
def test_cuda_training_resumes_after_sigterm(tmp_path, config, prepared, monkeypatch):
    """On CUDA the resumed run need not be bit-identical; its best loss is the same within 1 %."""
    model = _model(config, "cuda", epochs=4, batch_size=16)
    full = train_model("dips", model, prepared, tmp_path / "full", seed=5)
    part = tmp_path / "part"
    _sigterm_once_training_runs(monkeypatch, part)
    with pytest.raises(TrainingInterruptedError):
        train_model("dips", model, prepared, part, seed=5)
    state = load_checkpoint(part / "last.pt")
    assert state["epoch_progress"]["batches_done"] > 0
    assert state["cuda_rng_state"] is not None
    resumed = train_model("dips", model, prepared, part, seed=5)
    assert len(resumed) == len(full)
    best = [min(r["val_loss"] for r in h) for h in (full, resumed)]
    assert best[1] == pytest.approx(best[0], rel=0.01)


@pytest.mark.parametrize("device", DEVICES)
def test_one_process_ddp(tmp_path, prepared, device):
    """torchrun with one process trains through DDP: NCCL on a GPU, gloo on the CPU."""
    raw = minimal_config()
    raw["models"]["dips"]["training"].update({"epochs": 2, "batch_size": 50, "device": device})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    command = [
        "jettag", "train", "--config", str(tmp_path / "config.yaml"), "--model", "dips",
        "--data-dir", str(prepared), "--output-dir", str(tmp_path / "ddp"),
    ]  # fmt: skip
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "1", "--no-python"]  # fmt: skip
    run = subprocess.run([*torchrun, *command], env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"process 0 of 1 ({'nccl' if device == 'cuda' else 'gloo'})" in run.stderr
    history = _history(tmp_path / "ddp" / "history.csv")
    assert len(history["epoch"]) == 2 and np.isfinite(history["val_loss"]).all()


@CUDA
def test_predictions_on_the_gpu_match_the_cpu(tmp_path, config, prepared):
    """Scoring moves to the GPU when there is one (fp32): the CPU's probabilities within 1e-5."""
    from jettag.evaluation.predict import network_probabilities
    from jettag.io.model_inputs import read_model_inputs

    train_model("dips", _model(config, "cpu", epochs=1), prepared, tmp_path, seed=2)
    on_gpu = network_probabilities(tmp_path / "best.pt", prepared / "test.h5")
    network, spec = load_trained_model(tmp_path / "best.pt")
    inputs = read_model_inputs(prepared / "test.h5", spec)
    on_cpu = probabilities(network, inputs["tracks"], inputs["valid"], inputs["jets"])
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-5)
