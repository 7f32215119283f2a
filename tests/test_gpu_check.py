"""benchmarks/gpu_check.sh in its CPU dry mode: the GPU check works before a GPU is lent."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

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
