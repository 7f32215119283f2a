"""Data-parallel training (torch DistributedDataParallel) under torchrun.

Every process draws the same global batches (same seed, same data) and trains on its share
of each, rows rank::world. Losses are weighted sums over the share divided by the global
weight (one all-reduce per batch), so the averaged gradient is that of the whole batch and
the loss curve matches one process. Launch with
    torchrun --standalone --nproc-per-node N --no-python jettag train ...
NCCL on GPUs (one per process), gloo on the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranks:
    """This process's rank among world processes (0 of 1 when not distributed).

    distributed: inside a process group (torchrun), even of one process: one GPU then still
    trains through DistributedDataParallel and NCCL, as each process of a larger job does.
    """

    rank: int = 0
    world: int = 1
    distributed: bool = False

    @property
    def is_main(self) -> bool:
        """The process that writes outputs."""
        return self.rank == 0

    def shard(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """This process's rows of a global batch."""
        if self.world == 1:
            return list(tensors)
        return [t[self.rank :: self.world] for t in tensors]

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums over the processes."""
        if not self.distributed:
            return [float(v) for v in values]
        total = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(total)
        return total.cpu().tolist()


SINGLE_PROCESS = Ranks()


def _collective_device() -> torch.device:
    """Where collectives run: NCCL wants CUDA tensors, gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextlib.contextmanager
def process_group(device_name: str) -> Iterator[tuple[Ranks, str]]:
    """(ranks, device name) from torchrun's environment; a process group while inside.

    Outside torchrun (no LOCAL_RANK in the environment) this is a single process.
    """
    if "LOCAL_RANK" not in os.environ:
        yield Ranks(), device_name
        return
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    local_rank = int(os.environ["LOCAL_RANK"])
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    ranks = Ranks(dist.get_rank(), dist.get_world_size(), distributed=True)
    log.info("process %d of %d (%s)", ranks.rank, ranks.world, dist.get_backend())
    try:
        yield ranks, f"cuda:{local_rank}" if use_cuda else "cpu"
    finally:
        dist.destroy_process_group()
