"""The ingest stage: ROOT or HDF5 inputs -> one canonical HDF5 file."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from jettag.atomic import atomic_path
from jettag.config import IngestConfig, SampleConfig
from jettag.io.canonical import JET_DTYPE, TRACK_DTYPE, CanonicalWriter
from jettag.io.readers import SORT_KEYS, InputError, iterate_h5, iterate_root

log = logging.getLogger(__name__)


def _blocks(
    sample: SampleConfig, inputs: Sequence[Path], ingest: IngestConfig, dropped: Counter
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Canonical blocks of every input file in order (jets dropped for NaN/inf counted)."""
    for path in inputs:
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: input file does not exist")
        if path.suffix in (".h5", ".hdf5"):
            yield from iterate_h5(path, sample.branches, ingest.max_tracks, ingest.chunk_jets,
                                  ingest.non_finite, dropped, ingest.sort_key)  # fmt: skip
        else:
            yield from iterate_root(
                path, sample.tree, sample.branches, ingest.max_tracks, ingest.chunk_jets,
                ingest.non_finite, dropped, ingest.sort_key,
            )  # fmt: skip


def ingest_sample(
    sample: SampleConfig, inputs: Sequence[Path], ingest: IngestConfig, output: Path
) -> dict[str, int]:
    """Convert all inputs of a sample into one canonical HDF5 file, block by block.

    Returns counts: jets, truncated_jets (more than max_tracks), tracks_dropped (by the
    truncation), zero_track_jets (kept: the taggers handle them) and non_finite_jets.
    """
    stats = {"jets": 0, "truncated_jets": 0, "tracks_dropped": 0, "zero_track_jets": 0}
    dropped: Counter = Counter()
    with (
        atomic_path(output) as tmp,
        CanonicalWriter(tmp, JET_DTYPE, TRACK_DTYPE, ingest.max_tracks, ingest.compression) as w,
    ):
        for jets, tracks in _blocks(sample, inputs, ingest, dropped):
            over = jets["n_tracks"] > ingest.max_tracks
            stats["jets"] += len(jets)
            stats["truncated_jets"] += int(over.sum())
            stats["tracks_dropped"] += int((jets["n_tracks"][over] - ingest.max_tracks).sum())
            stats["zero_track_jets"] += int((jets["n_tracks"] == 0).sum())
            w.append(jets, tracks)
        w.jets.attrs["sample_label"] = sample.label
        w.jets.attrs["track_sort_key"] = ingest.sort_key
        w.jets.attrs["dropped_non_finite"] = json.dumps(dict(dropped))
    stats["non_finite_jets"] = dropped["jets"]
    if dropped:
        per_variable = {k: v for k, v in dropped.items() if k != "jets"}
        log.warning("dropped %d jets with NaN or inf values (ingest.non_finite: drop): %s",
                    dropped["jets"], per_variable)  # fmt: skip
    if stats["jets"] == 0:
        log.warning("no jets found in %s", [str(p) for p in inputs])
    log.info(
        "ingested %d jets; %d jets had more than %d tracks (%d tracks dropped: the lowest by"
        " ingest.sort_key %s = %s); %d jets have no tracks",
        stats["jets"], stats["truncated_jets"], ingest.max_tracks, stats["tracks_dropped"],
        ingest.sort_key, SORT_KEYS[ingest.sort_key][0], stats["zero_track_jets"],
    )  # fmt: skip
    return stats
