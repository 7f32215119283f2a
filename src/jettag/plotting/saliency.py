"""Saliency heat maps and permutation-importance bars, drawn from their JSON results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from jettag.evaluation.discriminant import Discriminant
from jettag.io.results import AblationSummary, PermutationImportance, SaliencyMaps
from jettag.plotting.style import (
    FigureText,
    class_style,
    comma_join,
    experiment_label,
    save_figure,
    use_style,
)

INPUT_LABELS = {
    "IP3D_signed_d0_significance": "$s_{d_0}$",
    "IP3D_signed_z0_significance": "$s_{z_0}$",
    "ptfrac": "$p_{T}^{\\mathrm{track}}/p_{T}^{\\mathrm{jet}}$",
    "dr": "$\\Delta R(\\mathrm{track}, \\mathrm{jet})$",
    "deta": "$\\Delta\\eta(\\mathrm{track}, \\mathrm{jet})$",
    "dphi": "$\\Delta\\phi(\\mathrm{track}, \\mathrm{jet})$",
    "d0": "$d_0$",
    "z0SinTheta": "$z_0\\sin\\theta$",
    "charge": "Charge",
    "numberOfPixelHits": "Pixel hits",
    "numberOfSCTHits": "SCT hits",
    "numberOfInnermostPixelLayerHits": "Innermost-layer hits",
    "numberOfNextToInnermostPixelLayerHits": "Next-to-innermost hits",
    "numberOfPixelSharedHits": "Shared pixel hits",
    "numberOfPixelHoles": "Pixel holes",
}
CATEGORIES = (("passing", "passing"), ("failing", "failing"))


def input_label(name: str) -> str:
    """Axis text of a track input (its name when no label is known)."""
    return INPUT_LABELS.get(name, name)


def _header(fig, grid_cell, text: FigureText, lines: Sequence[str]) -> None:
    """An axis-less strip with the experiment label on the left and the details on the right."""
    header = fig.add_subplot(grid_cell)
    header.axis("off")
    experiment_label(header, text)
    header.text(1.0, 1.0, "\n".join(lines), transform=header.transAxes, ha="right", va="top",
                fontsize="small")  # fmt: skip


def plot_saliency(
    data: SaliencyMaps,
    label: str,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """Heat maps of dD/dx (inputs vs track rank) for signal jets passing and failing the WP."""
    use_style()
    definition = Discriminant.from_dict(data.discriminant)
    signal_text = class_style(definition.signal)[1]
    inputs, n_tracks = data.inputs, data.n_tracks
    maps = {k: None if m is None else np.asarray(m, float) for k, m in data.maps.items()}
    filled = [m for m in maps.values() if m is not None]
    # one symmetric scale for both panels, so colours compare across them and zero is white
    limit = max((float(np.abs(m).max()) for m in filled), default=0.0) or 1.0

    fig = plt.figure(figsize=(13, 0.42 * len(inputs) + 3.2))
    grid = fig.add_gridspec(
        2, 3, height_ratios=[1.0, 0.42 * len(inputs)], width_ratios=[1, 1, 0.05],
        hspace=0.08, wspace=0.06,
    )  # fmt: skip
    wp = f"{round(100 * data.b_efficiency):d}%"
    _header(fig, grid[0, :], text, [
        ", ".join(t for t in (text.sample, label) if t),
        comma_join(f"{signal_text} with {n_tracks} tracks", definition.fraction_label()),
        "$x$: normalised track input",
    ])  # fmt: skip
    image = None
    for column, (key, word) in enumerate(CATEGORIES):
        ax = fig.add_subplot(grid[1, column])
        values = maps.get(key)
        if values is None:
            values = np.full((len(inputs), n_tracks), np.nan)
            ax.text(0.5, 0.5, "no jets", transform=ax.transAxes, ha="center", va="center")
        image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto",
                          interpolation="nearest")  # fmt: skip
        ax.set_title(f"{signal_text} {word} the {wp} WP ({data.n_jets[key]} jets)",
                     fontsize="medium")  # fmt: skip
        ticks = np.unique(np.linspace(0, n_tracks - 1, min(n_tracks, 10)).round().astype(int))
        ax.set_xticks(ticks, [str(k + 1) for k in ticks])  # at most 10, numbered from 1
        ax.set_yticks(range(len(inputs)), [input_label(n) if column == 0 else "" for n in inputs])
        # the cells are the scale: tick marks only clutter a heat map
        ax.minorticks_off()
        ax.tick_params(length=0)
        ax.set_xlabel(
            "Track rank by $s_{d_0}$ (1 = largest)" if data.track_order else "Track (file order)"
        )
    colorbar = fig.colorbar(image, cax=fig.add_subplot(grid[1, 2]))
    colorbar.set_label(f"$\\partial {definition.axis_label.strip('$')} / \\partial x$")
    colorbar.ax.minorticks_off()
    return save_figure(fig, stem, formats)


def plot_permutation_importance(
    data: PermutationImportance | AblationSummary,
    label: str,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """Horizontal bars of each background's rejection lost per input group (shuffled, removed)."""
    use_style()
    groups = data.groups
    definition = Discriminant.from_dict(data.discriminant)
    backgrounds = definition.display_order  # light (D_b's last weighted background) on top

    def loss(name: str, bkg: str) -> float:
        value = groups[name][f"{bkg}_rejection_loss"]
        return np.nan if value is None else 100.0 * value

    # most important (largest loss of the first background's rejection) on top; undefined last
    names = sorted(groups, key=lambda n: -np.nan_to_num(loss(n, backgrounds[0]), nan=-np.inf))
    labels = [
        input_label(groups[n]["inputs"][0])
        if groups[n]["inputs"] == [n]
        else n.replace("_", " ").capitalize()
        for n in names
    ]
    y = np.arange(len(names))[::-1].astype(float)
    height = 0.76 / len(backgrounds)
    fig = plt.figure(figsize=(9, 0.45 * len(names) + 3.0))
    grid = fig.add_gridspec(2, 1, height_ratios=[1.0, 0.45 * len(names) + 1.2], hspace=0.04)
    wp = f"{round(100 * data.b_efficiency):d}%"
    repeats = f", {data.repeats} permutations" if data.repeats > 1 else ""
    _header(fig, grid[0], text, [
        ", ".join(t for t in (text.sample, label) if t),
        comma_join(definition.fraction_label(),
                   f"{wp} {class_style(definition.signal)[1]} WP{repeats}"),
    ])  # fmt: skip
    ax = fig.add_subplot(grid[1])
    for k, bkg in enumerate(backgrounds):
        offset = (len(backgrounds) - 1) * height / 2 - k * height
        colour, legend = class_style(bkg, k)
        values = np.array([loss(n, bkg) for n in names])
        errors = np.array([100.0 * (groups[n][f"{bkg}_rejection_loss_std"] or 0.0) for n in names])
        nominal = data.nominal[f"{bkg}_rejection"]
        nominal_text = "inf" if nominal is None else f"{nominal:.3g}"
        if data.nominal.get(f"{bkg}_rejection_is_lower_limit"):  # no jet passes
            nominal_text = f"> {nominal_text}"
        ax.barh(y + offset, values, height=height, color=colour, alpha=0.85,
                xerr=errors if data.repeats > 1 else None, error_kw={"lw": 1},
                label=f"{legend} (nominal rejection {nominal_text})")  # fmt: skip
    ax.axvline(0.0, color="black", lw=1)
    ax.set_yticks(y, labels)
    ax.minorticks_off()
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(data.x_label)
    # an empty band above the top bar holds the legend
    ax.set_ylim(-0.7, len(names) - 0.5 + 1.4)
    low, high = ax.get_xlim()
    ax.set_xlim(min(low, 0.0), max(high, 5.0))
    ax.legend(loc="upper right", fontsize="small")
    return save_figure(fig, stem, formats)
