"""Before a SLURM run: can some partition ever run each job? (`sinfo` against the requests).

A job that asks for more CPUs, memory, GPUs or time than any node of its partition has stays
PENDING forever (Reason=PartitionConfig, or Resources) while Snakemake waits silently. The
Snakefile calls `check_cluster_fit` at workflow start under the SLURM executor and stops,
naming the rule, the resource and the profile key to change, before anything is submitted.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping

from jettag.errors import ConfigError

# %P partition (a trailing * marks the default), %c CPUs per node, %m memory per node (MB),
# %G generic resources, %a availability, %l time limit, %D node count; -e: one line per
# distinct node configuration, so a partition of mixed nodes has several lines
SINFO_FORMAT = "%P|%c|%m|%G|%a|%l|%D"


@dataclasses.dataclass(frozen=True)
class NodeKind:
    """One node configuration of a partition, as sinfo reports it."""

    partition: str
    cpus: int
    mem_mb: int
    gpus: int
    time_limit_min: float  # inf for UNLIMITED / INFINITE
    available: bool
    default: bool


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """What one rule's jobs ask SLURM for, and where each value was set."""

    rule: str
    cpus: int
    mem_mb: int
    gpus: int
    runtime_min: float
    partition: str | None  # None: the cluster's default partition
    sources: Mapping[str, str]  # resource -> the profile key (or rule) that set it


def parse_time_limit(text: str) -> float:
    """Minutes of a SLURM time limit ([days-]hours:minutes:seconds, minutes, UNLIMITED)."""
    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "N/A", ""):
        return math.inf
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
    parts = [int(p) for p in text.split(":")]
    if len(parts) == 1:  # minutes
        hours, minutes, seconds = 0, parts[0], 0
    elif len(parts) == 2:  # minutes:seconds
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = parts[-3:]
    return days * 1440 + hours * 60 + minutes + seconds / 60


def parse_gpus(gres: str) -> int:
    """GPUs per node in a sinfo GRES field ('gpu:4', 'gpu:a100:2(S:0-1)', '(null)')."""
    total = 0
    for item in gres.split(","):
        fields = re.sub(r"\(.*?\)", "", item).split(":")
        if fields[0] == "gpu":
            total += int(fields[-1]) if len(fields) > 1 and fields[-1].isdigit() else 1
    return total


def parse_sinfo(text: str) -> list[NodeKind]:
    """Node kinds from `sinfo -h -e -o SINFO_FORMAT` output."""
    kinds = []
    for line in text.splitlines():
        if not line.strip():
            continue
        partition, cpus, mem, gres, avail, limit, _ = line.split("|")
        kinds.append(
            NodeKind(
                partition=partition.rstrip("*"),
                cpus=int(cpus.rstrip("+")),
                mem_mb=int(mem.rstrip("+")),
                gpus=parse_gpus(gres),
                time_limit_min=parse_time_limit(limit),
                available=avail.strip() == "up",
                default=partition.endswith("*"),
            )
        )
    return kinds


def query_sinfo() -> list[NodeKind]:
    """The cluster's node kinds, from sinfo."""
    if shutil.which("sinfo") is None:
        raise ConfigError("the SLURM executor is selected but `sinfo` is not on PATH")
    result = subprocess.run(
        ["sinfo", "-h", "-e", "-o", SINFO_FORMAT],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise ConfigError(f"`sinfo` failed ({result.returncode}): {result.stderr.strip()}")
    return parse_sinfo(result.stdout)


def _fits(request: JobRequest, node: NodeKind) -> list[str]:
    """The resources of a request that one node kind cannot give (empty: it fits)."""
    short = []
    if request.cpus > node.cpus:
        short.append("cpus")
    if request.mem_mb > node.mem_mb:
        short.append("mem_mb")
    if request.gpus > node.gpus:
        short.append("gpus")
    if request.runtime_min > node.time_limit_min:
        short.append("runtime")
    return short


def misfits(requests: Iterable[JobRequest], nodes: list[NodeKind]) -> list[str]:
    """One message per rule whose jobs no node of their partition can ever run."""
    partitions = {n.partition for n in nodes}
    default = next((n.partition for n in nodes if n.default), None)
    problems = []
    for request in requests:
        name = request.partition or default
        where = f"partition '{name}'" + ("" if request.partition else " (the default)")
        if name is None or name not in partitions:
            problems.append(
                f"rule {request.rule}: {where} does not exist (partitions: {sorted(partitions)});"
                f" set {request.sources.get('partition', 'slurm_partition')}"
            )
            continue
        kinds = [n for n in nodes if n.partition == name and n.available]
        if not kinds:
            problems.append(f"rule {request.rule}: {where} is not up")
            continue
        shortfalls = [_fits(request, n) for n in kinds]
        if any(not s for s in shortfalls):
            continue
        best = min(kinds, key=lambda n: len(_fits(request, n)))
        for resource in _fits(request, best):
            asked, has = _described(resource, request, best)
            problems.append(
                f"rule {request.rule}: asks for {asked} but the largest node of {where} has"
                f" {has}; lower it at {request.sources.get(resource, resource)} in the profile,"
                " or pick another partition (slurm_partition)"
            )
    return problems


def _described(resource: str, request: JobRequest, node: NodeKind) -> tuple[str, str]:
    """(what the job asks, what the node has) for a message."""
    if resource == "cpus":
        return f"{request.cpus} CPUs", f"{node.cpus}"
    if resource == "mem_mb":
        return f"{request.mem_mb} MB of memory", f"{node.mem_mb} MB"
    if resource == "gpus":
        return f"{request.gpus} GPUs", f"{node.gpus}"
    limit = "no limit" if math.isinf(node.time_limit_min) else f"{node.time_limit_min:g} min"
    return f"a runtime of {request.runtime_min:g} min", f"a time limit of {limit}"


def check_cluster_fit(requests: Iterable[JobRequest], nodes: list[NodeKind]) -> None:
    """Raise ConfigError listing every rule no partition can run (see the module docstring)."""
    problems = misfits(requests, nodes)
    if problems:
        raise ConfigError(
            "these jobs would wait forever in the SLURM queue (no node of their partition is"
            " large enough; `sinfo` shows the nodes):\n  "
            + "\n  ".join(problems)
            + "\n(jettag's profiles set every training job's size once, in the &training_cpus"
            " and &training lines at their top)"
        )


def _has_key(mapping: object, key: str) -> bool:
    """Whether a Snakemake resource mapping (dict, immutables.Map or Resources) sets key."""
    if mapping is None:
        return False
    try:
        return key in mapping
    except TypeError:
        return False


def _source(workflow: object, rule: str, key: str, threads: bool = False) -> str:
    """The profile key (or rule) a job's resource value comes from, for messages."""
    settings = workflow.resource_settings
    if threads:
        if _has_key(settings.overwrite_threads, rule):
            return f"set-threads: {rule}"
        return f"the threads of rule {rule} (set-threads: {rule}: N)"
    if _has_key(settings.overwrite_resources.get(rule), key):
        return f"set-resources: {rule}: {key}"
    if _has_key(settings.default_resources, key):
        return f"default-resources: {key}"
    return f"the resources of rule {rule} (set-resources: {rule}: {key})"


def _int_resource(value: object) -> int:
    """A resource value as an integer (0 where unset or not a number)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def cluster_requests(workflow: object) -> list[JobRequest]:
    """The largest request of each submitted (not local) rule among the jobs to run.

    CPUs as the SLURM executor asks for them: cpus_per_task where set, else the threads.
    """
    largest: dict[str, JobRequest] = {}
    for job in workflow.dag.needrun_jobs():
        if job.is_local:
            continue
        rule, resources = job.rule.name, job.resources
        cpus_set = resources.get("cpus_per_task") is not None
        cpus = _int_resource(resources.get("cpus_per_task")) if cpus_set else job.threads
        gres = str(resources.get("gres") or "")
        gpus = _int_resource(resources.get("gpu")) or (parse_gpus(gres) if "gpu" in gres else 0)
        request = JobRequest(
            rule=rule,
            cpus=max(1, cpus),
            mem_mb=_int_resource(resources.get("mem_mb")),
            gpus=gpus,
            runtime_min=float(_int_resource(resources.get("runtime"))),
            partition=resources.get("slurm_partition") or None,
            sources={
                "cpus": _source(workflow, rule, "cpus_per_task", threads=not cpus_set),
                "mem_mb": _source(workflow, rule, "mem_mb"),
                "gpus": _source(workflow, rule, "gpu" if resources.get("gpu") else "gres"),
                "runtime": _source(workflow, rule, "runtime"),
                "partition": _source(workflow, rule, "slurm_partition"),
            },
        )
        old = largest.get(rule)
        if old is None or (request.cpus, request.mem_mb, request.gpus) > (
            old.cpus, old.mem_mb, old.gpus,
        ):  # fmt: skip
            largest[rule] = request
    return sorted(largest.values(), key=lambda r: r.rule)
