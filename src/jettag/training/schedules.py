"""Learning-rate schedules as a factor of the base rate per optimiser step."""

from __future__ import annotations

import math

import torch

from jettag.config import ScheduleConfig


def lr_factor(step: int, total_steps: int, config: ScheduleConfig) -> float:
    """Multiplier of the base learning rate at a step (0-based) of total_steps."""
    warmup = int(config.warmup_fraction * total_steps)
    if step < warmup:
        return (step + 1) / warmup
    if config.name == "constant":
        return 1.0
    progress = min((step - warmup) / max(total_steps - warmup, 1), 1.0)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.name == "cosine":
        return config.min_lr_factor + (1.0 - config.min_lr_factor) * cosine
    if config.name == "onecycle":
        # after the warm-up, anneal all the way down (one cycle: up, then far below the start)
        return 1e-4 + (1.0 - 1e-4) * cosine
    raise ValueError(f"unknown schedule '{config.name}'")


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, config: ScheduleConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepping once per batch; its state goes into checkpoints."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, config)
    )
