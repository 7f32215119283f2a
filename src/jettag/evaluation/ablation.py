"""Ablation: how much rejection a model loses when retrained without a group of inputs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from jettag.atomic import json_safe
from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.metrics import REJECTION_LIMIT_CL
from jettag.evaluation.performance import (
    performance_at_working_point,
    read_tagged_jets,
    rejections,
)
from jettag.io.results import AblationSummary


def rejections_at(prediction: Path, discriminant: Discriminant, working_point: float) -> dict:
    """Background rejections (errors, lower limits) at a signal-efficiency working point."""
    jets = read_tagged_jets(Path(prediction), discriminant)
    return rejections(performance_at_working_point(jets, working_point), jets.backgrounds)


def ablation_summary(
    model: str,
    nominal: Path,
    variants: Mapping[str, Path],
    groups: Mapping[str, Sequence[str]],
    discriminant: Discriminant,
    working_point: float,
) -> AblationSummary:
    """Rejections of the nominal model and of each retraining without a group; fraction lost.

    The JSON has the layout of permutation importance, so one bar plot draws both.
    """
    reference = rejections_at(nominal, discriminant, working_point)
    entries = {}
    for group, path in variants.items():
        entry: dict = {
            "inputs": list(groups[group]),
            **rejections_at(path, discriminant, working_point),
        }
        for background in discriminant.backgrounds:
            nominal_rej, rej = (
                reference[f"{background}_rejection"],
                entry[f"{background}_rejection"],
            )
            # a lower limit (no jet passes) is no value to take a fraction of
            finite = (
                math.isfinite(nominal_rej)
                and math.isfinite(rej)
                and not reference[f"{background}_rejection_is_lower_limit"]
                and not entry[f"{background}_rejection_is_lower_limit"]
            )
            entry[f"{background}_rejection_loss"] = 1.0 - rej / nominal_rej if finite else None
            entry[f"{background}_rejection_loss_std"] = None  # one retraining: no spread
        entries[group] = entry
    result = {
        "tagger": model,
        "method": "retrained without the group",
        "x_label": "Rejection lost when retrained without the inputs [%]",
        "b_efficiency": working_point,
        "discriminant": discriminant.to_dict(),
        "rejection_limit_cl": REJECTION_LIMIT_CL,
        "repeats": 1,
        "nominal": reference,
        "groups": entries,
        "predictions": {"nominal": str(nominal), **{g: str(p) for g, p in variants.items()}},
    }
    return AblationSummary.from_dict(json_safe(result))
