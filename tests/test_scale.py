"""Scale: model-ready arrays, the streaming loader, and data-parallel training under torchrun."""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from jettag import config as cfg
from jettag.errors import TrainingInterruptedError
from jettag.io.model_inputs import GROUP, InputSpec, build_inputs, input_spec
from jettag.training.checkpoint import load_checkpoint
from jettag.training.data import load_split
from jettag.training.loop import train_model
from jettag.training.stream import StreamingSplit, plan_blocks, training_data
from jettag.transforms import Normalisation
from tests.conftest import minimal_config
from tests.test_training import _sigterm_once_training_runs


def _without_model_inputs(source: Path, target: Path) -> Path:
    """A copy of a prepared split holding only the FTAG tables (as before model_inputs)."""
    shutil.copy(source, target)
    with h5py.File(target, "a") as f:
        del f[GROUP]
    return target


def test_model_inputs_are_the_normalised_tables(tmp_path, prepared):
    spec = input_spec(prepared)
    fast = load_split(prepared / "train.h5", spec)
    slow = load_split(_without_model_inputs(prepared / "train.h5", tmp_path / "t.h5"), spec)
    for field in dataclasses.fields(fast):
        assert torch.equal(getattr(fast, field.name), getattr(slow, field.name)), field.name
    assert fast.valid.any(dim=1).float().mean() > 0.9
    assert (fast.tracks[~fast.valid] == 0).all()


def test_model_inputs_follow_another_normalisation_and_feature_order(prepared):
    """A pretrained model keeps its own normalisation: the stored arrays are re-standardised."""
    spec = input_spec(prepared)
    other = InputSpec(
        tuple(Normalisation(n.name, n.transform, n.mean + 0.3, n.std * 1.7)
              for n in reversed(spec.track_norms)),
        spec.jet_norms, spec.classes,
    )  # fmt: skip
    data = load_split(prepared / "val.h5", other)
    with h5py.File(prepared / "val.h5") as f:
        expected, valid, _ = build_inputs(f["jets"][:], f["tracks"][:], other)
    np.testing.assert_allclose(data.tracks.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert (data.tracks[~torch.from_numpy(valid)] == 0).all()


def test_model_inputs_refuse_another_transform(prepared):
    spec = input_spec(prepared)
    first = spec.track_norms[0]
    changed = dataclasses.replace(first, transform="none" if first.transform != "none" else "log")
    other = InputSpec((changed, *spec.track_norms[1:]), spec.jet_norms, spec.classes)
    with pytest.raises(ValueError, match=rf"val\.h5: input '{first.name}' was prepared with"):
        load_split(prepared / "val.h5", other)


def _fingerprints(batches) -> list[tuple]:
    """A sortable identity of each jet in some batches."""
    out = []
    for tracks, valid, _jets, labels, weights, *_ in batches:
        per_jet = tracks.double().sum(dim=(1, 2)) + valid.sum(dim=1)
        out += list(zip(per_jet.tolist(), labels.tolist(), weights.tolist(), strict=True))
    return sorted(out)


def test_streaming_epoch_is_a_shuffle_of_the_split(prepared):
    spec = input_spec(prepared)
    memory = load_split(prepared / "train.h5", spec)
    batch = 32
    stream = StreamingSplit([(prepared / "train.h5", None)], spec, 3 * batch, 2)
    assert len(stream) == len(memory)
    epoch = list(stream.batches(batch, torch.Generator().manual_seed(1)))
    assert len(epoch) == math.ceil(len(memory) / batch)
    assert sum(len(b[3]) != batch for b in epoch) <= 1  # the short last block's batch
    assert _fingerprints(epoch) == _fingerprints(memory.batches(batch))
    # another epoch, another order; the same generator, the same order; resuming skips
    other = list(stream.batches(batch, torch.Generator().manual_seed(2)))
    assert not torch.equal(other[0][0], epoch[0][0])
    tail = list(stream.batches(batch, torch.Generator().manual_seed(1), start_batch=5))
    assert len(tail) == len(epoch) - 5
    assert all(torch.equal(a[0], b[0]) for a, b in zip(tail, epoch[5:], strict=True))
    # bucketed and in-order passes hold every jet too
    bucketed = stream.batches(batch, torch.Generator().manual_seed(1), bucket=True)
    assert _fingerprints(bucketed) == _fingerprints(epoch)
    assert _fingerprints(stream.batches(4 * batch)) == _fingerprints(epoch)
    stream.close()


def test_streamed_kfold_matches_the_in_memory_folds(tmp_path, config, prepared):
    model = cfg.model_config(config, "dips")
    spec = input_spec(prepared)

    def folds(loader):
        training = dataclasses.replace(model.training, loader=loader, loader_block_jets=50)
        kfold = dataclasses.replace(model, kfold=True, members=3, training=training)
        return training_data(prepared, spec, kfold, member=1)

    (train_mem, val_mem), (train_str, val_str) = folds("memory"), folds("stream")
    assert isinstance(train_str, StreamingSplit)
    assert len(train_mem) == len(train_str) and len(val_mem) == len(val_str)
    assert _fingerprints(train_str.batches(64)) == _fingerprints(train_mem.batches(64))
    assert _fingerprints(val_str.batches(64)) == _fingerprints(val_mem.batches(64))


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=4),
    block=st.integers(1, 17),
    max_jets=st.one_of(st.none(), st.integers(1, 100)),
    seed=st.integers(0, 2**16),
    masked=st.booleans(),
)
def test_blocks_cover_the_kept_rows_in_order(sizes, block, max_jets, seed, masked):
    rng = np.random.default_rng(seed)
    keeps = [rng.random(n) < 0.6 if masked else None for n in sizes]
    blocks = plan_blocks(sizes, keeps, block, max_jets)
    rows = [
        (s.part, s.start + k)
        for b in blocks
        for s in b
        for k in (range(s.stop - s.start) if s.keep is None else np.flatnonzero(s.keep))
    ]
    every = [
        (p, r) for p, n in enumerate(sizes) for r in range(n) if keeps[p] is None or keeps[p][r]
    ]
    assert rows == every[:max_jets]
    lengths = [
        sum(s.stop - s.start if s.keep is None else int(s.keep.sum()) for s in b) for b in blocks
    ]
    assert all(n == block for n in lengths[:-1]) and all(0 < n <= block for n in lengths)


def _streamed(model, **training):
    settings = {"loader": "stream", "loader_block_jets": 40, "loader_buffer_blocks": 2}
    return dataclasses.replace(
        model, training=dataclasses.replace(model.training, **settings, **training)
    )


def test_streamed_training_learns_and_resumes_after_sigterm(
    tmp_path, config, prepared, monkeypatch
):
    model = _streamed(cfg.model_config(config, "dips"), epochs=4, batch_size=16)
    full = train_model("dips", model, prepared, tmp_path / "full", seed=2)
    assert full[-1]["train_loss"] < full[0]["train_loss"]
    assert min(r["val_loss"] for r in full) < np.log(3) - 0.1
    part = tmp_path / "part"
    _sigterm_once_training_runs(monkeypatch, part)
    with pytest.raises(TrainingInterruptedError):
        train_model("dips", model, prepared, part, seed=2)
    assert load_checkpoint(part / "last.pt")["epoch_progress"]["batches_done"] > 0
    resumed = train_model("dips", model, prepared, part, seed=2)
    assert [r["val_loss"] for r in resumed] == [r["val_loss"] for r in full]
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(part / "last.pt")
    assert all(torch.equal(a["model_state"][k], b["model_state"][k]) for k in a["model_state"])


def _history(path: Path) -> dict[str, np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def test_torchrun_two_processes_match_one(tmp_path, prepared):
    """DDP on gloo with 2 CPU processes: the loss curve of one process, within rounding."""
    raw = minimal_config()
    raw["models"]["dips"]["training"].update(
        {"epochs": 3, "batch_size": 50, "track_origin_weight": 0.5, "rotate_about_jet_axis": True}
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    command = [
        "jettag", "train", "--config", str(tmp_path / "config.yaml"), "--model", "dips",
        "--data-dir", str(prepared), "--threads", "2",
    ]  # fmt: skip
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "2", "--no-python"]  # fmt: skip
    one = subprocess.run([*command, "--output-dir", str(tmp_path / "one")], env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([*torchrun, *command, "--output-dir", str(tmp_path / "two")], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert "process 1 of 2 (gloo)" in two.stderr
    a, b = _history(tmp_path / "one" / "history.csv"), _history(tmp_path / "two" / "history.csv")
    assert len(a["epoch"]) == 3
    for key in ("train_loss", "val_loss", "train_track_origin_loss", "val_accuracy"):
        np.testing.assert_allclose(b[key], a[key], rtol=1e-4, err_msg=key)
    assert a["train_loss"][-1] < a["train_loss"][0]
