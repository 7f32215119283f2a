"""Track variables relative to the jet, from the canonical fields (io/canonical.py).

The signed impact-parameter significances, deta and dphi are canonical fields already: ingest
reads them from the input or derives them with ATLAS's lifetime signs (io/fields.py).
"""

from __future__ import annotations

import numpy as np

from jettag.io.canonical import with_fields

DERIVED_TRACK_FIELDS = ("ptfrac", "dr")


def add_derived_track_fields(jets: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """Return tracks (n, max_tracks) with the DERIVED_TRACK_FIELDS appended; zero on padding."""
    valid = tracks["valid"]
    with np.errstate(divide="ignore", invalid="ignore"):
        derived = {
            "ptfrac": tracks["pt"] / jets["pt"][:, None].astype(np.float32),
            "dr": np.hypot(tracks["deta"], tracks["dphi"]),
        }
    columns = {k: np.where(valid, derived[k], 0.0).astype(np.float32) for k in DERIVED_TRACK_FIELDS}
    return with_fields(tracks, columns)
