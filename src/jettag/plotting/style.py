"""The base every jettag figure shares: ATLAS style via mplhep, panels, the experiment label,
room above the data for it, and atomic saving in several formats.

A plot opens with `new_figure` (or `ratio_figure` for a main panel over ratio panels), puts
its data in the lower part of the axes (`data_in_lower`) and ends with `finish`, which writes
the experiment label, sqrt(s), the sample and the plot's own lines, and saves every format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # plots are files; never ask for a display
import matplotlib.pyplot as plt
import mplhep
import numpy as np
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


# the class set of the analysis being drawn (use_class_styles): its colours and legend texts
_CLASS_STYLES: dict[str, tuple[str, str]] = {}


def use_class_styles(styles: Mapping[str, Sequence[str]]) -> None:
    """Draw the classes named here with these (colour, legend text): the analysis' class set,
    which the plot stages' settings carry, so a user's own class set is drawn as it says."""
    _CLASS_STYLES.clear()
    _CLASS_STYLES.update({name: (str(style[0]), str(style[1])) for name, style in styles.items()})


def class_style(name: str, index: int = 0) -> tuple[str, str]:
    """Colour and legend text of a class: the analysis' class set's (use_class_styles), else a
    built-in class set's, else a colour by index and the name."""
    return _CLASS_STYLES.get(name) or builtin_style(name) or (COLOURS[index % len(COLOURS)], name)


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


def new_figure(*grid: int, **subplots_options):
    """A figure in the ATLAS style: plt.subplots(*grid, **subplots_options), 8 x 6 by default."""
    use_style()
    subplots_options.setdefault("figsize", (8, 6))
    return plt.subplots(*grid, **subplots_options)


def ratio_figure(
    n_ratios: int, figsize: tuple[float, float], main_height: float = 3.0,
    ratio_height: float = 1.0,
):  # fmt: skip
    """A main panel over n_ratios ratio panels sharing its x axis: (fig, [main, ratios...])."""
    heights = [main_height] + [ratio_height] * n_ratios
    fig, axes = new_figure(1 + n_ratios, 1, figsize=figsize, sharex=True,
                           gridspec_kw={"height_ratios": heights, "hspace": 0.06})  # fmt: skip
    return fig, list(axes)


def data_in_lower(ax: Axes, low: float, high: float, fraction: float, log: bool = False) -> None:
    """y limits that put [low, high] in the lower `fraction` of the axes: the experiment label
    and the legends go above the data."""
    if log:
        lo, hi = np.log10(low), np.log10(high)
        ax.set_ylim(10**lo, 10 ** (lo + (hi - lo) / fraction))
    else:
        ax.set_ylim(low, low + (high - low) / fraction)


def finish(fig, ax: Axes, text: FigureText, stem: Path, formats: Sequence[str],
           *lines: str) -> list[Path]:  # fmt: skip
    """The experiment label on ax, with the sample text and these lines below it; then save
    stem.<format> for every format."""
    experiment_label(ax, text, text.with_sample(*lines))
    return save_figure(fig, stem, formats)


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
