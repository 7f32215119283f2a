"""Read jets and their tracks from ROOT (uproot) or FTAG-layout HDF5, block by block.

A sample's files are described by its config (`branches`, `units`, `labels`, a `preset`):
`sample_layout` opens a file's schema only (names and types, cheap) and works out what is
read, what is derived (io/fields.py) and what is absent, raising one error that lists every
missing field with the config key to set. `iterate_sample_file` then yields blocks in the
canonical layout (jets (n,), tracks (n, max_tracks), valid tracks packed first, sorted by
the truncation key) in GeV and mm with ATLAS's conventions. Errors name the file and the
branch or field at fault.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import awkward as ak
import h5py
import hdf5plugin  # noqa: F401  (registers LZ4, Blosc, ... for h5py: ATLAS dumper files use LZ4)
import numpy as np

from jettag.config import ReadingConfig
from jettag.errors import InputError
from jettag.io import fields
from jettag.io.canonical import TRACK_DTYPE, absent_fields, jet_dtype

__all__ = ["InputError", "SampleLayout", "iterate_sample_file", "sample_layout", "sort_and_pad"]

# ingest.sort_key: tracks are ordered by this key, descending, before truncation to
# max_tracks (the lowest are dropped). Named built-ins only, never an expression from config.
SORT_KEYS: dict[str, tuple[str, Callable[[ak.Array], ak.Array]]] = {
    "abs_sd0": ("|d0|/sigma(d0)", lambda t: np.abs(t.d0) / t.d0Uncertainty),
    "abs_sz0": (
        "|z0 sin(theta)|/sigma(z0 sin(theta))",
        lambda t: np.abs(t.z0SinTheta) / t.z0SinThetaUncertainty,
    ),
    "abs_d0": ("|d0|", lambda t: np.abs(t.d0)),
    "pt": ("track pT", lambda t: t.pt),
}
NOT_FLOAT = frozenset({"jet_eventNumber"})  # and the integer label, jet_<label_variable>
UNLABELLED = -1  # one-hot inputs with no flag set: outside every class, dropped by prepare


def check_sort_key(name: str) -> None:
    """Raise ValueError unless name is one of the built-in SORT_KEYS."""
    if name not in SORT_KEYS:
        raise ValueError(f"unknown ingest.sort_key '{name}'; known: {sorted(SORT_KEYS)}")


def track_sort_key(name: str, tracks: ak.Array) -> ak.Array:
    """The named truncation key of each track (jagged like tracks); larger is kept first."""
    check_sort_key(name)
    return SORT_KEYS[name][1](tracks)


def default_name(key: str, file_kind: str) -> str:
    """The branch (ROOT, jettag's own layout) or field (HDF5, FTAG) name of a source key."""
    if key == "jet_eventNumber":
        return "eventNumber"
    return key if file_kind == "root" else key.split("_", 1)[1]


def file_kind(path: Path) -> str:
    """'h5' for .h5/.hdf5 files, 'root' otherwise."""
    return "h5" if Path(path).suffix in (".h5", ".hdf5") else "root"


@dataclasses.dataclass(frozen=True)
class SampleLayout:
    """How one file of a sample is read: branch names, the field plan, labels, events."""

    names: dict[str, str]  # source key -> branch or field name, for the keys read
    plan: fields.FieldPlan
    label_branches: dict[str, str]  # flavour -> one-hot branch; empty: an integer label
    has_event_number: bool

    def describe(self, sample: ReadingConfig) -> list[str]:
        """What is read (with units), derived and absent: one line each."""
        lines = []
        for key in self.plan.read:
            unit = fields.unit_of(key, sample.units.energy, sample.units.length)
            lines.append(f"{key} <- '{self.names[key]}'" + (f" [{unit}]" if unit else ""))
        if self.label_branches:
            flags = ", ".join(f"{f}: '{b}'" for f, b in self.label_branches.items())
            lines.append(f"{label_key(sample)} <- one-hot {{{flags}}}")
        else:
            branch = self.names[label_key(sample)]
            values = {f: list(v) for f, v in sample.labels.values.items()}
            lines.append(f"{label_key(sample)} <- '{branch}', mapped {values}")
        if self.has_event_number:
            lines.append(f"jet_eventNumber <- '{self.names['jet_eventNumber']}'")
        else:
            lines.append("jet_eventNumber = entry number (the file has none)")
        return lines + self.plan.describe()


def label_key(sample: ReadingConfig) -> str:
    """The source key of the integer truth label: jet_<label_variable> of the class set."""
    return f"jet_{sample.label_variable}"


def _file_names(path: Path, sample: ReadingConfig) -> dict[str, set[str]]:
    """Per namespace ('jet', 'trk') the names a file offers; ROOT: track names are jagged."""
    if file_kind(path) == "h5":
        try:
            with h5py.File(path, "r") as f:
                for key in ("jets", "tracks"):
                    if key not in f:
                        raise InputError(
                            f"{path}: no dataset '{key}'; the file has {sorted(f.keys())}"
                        )
                # a canonical file's placeholders (absent_fields) are not data
                absent = absent_fields(f["jets"].attrs, path)
                jet_absent = {a.removeprefix("jet_") for a in absent if a.startswith("jet_")}
                trk_absent = {a for a in absent if not a.startswith("jet_")}
                names = {"jet": set(f["jets"].dtype.names or ()) - jet_absent,
                         "trk": set(f["tracks"].dtype.names or ()) - trk_absent}  # fmt: skip
        except InputError:
            raise
        except Exception as err:  # not HDF5, or corrupt metadata: h5py raises many types
            raise InputError(f"{path}: cannot be read as an HDF5 file ({err})") from err
        if "valid" not in names["trk"]:
            raise InputError(f"{path}: dataset 'tracks' has no 'valid' field")
        return names
    import uproot

    try:
        with uproot.open(path) as file:
            if sample.tree not in file:
                raise InputError(
                    f"{path}: no tree '{sample.tree}'; the file has"
                    f" {sorted(file.keys(cycle=False))}"
                )
            tree = file[sample.tree]
            names = set(tree.keys())
            jagged = {k for k in names if _is_jagged(tree[k].typename)}
            return {"jet": names - jagged, "trk": jagged}
    except InputError:
        raise
    except Exception as err:  # uproot raises many types for corrupt or truncated files
        raise InputError(f"{path}: cannot be opened as a ROOT file ({err})") from err


def _is_jagged(typename: str) -> bool:
    """A ROOT branch type with a variable number of entries per event."""
    return "[]" in typename or "vector" in typename or typename.startswith("var")


def sample_layout(path: Path, sample: ReadingConfig, sample_name: str = "*") -> SampleLayout:
    """Open a file's schema and plan how the sample is read; one error lists every problem."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: input file does not exist")
    offered = _file_names(path, sample)
    kind = file_kind(path)
    where = {"jet": "jets" if kind == "h5" else f"tree '{sample.tree}'",
             "trk": "tracks" if kind == "h5" else f"tree '{sample.tree}' (jagged)"}  # fmt: skip
    names, problems = {}, []
    label = label_key(sample)
    for key in (*fields.SOURCE_KEYS, label):
        name = sample.branches.get(key, default_name(key, kind))
        if name in offered[key[:3]]:
            names[key] = name
        elif key in sample.branches:
            problems.append(f"samples.{sample_name}.branches.{key} = '{name}' is not in"
                            f" {where[key[:3]]}")  # fmt: skip
    label_branches = dict(sample.labels.one_hot)
    for flavour, branch in label_branches.items():
        if branch not in offered["jet"]:
            problems.append(f"samples.{sample_name}.labels.one_hot.{flavour} = '{branch}' is"
                            f" not in {where['jet']}")  # fmt: skip
    if not label_branches and label not in names:
        problems.append(
            f"no jet label: set samples.{sample_name}.branches.{label}"
            f" (an integer branch, mapped by samples.{sample_name}.labels.values) or"
            f" samples.{sample_name}.labels.one_hot"
        )
    available = set(names) - {label, "jet_eventNumber"}
    plan, missing = fields.plan_fields(available)
    for target, ways in missing.items():
        ways_text = "; or derive it as " + " or ".join(ways) if ways else ""
        problems.append(f"{target}: set samples.{sample_name}.branches.{target}{ways_text}")
    if problems:
        raise InputError(
            f"{path}: sample '{sample_name}' cannot be read by its configuration:\n  - "
            + "\n  - ".join(problems)
            + f"\n  the file has {where['jet']}: {sorted(offered['jet'])};"
            f" {where['trk']}: {sorted(offered['trk'])}"
        )
    read_names = {k: names[k] for k in plan.read}
    for key in (label, "jet_eventNumber"):
        if key in names and not (key == label and label_branches):
            read_names[key] = names[key]
    return SampleLayout(read_names, plan, label_branches, "jet_eventNumber" in names)


def sort_and_pad(
    tracks: ak.Array, sort_key: ak.Array, max_tracks: int
) -> tuple[np.ndarray, np.ndarray]:
    """Jagged tracks -> (n, max_tracks) structured array, sorted by key descending, and n_tracks."""
    order = ak.argsort(sort_key, axis=1, ascending=False, stable=True)
    tracks = tracks[order]
    n_tracks = ak.to_numpy(ak.num(tracks, axis=1)).astype(np.int32)
    out = np.zeros((len(n_tracks), max_tracks), dtype=TRACK_DTYPE)
    for field in tracks.fields:
        padded = ak.fill_none(ak.pad_none(tracks[field], max_tracks, axis=1, clip=True), 0)
        out[field] = ak.to_numpy(padded)
    out["valid"] = np.arange(max_tracks)[None, :] < n_tracks[:, None]
    out["ftagTruthOriginLabel"][~out["valid"]] = -1
    out["ftagTruthVertexIndex"][~out["valid"]] = -1
    return out, n_tracks


@dataclasses.dataclass
class ReadContext:
    """Everything one file's blocks are converted with."""

    path: Path
    sample: ReadingConfig
    sample_name: str
    layout: SampleLayout
    max_tracks: int
    non_finite: str = "error"
    sort_key: str = "abs_sd0"
    dropped: Counter | None = None
    first_entry: int = 0  # event number of the file's first entry, when it has none
    checked_units: bool = False
    degenerate_significance: str = "drop_track"
    degenerate: Counter = dataclasses.field(default_factory=Counter)  # see _degenerate_tracks


def iterate_sample_file(context: ReadContext, step: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield canonical (jets, tracks) blocks of one file of a sample."""
    check_sort_key(context.sort_key)
    reader = _iterate_h5 if file_kind(context.path) == "h5" else _iterate_root
    entry = context.first_entry
    for jet_raw, trk_raw, counts in reader(context, step):
        block = _to_canonical(jet_raw, trk_raw, counts, context, entry)
        entry += len(counts)
        context.first_entry = entry  # the next file of the sample numbers on from here
        yield block


def _branches_read(layout: SampleLayout) -> list[str]:
    """Every branch or field name a file is read with (labels included)."""
    return sorted(set(layout.names.values()) | set(layout.label_branches.values()))


def _iterate_root(context: ReadContext, step: int):
    """(jet columns, flat track columns, counts) per chunk of a ROOT tree, by source key."""
    import uproot

    layout, path = context.layout, context.path
    try:
        file = uproot.open(path)
    except Exception as err:  # uproot raises many types for corrupt or truncated files
        raise InputError(f"{path}: cannot be opened as a ROOT file ({err})") from err
    with file:
        try:
            tree = file[context.sample.tree]
            chunks = tree.iterate(_branches_read(layout), step_size=step)
            for chunk in chunks:
                jet_raw = {k: ak.to_numpy(chunk[n]) for k, n in layout.names.items()
                           if k.startswith("jet_")}  # fmt: skip
                jet_raw |= {f"label_{f}": ak.to_numpy(chunk[b])
                            for f, b in layout.label_branches.items()}  # fmt: skip
                track_keys = [k for k in layout.names if k.startswith("trk_")]
                counts = ak.to_numpy(ak.num(chunk[layout.names[track_keys[0]]], axis=1))
                trk_raw = {}
                for key in track_keys:
                    jagged = chunk[layout.names[key]]
                    if not np.array_equal(ak.to_numpy(ak.num(jagged, axis=1)), counts):
                        raise InputError(
                            f"{path}: branch '{layout.names[key]}' ({key}) has other track"
                            f" counts than '{layout.names[track_keys[0]]}' ({track_keys[0]})"
                        )
                    trk_raw[key] = ak.to_numpy(ak.flatten(jagged))
                yield jet_raw, trk_raw, counts.astype(np.int64)
        except InputError:
            raise
        except Exception as err:
            raise InputError(
                f"{path}: failed while reading tree '{context.sample.tree}': {err}"
            ) from err


def _iterate_h5(context: ReadContext, step: int):
    """(jet columns, flat track columns, counts) per block of an FTAG-layout HDF5 file."""
    layout, path = context.layout, context.path
    try:
        file = h5py.File(path, "r")
    except Exception as err:
        raise InputError(f"{path}: cannot be opened as an HDF5 file ({err})") from err
    with file:
        jets_ds, tracks_ds = file["jets"], file["tracks"]
        if tracks_ds.ndim != 2 or tracks_ds.shape[0] != jets_ds.shape[0]:
            raise InputError(
                f"{path}: 'tracks' has shape {tracks_ds.shape}, expected ({jets_ds.shape[0]}, n)"
            )
        for start in range(0, jets_ds.shape[0], step):
            try:
                jets = jets_ds[start : start + step]
                tracks = tracks_ds[start : start + step]
            except Exception as err:
                raise InputError(f"{path}: failed reading rows from {start}: {err}") from err
            valid = tracks["valid"].astype(bool)
            jet_raw = {k: jets[n] for k, n in layout.names.items() if k.startswith("jet_")}
            jet_raw |= {f"label_{f}": jets[b] for f, b in layout.label_branches.items()}
            trk_raw = {k: tracks[n][valid] for k, n in layout.names.items() if k.startswith("trk_")}
            yield jet_raw, trk_raw, valid.sum(axis=1).astype(np.int64)


def _to_canonical(
    jet_raw: dict[str, np.ndarray],
    trk_raw: dict[str, np.ndarray],
    counts: np.ndarray,
    context: ReadContext,
    first_entry: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Select, check, convert, derive and label one block; then sort, truncate and pad."""
    sample, layout = context.sample, context.layout
    entry = np.arange(first_entry, first_entry + len(counts), dtype=np.int64)
    if sample.charged_only and "trk_charge" in trk_raw:  # particle-flow inputs: tracks only
        charged = trk_raw["trk_charge"] != 0
        jet_of_track = np.repeat(np.arange(len(counts)), counts)
        counts = np.bincount(jet_of_track[charged], minlength=len(counts)).astype(np.int64)
        trk_raw = {k: v[charged] for k, v in trk_raw.items()}
    keep = _finite_jets(jet_raw, trk_raw, counts, context)
    if keep is not None:
        jet_raw, trk_raw, counts, entry = _keep_jets(keep, jet_raw, trk_raw, counts, entry)
    jet_raw, trk_raw, counts, entry = _degenerate_tracks(jet_raw, trk_raw, counts, entry,
                                                         context)  # fmt: skip
    energy, length = sample.units.energy, sample.units.length
    values = {k: fields.to_canonical_units(k, np.asarray(v, dtype=np.float64), energy, length)
              for k, v in {**jet_raw, **trk_raw}.items()
              if k not in NOT_FLOAT and k != label_key(sample)
              and not k.startswith("label_")}  # fmt: skip
    if sample.d0_sign == "opposite" and "trk_d0" in values:
        values["trk_d0"] = -values["trk_d0"]
    _check_plausible(values, context)
    jet_rules = dataclasses.replace(
        layout.plan, derived=tuple(d for d in layout.plan.derived if d.target.startswith("jet_"))
    )
    track_rules = dataclasses.replace(
        layout.plan, derived=tuple(d for d in layout.plan.derived if d.target.startswith("trk_"))
    )
    jet_values = fields.derive({k: v for k, v in values.items() if k.startswith("jet_")},
                               jet_rules)  # fmt: skip
    per_track = {k: np.repeat(v, counts) for k, v in jet_values.items()}
    trk_values = fields.derive(
        {**per_track, **{k: v for k, v in values.items() if k.startswith("trk_")}}, track_rules
    )
    keep = _finite_derived(jet_values, trk_values, counts, layout.plan, context)
    if keep is not None:
        track_keep = np.repeat(keep, counts)
        jet_values = {k: v[keep] for k, v in jet_values.items()}
        trk_values = {k: v[track_keep] for k, v in trk_values.items()}
        jet_raw = {k: v[keep] for k, v in jet_raw.items()}
        counts, entry = counts[keep], entry[keep]
    labels = _labels(jet_raw, context)
    jets = np.zeros(len(counts), dtype=jet_dtype(context.sample.label_variable))
    for name in ("pt", "eta", "phi", "mass"):
        jets[name] = jet_values.get(f"jet_{name}", np.nan)
    jets[context.sample.label_variable] = labels
    jets["eventNumber"] = jet_raw["jet_eventNumber"] if layout.has_event_number else entry
    flat = {}
    for name in TRACK_DTYPE.names:
        if name == "valid":
            continue
        placeholder = -1 if TRACK_DTYPE[name].kind == "i" else np.nan
        column = trk_values.get(f"trk_{name}")
        if column is None:  # absent from the input (listed in absent_fields)
            column = np.full(int(counts.sum()), placeholder)
        flat[name] = column.astype(TRACK_DTYPE[name])
    tracks_jagged = ak.unflatten(ak.zip(flat), counts)
    tracks, n_tracks = sort_and_pad(tracks_jagged, track_sort_key(context.sort_key, tracks_jagged),
                                    context.max_tracks)  # fmt: skip
    jets["n_tracks"] = n_tracks
    return jets, tracks


def _keep_jets(
    keep: np.ndarray,
    jet_raw: dict[str, np.ndarray],
    trk_raw: dict[str, np.ndarray],
    counts: np.ndarray,
    entry: np.ndarray,
) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """The kept jets of a block (keep: bool per jet) and their tracks."""
    track_keep = np.repeat(keep, counts)
    return (
        {k: v[keep] for k, v in jet_raw.items()},
        {k: v[track_keep] for k, v in trk_raw.items()},
        counts[keep],
        entry[keep],
    )


# A significance read from the file from which an uncertainty is derived: sigma = |ip / s|.
DERIVED_FROM_SIGNIFICANCE = {
    "trk_d0Uncertainty": "trk_IP3D_signed_d0_significance",
    "trk_z0SinThetaUncertainty": "trk_IP3D_signed_z0_significance",
}


def _degenerate_tracks(
    jet_raw: dict[str, np.ndarray],
    trk_raw: dict[str, np.ndarray],
    counts: np.ndarray,
    entry: np.ndarray,
    context: ReadContext,
) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """Tracks whose signed significance is exactly 0 where sigma = |ip / s| is derived.

    ATLAS's lifetime sign is 0 for a track whose sin(phi_jet - phi_trk) d0 is 0 (on the jet
    axis, or d0 = 0), so its signed significance carries no magnitude and the uncertainty
    cannot be recovered. ingest.degenerate_significance: drop_track removes such tracks
    (their jets stay), drop_jet drops their jets, error stops; counts go to
    context.degenerate: per significance, and the tracks and jets dropped.
    """
    derived = {d.target for d in context.layout.plan.derived}
    zero = {
        significance: np.asarray(trk_raw[significance]) == 0
        for target, significance in DERIVED_FROM_SIGNIFICANCE.items()
        if target in derived and significance in trk_raw
    }
    zero = {k: v for k, v in zero.items() if v.any()}
    if not zero:
        return jet_raw, trk_raw, counts, entry
    degenerate = np.logical_or.reduce(list(zero.values()))
    policy = context.degenerate_significance
    if policy == "error":
        names = context.layout.names
        found = ", ".join(f"{int(v.sum())} with '{names.get(k, k)}' = 0" for k, v in zero.items())
        raise InputError(
            f"{context.path}: {found} (of {degenerate.size} tracks): the lifetime sign is 0, so"
            " sigma = |d0 / sd0| cannot be derived; ingest.degenerate_significance: drop_track"
            " (or drop_jet) skips them and counts them, or map the uncertainty branches"
            f" (samples.{context.sample_name}.branches.trk_d0Uncertainty and"
            " trk_z0SinThetaUncertainty) if the file has them"
        )
    for key, mask in zero.items():
        context.degenerate[key.removeprefix("trk_")] += int(mask.sum())
    jet_of_track = np.repeat(np.arange(len(counts)), counts)
    if policy == "drop_jet":
        bad_jets = np.zeros(len(counts), dtype=bool)
        bad_jets[jet_of_track[degenerate]] = True
        context.degenerate["jets_dropped"] += int(bad_jets.sum())
        context.degenerate["tracks_dropped"] += int(counts[bad_jets].sum())
        return _keep_jets(~bad_jets, jet_raw, trk_raw, counts, entry)
    context.degenerate["tracks_dropped"] += int(degenerate.sum())
    counts = counts - np.bincount(jet_of_track[degenerate], minlength=len(counts))
    return jet_raw, {k: v[~degenerate] for k, v in trk_raw.items()}, counts, entry


def _finite_derived(
    jet_values: dict[str, np.ndarray],
    trk_values: dict[str, np.ndarray],
    counts: np.ndarray,
    plan: fields.FieldPlan,
    context: ReadContext,
) -> np.ndarray | None:
    """ingest.non_finite for derived values: the jets to keep (None: all finite).

    'error' names the file, the derived field, what it is derived from and how many values
    are not finite; 'drop' skips those jets and counts them as NaN/inf in read values are.
    """
    jet_of_track = np.repeat(np.arange(len(counts)), counts)
    bad: dict[str, np.ndarray] = {}
    for rule in plan.derived:
        values = jet_values.get(rule.target, trk_values.get(rule.target))
        where = ~np.isfinite(values)
        if not where.any():
            continue
        if rule.target.startswith("trk_"):
            mask = np.zeros(len(counts), dtype=bool)
            mask[jet_of_track[where]] = True
        else:
            mask = where
        if context.non_finite == "error":
            branches = [f"'{context.layout.names.get(i, i)}'" for i in rule.inputs
                        if i in context.layout.names]  # fmt: skip
            read_from = f" (branches {', '.join(branches)})" if branches else ""
            raise InputError(
                f"{context.path}: {rule.target} = {rule.formula}, derived from"
                f" {', '.join(rule.inputs)}{read_from}, is not finite for {int(where.sum())} of"
                f" {where.size} values in {int(mask.sum())} jets; ingest.non_finite: drop skips"
                " such jets and counts them, or map"
                f" samples.{context.sample_name}.branches.{rule.target} to a branch if the file"
                " has one"
            )
        bad[rule.target] = mask
    if not bad:
        return None
    any_bad = np.logical_or.reduce(list(bad.values()))
    if context.dropped is not None:
        context.dropped["jets"] += int(any_bad.sum())
        for key, mask in bad.items():
            context.dropped[key] += int(mask.sum())
    return ~any_bad


def _labels(jet_raw: dict[str, np.ndarray], context: ReadContext) -> np.ndarray:
    """The canonical label of each jet: an integer branch mapped, or one-hot flags."""
    sample, path = context.sample, context.path
    one_hot = context.layout.label_branches
    if one_hot:
        flags = np.stack([np.asarray(jet_raw[f"label_{f}"]) != 0 for f in one_hot], axis=1)
        several = flags.sum(axis=1) > 1
        if several.any():
            raise InputError(
                f"{path}: {int(several.sum())} jets have more than one of the one-hot labels"
                f" {dict(one_hot)} set (samples.{context.sample_name}.labels.one_hot)"
            )
        ids = np.array([sample.canonical_labels[f] for f in one_hot], dtype=np.int32)
        return np.where(flags.any(axis=1), ids[flags.argmax(axis=1)], UNLABELLED)
    raw = np.asarray(jet_raw[label_key(sample)]).astype(np.int64)
    out = np.full(len(raw), UNLABELLED, dtype=np.int32)
    known = np.zeros(len(raw), dtype=bool)
    for flavour, values in sample.labels.values.items():
        hit = np.isin(raw, values)
        out[hit] = sample.canonical_labels[flavour]
        known |= hit
    if not known.all():
        unknown = sorted(set(np.unique(raw[~known]).tolist()))
        raise InputError(
            f"{path}: label branch '{context.layout.names[label_key(sample)]}'"
            f" has values {unknown[:20]} ({int((~known).sum())} jets) that"
            f" samples.{context.sample_name}.labels.values ({dict(sample.labels.values)}) does"
            f" not map to any of {list(sample.canonical_labels)}"
        )
    return out


# Physical ranges of read quantities (GeV, mm): a value outside says "wrong branch".
_POSITIVE = ("jet_pt", "trk_pt", "trk_d0Uncertainty", "trk_z0SinThetaUncertainty",
             "trk_z0Uncertainty", "trk_energy", "jet_energy")  # fmt: skip
JET_PT_MEDIAN_GEV = (5.0, 5000.0)
D0_MEDIAN_MM = (1.0e-3, 1.0)  # median |d0| of tracks: ~10-50 um for real trackers
# key, plausible median in GeV/mm, its units key, unit factors, values needed to judge
_SCALES = (
    ("jet_pt", JET_PT_MEDIAN_GEV, "energy", fields.ENERGY_TO_GEV, 5),
    ("trk_d0", D0_MEDIAN_MM, "length", fields.LENGTH_TO_MM, 20),
)


def _check_plausible(values: dict[str, np.ndarray], context: ReadContext) -> None:
    """Errors for values that cannot be right in GeV/mm, naming the branch and the key."""
    names, path, sample = context.layout.names, context.path, context.sample_name
    for key in _POSITIVE:
        if key in values and np.any(values[key] <= 0):
            bad = int(np.sum(values[key] <= 0))
            raise InputError(
                f"{path}: {key} (branch '{names[key]}') has {bad} values <= 0 of"
                f" {values[key].size}; is samples.{sample}.branches.{key} mapped to the right"
                " branch?"
            )
    if context.checked_units or "jet_pt" not in values or values["jet_pt"].size < 5:
        return
    context.checked_units = True  # once per file: the scale of its first block
    for key, (lo, hi), unit_key, to_canonical, min_values in _SCALES:
        if key not in values or values[key].size < min_values:
            continue
        median = float(np.median(np.abs(values[key])))
        if lo <= median <= hi:
            continue
        declared = getattr(context.sample.units, unit_key)
        # the units that would bring the median into range
        fits = [u for u, f in to_canonical.items()
                if lo <= median / to_canonical[declared] * f <= hi]  # fmt: skip
        hint = f"the file looks like {fits[0]}: " if fits else ""
        canonical = next(u for u, f in to_canonical.items() if f == 1.0)
        raise InputError(
            f"{path}: the median |{key}| (branch '{names[key]}') is {median:.4g} {canonical}"
            f" when read in {declared}, outside the plausible {lo:g}-{hi:g} {canonical}; {hint}"
            f"set samples.{sample}.units.{unit_key}"
            + (f": {fits[0]}" if fits else f" ({', '.join(to_canonical)})")
        )


def _finite_jets(
    jet_raw: Mapping[str, np.ndarray],
    trk_raw: Mapping[str, np.ndarray],
    counts: np.ndarray,
    context: ReadContext,
) -> np.ndarray | None:
    """The jets to keep under the NaN/inf policy (None: all finite); 'error' raises instead.

    The error names the file, the variable and how many jets hold such values; 'drop' keeps
    the other jets and counts the dropped ones in `context.dropped`: in total ('jets') and
    per source key ('jet_pt', 'trk_d0', ...).
    """
    jet_of_track = np.repeat(np.arange(len(counts)), counts)
    bad: dict[tuple[str, str], np.ndarray] = {}
    for key, values in {**jet_raw, **trk_raw}.items():
        values = np.asarray(values)
        if values.dtype.kind != "f" or np.all(np.isfinite(values)):
            continue
        where = ~np.isfinite(values)
        if key.startswith("trk_"):
            mask = np.zeros(len(counts), dtype=bool)
            mask[jet_of_track[where]] = True
            what = f"track variable '{key[4:]}'"
        else:
            mask, what = where, f"jet variable '{key.removeprefix('jet_')}'"
        bad[(what, key)] = mask
    if not bad:
        return None
    if context.non_finite == "error":
        (what, key), mask = next(iter(bad.items()))
        branch = context.layout.names.get(key, key)
        raise InputError(
            f"{context.path}: {what} has NaN or inf values in {int(mask.sum())} jets (branch"
            f" '{branch}'; ingest.non_finite: drop would skip such jets and count them)"
        )
    any_bad = np.logical_or.reduce(list(bad.values()))
    if context.dropped is not None:
        context.dropped["jets"] += int(any_bad.sum())
        for (_, key), mask in bad.items():
            context.dropped[key] += int(mask.sum())
    return ~any_bad
