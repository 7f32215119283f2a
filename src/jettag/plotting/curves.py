"""Learning diagnostics: training and validation loss per epoch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from jettag.evaluation.search import SearchSummary
from jettag.io.history import AUXILIARY_TASKS, auxiliary_losses, read_history
from jettag.io.results import LearningCurve
from jettag.plotting.style import (
    FigureText,
    data_in_lower,
    experiment_label,
    finish,
    new_figure,
    ratio_figure,
    save_figure,
)


def plot_loss(
    history_files: Sequence[Path],
    label: str,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
    verdicts: Sequence[str] | None = None,
) -> list[Path]:
    """Training and validation loss vs epoch for each member, best epoch marked.

    verdicts: a legend text per member (its loss-curve diagnosis); the best epoch without.
    Auxiliary tasks (track origin, vertexing) trained beside the jet loss get a lower panel.
    """
    histories = [read_history(Path(path)) for path in history_files]
    tasks = [t for t in AUXILIARY_TASKS if all(t in auxiliary_losses(h) for h in histories)]
    if tasks:
        fig, (ax, lower) = ratio_figure(1, (8, 8), main_height=2.2, ratio_height=1.0)
    else:
        fig, ax = new_figure()
    member_handles = []
    for k, h in enumerate(histories):
        epoch = h["epoch"] + 1
        (line,) = ax.plot(epoch, h["train_loss"], "-", lw=1.8)
        ax.plot(epoch, h["val_loss"], "--", lw=1.8, color=line.get_color())
        best = int(np.argmin(h["val_loss"]))
        ax.plot(epoch[best], h["val_loss"][best], "*", ms=14, color=line.get_color())
        name = f"Member {k}" if len(histories) > 1 else "Diagnosis"
        verdict = verdicts[k] if verdicts else f"best epoch {best + 1}"
        member_handles.append(
            Line2D([], [], color=line.get_color(), lw=4, label=f"{name}: {verdict}")
        )
    styles = [
        Line2D([], [], color="grey", ls="-", lw=1.8, label="Training"),
        Line2D([], [], color="grey", ls="--", lw=1.8, label="Validation"),
        Line2D([], [], color="grey", ls="", marker="*", ms=14, label="Best epoch"),
    ]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, max(len(h["epoch"]) for h in histories) + 0.5)
    if tasks:
        _auxiliary_panel(lower, histories, tasks)
    else:
        ax.set_xlabel("Epoch")
    ax.set_ylabel("Weighted cross-entropy loss")
    # under the experiment label; the curves keep the lower 45 % of the axes
    ax.legend(handles=styles + member_handles, loc="upper right", bbox_to_anchor=(1.0, 0.8),
              fontsize="x-small")  # fmt: skip
    data_in_lower(ax, *ax.get_ylim(), 0.45)
    return finish(fig, ax, text, stem, formats, label)


AUXILIARY_LABELS = {"track_origin": "Track origin", "track_vertex": "Vertexing (pairs)"}


def _auxiliary_panel(ax, histories: Sequence[dict], tasks: Sequence[str]) -> None:
    """Auxiliary-task losses per epoch (training solid, validation dashed), one colour each."""
    for k, task in enumerate(tasks):
        train_column, val_column = AUXILIARY_TASKS[task]
        colour = f"C{k + 5}"  # clear of the members' C0, C1, ..
        for m, h in enumerate(histories):
            epoch = h["epoch"] + 1
            label = AUXILIARY_LABELS[task] if m == 0 else None
            ax.plot(epoch, h[train_column], "-", lw=1.5, color=colour, label=label)
            ax.plot(epoch, h[val_column], "--", lw=1.5, color=colour)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Aux. task loss", fontsize="small")
    ax.legend(loc="upper right", fontsize="x-small", ncol=len(tasks))
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.45 * (high - low))  # room for the legend


def plot_learning_curve(
    curve: LearningCurve,
    label: str,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """Training and validation loss vs number of training jets (log x)."""
    points = curve.points
    n_jets = np.array([p["train_jets"] for p in points], dtype=float)
    fig, ax = new_figure()
    ax.plot(n_jets, [p["train_loss"] for p in points], "o-", lw=1.8, label="Training set")
    ax.plot(n_jets, [p["val_loss"] for p in points], "s--", lw=1.8, label="Validation set")
    ax.set_xscale("log")
    ax.set_xlabel("Number of training jets")
    ax.set_ylabel("Weighted cross-entropy loss")
    ax.legend(loc="upper right")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.45 * (hi - lo))
    return finish(fig, ax, text, stem, formats, label, "best epoch of each training")


def plot_search(
    result: SearchSummary,
    label: str,
    stem: Path,
    text: FigureText,
    formats: Sequence[str],
) -> list[Path]:
    """Validation loss of every search trial vs each searched hyper-parameter."""
    paths = sorted(result.space)
    trials = [t for t in result.trials if t["trial"] != "nominal"]
    fig, axes = new_figure(1, len(paths), figsize=(6.5 * len(paths), 6), squeeze=False)
    for ax, path in zip(axes[0], paths, strict=True):
        ((kind, spec),) = result.space[path].items()
        # a choice sits at its index in the configured list; other values at themselves
        x = {t["trial"]: spec.index(t["params"][path]) if kind == "choice" else t["params"][path]
             for t in trials}  # fmt: skip
        ax.plot(list(x.values()), [t["val_loss"] for t in trials], "o", ms=8, label="Trial")
        best = result.trials[0]
        if best["trial"] != "nominal":
            ax.plot([x[best["trial"]]], [best["val_loss"]], "*", ms=18, color="C3",
                    label="Best trial")  # fmt: skip
        if result.nominal_val_loss is not None:
            ax.axhline(result.nominal_val_loss, color="grey", ls="--", label="As configured")
        if kind == "choice":
            ax.set_xticks(range(len(spec)), [json.dumps(v) for v in spec])
            ax.set_xlim(-0.5, len(spec) - 0.5)
        elif kind == "log_uniform":
            ax.set_xscale("log")
        ax.set_xlabel(path)
        ax.set_ylabel("Best validation loss")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.6 * (hi - lo))
    # one legend, in the last panel: the first holds the experiment label
    axes[0][-1].legend(loc="upper right", fontsize="small")
    jets = f"{result.max_train_jets or 'all'} training jets"
    experiment_label(axes[0][0], text, text.with_sample(f"{label}: random search", jets))
    fig.tight_layout()
    return save_figure(fig, stem, formats)
