"""Model-input plots drawn from the input-histograms JSON: raw, transformed, normalised, pT."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter, ScalarFormatter

from jettag.evaluation.input_histograms import InputHistograms
from jettag.plotting.style import (
    FigureText,
    class_style,
    data_in_lower,
    experiment_label,
    new_figure,
    ratio_figure,
    save_figure,
)

# name -> (symbol in math mode, unit, words before the symbol on the raw axis)
VARIABLES = {
    "IP3D_signed_d0_significance": ("s_{d_0}", "", "Lifetime-signed $d_0/\\sigma(d_0)$,"),
    "IP3D_signed_z0_significance": (
        "s_{z_0}",
        "",
        "Lifetime-signed $z_0\\sin\\theta/\\sigma(z_0\\sin\\theta)$,",
    ),
    "ptfrac": ("p_{\\mathrm{T}}^{\\mathrm{track}}/p_{\\mathrm{T}}^{\\mathrm{jet}}", "", ""),
    "dr": ("\\Delta R(\\mathrm{track, jet})", "", ""),
    "deta": ("\\Delta\\eta(\\mathrm{track, jet})", "", ""),
    "dphi": ("\\Delta\\phi(\\mathrm{track, jet})", "", ""),
    "d0": ("d_0", "mm", "Track"),
    "z0SinTheta": ("z_0\\sin\\theta", "mm", "Track"),
    "charge": ("q", "", "Track charge"),
    "numberOfPixelHits": ("N_{\\mathrm{pix}}", "", "Pixel hits"),
    "numberOfSCTHits": ("N_{\\mathrm{SCT}}", "", "SCT hits"),
    "numberOfInnermostPixelLayerHits": ("N_{\\mathrm{IBL}}", "", "Innermost-layer hits"),
    "numberOfNextToInnermostPixelLayerHits": ("N_{\\mathrm{NIBL}}", "", "Next-to-innermost hits"),
    "numberOfPixelSharedHits": ("N_{\\mathrm{pix}}^{\\mathrm{shared}}", "", "Shared pixel hits"),
    "numberOfPixelHoles": ("N_{\\mathrm{pix}}^{\\mathrm{holes}}", "", "Pixel holes"),
    "pt": ("p_{\\mathrm{T}}^{\\mathrm{jet}}", "GeV", ""),
    "eta": ("\\eta^{\\mathrm{jet}}", "", ""),
    "mass": ("m^{\\mathrm{jet}}", "GeV", ""),
}
# the inputs whose shapes the pT reweighting visibly changes, and the stage to show them in
KEY_INPUTS = {"IP3D_signed_d0_significance": "transformed", "ptfrac": "transformed"}
STAGE_TITLES = {"raw": "Raw", "transformed": "Transformed", "normalised": "Normalised"}
LOG_Y_DECADES = 2.0  # a log y axis once a histogram spans more than this many decades
MIN_RATIO_ENTRIES = 10  # a ratio of bins with fewer unweighted entries is mostly noise
PT_TICKS = (20, 30, 50, 100, 200, 300, 500, 1000, 2000, 3000)


@dataclass(frozen=True)
class _Label:
    """What every figure carries: the experiment label, its sample text, the output formats."""

    text: FigureText
    extra: str
    formats: tuple[str, ...]

    def draw(self, ax, extra: str = "") -> None:
        """The experiment label with the sample text (and more) below it."""
        experiment_label(ax, self.text, self.extra + extra)


def axis_label(name: str, transform: str, stage: str) -> str:
    """x-axis text for an input at a stage, naming the variable, its transform and unit."""
    symbol, unit, words = VARIABLES.get(name, (f"\\mathrm{{{name}}}".replace("_", "\\_"), "", ""))
    raw = f"{words} ${symbol}$".strip() + (f" [{unit}]" if unit else "")
    if stage == "raw" or transform == "none":
        text = raw
    elif transform == "log":
        text = f"$\\log({symbol}" + (f"\\,/\\,\\mathrm{{{unit}}}" if unit else "") + ")$"
    elif transform == "signed_log":
        scaled = f"|{symbol}|" + (f"/\\mathrm{{{unit}}}" if unit else "")
        text = f"$\\mathrm{{sign}}({symbol})\\,\\log(1 + {scaled})$"
    elif transform == "abs":
        text = f"$|{symbol}|$" + (f" [{unit}]" if unit else "")
    else:
        text = f"{transform}(${symbol}$)"
    if stage == "normalised":
        # standardised values carry no unit; "Track d0" becomes "normalised track d0"
        text = text.replace(f" [{unit}]", "")
        if text[:1].isupper() and not text[1:2].isupper():
            text = text[0].lower() + text[1:]
        return "Normalised " + text
    return text


def plot_inputs(
    histograms: InputHistograms,
    stem_prefix: Path,
    text: FigureText,
    formats: Sequence[str],
    inputs: Sequence[str] | None = None,
) -> list[Path]:
    """Per input raw | transformed | normalised; jet pT reweighting; key inputs reweighted.

    inputs: the inputs to draw (default all in the JSON); the jet pT figure is always drawn.
    """
    data = histograms.to_dict()
    names = list(data["inputs"]) if inputs is None else list(inputs)
    unknown = sorted(set(names) - set(data["inputs"]))
    if unknown:
        raise ValueError(
            f"{histograms.prepared_dir}: no inputs {unknown}; have {sorted(data['inputs'])}"
        )
    label = _Label(text, text.with_sample(f"{data['split'].capitalize()} split"), tuple(formats))
    written = []
    for name in names:
        written += _plot_stages(name, data, label, Path(f"{stem_prefix}_{name}"))
    written += _plot_jet_pt(data, label, Path(f"{stem_prefix}_jet_pt_reweighting"))
    for name, stage in KEY_INPUTS.items():
        if name in names:
            stem = Path(f"{stem_prefix}_{name}_reweighted")
            written += _plot_reweighted(name, stage, data, label, stem)
    return written


def _style(classes: list[str], index: int) -> tuple[str, str]:
    """Colour and legend text of a class (style.class_style)."""
    return class_style(classes[index], index)


def _unit_area(hist: dict, key: str) -> np.ndarray | None:
    """Bin contents over the total including under- and overflow; None for an empty class."""
    values = np.asarray(hist[key], dtype=np.float64)
    total = values.sum() + sum(hist[f"{key}_flow"])
    return values / total if total > 0 else None


def _wants_log_y(heights: list[np.ndarray]) -> bool:
    """Whether the non-empty bins span more than LOG_Y_DECADES decades."""
    positive = np.concatenate([h[h > 0] for h in heights]) if heights else np.array([])
    return positive.size > 0 and np.log10(positive.max() / positive.min()) > LOG_Y_DECADES


def _set_y_range(ax, heights: list[np.ndarray], log: bool, top_fraction: float = 0.6) -> None:
    """y range with the data in the lower top_fraction, leaving room for label and legend."""
    positive = np.concatenate([h[h > 0] for h in heights]) if heights else np.array([])
    if positive.size == 0:
        return
    lo, hi = positive.min() / 2, positive.max()
    if log:
        ax.set_yscale("log")
    data_in_lower(ax, lo if log else 0.0, hi, top_fraction, log)


def _ratio_panel_figure():
    """A figure with a main panel and a ratio panel below it, sharing x."""
    return ratio_figure(1, figsize=(9, 8), ratio_height=1.3)


def _plot_stages(name: str, data: dict, label: _Label, stem: Path) -> list[Path]:
    """One figure per input: per-flavour unit-area histograms at the three stages."""
    classes = data["classes"]
    entry = data["inputs"][name]
    unit = "jets" if entry["group"] == "jets" else "tracks"
    shapes = {
        stage: {cls: _unit_area(entry["stages"][stage][cls], "counts") for cls in classes}
        for stage in STAGE_TITLES
    }
    # transformed and normalised are one histogram in two units: give them one y scale
    log_y = {stage: _wants_log_y([h for h in shapes[stage].values() if h is not None])
             for stage in ("raw", "transformed")}  # fmt: skip
    log_y["normalised"] = log_y["transformed"]
    fig, axes = new_figure(1, 3, figsize=(24, 7), gridspec_kw={"wspace": 0.28})
    for ax, stage in zip(axes, STAGE_TITLES, strict=True):
        edges = np.asarray(entry["stages"][stage]["edges"])
        heights = []
        for index, cls in enumerate(classes):
            values = shapes[stage][cls]
            if values is None:
                continue
            colour, text = _style(classes, index)
            ax.stairs(values, edges, color=colour, lw=1.8, label=text)
            heights.append(values)
        ax.set_xlim(edges[0], edges[-1])
        _set_y_range(ax, heights, log_y[stage])
        ax.set_xlabel(axis_label(name, entry["transform"], stage))
        ax.set_ylabel(f"Normalised number of {unit}")
        title = STAGE_TITLES[stage] + (f" ({entry['transform']})" if stage == "transformed" else "")
        ax.legend(loc="upper right", title=title, fontsize="small")
    check, norm = entry["check"], entry["norm"]
    # the same histogram as the transformed one, so the same y range (the edge bins may differ
    # by a value rounded across the lowest edge in float32)
    axes[2].set_ylim(axes[1].get_ylim())
    if norm["mean"] == 0.0 and norm["std"] == 1.0:
        # normalise: false in the config (prepare stores the identity)
        axes[2].set_xlabel(
            axis_label(name, entry["transform"], "transformed") + " (not normalised)"
        )
        axes[2].get_legend().set_title("Model input")
    axes[2].text(
        0.04, 0.96,
        f"All flavours: mean {check['mean']:+.3f}, std {check['std']:.3f}\n"
        f"norm.yaml: $\\mu$ = {norm['mean']:.3g}, $\\sigma$ = {norm['std']:.3g}",
        transform=axes[2].transAxes, va="top", ha="left", fontsize="small",
    )  # fmt: skip
    label.draw(axes[0], ", unweighted")
    return save_figure(fig, stem, label.formats)


def _plot_jet_pt(data: dict, label: _Label, stem: Path) -> list[Path]:
    """Per-flavour jet pT spectra before and after reweighting, ratio to the target below."""
    classes = data["classes"]
    pt = data["jet_pt"]
    target = pt["target"]
    target_text = _style(classes, classes.index(target))[1]
    edges = np.asarray(pt["edges"])
    widths = np.diff(edges)
    centres = np.sqrt(edges[:-1] * edges[1:])  # the middle of a bin on a log axis
    fig, (main, ratio_ax) = _ratio_panel_figure()
    heights, ratios = [], [1.0]
    populated = np.zeros(widths.size, dtype=bool)
    others = [c for c in classes if c != target]
    for index, cls in enumerate(classes):
        colour, text = _style(classes, index)
        before, after = _unit_area(pt[cls], "counts"), _unit_area(pt[cls], "weighted")
        if before is None:
            continue
        heights.append(before / widths)
        if cls == target:
            # the reweighting is defined where the target has jets: show that range only
            populated = before > 0
            # the shape every flavour is reweighted to: filled, so the lines on it stay visible
            main.stairs(before / widths, edges, color=colour, fill=True, alpha=0.25,
                        label=f"{text} (target)")  # fmt: skip
            continue
        main.stairs(before / widths, edges, color=colour, lw=1.5, ls="--")
        if after is not None:
            # after reweighting the shapes coincide: draw the earlier ones wider to see them all
            width = 1.8 + 1.4 * (len(others) - 1 - others.index(cls))
            main.stairs(after / widths, edges, color=colour, lw=width, label=text)
        # side by side in each bin, so the flavours' markers do not hide each other
        shift = 10 ** (0.015 * (others.index(cls) - (len(others) - 1) / 2))
        before_ratio = _values(pt["ratio_before"][cls]["ratio"])
        after_ratio = _values(pt["ratio_after"][cls]["ratio"])
        ratio_ax.plot(centres * shift, before_ratio, "o", color=colour, mfc="none", ms=7)
        ratio_ax.errorbar(centres * shift, after_ratio, _values(pt["ratio_after"][cls]["error"]),
                          fmt="s", color=colour, ms=6)  # fmt: skip
        ratios += [r for r in (*before_ratio, *after_ratio) if np.isfinite(r)]
    ratio_ax.axhline(1.0, color="black", lw=1, ls=":")
    last = edges[np.flatnonzero(populated)[-1] + 1] if populated.any() else edges[-1]
    main.set_xscale("log")
    main.set_xlim(edges[0], last)
    ratio_ax.set_xticks([t for t in PT_TICKS if edges[0] <= t <= last])
    ratio_ax.xaxis.set_major_formatter(ScalarFormatter())
    ratio_ax.xaxis.set_minor_formatter(NullFormatter())
    shown = np.arange(widths.size) < np.searchsorted(edges, last)
    _set_y_range(main, [h[shown] for h in heights], log=True, top_fraction=0.5)
    main.set_ylabel("$1/N\\;dN/dp_{\\mathrm{T}}$ [GeV$^{-1}$]")
    handles, _ = main.get_legend_handles_labels()
    how = "resampling" if pt.get("balance") == "resample" else "reweighting"
    handles += [
        Line2D([], [], color="grey", lw=1.8, label=f"After {how}"),
        Line2D([], [], color="grey", lw=1.5, ls="--", label=f"Before {how}"),
    ]
    main.legend(handles=handles, loc="upper right", fontsize="small")
    label.draw(main, f", target {target_text}")
    ratio_ax.set_xlabel("Jet $p_{\\mathrm{T}}$ [GeV]")
    ratio_ax.set_ylabel(f"Flavour / {target_text.replace('-jets', '')}", fontsize="small")
    # a few bins only: show them all, up to a limit against an empty-bin outlier
    # (the top third is left to the legend)
    low, high = max(0.0, min(ratios) - 0.2), min(max(ratios) + 0.2, 5.0)
    ratio_ax.set_ylim(low, high + 0.5 * (high - low))
    ratio_ax.legend(
        handles=[
            Line2D([], [], color="grey", marker="o", mfc="none", ls="", label="Before"),
            Line2D([], [], color="grey", marker="s", ls="-", label="After (stat. error)"),
        ],
        loc="upper right", ncol=2, fontsize="x-small",
    )  # fmt: skip
    return save_figure(fig, stem, label.formats)


def _values(items: list) -> np.ndarray:
    """A JSON list with nulls (no value) as a float array with NaN."""
    return np.array([np.nan if v is None else v for v in items], dtype=np.float64)


def _plot_reweighted(name: str, stage: str, data: dict, label: _Label, stem: Path) -> list[Path]:
    """Unweighted against pT-reweighted per flavour for one input, ratio below."""
    classes = data["classes"]
    entry = data["inputs"][name]
    hist = entry["stages"][stage]
    edges = np.asarray(hist["edges"])
    unit = "jets" if entry["group"] == "jets" else "tracks"
    fig, (main, ratio_ax) = _ratio_panel_figure()
    heights, ratios = [], [1.0]
    for index, cls in enumerate(classes):
        colour, text = _style(classes, index)
        unweighted, weighted = _unit_area(hist[cls], "counts"), _unit_area(hist[cls], "weighted")
        if unweighted is None or weighted is None:
            continue
        main.stairs(unweighted, edges, color=colour, lw=1.5, ls="--")
        main.stairs(weighted, edges, color=colour, lw=1.8, label=text)
        heights += [unweighted, weighted]
        with np.errstate(divide="ignore", invalid="ignore"):
            enough = np.asarray(hist[cls]["counts"]) >= MIN_RATIO_ENTRIES
            r = np.where(enough, weighted / unweighted, np.nan)
        ratio_ax.stairs(r, edges, color=colour, lw=1.8)
        ratios += r[np.isfinite(r)].tolist()
    ratio_ax.axhline(1.0, color="black", lw=1, ls=":")
    main.set_xlim(edges[0], edges[-1])
    _set_y_range(main, heights, _wants_log_y(heights))
    main.set_ylabel(f"Normalised number of {unit}")
    handles, _ = main.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="grey", lw=1.8, label="$p_{\\mathrm{T}}$-reweighted"),
        Line2D([], [], color="grey", lw=1.5, ls="--", label="Unweighted"),
    ]
    main.legend(handles=handles, loc="upper right", fontsize="small")
    label.draw(main)
    ratio_ax.set_xlabel(axis_label(name, entry["transform"], stage))
    ratio_ax.set_ylabel("Reweighted /\nunweighted", fontsize="small")
    ratio_ax.text(0.02, 0.92, f"Bins with $\\geq$ {MIN_RATIO_ENTRIES} {unit}", fontsize="x-small",
                  transform=ratio_ax.transAxes, va="top")  # fmt: skip
    lo, hi = np.percentile(ratios, [2, 98])
    ratio_ax.set_ylim(max(0.0, lo - 0.1), hi + 0.1)
    return save_figure(fig, stem, label.formats)
