"""The one prepared GPU check: what a lent GPU should measure, in one command (< 8 min on an H200).

    bash benchmarks/gpu_check.sh          # CPU dry mode where there is no CUDA device
    bash benchmarks/gpu_check.sh --dry    # the dry mode, forced

Steps, each timed (run in the order 2, 1, 3: the quickest figures first; a step that fails
is recorded and the next one runs; the JSON is rewritten after each):
1. the device tests (`pytest -m device`): bf16 autocast against fp32, resume after SIGTERM,
   one-process NCCL DDP, torch.compile against eager, device-resident batches;
2. training and inference jets/s of DIPS, the small transformer and GN2 sizes (bf16), batch
   1000/4000/8000 eager, DIPS and GN2 at 4000 compiled, with the peak GPU memory of each;
3. the workflow/configs/gpu.yaml analysis end to end (GN2-size transformer and a DIPS
   ensemble), in a scratch directory, with nvidia-smi sampling the GPU's utilisation; the
   busy fraction is the mean utilisation over the training jobs' windows (from their logs).
`--steps` runs some of them (e.g. `--steps analysis` in a second device session), `--budget`
bounds the whole check (each step's subprocesses get the seconds left).
The dry mode runs the same code on the CPU with tiny sizes (2 steps of 64 jets; compile for
DIPS only) and plans the analysis (snakemake -n) instead of running it: CI proves the check
works without a GPU. Writes results/benchmarks/gpu_check.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import torch
from record import write_result

REPO = Path(__file__).resolve().parents[1]
GPU_CONFIG = "workflow/configs/gpu.yaml"
TARGETS = {  # issue 17, one H200
    "gn2_train_jets_per_s": 100_000,
    "dips_train_jets_per_s": 2_000_000,
    "gpu_busy_fraction": 0.8,
    "analysis_seconds": 180,
}
# subprocesses import this checkout's jettag, whatever else is installed
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
}
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")
STEP_KEYS = {"throughput": "throughput", "tests": "device_tests", "analysis": "analysis"}  # --steps
BUDGET_SECONDS = 450  # the device run's 8 minutes, less start-up and installing the wheels


class Budget:
    """The seconds left of the check's budget: each step's subprocesses get no more."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        """Seconds until the deadline (0 when past it)."""
        return max(0.0, self.deadline - time.perf_counter())


def _text(output: str | bytes | None) -> str:
    """A timed-out subprocess's captured output as text (it may come back as bytes)."""
    return output.decode() if isinstance(output, bytes) else output or ""


def device_tests(dry: bool, budget: Budget) -> dict:
    """Run the device-marked tests; their counts and wall time."""
    start = time.perf_counter()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-m", "device", "-q", "-p", "no:cacheprovider",
             "tests/test_device.py"],
            cwd=REPO, capture_output=True, text=True, env=ENV, timeout=budget.left(),
        )  # fmt: skip
    except subprocess.TimeoutExpired as err:
        return {"ok": False, "timed_out": True, "summary": f"timed out; {_text(err.stdout)[-300:]}",
                "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-500:]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", summary)}
    if run.returncode != 0:
        print(run.stdout[-4000:], run.stderr[-2000:], sep="\n")
    return {
        "ok": run.returncode == 0,
        "summary": summary,
        **counts,
        "cuda_cases_ran": torch.cuda.is_available() and not dry,
        "seconds": round(time.perf_counter() - start, 1),
    }


def throughput(device: torch.device, dry: bool, budget: Budget) -> list[dict]:
    """Training and inference jets/s per model, batch size and compile setting.

    A case that fails (e.g. compiling GN2 on a new Triton) is a row with its error; the
    others keep their figures. Cases that the budget leaves no time for are not run.
    """
    from train_throughput import measure  # jettag's models: a missing package fails this step only

    models = ["deepsets_dips", "transformer_small", "transformer_gn2"]
    if dry:  # tiny: the same code paths; compiling a transformer cold takes a minute on a CPU
        cases = [(m, 64, False) for m in models] + [("deepsets_dips", 64, True)]
        steps = 2
    else:
        cases = [(m, b, False) for m in models for b in (1000, 4000, 8000)]
        cases += [("deepsets_dips", 4000, True), ("transformer_gn2", 4000, True)]
        steps = 20
    rows = []
    for name, batch, compiled in cases:
        row = {"model": name, "batch_size": batch, "compile": compiled}
        if budget.left() < 60:  # the other steps need their share
            rows.append(row | {"ok": False, "error": "skipped: out of time"})
            continue
        try:
            result = measure(name, device, batch, steps, compile_model=compiled)
        except Exception as err:  # recorded, and the next case runs
            rows.append(row | {"ok": False, "error": f"{type(err).__name__}: {err}"[:2000]})
            print(f"  {name:<18} batch {batch:>5} compile {compiled!s:<5} failed: {err}")
            continue
        rows.append(row | {"ok": True, **result})
        print(f"  {name:<18} batch {batch:>5} compile {compiled!s:<5}"
              f" train {result['train_jets_per_s']:>11,.0f} jets/s"
              f"  inference {result['inference_jets_per_s']:>11,.0f} jets/s")  # fmt: skip
    return rows


class UtilisationSampler:
    """GPU utilisation and memory sampled by nvidia-smi every 200 ms, stamped on arrival."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # (time, utilisation %, MiB used)
        self._process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> UtilisationSampler:
        if shutil.which("nvidia-smi") is None:
            return self
        self._process = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=timestamp,utilization.gpu,memory.used",
             "--format=csv,noheader,nounits", "-lms", "200"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        for line in self._process.stdout:
            try:  # stamped by nvidia-smi: a pipe may deliver lines late, in bursts
                stamp, utilisation, memory = (v.strip() for v in line.split(",")[:3])
                when = datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").timestamp()
                self.samples.append((when, float(utilisation), float(memory)))
            except ValueError:
                continue

    def __exit__(self, *exc) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def busy_fraction(self, windows: list[tuple[float, float]]) -> float | None:
        """Mean utilisation (fraction of time a kernel ran) inside the windows."""
        inside = [u for t, u, _ in self.samples if any(a <= t <= b for a, b in windows)]
        return round(sum(inside) / len(inside) / 100, 3) if inside else None


def _log_window(path: Path) -> tuple[float, float] | None:
    """(first, last) time stamped in a job's log."""
    stamps = [LOG_TIME.match(line) for line in path.read_text().splitlines()]
    times = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() for m in stamps if m]
    return (times[0], times[-1]) if times else None


def analysis(dry: bool, cores: int, budget: Budget) -> dict:
    """The gpu.yaml analysis in a scratch directory: planned (dry) or run and timed."""
    with tempfile.TemporaryDirectory(prefix="jettag-gpu-") as scratch:
        work = Path(scratch)
        shutil.copy(REPO / "Snakefile", work)
        shutil.copy(REPO / "config.yaml", work)
        shutil.copytree(REPO / "workflow", work / "workflow")
        # greedy: Snakemake's ILP scheduler needs PuLP, which benchmarks/gpu_wheels.py leaves out
        command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile",
                   GPU_CONFIG, "--scheduler", "greedy"]  # fmt: skip
        if dry:
            run = subprocess.run([*command, "-n", "--quiet", "rules"], cwd=work, env=ENV,
                                 capture_output=True, text=True, timeout=budget.left())  # fmt: skip
            jobs = re.search(r"^total\s+(\d+)", run.stdout + run.stderr, re.MULTILINE)
            return {
                "ok": run.returncode == 0,
                "planned_jobs": int(jobs.group(1)) if jobs else None,
                "error": None if run.returncode == 0 else run.stderr[-2000:],
            }
        start = time.perf_counter()
        timed_out = False
        with UtilisationSampler() as sampler:
            try:
                run = subprocess.run(command, cwd=work, env=ENV, capture_output=True, text=True,
                                     timeout=budget.left())  # fmt: skip
                returncode, stderr = run.returncode, run.stderr
            except subprocess.TimeoutExpired as err:  # what finished is still reported
                timed_out, returncode = True, -1
                stderr = _text(err.stderr)
        seconds = time.perf_counter() - start
        windows = [w for p in sorted(work.glob("logs/train/*/*.log")) if (w := _log_window(p))]
        metrics = {}
        for path in sorted(work.glob("results/metrics/*.json")):
            data = json.loads(path.read_text())
            point = data["working_points"].get("77", {})
            metrics[path.stem] = {
                "auc_b_vs_light": data["auc"]["b_vs_light"],
                "light_rejection_77": point.get("light_rejection"),
                "c_rejection_77": point.get("c_rejection"),
            }
        return {
            "ok": returncode == 0,
            "timed_out": timed_out,
            "seconds": round(seconds, 1),
            "gpu_busy_fraction_in_training": sampler.busy_fraction(windows),
            "gpu_memory_peak_mib": max((m for _, _, m in sampler.samples), default=None),
            "training_jobs": len(windows),
            "metrics": metrics,
            "error": None if returncode == 0 else stderr[-3000:],
        }


def _step(payload: dict, key: str, output: Path, run) -> None:
    """Run one step into payload[key]; a step that raises is recorded, and the next one runs.

    The JSON is rewritten after every step, so a check cut short still leaves what it measured.
    """
    try:
        payload[key] = run()
    except Exception as err:  # a missing package on a bare GPU machine must not cost the rest
        payload[key] = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        print(f"  failed: {payload[key]['error']}", flush=True)
    write_result(output, payload)


def main() -> int:
    """Run the check; exit 1 when a step failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="the CPU dry mode, even with CUDA")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path, default=REPO / "results/benchmarks/gpu_check.json")
    parser.add_argument("--budget", type=float, default=BUDGET_SECONDS,
                        help="seconds for the whole check; steps get what is left")  # fmt: skip
    parser.add_argument("--steps", default="throughput,tests,analysis",
                        type=lambda text: set(text.split(",")),
                        help="the steps to run, e.g. the rest in a second session")  # fmt: skip
    parser.add_argument("--require-gpu", action="store_true",
                        help="exit 2 without CUDA instead of running the dry mode")  # fmt: skip
    args = parser.parse_args()
    if args.steps - STEP_KEYS.keys():
        parser.error(
            f"--steps: {sorted(args.steps - STEP_KEYS.keys())} not among {sorted(STEP_KEYS)}"
        )
    if args.require_gpu and not torch.cuda.is_available():
        print(f"gpu_check: --require-gpu, but torch {torch.__version__} sees no CUDA device")
        return 2
    budget = Budget(args.budget)
    dry = args.dry or not torch.cuda.is_available()
    device = torch.device("cpu" if dry else "cuda")
    name = "CPU dry mode" if dry else torch.cuda.get_device_name()
    print(f"gpu_check: {name}; torch {torch.__version__}", flush=True)
    started = time.perf_counter()
    payload: dict = {"mode": "dry" if dry else "gpu", "device": name,
                     "torch": torch.__version__, "targets": TARGETS}  # fmt: skip
    # the quickest and most wanted figures first
    not_run = {"ok": False, "error": "not run (--steps)"}
    payload |= dict.fromkeys(STEP_KEYS.values(), not_run)
    if "throughput" in args.steps:
        print("throughput", flush=True)
        _step(payload, "throughput", args.output, lambda: throughput(device, dry, budget))
    if "tests" in args.steps:
        print("device tests", flush=True)
        _step(payload, "device_tests", args.output, lambda: device_tests(dry, budget))
        print(f"  {payload['device_tests'].get('summary', '')}", flush=True)
    if "analysis" in args.steps:
        print("analysis " + ("(planned only)" if dry else GPU_CONFIG), flush=True)
        _step(payload, "analysis", args.output, lambda: analysis(dry, args.cores, budget))
    payload["seconds"] = round(time.perf_counter() - started, 1)
    write_result(args.output, payload)

    tests, rows, workflow = payload["device_tests"], payload["throughput"], payload["analysis"]
    print(f"\n{'step':<34}{'result':>40}")
    print(f"{'device tests':<34}{tests.get('summary', tests.get('error', ''))[:40]:>40}")
    for row in rows if isinstance(rows, list) else []:
        label = f"{row['model']} b{row['batch_size']}{' compiled' if row['compile'] else ''}"
        if not row["ok"]:
            print(f"{label:<34}{row['error'][:40]:>40}")
            continue
        memory = f", {row['peak_memory_gib']:.1f} GiB" if row["peak_memory_gib"] else ""
        print(f"{label:<34}{row['train_jets_per_s']:>18,.0f} train jets/s{memory:>10}")
    if not workflow.get("ok"):
        failed = "not run" if workflow is not_run else "failed (see the JSON)"
        print(f"{'analysis':<34}{failed:>40}")
    elif dry:
        print(f"{'analysis (planned)':<34}{str(workflow['planned_jobs']) + ' jobs':>40}")
    else:
        busy = workflow["gpu_busy_fraction_in_training"]
        print(f"{'analysis wall time':<34}{workflow['seconds']:>38.0f} s")
        print(f"{'GPU busy in training':<34}{'n/a' if busy is None else f'{busy:.0%}':>40}")
    print(f"total {payload['seconds']:.0f} s; {args.output}")
    ok = all(_succeeded(payload[STEP_KEYS[step]]) for step in args.steps)
    return 0 if ok else 1


def _succeeded(result: dict | list[dict]) -> bool:
    """A step's result is a success: every throughput row, or the step's own ok."""
    return all(row["ok"] for row in result) if isinstance(result, list) else bool(result["ok"])


if __name__ == "__main__":
    sys.exit(main())
