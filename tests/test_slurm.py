"""The SLURM path for real: a one-node SLURM with accounting (.ci/slurm_up.sh), the project's
profile with its size variables set for the node, the CI analysis through sbatch and sacct.

Skipped with the reason only where SLURM cannot be started (not root, no apt-get); under CI
a cluster that fails to start is a failure (tests/slurm_cluster.py).
"""

from __future__ import annotations

import datetime
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import copy_workflow
from tests.slurm_cluster import cluster_or_skip_reason, fitted_profile, node_size, sacct_jobs

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
CI_CONFIG = "workflow/configs/ci.yaml"
# submitted through sbatch; the rest of the CI analysis runs in the Snakemake process
HEAVY_RULES = {"generate", "ingest", "prepare", "train", "predict", "fit_baseline"}
LIGHT_RULES = {"plot_roc", "plot_loss", "evaluate", "working_points", "performance"}


@pytest.fixture(scope="module")
def node() -> tuple[int, int]:
    """(CPUs, MB) of the test cluster's node, starting the cluster if need be."""
    reason = cluster_or_skip_reason()
    if reason:
        pytest.skip(reason)
    return node_size()


def _now() -> str:
    """Now, as sacct's --starttime reads it (a second early, to be safe)."""
    return (datetime.datetime.now() - datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")


def _snakemake(workdir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """snakemake in workdir (never raises on failure)."""
    return subprocess.run(["snakemake", *args], cwd=workdir, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def slurm_run(node, tmp_path_factory) -> dict:
    """The CI analysis through the SLURM profile, sized for the node."""
    cpus, mem_mb = node
    workdir = tmp_path_factory.mktemp("slurm_run")
    copy_workflow(workdir)
    # two trainings side by side on the node: the CI analysis's networks are tiny, and each
    # SLURM job pays a few seconds of start-up (two Snakemake parses, srun) that overlap then
    training_cpus = max(1, cpus // 2)
    profile = fitted_profile(workdir / "site_profile", training_cpus, mem_mb - 1000)
    since = _now()
    start = time.monotonic()
    run = _snakemake(workdir, "--profile", str(profile), "--configfile", CI_CONFIG,
                     timeout=1800)  # fmt: skip
    wall = time.monotonic() - start
    print(f"\nCI analysis through SLURM: {wall:.0f} s, rc {run.returncode}")
    return {"workdir": workdir, "run": run, "since": since, "wall": wall, "profile": profile}


def test_ci_analysis_through_the_slurm_profile(slurm_run):
    run, workdir = slurm_run["run"], slurm_run["workdir"]
    assert run.returncode == 0, run.stderr[-5000:]
    jobs = sacct_jobs(slurm_run["since"], workdir)
    assert jobs, "no job reached sacct"
    states = {job["JobID"]: job["State"] for job in jobs}
    assert set(states.values()) == {"COMPLETED"}, jobs
    submitted = {re.sub(r"^rule_(\w+?)(_wildcards_.*)?$", r"\1", job["Comment"]) for job in jobs}
    assert submitted >= HEAVY_RULES, submitted
    assert not submitted & LIGHT_RULES, submitted  # localrules: never through sbatch
    log = run.stderr
    n_local = len(re.findall(r"^localrule \w+:", log, re.MULTILINE))
    n_submitted = len(re.findall(r"^rule \w+:", log, re.MULTILINE))
    assert len(jobs) == n_submitted and n_local > 0, (len(jobs), n_submitted, n_local)
    for tagger in ("dips", "transformer", "ip3d"):
        assert (workdir / f"results/metrics/{tagger}.json").stat().st_size > 0
    assert (workdir / "results/plots/roc.png").exists()
    # every submitted job's log says which SLURM job ran it
    attempts = (workdir / "logs/train/dips/0.log.attempts").read_text()
    assert re.search(r"=== .* \(SLURM job \d+\)", attempts), attempts[:500]


def test_unchanged_profile_on_a_small_node_stops_at_start(node, tmp_path):
    cpus, _ = node
    if cpus >= 4:
        pytest.skip(f"the node has {cpus} CPUs: the default profile's 4-core training fits")
    copy_workflow(tmp_path)
    since = _now()
    start = time.monotonic()
    run = _snakemake(tmp_path, "--profile", "workflow/profiles/slurm", "--configfile",
                     CI_CONFIG, timeout=300)  # fmt: skip
    elapsed = time.monotonic() - start
    assert run.returncode != 0
    assert elapsed < 60, elapsed
    message = run.stderr
    assert (
        "rule train: asks for 4 CPUs but the largest node of partition" in message
        and f"has {cpus}; lower it at set-resources: train: cpus_per_task" in message
    ), message[-3000:]
    assert "rule lr_finder" not in message or "lr_finder: asks" in message
    submitted = [j for j in sacct_jobs(since, tmp_path) if j["Comment"].startswith("rule_")]
    assert not submitted, submitted
    print(
        f"\nunchanged profile on a {cpus}-CPU node: stopped after {elapsed:.1f} s:\n"
        + "\n".join(line for line in message.splitlines() if "asks for" in line)
    )


EPOCHS = 140  # ~0.9 s each on one core: killed at the 1-minute limit, finished on the retry


def _slow_dips_config(workdir: Path) -> str:
    """The CI config with a wide DIPS that trains for about two minutes on one core."""
    config = yaml.safe_load((workdir / CI_CONFIG).read_text())
    dips = config["models"]["dips"]
    dips["deepsets"] = {"track_layers": [512, 512, 512], "jet_layers": [512, 256]}
    dips["training"].update({"epochs": EPOCHS, "patience": EPOCHS})
    (workdir / "kill.yaml").write_text(yaml.safe_dump(config))
    return "kill.yaml"


def test_time_limit_kill_resumes_on_the_retry_with_both_logs(slurm_run, node, tmp_path):
    workdir = slurm_run["workdir"]
    config = _slow_dips_config(workdir)
    _, mem_mb = node
    # one core each: the SLURM job and the uninterrupted reference run side by side
    profile = fitted_profile(tmp_path / "profile", 1, mem_mb - 1000, retries=1)
    text = (profile / "config.yaml").read_text()
    # a 1-minute limit on the first attempt; the retry gets 8 (a Snakemake resource
    # expression: what a site does to give a resubmitted job more time)
    text, n = re.subn(r"^(  train: &training \{.*runtime: )\d+", r'\g<1>"attempt**3"', text,
                      flags=re.MULTILINE)  # fmt: skip
    assert n == 1
    (profile / "config.yaml").write_text(text)

    reference_dir = tmp_path / "reference"
    reference = {}

    def train_reference() -> None:
        reference["run"] = subprocess.run(
            ["jettag", "train", "--config", config, "--model", "dips", "--member", "0",
             "--data-dir", "data/prepared/ttbar", "--output-dir", str(reference_dir),
             "--threads", "1"], cwd=workdir, capture_output=True, text=True, timeout=900,
        )  # fmt: skip

    thread = threading.Thread(target=train_reference)
    thread.start()
    since = _now()
    run = _snakemake(workdir, "results/models/dips/0/best.pt", "--profile", str(profile),
                     "--configfile", config, timeout=900)  # fmt: skip
    thread.join()
    assert run.returncode == 0, run.stderr[-5000:]
    assert reference["run"].returncode == 0, reference["run"].stderr[-3000:]

    jobs = [j for j in sacct_jobs(since, workdir) if j["Comment"].startswith("rule_train")]
    assert [j["State"] for j in jobs] == ["TIMEOUT", "COMPLETED"], jobs
    attempts = (workdir / "logs/train/dips/0.log.attempts").read_text()
    headers = re.findall(r"^=== .* \(SLURM job (\d+)\)$", attempts, re.MULTILINE)
    assert headers[-2:] == [j["JobID"] for j in jobs], headers
    first, second = attempts.split(f"(SLURM job {jobs[1]['JobID']})")
    assert "SIGTERM" in first, first[-2000:]  # the interrupted attempt's last words are kept
    assert re.search(r"resum", second, re.IGNORECASE), second[:2000]
    assert "resum" in (workdir / "logs/train/dips/0.log").read_text().lower()

    resumed = torch.load(workdir / "results/models/dips/0/best.pt", weights_only=True)
    uninterrupted = torch.load(reference_dir / "best.pt", weights_only=True)
    _assert_same_tensors(resumed, uninterrupted)
    print(f"\ntime-limit kill: {jobs}")


def _assert_same_tensors(a: object, b: object, where: str = "") -> None:
    """Nested checkpoints equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            if key in ("wall_seconds", "epoch_seconds", "history"):
                continue  # timings differ between any two runs
            _assert_same_tensors(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_tensors(x, y, f"{where}[{k}]")
