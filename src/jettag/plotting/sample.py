"""Validation plots of a sample, drawn from the histograms JSON."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from jettag.evaluation.sample_histograms import SampleHistograms
from jettag.plotting.style import FigureText, class_style, finish, new_figure

AXIS_LABELS = {
    "IP3D_signed_d0_significance": ("Track lifetime-signed $d_0/\\sigma(d_0)$", True),
    "IP3D_signed_z0_significance": (
        "Track lifetime-signed $z_0\\sin\\theta/\\sigma(z_0\\sin\\theta)$",
        True,
    ),
    "n_tracks": ("Number of associated tracks", False),
    "jet_pt": ("Jet $p_{T}$ [GeV]", True),
    "track_pt": ("Track $p_{T}$ [GeV]", True),
}


def plot_sample(
    histograms: SampleHistograms, stem_prefix: Path, text: FigureText, formats: Sequence[str],
) -> list[Path]:  # fmt: skip
    """One normalised per-class plot per variable, plus the track-origin composition."""
    data = histograms.to_dict()
    written = []
    fractions = data["fractions"]
    # the classes the sample holds, in the class set's order
    styles = {f: class_style(f, k) for k, f in enumerate(data["n_jets"]) if data["n_jets"][f]}
    line = ", ".join(f"{styles[f][1]} {100 * fractions[f]:.1f}%" for f in styles)
    for var, (xlabel, logy) in AXIS_LABELS.items():
        h = data["histograms"][var]
        edges = np.asarray(h["edges"])
        fig, ax = new_figure(figsize=(8, 6))
        for flavour, (colour, label) in styles.items():
            counts = np.asarray(h[flavour])
            if counts.sum() == 0:
                continue
            ax.stairs(counts / counts.sum(), edges, color=colour, lw=1.8, label=label)
        ax.set_xlim(edges[0], edges[-1])
        if var in ("jet_pt", "track_pt"):
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi * 40)
        else:
            ax.set_ylim(0, ax.get_ylim()[1] * 1.45)
        ax.set_xlabel(
            xlabel + (" (overflow in edge bins)" if logy and "significance" in var else "")
        )
        ax.set_ylabel(
            "Normalised number of " + ("jets" if var in ("n_tracks", "jet_pt") else "tracks")
        )
        ax.legend(loc="upper right")
        written += finish(fig, ax, text, Path(f"{stem_prefix}_{var}"), formats, line)
    written += _plot_origins(data, styles, line, Path(f"{stem_prefix}_track_origins"), text,
                             formats)  # fmt: skip
    return written


def _plot_origins(
    data: dict,
    styles: dict[str, tuple[str, str]],
    line: str,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """Stacked fractions of track truth origins per jet class."""
    names = data["track_origins"]["names"]
    flavours = list(styles)
    fig, ax = new_figure(figsize=(8, 6))
    bottom = np.zeros(len(flavours))
    colours = plt.get_cmap("tab10").colors
    for k, name in enumerate(names):
        values = np.array(
            [data["track_origins"][f][k] / max(sum(data["track_origins"][f]), 1) for f in flavours]
        )
        ax.bar([styles[f][1] for f in flavours], values, bottom=bottom, color=colours[k],
               label=name, width=0.6)  # fmt: skip
        bottom += values
    ax.set_ylabel("Fraction of associated tracks")
    ax.set_ylim(0, 1.6)
    ax.legend(loc="upper right", ncol=2, fontsize="x-small", title="Track truth origin")
    return finish(fig, ax, text, stem, formats, line)
