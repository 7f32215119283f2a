"""The ingest stage: ROOT or HDF5 inputs -> one canonical HDF5 file (GeV, mm, ATLAS signs)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jettag.atomic import atomic_path
from jettag.config import IngestConfig, ReadingConfig
from jettag.io.canonical import (
    ABSENT_FIELDS_ATTR,
    TRACK_DTYPE,
    CanonicalWriter,
    jet_dtype,
    lifetime_sign_fractions,
)
from jettag.io.readers import (
    SORT_KEYS,
    InputError,
    ReadContext,
    file_kind,
    iterate_sample_file,
    sample_layout,
)

log = logging.getLogger(__name__)
SIGNIFICANT = 3.0  # |sd0| beyond which a track counts in the lifetime-sign check
MIN_SIGNIFICANT_B_TRACKS = 20  # fewer b-jet tracks beyond +-3: too few to judge the sign


class LifetimeSignCounts:
    """Per class, valid tracks with sd0 > +3 and < -3 (the lifetime-sign check)."""

    def __init__(self, sample: ReadingConfig) -> None:
        self.label_variable = sample.label_variable
        self.values = dict(sample.canonical_labels)  # class -> its canonical label value
        self.check_class = sample.lifetime_check_class
        self.counts = {name: Counter(tracks=0, positive=0, negative=0) for name in self.values}

    def update(self, jets: np.ndarray, tracks: np.ndarray) -> None:
        """Add a canonical block."""
        sd0 = tracks["IP3D_signed_d0_significance"]
        for name, counter in self.counts.items():
            sel = tracks["valid"] & (jets[self.label_variable] == self.values[name])[:, None]
            counter["tracks"] += int(sel.sum())
            counter["positive"] += int((sel & (sd0 > SIGNIFICANT)).sum())
            counter["negative"] += int((sel & (sd0 < -SIGNIFICANT)).sum())

    def fractions(self) -> dict[str, dict[str, float]]:
        """Per flavour the fractions of tracks above +3 and below -3, and the track count."""
        return lifetime_sign_fractions(self.counts)

    def skewed_negative(self) -> bool:
        """Whether the check class's tracks (b jets' for ftag) have more sd0 < -3 than > +3.

        Only with enough of them to tell, and never for a class set without a check class.
        """
        if self.check_class is None:
            return False
        b = self.counts[self.check_class]
        return b["positive"] + b["negative"] >= MIN_SIGNIFICANT_B_TRACKS and (
            b["negative"] > b["positive"]
        )


def ingest_sample(
    sample: ReadingConfig,
    inputs: Sequence[Path],
    ingest: IngestConfig,
    output: Path,
    sample_name: str = "*",
    first_entry: int = 0,
) -> dict[str, int]:
    """Convert inputs of a sample into one canonical HDF5 file, block by block.

    All of a sample's files (one job), or one part of it (a shard of a sharded ingest):
    first_entry numbers the entries of files without event numbers, on from the entries of
    the sample's earlier files (entries_before), as one job over all files would.

    Returns counts: jets, truncated_jets (more than max_tracks), tracks_dropped (by the
    truncation), zero_track_jets (kept: the taggers handle them) and non_finite_jets. The
    log lists what was read (with units), derived (and from what) and absent, per file.
    """
    stats = {"jets": 0, "truncated_jets": 0, "tracks_dropped": 0, "zero_track_jets": 0}
    dropped: Counter = Counter()
    degenerate: Counter = Counter(tracks_dropped=0, jets_dropped=0)
    signs = LifetimeSignCounts(sample)
    absent: set[str] = set()
    sources: dict[str, list[str]] = {}
    layouts = [sample_layout(Path(p), sample, sample_name) for p in inputs]  # all checked first
    with (
        atomic_path(output) as tmp,
        CanonicalWriter(
            tmp,
            jet_dtype(sample.label_variable),
            TRACK_DTYPE,
            ingest.max_tracks,
            ingest.compression,
        ) as w,  # fmt: skip
    ):
        next_entry = first_entry
        for path, layout in zip(inputs, layouts, strict=True):
            sources[str(path)] = layout.describe(sample)
            log.info("%s:\n  %s", path, "\n  ".join(sources[str(path)]))
            if not layout.has_event_number:
                log.info("%s has no event number: each entry is its own event (numbered from"
                         " %d), for the splits and folds", path, next_entry)  # fmt: skip
            absent |= set(layout.plan.absent)
            context = ReadContext(
                Path(path), sample, sample_name, layout, ingest.max_tracks, ingest.non_finite,
                ingest.sort_key, dropped, first_entry=next_entry,
                degenerate_significance=ingest.degenerate_significance,
            )  # fmt: skip
            for jets, tracks in iterate_sample_file(context, ingest.chunk_jets):
                over = jets["n_tracks"] > ingest.max_tracks
                stats["jets"] += len(jets)
                stats["truncated_jets"] += int(over.sum())
                stats["tracks_dropped"] += int((jets["n_tracks"][over] - ingest.max_tracks).sum())
                stats["zero_track_jets"] += int((jets["n_tracks"] == 0).sum())
                signs.update(jets, tracks)
                w.append(jets, tracks)
            next_entry = context.first_entry
            if context.degenerate:
                log.warning(
                    "%s: %s tracks have a signed significance of exactly 0 (a degenerate"
                    " lifetime sign) and no uncertainty branch to take sigma from;"
                    " ingest.degenerate_significance: %s dropped %d tracks and %d jets",
                    path, {k: v for k, v in context.degenerate.items() if "dropped" not in k},
                    ingest.degenerate_significance, context.degenerate["tracks_dropped"],
                    context.degenerate["jets_dropped"],
                )  # fmt: skip
            degenerate.update(context.degenerate)
        significance_read = any(
            "trk_IP3D_signed_d0_significance" in layout.plan.read for layout in layouts
        )
        _check_lifetime_sign(signs, sample, sample_name, inputs, significance_read)
        w.jets.attrs["sample"] = sample_name
        w.jets.attrs["track_sort_key"] = ingest.sort_key
        w.jets.attrs["dropped_non_finite"] = json.dumps(dict(dropped), sort_keys=True)
        w.jets.attrs["degenerate_significance"] = json.dumps(dict(degenerate), sort_keys=True)
        # canonical names of placeholder fields: track fields bare, jet fields jet_-prefixed
        placeholders = sorted(k.removeprefix("trk_") for k in absent)
        w.jets.attrs[ABSENT_FIELDS_ATTR] = json.dumps(placeholders)
        w.jets.attrs["field_sources"] = json.dumps(sources)
        # the counts let the parts of a sharded sample add up (canonical.merged_attrs)
        w.jets.attrs["lifetime_sign_counts"] = json.dumps(signs.counts, sort_keys=True)
        w.jets.attrs["lifetime_sign_fractions"] = json.dumps(signs.fractions())
    stats["non_finite_jets"] = dropped["jets"]
    stats["degenerate_tracks_dropped"] = degenerate["tracks_dropped"]
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


def entries_before(sample: ReadingConfig, earlier_files: Sequence[Path]) -> int:
    """Entries (tree entries or jets rows) in a sample's files before a part's file."""
    import h5py
    import uproot

    total = 0
    for path in earlier_files:
        try:
            if file_kind(Path(path)) == "h5":
                with h5py.File(path, "r") as f:
                    total += f["jets"].shape[0]
            else:
                with uproot.open(path) as f:
                    total += f[sample.tree].num_entries
        except Exception as err:
            raise InputError(
                f"{path}: cannot count its entries ({err}); the entries of a sample's earlier"
                " files number the events of a later file without event numbers"
            ) from err
    return total


def _check_lifetime_sign(
    signs: LifetimeSignCounts,
    sample: ReadingConfig,
    sample_name: str,
    inputs: Sequence[Path],
    significance_read: bool = False,
) -> None:
    """Log the sd0 tails per flavour; stop (or warn) when b-jet tracks lean negative.

    The advice follows the settings in force: the d0 sign (from the sample or its preset)
    and whether the significances are read from the file (used as given, so flipping d0
    cannot change them) or computed from d0.
    """
    fractions = signs.fractions()
    log.info("lifetime-signed sd0 tails per flavour (fraction of tracks > +3 / < -3): %s",
             {k: f"{v['above_plus_3']:.3f} / {v['below_minus_3']:.3f} of {v['tracks']}"
              for k, v in fractions.items()})  # fmt: skip
    if not signs.skewed_negative():
        return
    b = fractions[signs.check_class]
    key = f"samples.{sample_name}"
    if significance_read:
        fix = (
            f"the signed significance is read from the file ({key}.branches"
            ".trk_IP3D_signed_d0_significance) and used as given, so d0_sign does not change"
            " it: map a significance with ATLAS's lifetime sign"
        )
    elif sample.d0_sign == "opposite":
        fix = (
            f"{key}.d0_sign is already 'opposite' (set by the sample or its preset), so d0 is"
            f" flipped at ingest: the file's d0 may have ATLAS's sign already; set {key}.d0_sign:"
            " atlas, or map a correctly signed significance in {key}.branches"
        ).replace("{key}", key)
    else:
        fix = (
            f"the file's d0 likely has the opposite sign: set {key}.d0_sign: opposite to flip"
            f" d0 at ingest, or map a correctly signed significance in {key}.branches"
        )
    message = (
        f"{', '.join(str(p) for p in inputs)}: {signs.check_class}-jet tracks have more sd0 < -3"
        f" ({b['below_minus_3']:.1%}) than > +3 ({b['above_plus_3']:.1%}). Tracks from b-hadron"
        " decays cross the jet axis in front of the primary vertex and have positive"
        " lifetime-signed significances in ATLAS's convention (perigee d0 = y cos(phi) -"
        f" x sin(phi); sign = sign(sin(phi_jet - phi_trk) d0)). {fix[0].upper()}{fix[1:]};"
        f" or set {key}.lifetime_sign_check: warn to accept the file as it is"
    )
    if sample.lifetime_sign_check == "error":
        raise InputError(message)
    log.warning("%s", message)
