"""The start-up check of a SLURM run: sinfo's nodes against what each rule asks for."""

from __future__ import annotations

import math

import pytest

from jettag.cluster import (
    JobRequest,
    check_cluster_fit,
    misfits,
    parse_gpus,
    parse_sinfo,
    parse_time_limit,
)
from jettag.errors import ConfigError

# sinfo -h -e -o '%P|%c|%m|%G|%a|%l|%D' of a site with a CPU and a GPU partition
SINFO = """cpu*|64|256000|(null)|up|1-00:00:00|40
cpu*|32|128000|(null)|up|1-00:00:00|10
gpu|32|512000|gpu:a100:4(S:0-1)|up|2-00:00:00|8
debug|2|3000|(null)|down|30:00|1
"""


def _request(rule="train", cpus=8, mem_mb=32000, gpus=0, runtime=720, partition=None):
    sources = {"cpus": f"set-resources: {rule}: cpus_per_task",
               "mem_mb": f"set-resources: {rule}: mem_mb", "gpus": f"set-resources: {rule}: gpu",
               "runtime": f"set-resources: {rule}: runtime",
               "partition": "default-resources: slurm_partition"}  # fmt: skip
    return JobRequest(rule, cpus, mem_mb, gpus, runtime, partition, sources)


def test_sinfo_fields_by_hand():
    nodes = parse_sinfo(SINFO)
    assert [(n.partition, n.cpus, n.mem_mb, n.gpus, n.default) for n in nodes] == [
        ("cpu", 64, 256000, 0, True), ("cpu", 32, 128000, 0, True),
        ("gpu", 32, 512000, 4, False), ("debug", 2, 3000, 0, False),
    ]  # fmt: skip
    assert nodes[0].time_limit_min == 1440 and nodes[2].time_limit_min == 2880
    assert nodes[3].time_limit_min == 30 and not nodes[3].available
    assert parse_time_limit("UNLIMITED") == math.inf
    assert parse_time_limit("1:30:00") == 90 and parse_time_limit("45") == 45
    assert parse_gpus("gpu:2,gpu:v100:1") == 3 and parse_gpus("(null)") == 0


def test_requests_that_fit_some_node_pass():
    nodes = parse_sinfo(SINFO)
    check_cluster_fit([_request(), _request(cpus=64, mem_mb=250000)], nodes)
    check_cluster_fit([_request(gpus=4, partition="gpu", runtime=2000)], nodes)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (_request(cpus=128), "rule train: asks for 128 CPUs but the largest node of partition"
                             " 'cpu' (the default) has 64; lower it at set-resources: train:"
                             " cpus_per_task in the profile"),
        (_request(gpus=1), "rule train: asks for 1 GPUs but the largest node of partition 'cpu'"
                           " (the default) has 0; lower it at set-resources: train: gpu"),
        (_request(mem_mb=600000, partition="gpu"), "asks for 600000 MB of memory but the largest"
                                                   " node of partition 'gpu' has 512000 MB"),
        (_request(runtime=3000), "asks for a runtime of 3000 min but the largest node of"
                                 " partition 'cpu' (the default) has a time limit of 1440 min"),
        (_request(partition="gpux"), "rule train: partition 'gpux' does not exist (partitions:"
                                     " ['cpu', 'debug', 'gpu']); set default-resources:"
                                     " slurm_partition"),
        (_request(partition="debug", cpus=1, mem_mb=100, runtime=5),
         "rule train: partition 'debug' is not up"),
    ],
)  # fmt: skip
def test_each_shortfall_names_rule_resource_and_key(request_, expected):
    problems = misfits([request_], parse_sinfo(SINFO))
    assert len(problems) == 1 and expected in problems[0], problems


def test_every_misfit_is_reported_at_once():
    nodes = parse_sinfo(SINFO)
    with pytest.raises(ConfigError) as err:
        check_cluster_fit([_request(cpus=100), _request("lr_finder", mem_mb=10**6)], nodes)
    text = str(err.value)
    assert "wait forever" in text and "rule train:" in text and "rule lr_finder:" in text
