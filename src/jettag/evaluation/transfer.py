"""Transfer-learning summary: AUC and rejections on the target test split vs training-set size.

For each strategy (scratch, finetune, frozen) and number of target training jets, the
trainings with different seeds give a mean and a spread; the pretrained model applied to the
target without any retraining is the reference line. Every run's numbers and checkpoint are
kept in the JSON, so each point of the plot can be traced to a file.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from jettag.atomic import json_safe
from jettag.config import TRANSFER_STRATEGIES
from jettag.evaluation.discriminant import Discriminant, require_b_tagging
from jettag.evaluation.metrics import REJECTION_LIMIT_CL, auc
from jettag.evaluation.performance import performance_at_working_point, rejections, tagged_jets
from jettag.evaluation.predict import network_probabilities
from jettag.io.results import TransferSummary
from jettag.training.checkpoint import load_checkpoint

METRICS = ("auc", "light_rejection", "c_rejection")


def parse_run(name: str) -> tuple[str, int, int]:
    """'finetune/3000/1' -> (strategy, requested training jets, seed)."""
    try:
        strategy, jets, seed = name.split("/")
        return strategy, int(jets), int(seed)
    except ValueError as err:
        raise ValueError(f"run '{name}' is not STRATEGY/JETS/SEED") from err


def tagger_performance(
    checkpoint: Path, test_path: Path, test_jets: np.ndarray, classes: list[str],
    discriminant: Discriminant, working_point: float,
) -> dict:  # fmt: skip
    """AUC (signal vs the last background) and rejections at a working point of a network."""
    prob = network_probabilities(checkpoint, test_path)
    jets = tagged_jets(str(checkpoint), {c: prob[:, k] for k, c in enumerate(classes)},
                       classes, test_jets["flavour_label"], test_jets["pt"],
                       discriminant)  # fmt: skip
    perf = performance_at_working_point(jets, working_point)
    db = jets.discriminant
    return {
        "auc": auc(db[jets.mask(jets.signal)], db[jets.mask(jets.backgrounds[-1])]),
        **rejections(perf, jets.backgrounds),
    }


def transfer_summary(
    model: str,
    runs: Mapping[str, Path],
    pretrained: Path,
    data_dir: Path,
    discriminant: Discriminant,
    working_point: float,
) -> TransferSummary:
    """Evaluate every transfer run and the untouched pretrained model on the target test split."""
    require_b_tagging(discriminant, f"transfer learning of {model}")
    test_path = data_dir / "test.h5"
    with h5py.File(test_path, "r") as f:
        test_jets = f["jets"][:]
        classes = [str(c) for c in f["jets"].attrs["flavour_label"]]
    with h5py.File(data_dir / "train.h5", "r") as f:
        n_train = len(f["jets"])
    labels = test_jets["flavour_label"]
    rows = []
    for name, checkpoint in runs.items():
        strategy, requested, seed = parse_run(name)
        state = load_checkpoint(checkpoint)
        rows.append(
            {
                "strategy": strategy,
                "train_jets_requested": requested,
                "train_jets": min(requested, n_train),
                "seed": seed,
                "best_epoch": int(state["epoch"]),
                "val_loss": float(state["val_loss"]),
                "checkpoint": str(checkpoint),
                **tagger_performance(checkpoint, test_path, test_jets, classes, discriminant,
                                     working_point),
            }
        )  # fmt: skip
    result = {
        "model": model,
        "target": data_dir.name,
        "data_dir": str(data_dir),
        "b_efficiency": working_point,
        "discriminant": discriminant.to_dict(),
        "rejection_limit_cl": REJECTION_LIMIT_CL,
        "n_test_jets": {c: int((labels == k).sum()) for k, c in enumerate(classes)},
        "n_train_jets_available": n_train,
        "pretrained": {
            "checkpoint": str(pretrained),
            **tagger_performance(
                pretrained, test_path, test_jets, classes, discriminant, working_point
            ),
        },
        "points": _points(rows),
        "runs": rows,
    }
    return TransferSummary.from_dict(json_safe(result))


def _points(rows: list[dict]) -> dict[str, list[dict]]:
    """Per strategy and training-set size: mean and std (over seeds) of each metric."""
    grouped: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in rows:
        grouped[row["strategy"], row["train_jets"]].append(row)
    points: dict[str, list[dict]] = defaultdict(list)
    order = {name: k for k, name in enumerate(TRANSFER_STRATEGIES)}
    for (strategy, jets), members in sorted(
        grouped.items(), key=lambda item: (order.get(item[0][0], len(order)), item[0])
    ):
        point: dict = {"train_jets": jets, "seeds": len(members)}
        for metric in METRICS:
            # no background jet passes: the rejection is a lower limit, left out of the mean
            values = np.array(
                [m[metric] for m in members if not m.get(f"{metric}_is_lower_limit", False)],
                dtype=float,
            )
            values = values[np.isfinite(values)]
            point[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            point[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        points[strategy].append(point)
    return dict(points)


def markdown(result: dict) -> str:
    """Light rejection and AUC per strategy and training-set size, as a markdown table."""
    wp = f"{round(result['b_efficiency'] * 100):d} %"
    reference = result["pretrained"]
    reference_light = f"{reference['light_rejection']:.1f}"
    if reference.get("light_rejection_is_lower_limit"):
        cl = 100 * result.get("rejection_limit_cl", REJECTION_LIMIT_CL)
        reference_light = f"> {reference_light} ({cl:g} % CL lower limit, no light jet passes)"
    lines = [
        f"# Transfer learning: {result['model']} onto {result['target']}",
        "",
        f"Light rejection at the {wp} b-jet working point and AUC (b vs light) on the target "
        "test split; mean ± std over seeds. The pretrained model without retraining: light "
        f"rejection {reference_light}, AUC {reference['auc']:.4f}.",
        "",
        "| strategy | training jets | seeds | light rejection | c rejection | AUC |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for strategy, points in result["points"].items():
        for p in points:
            lines.append(
                f"| {strategy} | {p['train_jets']} | {p['seeds']} |"
                f" {_mean_std(p, 'light_rejection', 1)} | {_mean_std(p, 'c_rejection', 2)} |"
                f" {_mean_std(p, 'auc', 4)} |"
            )
    return "\n".join(lines) + "\n"


def _mean_std(point: dict, metric: str, digits: int) -> str:
    """'mean ± std', or the mean alone for a single seed."""
    mean, std = point[f"{metric}_mean"], point[f"{metric}_std"]
    if mean is None:  # as JSON holds an undefined value
        return "n/a"
    if std is None or not math.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
