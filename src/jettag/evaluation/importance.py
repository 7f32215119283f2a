"""Permutation importance: the rejection a network loses when one track input is shuffled.

For each group of track inputs, the values of the group are permuted jointly across all
valid tracks of the split (one permutation of the track rows, so correlations inside a group
are kept and only its link to the jet and the other inputs is broken). The network is then
rerun and the discriminant's cut refitted on the signal jets of the permuted prediction,
so the background rejections are compared at the same signal efficiency.
Loss = 1 - R_permuted / R_nominal.

The permutation depends on (seed, repeat) only, so adding a group changes no other result.
Rejections come from the evaluation core (performance.py), lower limits included where no
background jet passes; a loss taken from a limit, infinite or undefined value is null.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from jettag.atomic import json_safe
from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.performance import performance_at_working_point, rejections
from jettag.evaluation.saliency import TaggerInputs, load_tagger_inputs
from jettag.io.results import PermutationImportance


def _performance(
    data: TaggerInputs, track_x: np.ndarray, discriminant: Discriminant, b_efficiency: float
) -> dict[str, float | bool]:
    """{cut, <bkg>_rejection (error, lower limit)} at fixed signal efficiency for these inputs."""
    entry = performance_at_working_point(data.tagged(track_x, discriminant), b_efficiency)
    return {"cut": entry["cut"], **rejections(entry, discriminant.backgrounds)}


def _relative_loss(nominal: dict, permuted: dict, key: str) -> float:
    """1 - permuted / nominal; NaN where either is infinite, undefined or a lower limit."""
    values = nominal[key], permuted[key]
    limits = nominal[f"{key}_is_lower_limit"] or permuted[f"{key}_is_lower_limit"]
    if limits or not all(math.isfinite(v) for v in values):
        return math.nan
    return 1.0 - values[1] / values[0]


def permutation_importance(
    checkpoint: Path,
    split_file: Path,
    discriminant: Discriminant,
    groups: dict[str, list[str]] | None = None,
    b_efficiency: float = 0.77,
    seed: int = 0,
    repeats: int = 1,
) -> PermutationImportance:
    """Background rejections lost at fixed signal efficiency when each input group is shuffled.

    b_efficiency: the working point, a signal efficiency (of b jets for D_b).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    data = load_tagger_inputs(checkpoint, split_file)
    names = data.spec.track_names
    groups = groups or {name: [name] for name in names}
    for group, members in groups.items():
        unknown = [m for m in members if m not in names]
        if unknown or not members:
            raise ValueError(
                f"group '{group}': {unknown or 'no inputs'} not track inputs of {checkpoint}"
                f" ({names})"
            )
    if not data.is_flavour(discriminant.signal).any():
        raise ValueError(f"{split_file}: no {discriminant.signal} jets to define the working point")

    nominal = _performance(data, data.track_x, discriminant, b_efficiency)
    rows = data.track_x[data.valid]  # (n_valid_tracks, n_track_inputs)
    permutations = [
        np.random.default_rng([seed, repeat]).permutation(len(rows)) for repeat in range(repeats)
    ]
    results = {}
    for group, members in groups.items():
        columns = [names.index(m) for m in members]
        runs = []
        for permutation in permutations:
            shuffled = rows.copy()
            shuffled[:, columns] = rows[permutation][:, columns]
            track_x = data.track_x.copy()
            track_x[data.valid] = shuffled
            runs.append(_performance(data, track_x, discriminant, b_efficiency))
        entry: dict = {"inputs": list(members)}
        for bkg in discriminant.backgrounds:
            key = f"{bkg}_rejection"
            values = np.array([run[key] for run in runs])
            losses = np.array([_relative_loss(nominal, run, key) for run in runs])
            # a run where no background jet passes gives a lower limit: no mean, no spread
            limit = any(run[f"{key}_is_lower_limit"] for run in runs)
            entry[key] = None if limit else float(values.mean())
            entry[f"{key}_std"] = None if limit else float(values.std())
            entry[f"{key}_is_lower_limit"] = limit
            entry[f"{key}_lower_limit_runs"] = [run[f"{key}_lower_limit"] for run in runs]
            entry[f"{key}_interval_runs"] = [run[f"{key}_interval"] for run in runs]
            entry[f"{key}_loss"] = float(losses.mean())
            entry[f"{key}_loss_std"] = float(losses.std())
        results[group] = entry

    result = {
        "tagger": data.tagger,
        "checkpoint": str(checkpoint),
        "split_file": str(split_file),
        "discriminant": discriminant.to_dict(),
        "b_efficiency": b_efficiency,
        "seed": seed,
        "repeats": repeats,
        "n_jets": {c: int(data.is_flavour(c).sum()) for c in discriminant.classes},
        "nominal": nominal,
        "groups": results,
    }
    return PermutationImportance.from_dict(json_safe(result))
