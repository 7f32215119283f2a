"""ROC curves: background rejections vs signal efficiency, ratio panels against a reference.

The curves are the Roc objects of the metrics files (evaluation/performance.py); a ratio of
curves on different efficiency grids is refused there, not interpolated here. The signal and
backgrounds are the metrics files' discriminant (light and c against b for D_b), one ratio
panel per background, the last background (light for D_b) first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.evaluate import Metrics
from jettag.evaluation.metrics import FEW_PASSING
from jettag.evaluation.working_points import WorkingPointTable
from jettag.plotting.style import COLOURS, FigureText, class_style, finish, ratio_figure, singular

LINE_STYLES = ("-", "--", ":", "-.")


def background_styles(definition: Discriminant) -> list[tuple[str, str, str]]:
    """(background, line style, legend text) of each panel, in the discriminant's display order."""
    names = definition.display_order
    return [(name, LINE_STYLES[k % len(LINE_STYLES)], singular(class_style(name)[1]))
            for k, name in enumerate(names)]  # fmt: skip


def _array(values: list) -> np.ndarray:
    """JSON list (None = no value) -> float array with NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _finite(values: np.ndarray) -> np.ndarray:
    """Values with infinities (no background jet passes) as NaN: no point is drawn there."""
    return np.where(np.isfinite(values), values, np.nan)


def ensemble_legend(member_counts: set[int]) -> str:
    """Legend text of the ensembles' hatched bands: how many members each band is the std of."""
    low, high = min(member_counts), max(member_counts)
    counts = f"{low}" if low == high else f"{low}-{high}"
    return f"Ensemble std ({counts} members)"


def plot_roc(
    metrics: Sequence[Metrics],
    labels: Sequence[str],
    comparison: WorkingPointTable,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """Draw the ROC figure from taggers' metrics and the paired ratios of their working points.

    Main panel: each tagger's rejections with their central Clopper-Pearson band, faded where
    fewer than FEW_PASSING background jets pass. Ratio panels: each tagger over the
    reference with the paired-bootstrap band (working_points.json `paired`), since the
    taggers share their test jets and so their fluctuations.
    """
    taggers = [m.tagger for m in metrics]
    paired = comparison.paired
    if paired is None:
        raise ValueError("working points without a reference tagger: no paired ratios to draw")
    reference = paired["reference"]
    if reference not in taggers:
        raise ValueError(f"the ratios' reference '{reference}' is not among {taggers}")
    ref_index = taggers.index(reference)
    definition = metrics[0].definition
    backgrounds = background_styles(definition)
    n_panels = len(backgrounds)
    fig, axes = ratio_figure(n_panels, figsize=(8, 6.5 + 1.0 * n_panels))
    main = axes[0]
    rocs = [m.curve for m in metrics]
    ref_roc = rocs[ref_index]
    grid = np.asarray(paired["roc"]["signal_efficiency"], dtype=float)
    for tagger, roc in zip(taggers, rocs, strict=True):
        if not np.array_equal(roc.signal_efficiency, grid):
            raise ValueError(f"the ROC grid of {tagger} differs from the paired ratios'")
    ratio_range: dict[int, list[float]] = {k: [1.0] for k in range(1, n_panels + 1)}
    member_counts: set[int] = set()
    any_few = False
    for k, (curve, roc) in enumerate(zip(metrics, rocs, strict=True)):
        eff = roc.signal_efficiency
        colour = COLOURS[k % len(COLOURS)]
        ratios = paired["roc"][curve.tagger]
        for panel, (bkg, style, _) in enumerate(backgrounds, start=1):
            rej = _finite(roc.rejection[bkg])
            band = roc.rejection_interval[bkg]
            low = np.maximum(_finite(band[:, 0]), 1.0)  # a log axis cannot show a band below 1
            few = roc.passing[bkg] < FEW_PASSING
            any_few |= bool(few.any())
            main.plot(eff, np.where(few, np.nan, rej), style, color=colour, lw=1.8)
            # fewer than FEW_PASSING background jets pass: drawn, but faded
            main.plot(eff, np.where(few | np.roll(few, -1), rej, np.nan), style, color=colour,
                      lw=1.4, alpha=0.35)  # fmt: skip
            main.fill_between(eff, low, _finite(band[:, 1]), color=colour, alpha=0.2, lw=0)
            ratio = _array(ratios[f"{bkg}_ratio"])
            interval = np.array(
                [
                    [np.nan if v is None else v for v in pair]
                    for pair in ratios[f"{bkg}_ratio_interval"]
                ],
                dtype=float,
            ).reshape(-1, 2)
            axes[panel].plot(eff, ratio, style, color=colour, lw=1.8)
            axes[panel].fill_between(eff, interval[:, 0], interval[:, 1], color=colour,
                                     alpha=0.2, lw=0)  # fmt: skip
            ratio_range[panel].extend(ratio[np.isfinite(ratio)].tolist())
            ensemble = curve.ensemble
            if ensemble:
                ref = _finite(ref_roc.rejection[bkg])
                mean = _array(ensemble["roc"][f"{bkg}_rejection_mean"])
                std = _array(ensemble["roc"][f"{bkg}_rejection_std"])
                for ax, scale in ((main, 1.0), (axes[panel], ref)):
                    ax.fill_between(eff, np.maximum(mean - std, 1.0) / scale, (mean + std) / scale,
                                    facecolor="none", edgecolor=colour, hatch="////", lw=0,
                                    alpha=0.6)  # fmt: skip
                member_counts.add(int(ensemble["n_members"]))
    main.set_yscale("log")
    main.set_ylabel("Background rejection")
    ymax = np.nanmax([np.nanmax(_finite(r.rejection[name])) for r in rocs
                      for name, _, _ in backgrounds])  # fmt: skip
    # headroom on the log axis for the label and legends above the curves
    main.set_ylim(1, ymax**1.7 if np.isfinite(ymax) and ymax > 1 else 10)
    tagger_handles = [
        Line2D([], [], color=COLOURS[k % len(COLOURS)], lw=2, label=label)
        for k, label in enumerate(labels)
    ]
    bkg_handles = [Line2D([], [], color="black", ls=s, label=n) for _, s, n in backgrounds]
    bkg_handles.append(Patch(facecolor="grey", alpha=0.3, label="Stat. unc. (68 % CL)"))
    if any_few:
        bkg_handles.append(Line2D([], [], color="grey", alpha=0.35, lw=1.4,
                                  label=f"< {FEW_PASSING} jets pass"))  # fmt: skip
    if member_counts:
        bkg_handles.append(Patch(facecolor="none", edgecolor="grey", hatch="////",
                                 label=ensemble_legend(member_counts)))  # fmt: skip
    legend = main.legend(handles=tagger_handles, loc="upper right", title="Tagger")
    main.add_artist(legend)
    # under the tagger legend (title + one row per tagger), where the curves have fallen
    below_taggers = 0.97 - 0.068 * (len(labels) + 1)
    main.legend(handles=bkg_handles, loc="upper right", bbox_to_anchor=(1.0, below_taggers),
                fontsize="small", ncols=2)  # fmt: skip
    ref_label = labels[ref_index]
    for panel, (_, _, name) in enumerate(backgrounds, start=1):
        axes[panel].set_ylabel(f"{name.split('-')[0]} rej.\nratio", fontsize="small")
        axes[panel].axhline(1.0, color="grey", lw=1)
        lo, hi = np.percentile(ratio_range[panel], [1, 99])
        axes[panel].set_ylim(max(0.0, lo - 0.15 * (hi - lo + 0.2)), hi + 0.35 * (hi - lo + 0.2))
    axes[1].text(0.02, 0.92, f"Ratio to {ref_label} (paired bootstrap band)",
                 transform=axes[1].transAxes, fontsize="x-small", va="top")  # fmt: skip
    axes[-1].set_xlabel(f"{singular(class_style(definition.signal)[1])} efficiency")
    eff = ref_roc.signal_efficiency
    axes[-1].set_xlim(eff.min(), eff.max())
    return finish(fig, main, text, stem, formats, definition.fraction_label())
