"""ATLAS style via mplhep, the experiment label, and atomic saving in several formats."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # plots are files; never ask for a display
import matplotlib.pyplot as plt
import mplhep

from jettag.atomic import atomic_path

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def use_style() -> None:
    """Switch matplotlib to mplhep's ATLAS style."""
    mplhep.style.use("ATLAS")


def atlas_label(ax, text: str, sqrt_s_tev: float, extra: str = "") -> None:
    """'ATLAS Simulation <text>', sqrt(s) and the sample, in the top-left corner."""
    mplhep.atlas.label(text=text, data=False, com=f"{sqrt_s_tev:g}", lumi=None, ax=ax, loc=4)
    if extra:
        ax.text(0.05, 0.80, extra, transform=ax.transAxes, va="top", ha="left", fontsize="small")


def save_figure(fig, stem: Path, formats: Sequence[str]) -> list[Path]:
    """Save as stem.<format> for each format, atomically; close the figure."""
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        with atomic_path(path, suffix=f".tmp.{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight", dpi=150)
        paths.append(path)
    plt.close(fig)
    return paths
