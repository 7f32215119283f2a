"""ATLAS style via mplhep, the experiment label, and atomic saving in several formats."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # plots are files; never ask for a display
import matplotlib.pyplot as plt
import mplhep
from matplotlib.axes import Axes

from jettag.atomic import atomic_path
from jettag.flavours import builtin_style

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def comma_join(*parts: str) -> str:
    """The non-empty parts joined by ', ' (one line of a figure's label)."""
    return ", ".join(part for part in parts if part)


def singular(legend: str) -> str:
    """'Light-jets' -> 'Light-jet', '$b$-jets' -> '$b$-jet' (before 'efficiency'); others kept."""
    return legend.removesuffix("s") if legend.endswith("jets") else legend


def class_style(name: str, index: int = 0) -> tuple[str, str]:
    """Colour and legend text of a class: a built-in class set's, else a colour by index."""
    return builtin_style(name) or (COLOURS[index % len(COLOURS)], name)


@dataclasses.dataclass(frozen=True)
class FigureText:
    """What every figure states: the experiment label (plots.experiment_label), sqrt(s) and
    the sample (its config label); none of it comes from a numbers file."""

    experiment: str  # "ATLAS"
    status: str  # "Simulation Internal"
    sqrt_s_tev: float
    sample: str

    def with_sample(self, *lines: str) -> str:
        """The sample text and further lines, one per line (empty parts left out)."""
        return "\n".join(line for line in (self.sample, *lines) if line)


def use_style() -> None:
    """Switch matplotlib to mplhep's ATLAS style."""
    mplhep.style.use("ATLAS")


def experiment_label(ax: Axes, text: FigureText, extra: str = "") -> None:
    """'ATLAS Simulation Internal' (or the configured text), sqrt(s), and extra lines below.

    ATLAS and CMS get mplhep's own label (bold italic ATLAS, bold CMS); any other experiment
    name, e.g. for a generated sample, is written in bold with the status after it.
    """
    options = dict(text=text.status, data=True, com=f"{text.sqrt_s_tev:g}", lumi=None, ax=ax,
                   loc=4)  # fmt: skip
    if text.experiment == "ATLAS":
        mplhep.atlas.label(**options)
    elif text.experiment == "CMS":
        mplhep.cms.label(**options)
    else:
        mplhep.label.exp_label(exp=text.experiment, **options)
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
