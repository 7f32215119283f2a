"""benchmarks/gpu_check.sh in its CPU dry mode: the GPU check works before a GPU is lent."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_mode_runs_every_step():
    readme = (REPO / "README.md").read_text()
    (command,) = set(re.findall(r"`(bash benchmarks/gpu_check\.sh[^`]*)`", readme))
    result = REPO / "results/benchmarks/gpu_check.json"
    result.unlink(missing_ok=True)
    # as the README shows it; forced dry where a GPU would run the whole check
    extra = ["--dry"] if torch.cuda.is_available() else []
    run = subprocess.run([*shlex.split(command), *extra], cwd=REPO, capture_output=True,
                         text=True, timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    payload = json.loads(result.read_text())
    assert payload["mode"] == "dry"
    tests = payload["device_tests"]
    assert tests["ok"] and tests["passed"] >= 5  # the CPU cases; CUDA ones skip here
    rows = {(r["model"], r["compile"]) for r in payload["throughput"]}
    assert {("deepsets_dips", False), ("transformer_gn2", False), ("deepsets_dips", True)} <= rows
    assert all(r["train_jets_per_s"] > 0 and r["inference_jets_per_s"] > 0
               for r in payload["throughput"])  # fmt: skip
    # the GPU analysis plans: a GN2-size transformer, DIPS members, the baseline, plots
    assert payload["analysis"]["ok"] and payload["analysis"]["planned_jobs"] > 20
    assert "device tests" in run.stdout and "analysis (planned)" in run.stdout


def _gpu_check_module(monkeypatch):
    """benchmarks/gpu_check.py imported as the script sees its neighbours."""
    import importlib

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module("gpu_check")


def test_a_failing_throughput_case_keeps_the_other_rows(monkeypatch):
    gpu_check = _gpu_check_module(monkeypatch)
    import train_throughput

    def measure(name, device, batch, steps, compile_model=False):
        if compile_model:
            raise RuntimeError("Triton could not compile this")
        return {"train_jets_per_s": 1.0, "inference_jets_per_s": 2.0, "peak_memory_gib": None}

    monkeypatch.setattr(train_throughput, "measure", measure)
    rows = gpu_check.throughput(torch.device("cpu"), True, gpu_check.Budget(600))
    failed = [r for r in rows if not r["ok"]]
    assert [(r["model"], r["compile"]) for r in failed] == [("deepsets_dips", True)]
    assert "Triton could not compile" in failed[0]["error"]
    assert sum(r["ok"] for r in rows) == 3 and all(r["train_jets_per_s"] == 1.0
                                                   for r in rows if r["ok"])  # fmt: skip
    # with no time left nothing more is started: every case is recorded as skipped
    rows = gpu_check.throughput(torch.device("cpu"), True, gpu_check.Budget(0))
    assert all(r["error"] == "skipped: out of time" for r in rows)


def test_require_gpu_refuses_the_dry_mode_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("only a machine without CUDA exits here")
    run = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--require-gpu", "--output",
                          str(tmp_path / "gpu_check.json")], cwd=REPO, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert "sees no CUDA device" in run.stdout
    assert not (tmp_path / "gpu_check.json").exists()
