"""Random hyper-parameter search results: trials ranked by validation loss, the best config."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jettag.atomic import json_safe
from jettag.config.jobs import NOMINAL, sample_trial, with_params
from jettag.io.history import read_history
from jettag.io.results import Result


@dataclasses.dataclass
class SearchSummary(Result):
    """results/search/<model>.json: the random-search trials ranked by validation loss."""

    model: str
    tagger: str
    max_train_jets: int | None
    space: dict[str, dict]
    best_trial: str
    nominal_val_loss: float | None
    trials: list[dict]  # trial, val_loss, train_loss, best_epoch, epochs_run, params

    def best_model(self, section: dict[str, Any]) -> dict[str, Any]:
        """The searched model's section with the winning trial's values (a full training's)."""
        return {"models": {self.model: with_params(section, self.trials[0]["params"])}}

    def markdown(self) -> str:
        """The ranking as a markdown table."""
        return _markdown(self.to_dict())


def search_summary(
    model: str,
    seed: int,
    search: dict[str, Any],
    section: dict[str, Any],
    histories: Mapping[str, Path],
) -> SearchSummary:
    """Rank the trials (and the nominal model) by best validation loss.

    seed, search: the config's seed and search section (each trial's values are drawn from
    them again); section: the searched model's section; histories: trial name ('0', '1',
    ..., or 'nominal') -> its history.csv.
    """
    rows = []
    for name, path in histories.items():
        history = read_history(Path(path))
        best = int(history["val_loss"].argmin())
        params = {} if name == NOMINAL else sample_trial(seed, search, int(name))
        rows.append({
            "trial": name,
            "val_loss": float(history["val_loss"][best]),
            "train_loss": float(history["train_loss"][best]),
            "best_epoch": int(history["epoch"][best]),
            "epochs_run": len(history["epoch"]),
            "params": params,
        })  # fmt: skip
    rows.sort(key=lambda r: r["val_loss"])
    nominal = next((r for r in rows if r["trial"] == NOMINAL), None)
    best = rows[0]
    result = {
        "model": model,
        "tagger": model,
        "max_train_jets": search["max_train_jets"],
        "space": search["space"],
        "best_trial": best["trial"],
        "nominal_val_loss": nominal["val_loss"] if nominal else None,
        "trials": rows,
    }
    return SearchSummary.from_dict(json_safe(result))


def _markdown(result: dict) -> str:
    """The ranked trials as a markdown table."""
    paths = sorted(result["space"])
    lines = [
        f"# Random search: {result['model']} ({_jets(result['max_train_jets'])})",
        "",
        "| rank | trial | val loss | train loss | best epoch | " + " | ".join(paths) + " |",
        "|---:|---|---:|---:|---:|" + "---:|" * len(paths),
    ]
    for rank, row in enumerate(result["trials"], start=1):
        values = [_cell(row["params"].get(p, "(config)")) for p in paths]
        lines.append(
            f"| {rank} | {row['trial']} | {row['val_loss']:.4f} | {row['train_loss']:.4f} |"
            f" {row['best_epoch']} | " + " | ".join(values) + " |"
        )
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    """A table cell: floats in 3 significant figures, text as it is, anything else as JSON."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, str):
        return value
    return json.dumps(value)  # YAML's dump of a scalar would end in a '...' marker


def _jets(max_train_jets: int | None) -> str:
    """'20000 training jets', or 'all training jets'."""
    return f"{max_train_jets} training jets" if max_train_jets else "all training jets"
