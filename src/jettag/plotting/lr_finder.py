"""A learning-rate range test: training loss against the learning rate, suggestions marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jettag.io.results import LrRangeTest
from jettag.plotting.style import COLOURS, FigureText, finish, new_figure


def plot_lr_finder(
    result: LrRangeTest,
    label: str,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """Step losses (faint), their moving average, the suggested and the configured rates."""
    rates = np.array(result.learning_rate)
    losses = np.array(result.loss, dtype=float)
    smoothed = np.array(result.smoothed_loss)
    finite = np.isfinite(losses)
    fig, ax = new_figure(figsize=(8, 6))
    ax.plot(rates[finite], losses[finite], color=COLOURS[0], alpha=0.25, lw=1,
            label="Training loss per step")  # fmt: skip
    ax.plot(rates[finite], smoothed, color=COLOURS[0], lw=2, label="Moving average")
    suggested = result.suggested
    ax.axvline(suggested["steepest"], color=COLOURS[2], ls="--", lw=1.8,
               label=f"Steepest descent: {suggested['steepest']:.2g}")  # fmt: skip
    ax.axvline(suggested["minimum_over_10"], color=COLOURS[1], ls=":", lw=2,
               label=f"Minimum / 10: {suggested['minimum_over_10']:.2g}")  # fmt: skip
    ax.axvline(result.configured_learning_rate, color="grey", ls="-.", lw=1.5,
               label=f"Configured: {result.configured_learning_rate:.2g}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlim(result.min_lr, rates.max() * 1.5)
    ax.set_xlabel("Learning rate")
    ax.set_ylabel("Weighted cross-entropy (training batch)")
    # the losses past the minimum climb steeply: show the range that matters, the curves in
    # the lower half (the legend below the flat start, the text above)
    low, start = float(np.min(smoothed)), float(smoothed[0])
    ax.set_ylim(low - 0.6 * (start - low), low + (start - low) / 0.45)
    ax.legend(loc="lower left", fontsize="x-small")
    steps = f"{result.steps_run} steps of {result.batch_size} jets ({result.stopped})"
    return finish(fig, ax, text, stem, formats, f"{label}: learning-rate range test", steps)
