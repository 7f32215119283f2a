"""Figures of class sets and discriminants: confusion matrix, task ROCs, fraction scan."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.ticker import FuncFormatter, LogFormatter

from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.fraction_scan import FractionScan
from jettag.evaluation.multiclass import MulticlassSummary
from jettag.evaluation.performance import Roc
from jettag.plotting.roc import LINE_STYLES
from jettag.plotting.style import (
    COLOURS,
    FigureText,
    class_style,
    comma_join,
    data_in_lower,
    experiment_label,
    finish,
    new_figure,
    save_figure,
    singular,
)


def plot_confusion(
    data: MulticlassSummary, label: str, stem: Path, text: FigureText, formats: Sequence[str]
) -> list[Path]:
    """Fraction of each true class (rows) given each predicted class (columns), in percent."""
    classes = data.classes
    fractions = np.array(
        [[np.nan if v is None else v for v in row] for row in data.confusion_fractions]
    )
    size = 0.62 * len(classes) + 3.5
    fig, ax = new_figure(figsize=(size + 1.0, size + 0.8))
    image = ax.imshow(100 * fractions, cmap="Blues", vmin=0, vmax=100)
    for i in range(len(classes)):
        for j in range(len(classes)):
            value = 100 * fractions[i, j]
            if np.isfinite(value):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize="x-small",
                        color="white" if value > 60 else "black")  # fmt: skip
    names = [class_style(c, k)[1] for k, c in enumerate(classes)]
    ax.set_xticks(range(len(classes)), names, rotation=60, ha="right", fontsize="small")
    ax.set_yticks(range(len(classes)), names, fontsize="small")
    ax.minorticks_off()
    ax.tick_params(length=0)
    ax.set_xlabel("Predicted class (largest probability)")
    ax.set_ylabel("True class")
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    colorbar.set_label("Fraction of the true class [%]", fontsize="small")
    colorbar.ax.minorticks_off()
    # every cell holds data: the label and the sample go in a strip above the matrix
    box = ax.get_position()
    strip = fig.add_axes([box.x0, box.y1 + 0.01, box.width, 0.06])
    strip.axis("off")
    experiment_label(strip, text)
    strip.text(1.0, 0.0, comma_join(text.sample, label, f"accuracy {100 * data.accuracy:.1f} %"),
               transform=strip.transAxes, ha="right", va="bottom", fontsize="small")  # fmt: skip
    return save_figure(fig, stem, formats)


def plot_task_rocs(
    data: MulticlassSummary, label: str, stem: Path, text: FigureText, formats: Sequence[str]
) -> list[Path]:
    """Background rejection vs signal efficiency of every binary task (X vs QCD, D_b, D_c)."""
    fig, ax = new_figure(figsize=(8, 6.5))
    ymax = 1.0
    for k, task in enumerate(data.tasks):
        definition = Discriminant.from_dict(task["discriminant"])
        curve = Roc.from_dict(task["roc"])
        colour = class_style(definition.signal, k)[0]
        for s, background in enumerate(definition.display_order):
            rejection = np.where(np.isfinite(curve.rejection[background]),
                                 curve.rejection[background], np.nan)  # fmt: skip
            signal_text = class_style(definition.signal)[1]
            name = f"{signal_text} vs {class_style(background)[1]}"
            ax.plot(
                curve.signal_efficiency,
                rejection,
                LINE_STYLES[s % len(LINE_STYLES)],
                color=colour,
                lw=1.8,
                label=f"{name} (AUC {task['auc'][background]:.3f})",
            )
            if np.any(np.isfinite(rejection)):
                ymax = max(ymax, float(np.nanmax(rejection)))
    ax.set_yscale("log")
    # the label (top left) and the legend under it take the upper part of the log axis
    ax.set_ylim(1, ymax**2.8 if ymax > 1 else 100)
    ax.set_xlabel("Signal efficiency")
    ax.set_ylabel("Background rejection")
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.76), fontsize="x-small",
              ncols=2 if len(data.tasks) > 4 else 1)  # fmt: skip
    return finish(fig, ax, text, stem, formats, label)


def plot_fraction_scan(
    data: FractionScan,
    labels: Sequence[str] | None,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """One background's rejection against another's as the scanned fraction varies.

    FTAG's f_c figure: c rejection (x) against light rejection (y) for D_b as f_c goes from
    0 to 1, one line per tagger, the configured fraction marked with a star.
    """
    definition = Discriminant.from_dict(data.discriminant)
    scanned = data.scanned
    other = next(b for b in definition.display_order if b != scanned)
    configured = dict(definition.fractions)[scanned]
    values = np.asarray(data.values, dtype=float)
    fig, ax = new_figure(figsize=(8, 6.5))
    names = list(data.taggers)
    xs, ys = [], []  # every point drawn: the axes are fitted to them
    for k, tagger in enumerate(names):
        entries = data.taggers[tagger]
        x = np.array([np.nan if e[f"{scanned}_rejection"] is None else e[f"{scanned}_rejection"]
                      for e in entries])  # fmt: skip
        y = np.array([np.nan if e[f"{other}_rejection"] is None else e[f"{other}_rejection"]
                      for e in entries])  # fmt: skip
        xs.extend(x[np.isfinite(x) & (x > 0)])
        ys.extend(y[np.isfinite(y) & (y > 0)])
        colour = COLOURS[k % len(COLOURS)]
        ax.plot(x, y, "o-", color=colour, lw=1.6, ms=4, label=labels[k] if labels else tagger)
        nearest = int(np.argmin(np.abs(values - configured)))
        ax.plot(x[nearest], y[nearest], "*", color=colour, ms=16, mec="black")
        for index in (0, len(values) - 1):  # the ends of the scan, labelled by their fraction
            ax.annotate(f"{values[index]:g}", (x[index], y[index]), textcoords="offset points",
                        xytext=(5, 5), fontsize="x-small", color=colour)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    if xs and ys:  # the curves span a decade or less: fit the frame to them, not to decades
        ax.set_xlim(min(xs) / 1.15, max(xs) * 1.25)  # room on the right for the end labels
        # plain numbers, not "3 x 10^0"; minor ticks labelled only on a short span, as
        # matplotlib decides for log axes
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
        # the label and the legend (one row per tagger) above the curves
        data_in_lower(ax, min(ys) / 1.3, max(ys) * 1.3, 0.55, log=True)
    ax.set_xlabel(f"{singular(class_style(scanned)[1])} rejection")
    ax.set_ylabel(f"{singular(class_style(other)[1])} rejection")
    signal = singular(class_style(definition.signal)[1])
    wp = f"{round(100 * data.working_point):d}% {signal} efficiency"
    star = f"$\\star$: $f_{{{scanned}}}$ = {configured:g}"
    ax.legend(loc="upper right", fontsize="small", title=f"$f_{{{scanned}}}$ scan")
    return finish(fig, ax, text, stem, formats, f"{definition.axis_label}, {wp}", star)
