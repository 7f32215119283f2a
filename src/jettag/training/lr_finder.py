"""Learning-rate range test (L. Smith, arXiv:1506.01186): loss against a growing rate.

From a fresh initialisation (member 0's seed) the model trains for a few hundred steps while
the learning rate grows exponentially from min_lr to max_lr; the training loss of each step
is recorded. Where the (smoothed) loss falls fastest the rate is large enough to learn and
still stable; past its minimum the updates overshoot and the loss rises, and the test stops
once the loss has grown to `stop_factor` times its minimum (judged on a moving average, as
the run goes). Two common suggestions are reported, read off the step losses averaged over a
centred window (a trailing average would lag by a fraction of a decade): the rate of
steepest descent and a tenth of the rate at the minimum.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import torch

from jettag.atomic import json_safe
from jettag.config import ModelConfig
from jettag.io.model_inputs import input_spec
from jettag.io.results import LrRangeTest
from jettag.training.data import class_weight_tensor, load_split
from jettag.training.loop import member_seed
from jettag.training.losses import weighted_cross_entropy
from jettag.training.network import build_network

SMOOTHING = 0.98  # exponential moving average of the step losses (bias-corrected)
MIN_STEPS_BEFORE_STOP = 10


def smoothed_losses(losses: np.ndarray, beta: float = SMOOTHING) -> np.ndarray:
    """Bias-corrected exponential moving average, as the learning-rate finders use."""
    out = np.empty(losses.size)
    average = 0.0
    for k, value in enumerate(losses):
        average = beta * average + (1 - beta) * value
        out[k] = average / (1 - beta ** (k + 1))
    return out


def centred_losses(losses: np.ndarray) -> np.ndarray:
    """Mean over a centred window of about 1/15 of the steps (narrower at the ends): no lag."""
    half = max(2, losses.size // 30)
    sums = np.concatenate([[0.0], np.cumsum(losses)])
    index = np.arange(losses.size)
    lo, hi = np.maximum(index - half, 0), np.minimum(index + half + 1, losses.size)
    return (sums[hi] - sums[lo]) / (hi - lo)


def suggestions(rates: np.ndarray, smoothed: np.ndarray) -> dict[str, float]:
    """Rate of steepest descent (before the minimum) and a tenth of the rate at the minimum.

    The first tenth of the steps is left out of the slope: the moving average still settles
    there, and its wiggles would pass for a steep fall.
    """
    best = int(np.nanargmin(smoothed))
    suggested = {"minimum": float(rates[best]), "minimum_over_10": float(rates[best] / 10)}
    start = min(smoothed.size // 10, max(best - 2, 0))
    if best - start >= 2:
        slope = np.gradient(smoothed[start : best + 1], np.log(rates[start : best + 1]))
        suggested["steepest"] = float(rates[start + int(np.argmin(slope))])
    else:  # the loss rose from the first steps: the range starts too high
        suggested["steepest"] = float(rates[0])
    return suggested


def lr_range_test(
    model_name: str,
    model_config: ModelConfig,
    data_dir: Path,
    seed: int,
    min_lr: float,
    max_lr: float,
    steps: int,
    stop_factor: float,
) -> LrRangeTest:
    """Run the test on the model's training split."""
    config = model_config.training
    run_seed = member_seed(seed, model_name, 0)
    torch.manual_seed(run_seed)
    spec = input_spec(data_dir, model_config.track_inputs, model_config.jet_inputs)
    # only the jets the steps can use are read (the prepared split is shuffled)
    wanted = steps * config.batch_size
    if config.max_train_jets is not None:
        wanted = min(wanted, config.max_train_jets)
    train = load_split(data_dir / "train.h5", spec, wanted)
    class_weights = class_weight_tensor(data_dir, config.use_class_weights, len(spec.classes))
    if not config.use_sample_weights:
        train.weights = torch.ones_like(train.weights)
    model = build_network(model_config, spec, data_dir)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=min_lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(run_seed)
    batches = itertools.chain.from_iterable(
        train.batches(config.batch_size, generator, bucket=config.bucket_by_multiplicity)
        for _ in itertools.count()
    )
    factor = (max_lr / min_lr) ** (1.0 / max(steps - 1, 1))
    rates: list[float] = []
    losses: list[float] = []
    stopped = "range done"
    for step in range(steps):
        rate = min_lr * factor**step
        for group in optimizer.param_groups:
            group["lr"] = rate
        tracks, valid, jets, labels, weights, *_ = next(batches)
        loss, _ = weighted_cross_entropy(model(tracks, valid, jets), labels, weights,
                                         class_weights)  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.gradient_clip_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.gradient_clip_norm)
        optimizer.step()
        rates.append(rate)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            stopped = "loss not finite"
            break
        smoothed = smoothed_losses(np.array(losses))
        if step >= MIN_STEPS_BEFORE_STOP and smoothed[-1] > stop_factor * smoothed.min():
            stopped = f"loss above {stop_factor:g} x its minimum"
            break
    finite = np.isfinite(losses)
    rate_array = np.array(rates)[finite]
    smoothed = centred_losses(np.array(losses)[finite])
    return LrRangeTest.from_dict(
        json_safe(
            {
                "model": model_name,
                "min_lr": min_lr,
                "max_lr": max_lr,
                "batch_size": config.batch_size,
                "configured_learning_rate": config.learning_rate,
                "steps_run": len(rates),
                "stopped": stopped,
                "learning_rate": rates,
                "loss": losses,
                "smoothed_loss": smoothed.tolist(),
                "suggested": suggestions(rate_array, smoothed),
            }
        )
    )
