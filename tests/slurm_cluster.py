"""A real one-node SLURM (started by .ci/slurm_up.sh) for tests and benchmarks.

`cluster_or_skip_reason()` starts it when it is not up and this process may (root, Debian
packages); `fitted_profile()` is the project's SLURM profile with its documented size
variables set to what the node has, as a user at a site with small nodes would edit them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from jettag.cluster import parse_sinfo, query_sinfo

REPO = Path(__file__).resolve().parents[1]
SLURM_UP = REPO / ".ci/slurm_up.sh"
PROFILE = REPO / "workflow/profiles/slurm/config.yaml"
# sacct polling: the plugin waits 40 s before its first check and backs off by 10 s a round
# (up to 3 min) until a job completes; a one-node test cluster finishes jobs in seconds
LOW_LATENCY = {"slurm-init-seconds-before-status-checks": 2}


def _sinfo_works() -> bool:
    """Whether sinfo answers with at least one node that is up."""
    if shutil.which("sinfo") is None:
        return False
    try:
        result = subprocess.run(["sinfo", "-h", "-e", "-o", "%P|%c|%m|%G|%a|%l|%D"],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and any(k.available for k in parse_sinfo(result.stdout))


def cluster_or_skip_reason() -> str | None:
    """None when a SLURM cluster answers (started here if need be), else why not."""
    if _sinfo_works():
        return None
    if os.geteuid() != 0:
        return "no SLURM cluster answers and starting one needs root (.ci/slurm_up.sh)"
    if shutil.which("apt-get") is None:
        return "no SLURM cluster answers and this machine has no apt-get to install one"
    result = subprocess.run(["bash", str(SLURM_UP)], capture_output=True, text=True,
                            timeout=900)  # fmt: skip
    if result.returncode != 0:
        if os.environ.get("CI"):  # CI must run these tests: a broken setup is a failure
            raise RuntimeError(f"{SLURM_UP} failed:\n{result.stdout[-3000:]}{result.stderr}")
        return f"{SLURM_UP} could not start SLURM: {result.stderr.strip()[-500:]}"
    return None if _sinfo_works() else "SLURM started but sinfo shows no node up"


def node_size() -> tuple[int, int]:
    """(CPUs, memory in MB) of the largest node of the cluster's default partition."""
    nodes = [n for n in query_sinfo() if n.default] or query_sinfo()
    largest = max(nodes, key=lambda n: (n.cpus, n.mem_mb))
    return largest.cpus, largest.mem_mb


def fitted_profile(directory: Path, cpus: int, mem_mb: int, **extra: object) -> Path:
    """The shipped profile with its size variables set for the node: what a user edits.

    Only the documented lines change: the training cores (`&training_cpus`: cpus) and every
    memory request capped at the node's mem_mb; extra keys (Snakemake options) are appended.
    """
    text = PROFILE.read_text()
    text, n = re.subn(r"^(  train: &training_cpus )\d+", rf"\g<1>{cpus}", text, flags=re.MULTILINE)
    assert n == 1, "the profile's training_cpus variable"
    text = re.sub(r"mem_mb: (\d+)", lambda m: f"mem_mb: {min(int(m.group(1)), mem_mb)}", text)
    for key, value in {**LOW_LATENCY, **extra}.items():
        text += f"{key}: {value}\n"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(text)
    return directory


def sacct_jobs(since: str, workdir: Path) -> list[dict[str, str]]:
    """Jobs (not their steps) started since a time from workdir, with state, exit code, comment.

    Filtered on the working directory: another workflow (a second test run) may share the
    cluster, and its jobs must not count.
    """
    fields = "JobID,JobName,State,ExitCode,Elapsed,Comment,WorkDir"
    result = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-S", since, "-o", fields],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    names = fields.split(",")
    jobs = [dict(zip(names, line.split("|"), strict=False))
            for line in result.stdout.splitlines() if line.strip()]  # fmt: skip
    here = Path(workdir).resolve()
    return [job for job in jobs if Path(job.get("WorkDir", "")).resolve() == here]
