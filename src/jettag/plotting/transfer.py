"""Transfer learning: light rejection and AUC on the target vs number of target training jets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from jettag.plotting.style import atlas_label, save_figure, use_style

STRATEGY_LABELS = {
    "scratch": "Trained from scratch",
    "finetune": "Fine-tuned (all weights)",
    "frozen": "Frozen track network",
}
STRATEGY_STYLES = {"scratch": ("o", "-"), "finetune": ("s", "--"), "frozen": ("^", ":")}


def plot_transfer(
    summary_file: Path,
    label: str,
    stem: Path,
    atlas_text: str,
    sqrt_s_tev: float,
    formats: Sequence[str],
) -> list[Path]:
    """Two panels vs training jets (log x): light rejection at the WP (log y) and AUC."""
    use_style()
    result = json.loads(Path(summary_file).read_text())
    wp = f"{round(result['b_efficiency'] * 100):d}%"
    fig, (ax_rej, ax_auc) = plt.subplots(1, 2, figsize=(14, 6))
    for strategy, points in result["points"].items():
        jets = np.array([p["train_jets"] for p in points], dtype=float)
        marker, line = STRATEGY_STYLES.get(strategy, ("o", "-"))
        for ax, metric in ((ax_rej, "light_rejection"), (ax_auc, "auc")):
            mean = np.array([p[f"{metric}_mean"] for p in points], dtype=float)
            std = np.array([p[f"{metric}_std"] for p in points], dtype=float)
            ax.errorbar(jets, mean, yerr=np.nan_to_num(std), marker=marker, ls=line, lw=1.8,
                        ms=8, capsize=3, label=STRATEGY_LABELS.get(strategy, strategy))  # fmt: skip
    reference = result["pretrained"]
    for ax, metric in ((ax_rej, "light_rejection"), (ax_auc, "auc")):
        ax.axhline(reference[metric], color="grey", ls="-.", lw=1.5,
                   label="Pretrained, not retrained")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("Number of target training jets")
    ax_rej.set_yscale("log")
    ax_rej.set_ylabel(f"Light-jet rejection at {wp} b-jet efficiency")
    ax_auc.set_ylabel("AUC (b vs light jets)")
    for ax, log_y in ((ax_rej, True), (ax_auc, False)):
        lo, hi = ax.get_ylim()
        # head room for the ATLAS label and the legend
        ax.set_ylim(lo, hi * (hi / lo) ** 0.6 if log_y else hi + 0.6 * (hi - lo))
        ax.legend(loc="upper right", fontsize="small")
    n_seeds = max(p["seeds"] for points in result["points"].values() for p in points)
    atlas_label(ax_rej, atlas_text, sqrt_s_tev,
                f"{result['sample_label']}\n{label}\n"
                f"mean and std of {n_seeds} trainings")  # fmt: skip
    fig.tight_layout()
    return save_figure(fig, stem, formats)
