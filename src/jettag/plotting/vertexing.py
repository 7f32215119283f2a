"""Vertexing figures drawn from the JSON of evaluation.vertexing: vertex-finding efficiency of
the jets that hold heavy-flavour vertices, the reco-vertex (fake) rate of those that do not,
and the exclusive vertex efficiency, all vs jet pT. Nothing is recomputed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from jettag.evaluation.vertexing import BinomialRatio, VertexingPerformance
from jettag.plotting.performance import pt_axis
from jettag.plotting.style import FigureText, class_style, data_in_lower, finish, new_figure

# a class is drawn as an efficiency if at least this share of its jets has a cleaned truth HF
# vertex (b- and c-jets: tens of %); light jets have a few from mislabelling or nearby hadrons,
# too few to define an efficiency worth showing, so their reco-vertex rate is drawn instead
TRUTH_VERTEX_SHARE = 0.1
# fraction of an efficiency axis the data may use; the label and legend go above it
DATA_FRACTION = 0.62
X_LABEL = "Jet $p_T$ [GeV]"


def efficiency_classes(result: VertexingPerformance) -> list[str]:
    """The classes whose jets hold truth HF vertices often enough to quote an efficiency."""
    chosen = []
    for name in result.classes:
        counts = result.counts[name]
        n_jets, n_truth = sum(counts["n_jets"]), sum(counts["n_jets_with_truth"])
        if n_jets and n_truth >= TRUTH_VERTEX_SHARE * n_jets:
            chosen.append(name)
    return chosen


def _draw(ax: Axes, result: VertexingPerformance, ratios: dict[str, BinomialRatio],
          log_x: bool) -> list[float]:  # fmt: skip
    """Each class's ratio per pT bin with its interval, side by side in the bin; the tops of
    the error bars drawn."""
    edges = np.asarray(result.pt_bins_gev, dtype=float)
    centres = np.sqrt(edges[1:] * edges[:-1]) if log_x else 0.5 * (edges[1:] + edges[:-1])
    tops = []
    for k, (name, ratio) in enumerate(ratios.items()):
        colour, legend = class_style(name, result.classes.index(name))
        # spread the classes inside each bin so their error bars do not overlap
        offset = (k - (len(ratios) - 1) / 2) * 0.3 / max(len(ratios), 1)
        x = centres * (edges[1:] / edges[:-1]) ** offset if log_x else (
            centres + offset * np.diff(edges))  # fmt: skip
        shown = np.isfinite(ratio.value)
        if not shown.any():
            continue
        y = ratio.value[shown]
        ax.errorbar(
            x[shown], y, yerr=[y - ratio.low[shown], ratio.high[shown] - y],
            xerr=[(x - edges[:-1])[shown], (edges[1:] - x)[shown]], fmt="o", color=colour,
            ms=7, lw=1.4, capsize=0, label=legend,
        )  # fmt: skip
        tops.extend(ratio.high[shown])
    return tops


def _pt_axis(ax: Axes, result: VertexingPerformance, log_x: bool) -> None:
    """x from the first edge to the last bin that holds jets, plain-number ticks on a log axis."""
    edges = np.asarray(result.pt_bins_gev, dtype=float)
    filled = np.flatnonzero(np.sum([result.counts[n]["n_jets"] for n in result.classes], axis=0))
    x_max = edges[filled[-1] + 1] if filled.size else edges[-1]
    pt_axis(ax, edges[0], x_max, log_x)


def _lines(result: VertexingPerformance, label: str) -> tuple[str, str, str]:
    """The figure's own text: the model, the pair threshold and the matching requirements
    (one line each: a model's legend text is often long)."""
    cleaning = ", origin-cleaned" if result.reco_cleaned_with_origins else ""
    return (
        label,
        f"Vertices from track pairs (score > {result.threshold:g}{cleaning})",
        f"Match: $\\geq${100 * result.match_efficiency:g}% of truth, "
        f"$\\geq${100 * result.match_purity:g}% of reco tracks",
    )


def plot_vertexing(
    result: VertexingPerformance,
    label: str,
    stem_prefix: Path,
    text: FigureText,
    formats: Sequence[str],
    with_truth: Sequence[str] | None = None,
) -> list[Path]:
    """Inclusive vertex-finding efficiency and reco-vertex rate vs jet pT (<prefix>_inclusive),
    and the exclusive vertex efficiency (<prefix>_exclusive).

    with_truth: the classes drawn as efficiencies (default: efficiency_classes); the others
    are drawn as the rate of jets with a reco vertex, in a panel below.
    """
    efficient = list(efficiency_classes(result) if with_truth is None else with_truth)
    others = [name for name in result.classes if name not in efficient]
    edges = np.asarray(result.pt_bins_gev, dtype=float)
    # a wide pT range (the Z' sample reaches TeV) is read on a log axis
    log_x = edges[-1] / max(edges[0], 1e-9) > 20
    written = []

    panels = [(kind, names) for kind, names in (("efficiency", efficient), ("rate", others))
              if names]  # fmt: skip
    heights = [3.0, 1.6] if len(panels) == 2 else [1.0]
    fig, axes = new_figure(len(panels), 1, figsize=(8, 6 + 2.5 * (len(panels) - 1)), sharex=True,
                           gridspec_kw={"height_ratios": heights, "hspace": 0.08},
                           squeeze=False)  # fmt: skip
    axes = list(axes[:, 0])
    for ax, (kind, names) in zip(axes, panels, strict=True):
        if kind == "efficiency":
            _draw(ax, result, {n: result.inclusive_efficiency(n) for n in names}, log_x)
            ax.set_ylabel("Inclusive vertex-finding efficiency")
            data_in_lower(ax, 0.0, 1.0, DATA_FRACTION)
        else:
            tops = _draw(ax, result, {n: result.reco_vertex_rate(n) for n in names}, log_x)
            ax.set_ylabel("Reco-vertex rate")
            # the rate of light jets is small: zoom on it; the legend (and, on the top panel,
            # the label) above the points
            fraction = DATA_FRACTION if ax is axes[0] else 0.7
            data_in_lower(ax, 0.0, max(max(tops, default=0.0), 0.01), fraction)
        ax.legend(loc="upper right", fontsize="small")
        _pt_axis(ax, result, log_x)
    axes[-1].set_xlabel(X_LABEL)
    fig.align_ylabels(axes)
    written += finish(fig, axes[0], text, Path(f"{stem_prefix}_inclusive"), formats,
                      *_lines(result, label))  # fmt: skip

    if efficient:
        fig, ax = new_figure(figsize=(8, 6))
        _draw(ax, result, {n: result.exclusive_efficiency(n) for n in efficient}, log_x)
        ax.set_ylabel("Exclusive vertex efficiency")
        data_in_lower(ax, 0.0, 1.0, DATA_FRACTION)
        ax.legend(loc="upper right", fontsize="small")
        _pt_axis(ax, result, log_x)
        ax.set_xlabel(X_LABEL)
        written += finish(fig, ax, text, Path(f"{stem_prefix}_exclusive"), formats,
                          *_lines(result, label))  # fmt: skip
    return written
