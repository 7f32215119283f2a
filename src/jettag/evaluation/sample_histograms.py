"""Validation histograms of a sample, per flavour: the numbers behind the sample plots.

Computed once from the canonical (ingested) file and saved as JSON; the plotting code only
draws them, so a plot can be redrawn or checked against the numbers without rereading data.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jettag.atomic import json_safe
from jettag.flavours import TRACK_ORIGINS
from jettag.io.canonical import FTAG_LABEL, CanonicalFiles, as_paths, iterate_blocks
from jettag.io.results import Result

BINS = {
    "IP3D_signed_d0_significance": np.linspace(-30, 30, 121),
    "IP3D_signed_z0_significance": np.linspace(-30, 30, 121),
    "n_tracks": np.arange(-0.5, 40.5, 1.0),
    "jet_pt": np.geomspace(20, 3000, 41),
    "track_pt": np.geomspace(0.5, 500, 41),
}
BLOCK = 200_000


@dataclasses.dataclass
class SampleHistograms(Result):
    """results/samples/<sample>.json: per-class validation histograms of an ingested sample."""

    input: list[str]
    n_jets: dict[str, int]
    fractions: dict[str, float]
    histograms: dict[str, dict]  # variable -> edges and one count list per class
    track_origins: dict[str, list]


def sample_histograms(
    input_path: CanonicalFiles,
    classes: dict[str, list[int]],
    label_variable: str = FTAG_LABEL,
) -> SampleHistograms:
    """Per-class histograms of sd0, sz0, track multiplicity, jet and track pT; origin counts.

    classes: class name -> the label_variable values that make it (the class set's order).
    """
    counts = {v: {f: np.zeros(len(b) - 1) for f in classes} for v, b in BINS.items()}
    origins = {f: np.zeros(len(TRACK_ORIGINS)) for f in classes}
    n_jets = dict.fromkeys(classes, 0)
    n_other = 0
    for jets, tracks in iterate_blocks(input_path, BLOCK):
        valid = tracks["valid"]
        # as ingest wrote them: ATLAS's lifetime signs, or the input's own significances
        sd0 = tracks["IP3D_signed_d0_significance"]
        sz0 = tracks["IP3D_signed_z0_significance"]
        label = jets[label_variable]
        n_other += int((~np.isin(label, [i for ids in classes.values() for i in ids])).sum())
        for flavour, ids in classes.items():
            sel = np.isin(label, ids)
            n_jets[flavour] += int(sel.sum())
            trk = valid & sel[:, None]
            values = {
                "IP3D_signed_d0_significance": sd0[trk],
                "IP3D_signed_z0_significance": sz0[trk],
                "n_tracks": valid[sel].sum(axis=1),
                "jet_pt": jets["pt"][sel],
                "track_pt": tracks["pt"][trk],
            }
            for var, x in values.items():
                edges = BINS[var]
                # overflow into the edge bins, so tails are counted, not lost
                counts[var][flavour] += np.histogram(np.clip(x, edges[0], edges[-1] - 1e-9), edges)[
                    0
                ]
            origin = tracks["ftagTruthOriginLabel"][trk]
            origins[flavour] += np.bincount(origin[origin >= 0], minlength=len(TRACK_ORIGINS))[
                : len(TRACK_ORIGINS)
            ]
    total = sum(n_jets.values()) + n_other
    result = {
        "input": [str(path) for path in as_paths(input_path)],
        "n_jets": n_jets,
        "fractions": {f: n / total if total else 0.0 for f, n in n_jets.items()},
        "histograms": {
            var: {"edges": BINS[var].tolist(), **{f: c.tolist() for f, c in per.items()}}
            for var, per in counts.items()
        },
        "track_origins": {
            "names": [TRACK_ORIGINS[k] for k in sorted(TRACK_ORIGINS)],
            **{f: c.tolist() for f, c in origins.items()},
        },
    }
    return SampleHistograms.from_dict(json_safe(result))
