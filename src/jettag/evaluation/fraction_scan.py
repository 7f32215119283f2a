"""The fraction scan: how a discriminant's background fraction trades one rejection for another.

FTAG chooses f_c in D_b = log(p_b / (f_c p_c + (1 - f_c) p_light)) by scanning it and
reading the light and c rejection at a fixed b efficiency: a larger f_c buys c rejection
with light rejection. Here any background of any discriminant can be scanned (the others keep
their ratios, Discriminant.with_fraction); each point is the evaluation core's rejections at
the working point, cut refitted for every fraction, on each tagger's test jets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from jettag.atomic import json_safe
from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.performance import performance_at_working_point, predictions_jets, rejections
from jettag.io.predictions import read_predictions
from jettag.io.results import Result


@dataclasses.dataclass
class FractionScan(Result):
    """results/fraction_scan/<dataset>.json: rejections as one background's fraction varies."""

    discriminant: dict
    scanned: str
    values: list[float]
    working_point: float
    taggers: dict[str, list[dict]]  # tagger -> one entry per value
    predictions: list[str]


def fraction_scan(
    predictions: Sequence[Path],
    discriminant: Discriminant,
    background: str | None,
    fractions: Sequence[float],
    working_point: float,
) -> FractionScan:
    """Every tagger's background rejections at the WP for each fraction of one background.

    background: the background whose fraction is varied; None: the discriminant's first
    (c for D_b). A discriminant with a single background has nothing to trade: ValueError.
    """
    if len(discriminant.backgrounds) < 2:
        raise ValueError(f"{discriminant.formula()}: one background, no fraction to scan")
    scanned = background or discriminant.backgrounds[0]
    points = [discriminant.with_fraction(scanned, float(f)) for f in fractions]
    taggers = {}
    for path in predictions:
        read = read_predictions(Path(path))
        entries = []
        for point in points:
            jets = predictions_jets(read, point)
            entry = performance_at_working_point(jets, working_point)
            entries.append({"fractions": dict(point.fractions), "cut": entry["cut"],
                            **rejections(entry, point.backgrounds)})  # fmt: skip
        taggers[read.tagger] = entries
    result = {
        "discriminant": discriminant.to_dict(),
        "scanned": scanned,
        "values": [float(f) for f in fractions],
        "working_point": float(working_point),
        "taggers": taggers,
        "predictions": [str(p) for p in predictions],
    }
    return FractionScan.from_dict(json_safe(result))
