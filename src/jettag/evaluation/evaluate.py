"""The evaluate stage: predictions -> metrics JSON (AUC, working points, ROC curves)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from jettag.atomic import write_json
from jettag.config import EvaluationConfig
from jettag.evaluation.metrics import (
    auc,
    b_discriminant,
    cut_for_efficiency,
    efficiency,
    rejection,
    roc_curve,
)
from jettag.evaluation.predict import SHORT_CLASS


def evaluate(predictions: Path, config: EvaluationConfig, output: Path) -> dict:
    """Compute and write the metrics of one tagger's predictions (unweighted test jets)."""
    with h5py.File(predictions, "r") as f:
        jets = f["jets"][:]
        members = f["member_probabilities"][:] if "member_probabilities" in f else None
        classes = [str(c) for c in f["jets"].attrs["flavour_label"]]
        tagger = str(f["jets"].attrs["tagger"])
        sample_label = str(f["jets"].attrs.get("sample_label", ""))
    index = {name: classes.index(name) for name in ("b", "c", "light")}
    prob = {name: jets[f"{tagger}_{SHORT_CLASS[name]}"] for name in index}
    db = b_discriminant(prob["b"], prob["c"], prob["light"], config.f_c)
    labels = jets["flavour_label"]
    weights = np.ones(len(jets))  # ATLAS quotes performance on the natural ttbar spectrum
    is_b = labels == index["b"]
    grid = np.linspace(
        config.roc_b_efficiencies.start, config.roc_b_efficiencies.stop,
        config.roc_b_efficiencies.points,
    )  # fmt: skip
    backgrounds = {"c": index["c"], "light": index["light"]}
    working_points = {}
    for wp in config.working_points:
        cut = cut_for_efficiency(db[is_b], weights[is_b], wp)
        entry = {"cut": cut}
        b_eff, b_err = efficiency(db[is_b] > cut, weights[is_b])
        entry.update(b_efficiency=b_eff, b_efficiency_error=b_err)
        for name, label in backgrounds.items():
            sel = labels == label
            eff, err = efficiency(db[sel] > cut, weights[sel])
            rej, rej_err = rejection(eff, err)
            entry.update({f"{name}_efficiency": eff, f"{name}_rejection": rej,
                          f"{name}_rejection_error": rej_err})  # fmt: skip
        working_points[f"{round(wp * 100):d}"] = entry
    metrics = {
        "tagger": tagger,
        "sample_label": sample_label,
        "f_c": config.f_c,
        "n_jets": {name: int((labels == i).sum()) for name, i in index.items()},
        "auc": {
            "b_vs_light": auc(db[is_b], db[labels == index["light"]]),
            "b_vs_c": auc(db[is_b], db[labels == index["c"]]),
        },
        "working_points": working_points,
        "roc": roc_curve(db, labels, weights, index["b"], backgrounds, grid),
        "predictions": str(predictions),
    }
    if members is not None and len(members) > 1:
        spread = _member_spread(members, index, labels, weights, backgrounds, grid, config)
        # does averaging the members beat a typical single member?
        for wp, entry in spread["working_points"].items():
            for name in backgrounds:
                mean_member = entry[f"{name}_rejection_mean"]
                averaged = working_points[wp][f"{name}_rejection"]
                entry[f"{name}_rejection_averaged"] = averaged
                entry[f"{name}_rejection_gain"] = (
                    averaged / mean_member - 1.0
                    if np.isfinite(averaged) and np.isfinite(mean_member) and mean_member > 0
                    else None
                )
                entry[f"{name}_rejection_relative_std"] = (
                    entry[f"{name}_rejection_std"] / mean_member if mean_member > 0 else None
                )
        metrics["ensemble"] = spread
    write_json(output, metrics)
    return metrics


def _member_spread(members, index, labels, weights, backgrounds, grid, config) -> dict:
    """Mean and std over ensemble members of the rejections (ROC grid and working points)."""
    is_b = labels == index["b"]
    curves, at_wps = [], []
    for probabilities in members:
        db = b_discriminant(*(probabilities[:, index[n]] for n in ("b", "c", "light")), config.f_c)
        curves.append(roc_curve(db, labels, weights, index["b"], backgrounds, grid))
        entry = {}
        for wp in config.working_points:
            cut = cut_for_efficiency(db[is_b], weights[is_b], wp)
            for name, label in backgrounds.items():
                sel = labels == label
                entry[f"{round(wp * 100):d}_{name}"] = rejection(
                    *efficiency(db[sel] > cut, weights[sel])
                )[0]
        at_wps.append(entry)
    spread: dict = {"n_members": len(members), "roc": {}, "working_points": {}}
    for name in backgrounds:
        values = np.array([c[f"{name}_rejection"] for c in curves], dtype=float)
        spread["roc"][f"{name}_rejection_mean"] = values.mean(axis=0).tolist()
        spread["roc"][f"{name}_rejection_std"] = values.std(axis=0, ddof=1).tolist()
        spread["roc"][f"{name}_rejection_members"] = values.tolist()
    for key in at_wps[0]:
        values = np.array([entry[key] for entry in at_wps], dtype=float)
        wp, name = key.split("_", 1)
        spread["working_points"].setdefault(wp, {}).update(
            {f"{name}_rejection_mean": float(values.mean()),
             f"{name}_rejection_std": float(values.std(ddof=1)),
             f"{name}_rejection_members": values.tolist()}
        )  # fmt: skip
    return spread
