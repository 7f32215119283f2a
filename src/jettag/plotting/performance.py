"""Working-point performance plots drawn from the JSON of evaluation.working_points.

Efficiency and rejection vs jet pT (several taggers, inclusive and flat-per-bin cuts) and the
D_b distribution per flavour with the working-point cuts. Nothing is recomputed here.
A rejection that is a lower limit (no background jet passes in the bin) is drawn as its marker
with an upward arrow, and the legend says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.path import Path as MarkerPath
from matplotlib.ticker import NullFormatter, ScalarFormatter
from matplotlib.transforms import blended_transform_factory

from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.metrics import FEW_PASSING
from jettag.evaluation.working_points import EfficiencyVsPt, ScoreHistograms
from jettag.plotting.style import (
    COLOURS,
    FigureText,
    class_style,
    comma_join,
    data_in_lower,
    finish,
    new_figure,
    singular,
)


def pt_quantities(definition: Discriminant) -> list[tuple[str, str, bool]]:
    """(JSON key, axis label, log y): the signal efficiency, then each background's rejection."""

    def text(name: str) -> str:
        legend = class_style(name)[1]
        return singular(legend) if legend.endswith("jets") else f"{legend} jet"  # '$b$-jet'

    return [(f"{definition.signal}_efficiency", f"{text(definition.signal)} efficiency", False)] + [
        (f"{bkg}_rejection", f"{text(bkg)} rejection", True) for bkg in definition.backgrounds
    ]


# (JSON key, marker, fill, legend text): filled = one cut for all jets, open = a cut per bin
STRATEGIES = (
    ("inclusive", "o", "full", "Inclusive cut"),
    ("flat_per_bin", "s", "none", "Flat signal efficiency per bin"),
)
# fraction of the axis height the data may use; the label and legend go above it
DATA_FRACTION = 0.55
# a lower-limit arrow spans this factor on the log rejection axis
ARROW_FACTOR = 1.6
# the legend's picture of a limit: a dot with an arrow up from it
LIMIT_MARKER = MarkerPath.make_compound_path(
    MarkerPath.circle((0.0, -0.6), 0.22),
    MarkerPath([(0.0, -0.6), (0.0, 0.5)]),  # the stem
    MarkerPath([(-0.3, 0.5), (0.0, 1.0), (0.3, 0.5), (0.0, 0.0)], closed=True),  # the head
)
PT_TICKS_GEV = (20, 30, 50, 100, 200, 300, 500, 1000, 2000, 3000)


def pt_axis(ax, low: float, high: float, log_x: bool) -> None:
    """A jet-pT x axis from low to high GeV; on a log scale, plain-number ticks."""
    ax.set_xlim(low, high)
    if log_x:
        ax.set_xscale("log")
        ax.set_xticks([t for t in PT_TICKS_GEV if low <= t <= high])
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())


def _array(values: list) -> np.ndarray:
    """JSON list (None = no value) -> float array with NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _intervals(values: list | None, n: int) -> np.ndarray:
    """JSON list of [low, high] per bin (null: none) -> (n, 2) float array with NaN."""
    if values is None:
        return np.full((n, 2), np.nan)
    rows = [[np.nan, np.nan] if v is None else [np.nan if x is None else x for x in v]
            for v in values]  # fmt: skip
    return np.array(rows, dtype=float)


def _flags(values: list | None, n: int) -> np.ndarray:
    """JSON list of booleans (absent in older files: none set) -> (n,) bool array."""
    return np.zeros(n, dtype=bool) if values is None else np.array(values, dtype=bool)


def plot_efficiency_vs_pt(
    results: Sequence[EfficiencyVsPt],
    labels: Sequence[str] | None,
    stem_prefix: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """Signal efficiency and background rejections vs jet pT: a figure each, taggers overlaid."""
    labels = list(labels) if labels else [r.tagger for r in results]
    reference = results[0]
    for r in results:
        # points of different WPs or bins on one axis would invite a wrong comparison
        if r.working_point != reference.working_point or (r.pt_bins_gev != reference.pt_bins_gev):
            raise ValueError(
                f"{r.tagger}: working point or pT bins differ from {reference.tagger}'s"
            )
    edges = np.asarray(reference.pt_bins_gev, dtype=float)
    # a wide pT range (the Z' sample reaches TeV) is read on a log axis
    log_x = edges[-1] / max(edges[0], 1e-9) > 20
    centres = np.sqrt(edges[1:] * edges[:-1]) if log_x else 0.5 * (edges[1:] + edges[:-1])
    definition = Discriminant.from_dict(reference.discriminant)
    # show the bins that hold signal jets (they define the working point), not empty ones
    with_b = [np.flatnonzero(np.asarray(r.n_jets[definition.signal]) > 0) for r in results]
    last_bin = max((int(w[-1]) for w in with_b if w.size), default=len(edges) - 2)
    x_max = edges[last_bin + 1]
    wp = reference.working_point
    signal_text = pt_quantities(definition)[0][1]
    line = comma_join(definition.fraction_label(), f"{round(100 * wp):d}% {signal_text} WP")
    n_series = len(results) * len(STRATEGIES)
    written = []
    for key, ylabel, log in pt_quantities(definition):
        fig, ax = new_figure(figsize=(8, 6))
        lows, highs = [], []
        n_not_shown = 0
        any_limit = False
        any_few = False
        for k, r in enumerate(results):
            colour = COLOURS[k % len(COLOURS)]
            for s, (strategy, marker, fill, _) in enumerate(STRATEGIES):
                column = r.strategies[strategy]
                y = _array(column[key])
                interval = _intervals(column[f"{key}_interval"], len(y))
                limit = _flags(column.get(f"{key}_is_lower_limit"), len(y))
                few = _flags(column.get(f"{key}_few_passing"), len(y)) & ~limit
                # spread the series side by side inside each bin so error bars do not overlap
                j = k * len(STRATEGIES) + s
                offset = (j - (n_series - 1) / 2) * 0.6 / n_series
                if log_x:
                    x = centres * (edges[1:] / edges[:-1]) ** offset
                else:
                    x = centres + offset * np.diff(edges)
                # asymmetric: the central Clopper-Pearson interval; none on a lower limit
                low_err = np.where(limit, np.nan, y - interval[:, 0])
                high_err = np.where(limit | ~np.isfinite(interval[:, 1]), np.nan,
                                    interval[:, 1] - y)  # fmt: skip
                if log:  # a log axis cannot show a bar below zero; stop it just above
                    low_err = np.minimum(low_err, 0.95 * y)
                for shown, alpha in ((~few, 1.0), (few, 0.35)):  # few passing jets: faded
                    if not shown.any():
                        continue
                    ax.errorbar(
                        x[shown], y[shown], yerr=[low_err[shown], high_err[shown]],
                        xerr=[(x - edges[:-1])[shown], (edges[1:] - x)[shown]], fmt=marker,
                        fillstyle=fill, color=colour, ms=7, lw=1.4, capsize=0, alpha=alpha,
                    )  # fmt: skip
                any_few |= bool(few.any())
                if limit.any():  # no background jet passes: an arrow up from the marker
                    bound = np.where(limit, y, np.nan)
                    ax.errorbar(x, bound, yerr=bound * (ARROW_FACTOR - 1), lolims=True,
                                fmt="none", color=colour, lw=1.4, capsize=4)  # fmt: skip
                    any_limit = True
                    highs.extend(y[limit] * ARROW_FACTOR)
                ok = np.isfinite(y)
                if log:  # files without limits: an infinite rejection is null, not drawn
                    efficiency = _array(column[key.replace("rejection", "efficiency")])
                    n_not_shown += int(np.sum((efficiency == 0) & ~ok))
                lows.extend((y - np.nan_to_num(low_err))[ok])
                highs.extend((y + np.nan_to_num(high_err))[ok])
        if key.endswith("_efficiency"):
            ax.axhline(wp, color="grey", ls=":", lw=1.2)
            lows.append(wp)
            highs.append(wp)
        if lows:
            low, high = min(lows), max(highs)
            pad = 0.1 * (high - low) if not log else 0.0
            data_in_lower(
                ax, low / 1.5 if log else low - pad - 0.01, high + pad, DATA_FRACTION, log
            )
        if log:
            ax.set_yscale("log")
        pt_axis(ax, edges[0], x_max, log_x)
        ax.set_xlabel("Jet $p_{T}$ [GeV]")
        ax.set_ylabel(ylabel)
        handles = [
            Line2D([], [], color=COLOURS[k % len(COLOURS)], lw=2, label=label)
            for k, label in enumerate(labels)
        ] + [
            Line2D([], [], color="black", ls="none", marker=m, fillstyle=f, ms=7, label=name)
            for _, m, f, name in STRATEGIES
        ]
        if key.endswith("_efficiency"):
            handles.append(Line2D([], [], color="grey", ls=":", label="Working point"))
        if any_limit:  # a legend entry drawn as the limits are: a marker and an arrow
            cl = 100 * reference.rejection_limit_cl
            handles.append(
                Line2D([], [], color="black", ls="none", marker=LIMIT_MARKER, ms=14, mew=1.4,
                       label=f"No jet passes: lower limit ({cl:g}% CL)")
            )  # fmt: skip
        if any_few:
            handles.append(Line2D([], [], color="black", ls="none", marker="o", alpha=0.35,
                                  label=f"Fewer than {FEW_PASSING} jets pass"))  # fmt: skip
        ax.legend(handles=handles, loc="upper right", fontsize="small")
        # said in the label, above the data, so a missing point is not read as a lost bin
        note = f"{n_not_shown} point(s) with no jet passing: not shown" if n_not_shown else ""
        written += finish(fig, ax, text, Path(f"{stem_prefix}_{key}"), formats, line, note)
    return written


def plot_score_histograms(
    scores: ScoreHistograms,
    label: str,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """The discriminant per class (unit area, log y) with dashed lines at the WP cuts."""
    definition = Discriminant.from_dict(scores.discriminant)
    edges = np.asarray(scores.edges, dtype=float)
    fig, ax = new_figure(figsize=(8, 6))
    positive = []
    for index, flavour in enumerate(scores.histograms):
        colour, name = class_style(flavour, index)
        density = _array(scores.histograms[flavour]["density"])
        if not np.any(density > 0):
            continue
        ax.stairs(density, edges, color=colour, lw=1.8, label=name)
        positive.extend(density[density > 0])
    ax.set_yscale("log")
    if positive:
        high = max(positive)
        # the tails span many decades; show four below the peak, not single-jet noise
        data_in_lower(ax, max(min(positive), high * 1e-4) / 2, high, DATA_FRACTION, log=True)
    line_top = DATA_FRACTION + 0.02
    on_line = blended_transform_factory(ax.transData, ax.transAxes)
    for wp in scores.working_points:
        if wp["cut"] is None:
            continue
        ax.axvline(wp["cut"], ymax=line_top, color="black", ls="--", lw=1.2)
        ax.text(wp["cut"], line_top + 0.01, f"{round(100 * wp['working_point']):d}%",
                transform=on_line, rotation=90, ha="center", va="bottom",
                fontsize="x-small")  # fmt: skip
    ax.set_xlim(edges[0], edges[-1])
    symbol = definition.axis_label.strip("$")
    ax.set_xlabel(f"{definition.axis_label} (overflow in edge bins)")
    ax.set_ylabel(f"$1/N\\; dN/d{symbol}$")
    handles, _ = ax.get_legend_handles_labels()
    signal_text = class_style(definition.signal)[1].removesuffix("-jets")
    handles.append(Line2D([], [], color="black", ls="--", lw=1.2,
                          label=f"WP cut ({signal_text}-eff.)"))  # fmt: skip
    ax.legend(handles=handles, loc="upper right", fontsize="small")
    return finish(fig, ax, text, stem, formats, label, definition.fraction_label())
