"""The evaluate stage: predictions -> metrics JSON (AUC, working points, ROC curves).

At a working point where no background jet passes, `<bkg>_rejection` is the Clopper-Pearson
lower limit at `rejection_limit_cl` (flagged by `<bkg>_rejection_is_lower_limit`), see
metrics.rejection_with_limit; the ROC grid keeps infinite (null) rejections there.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from jettag.atomic import write_json
from jettag.config import EvaluationConfig
from jettag.evaluation.metrics import (
    REJECTION_LIMIT_CL,
    auc,
    b_discriminant,
    cut_for_efficiency,
    effective_entries,
    efficiency,
    rejection_with_limit,
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
            n_eff = effective_entries(weights[sel])
            entry.update({f"{name}_efficiency": eff, f"{name}_n_eff": n_eff,
                          **rejection_with_limit(name, eff, err, n_eff)})  # fmt: skip
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
        "rejection_limit_cl": REJECTION_LIMIT_CL,
        "working_points": working_points,
        "roc": roc_curve(db, labels, weights, index["b"], backgrounds, grid),
        "predictions": str(predictions),
    }
    if members is not None and len(members) > 1:
        spread = _member_spread(members, index, labels, weights, backgrounds, grid, config)
        # does averaging the members beat a typical single member?
        # a lower limit (no jet passing) is no central value: no gain and no spread from it
        for wp, entry in spread["working_points"].items():
            for name in backgrounds:
                mean_member = entry[f"{name}_rejection_mean"]
                averaged = working_points[wp][f"{name}_rejection"]
                central = not working_points[wp][f"{name}_rejection_is_lower_limit"]
                entry[f"{name}_rejection_averaged"] = averaged
                entry[f"{name}_rejection_averaged_is_lower_limit"] = not central
                defined = mean_member is not None and mean_member > 0
                entry[f"{name}_rejection_gain"] = (
                    averaged / mean_member - 1.0
                    if central and defined and np.isfinite(averaged)
                    else None
                )
                entry[f"{name}_rejection_relative_std"] = (
                    entry[f"{name}_rejection_std"] / mean_member if defined else None
                )
        metrics["ensemble"] = spread
    write_json(output, metrics)
    return metrics


def _member_spread(members, index, labels, weights, backgrounds, grid, config) -> dict:
    """Mean and std over ensemble members of the rejections (ROC grid and working points).

    At a working point, a member where no background jet passes gives a lower limit, listed
    with the members; the mean and std are then null, as a limit is no central value.
    """
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
                eff, err = efficiency(db[sel] > cut, weights[sel])
                entry[f"{round(wp * 100):d}_{name}"] = rejection_with_limit(
                    name, eff, err, effective_entries(weights[sel])
                )
        at_wps.append(entry)
    spread: dict = {"n_members": len(members), "roc": {}, "working_points": {}}
    for name in backgrounds:
        values = np.array([c[f"{name}_rejection"] for c in curves], dtype=float)
        spread["roc"][f"{name}_rejection_mean"] = values.mean(axis=0).tolist()
        spread["roc"][f"{name}_rejection_std"] = values.std(axis=0, ddof=1).tolist()
        spread["roc"][f"{name}_rejection_members"] = values.tolist()
    for key in at_wps[0]:
        wp, name = key.split("_", 1)
        values = np.array([entry[key][f"{name}_rejection"] for entry in at_wps], dtype=float)
        limits = [entry[key][f"{name}_rejection_lower_limit"] for entry in at_wps]
        is_limit = [bool(entry[key][f"{name}_rejection_is_lower_limit"]) for entry in at_wps]
        central = not any(is_limit) and bool(np.all(np.isfinite(values)))
        spread["working_points"].setdefault(wp, {}).update(
            {f"{name}_rejection_mean": float(values.mean()) if central else None,
             f"{name}_rejection_std": float(values.std(ddof=1)) if central else None,
             f"{name}_rejection_members": values.tolist(),
             f"{name}_rejection_lower_limit_members": limits,
             f"{name}_rejection_is_lower_limit_members": is_limit}
        )  # fmt: skip
    return spread
