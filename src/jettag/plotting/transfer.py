"""Transfer learning: light rejection and AUC on the target vs number of target training jets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jettag.io.results import TransferSummary
from jettag.plotting.style import (
    FigureText,
    data_in_lower,
    experiment_label,
    new_figure,
    save_figure,
)

STRATEGY_LABELS = {
    "scratch": "Trained from scratch",
    "finetune": "Fine-tuned (all weights)",
    "frozen": "Frozen track network",
}
STRATEGY_STYLES = {"scratch": ("o", "-"), "finetune": ("s", "--"), "frozen": ("^", ":")}


def plot_transfer(
    result: TransferSummary,
    label: str,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """Two panels vs training jets (log x): light rejection at the WP (log y) and AUC."""
    wp = f"{round(result.b_efficiency * 100):d}%"
    fig, (ax_rej, ax_auc) = new_figure(1, 2, figsize=(14, 6))
    for strategy, points in result.points.items():
        jets = np.array([p["train_jets"] for p in points], dtype=float)
        marker, line = STRATEGY_STYLES.get(strategy, ("o", "-"))
        for ax, metric in ((ax_rej, "light_rejection"), (ax_auc, "auc")):
            mean = np.array([p[f"{metric}_mean"] for p in points], dtype=float)
            std = np.array([p[f"{metric}_std"] for p in points], dtype=float)
            ax.errorbar(jets, mean, yerr=np.nan_to_num(std), marker=marker, ls=line, lw=1.8,
                        ms=8, capsize=3, label=STRATEGY_LABELS.get(strategy, strategy))  # fmt: skip
    reference = result.pretrained
    for ax, metric in ((ax_rej, "light_rejection"), (ax_auc, "auc")):
        legend = "Pretrained, not retrained"
        if reference.get(f"{metric}_is_lower_limit"):  # no light jet passes
            legend += f" (lower limit, {100 * result.rejection_limit_cl:g}% CL)"
        ax.axhline(reference[metric], color="grey", ls="-.", lw=1.5, label=legend)
        ax.set_xscale("log")
        ax.set_xlabel("Number of target training jets")
        all_jets = [p["train_jets"] for points in result.points.values() for p in points]
        ax.set_xlim(min(all_jets) / 1.6, max(all_jets) * 1.6)
    ax_rej.set_yscale("log")
    ax_rej.set_ylabel(f"Light-jet rejection at {wp} b-jet efficiency")
    ax_auc.set_ylabel("AUC (b vs light jets)")
    # data in the lower part of each panel: the experiment label (left) and legend go above
    lo, hi = _data_range(result, "light_rejection")
    lo /= 1.5
    data_in_lower(ax_rej, lo, hi, 0.55, log=True)
    lo, hi = _data_range(result, "auc")
    pad = 0.1 * (hi - lo) + 1e-3
    ax_auc.set_ylim(lo - pad, hi + pad + (hi - lo + 2 * pad) * 0.8)
    ax_auc.legend(loc="upper left", fontsize="small")
    n_seeds = max(p["seeds"] for points in result.points.values() for p in points)
    seeds = f"mean and std of {n_seeds} trainings" if n_seeds > 1 else "one training each"
    experiment_label(ax_rej, text, text.with_sample(label, seeds))
    fig.tight_layout()
    return save_figure(fig, stem, formats)


def _data_range(result: TransferSummary, metric: str) -> tuple[float, float]:
    """Smallest and largest plotted value of a metric (means +- std, and the reference)."""
    values = [result.pretrained[metric]]
    for points in result.points.values():
        for p in points:
            std = p[f"{metric}_std"] or 0.0  # null (NaN in the summary) for a single seed
            values += [p[f"{metric}_mean"] - std, p[f"{metric}_mean"] + std]
    values = [v for v in values if v is not None and np.isfinite(v) and v > 0]
    return min(values), max(values)
