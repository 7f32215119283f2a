"""Random hyper-parameter search results: trials ranked by validation loss, the best config."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jettag.atomic import write_json, write_text, write_yaml
from jettag.config import sample_trial
from jettag.plotting.curves import read_history

NOMINAL = "nominal"


def search_summary(
    config: dict[str, Any],
    histories: Mapping[str, Path],
    output_json: Path,
    output_md: Path,
    output_best: Path,
) -> dict:
    """Rank the trials (and the nominal model) by best validation loss; write the winner.

    histories: trial name ('0', '1', ..., or 'nominal') -> its history.csv.
    """
    model = config["search"]["model"]
    rows = []
    for name, path in histories.items():
        history = read_history(Path(path))
        best = int(history["val_loss"].argmin())
        params = {} if name == NOMINAL else sample_trial(config, int(name))
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
        "max_train_jets": config["search"]["max_train_jets"],
        "space": config["search"]["space"],
        "best_trial": best["trial"],
        "nominal_val_loss": nominal["val_loss"] if nominal else None,
        "trials": rows,
    }
    write_json(output_json, result)
    write_text(output_md, _markdown(result))
    write_yaml(output_best, {"models": {model: _best_section(config, best["params"])}})
    return result


def _best_section(config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The searched model's section with the winning values, for a full training."""
    section = copy.deepcopy(config["models"][config["search"]["model"]])
    for path, value in params.items():
        *parents, leaf = path.split(".")
        node = section
        for key in parents:
            node = node[key]
        node[leaf] = value
    return section


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
