"""A model-choice study: loss and rejections against the scanned setting, per series."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullFormatter

from jettag.io.results import StudySummary
from jettag.plotting.style import FigureText, data_in_lower, finish, new_figure

X_LABELS = {"parameters": "Trainable parameters", "point": ""}


def study_x(result: StudySummary) -> tuple[np.ndarray, str, list[str] | None]:
    """x of each point, the axis label and (for x = 'point') the tick labels."""
    points = result.points
    x = result.x
    label = result.x_label or X_LABELS.get(x, x)
    if x == "parameters":
        return np.array([p["n_parameters"] for p in points], float), label, None
    if x == "point":
        return np.arange(len(points), dtype=float), label, [p["name"] for p in points]
    return np.array([float(p["set"][x]) for p in points]), label, None


def plot_study(
    result: StudySummary,
    model_label: str,
    title: str,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """Best val loss (train loss there), light and c rejection, epochs to target vs the scan."""
    points = result.points
    x, x_label, ticks = study_x(result)
    series = list(dict.fromkeys(p["series"] for p in points))
    with_target = result.target_val_loss is not None
    n_panels = 4 if with_target else 3
    fig, axes = new_figure(n_panels, 1, figsize=(8, 10 + 2 * with_target), sharex=True,
                             gridspec_kw={"height_ratios": [2] + [1] * (n_panels - 1),
                                          "hspace": 0.06})  # fmt: skip
    wp = f"{100 * result.b_efficiency:.0f}%"
    panels = [
        (axes[1], "light_rejection", f"Light rej. at {wp}"),
        (axes[2], "c_rejection", f"$c$ rej. at {wp}"),
    ]
    if with_target:
        target = f"{result.target_val_loss:.4f}"
        panels.append((axes[3], "epochs_to_target", f"Epochs to\nval. loss {target}"))
    handles = []
    for k, name in enumerate(series):
        colour = f"C{k}"
        rows = [i for i, p in enumerate(points) if p["series"] == name]
        xs = x[rows]

        def values(key: str, rows: list[int] = rows) -> tuple[np.ndarray, np.ndarray]:
            mean = np.array([np.nan if points[i][key] is None else points[i][key] for i in rows])
            std = np.array([points[i][f"{key}_std"] or 0.0 for i in rows])
            return mean, std

        mean, std = values("val_loss")
        axes[0].errorbar(xs, mean, std, fmt="o-", color=colour, lw=1.8, capsize=3)
        mean, std = values("train_loss")
        axes[0].errorbar(xs, mean, std, fmt="s--", color=colour, mfc="none", lw=1.2, capsize=3)
        for ax, key, _ in panels:
            mean, std = values(key)
            ax.errorbar(xs, mean, std, fmt="o-", color=colour, lw=1.8, capsize=3)
        for i in rows if with_target else []:
            if points[i]["runs_reaching_target"] == 0:  # shown, not drawn as 0
                axes[3].annotate(
                    "never", (x[i], 1.0), xycoords=("data", "axes fraction"), ha="center",
                    va="top", color=colour, fontsize="x-small",
                )  # fmt: skip
        if name:
            handles.append(Line2D([], [], color=colour, lw=4, label=name))
    styles = [
        Line2D([], [], color="grey", ls="-", marker="o", label="Validation loss (best epoch)"),
        Line2D([], [], color="grey", ls="--", marker="s", mfc="none", label="Training loss"),
    ]
    axes[0].set_ylabel("Weighted cross-entropy")
    # the legend top right, the label's short lines top left, the curves in the lower half
    axes[0].legend(handles=styles + handles, loc="upper right", fontsize="x-small")
    data_in_lower(axes[0], *axes[0].get_ylim(), 0.5)
    for ax, _, ylabel in panels:
        ax.set_ylabel(ylabel, fontsize="small")
        ax.set_ylim(bottom=max(ax.get_ylim()[0], 0.0))  # a seed spread never below zero
        # no top tick label: it would sit on the panel above's bottom one
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, prune="upper"))
    if result.log_x or result.x == "parameters":
        axes[-1].set_xscale("log")
        lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
        axes[-1].set_xlim(lo / 1.25, hi * 1.25)  # no point on the frame
        if hi / lo < 30:  # under ~1.5 decades: the scanned values are the ticks, not 10^n
            values = np.unique(x)
            axes[-1].set_xticks(values, [f"{v:g}" for v in values], fontsize="small")
            axes[-1].xaxis.set_minor_formatter(NullFormatter())
    if ticks is not None:
        axes[-1].set_xticks(x, ticks, rotation=30, ha="right", fontsize="small")
        axes[-1].set_xlim(-0.5, len(ticks) - 0.5)
    axes[-1].set_xlabel(x_label)
    spread = f"mean and spread of {result.seeds} seeds" if result.seeds > 1 else "one seed"
    fig.align_ylabels(axes)
    return finish(fig, axes[0], text, stem, formats, model_label, title,
                  f"validation split, {spread}")  # fmt: skip
