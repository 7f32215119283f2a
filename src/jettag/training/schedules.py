"""Learning-rate schedules as a factor of the base rate per optimiser step."""

from __future__ import annotations

import bisect
import math

import torch

from jettag.config import ScheduleConfig


def warmup_steps(total_steps: int, config: ScheduleConfig) -> int:
    """Steps of the linear warm-up at the start."""
    return int(config.warmup_fraction * total_steps)


def cycle_ends(total_steps: int, config: ScheduleConfig) -> list[int]:
    """cosine_restarts: the step count at the end of each cycle (the last one is total_steps).

    The steps after the warm-up are split into config.cycles cycles of equal length (one step
    more for the later ones where they do not divide evenly); a snapshot ensemble saves a
    member after each of these counts of optimiser steps.
    """
    if config.name != "cosine_restarts":
        raise ValueError(f"schedule '{config.name}' has no cycles (cosine_restarts has)")
    warmup = warmup_steps(total_steps, config)
    if total_steps - warmup < config.cycles:
        raise ValueError(
            f"{config.cycles} cosine_restarts cycles need at least as many steps after the"
            f" warm-up, have {total_steps - warmup}: fewer cycles or more epochs"
        )
    cycles = config.cycles
    return [warmup + k * (total_steps - warmup) // cycles for k in range(1, cycles + 1)]


def _annealed(progress: float, min_factor: float) -> float:
    """Cosine from 1 (progress 0) down to min_factor (progress 1)."""
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_factor(step: int, total_steps: int, config: ScheduleConfig) -> float:
    """Multiplier of the base learning rate at a step (0-based) of total_steps."""
    warmup = warmup_steps(total_steps, config)
    if step < warmup:
        return (step + 1) / warmup
    if config.name == "constant":
        return 1.0
    if config.name == "cosine_restarts":
        ends = cycle_ends(total_steps, config)
        cycle = min(bisect.bisect_right(ends, step), len(ends) - 1)
        start = ends[cycle - 1] if cycle else warmup
        progress = min((step - start) / (ends[cycle] - start), 1.0)
        return _annealed(progress, config.min_lr_factor)
    progress = min((step - warmup) / max(total_steps - warmup, 1), 1.0)
    if config.name == "cosine":
        return _annealed(progress, config.min_lr_factor)
    if config.name == "onecycle":
        # after the warm-up, anneal all the way down (one cycle: up, then far below the start)
        return _annealed(progress, 1e-4)
    raise ValueError(f"unknown schedule '{config.name}'")


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, config: ScheduleConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepping once per batch; its state goes into checkpoints."""
    if config.name == "cosine_restarts":
        cycle_ends(total_steps, config)  # too few steps for the cycles: an error now
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, config)
    )
