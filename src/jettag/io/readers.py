"""Read jets and their tracks from ROOT (uproot) or FTAG-layout HDF5, block by block.

Both readers yield blocks in the canonical layout (jets (n,), tracks (n, max_tracks), valid
tracks packed first, sorted by the truncation key), with errors that name the file and the
branch or field at fault.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import awkward as ak
import h5py
import numpy as np

from jettag.io.canonical import (
    JET_DTYPE,
    OPTIONAL_TRACK_FIELDS,
    REQUIRED_JET_FIELDS,
    REQUIRED_TRACK_FIELDS,
    TRACK_DTYPE,
)


class InputError(ValueError):
    """An input file that cannot be read as a jet/track collection; the message names it."""


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


def check_sort_key(name: str) -> None:
    """Raise ValueError unless name is one of the built-in SORT_KEYS."""
    if name not in SORT_KEYS:
        raise ValueError(f"unknown ingest.sort_key '{name}'; known: {sorted(SORT_KEYS)}")


def track_sort_key(name: str, tracks: ak.Array) -> ak.Array:
    """The named truncation key of each track (jagged like tracks); larger is kept first."""
    check_sort_key(name)
    return SORT_KEYS[name][1](tracks)


def default_branches() -> dict[str, str]:
    """jettag's own ROOT branch names: jet_<field> and trk_<field> (what generate writes)."""
    names = {f"jet_{f}": f"jet_{f}" for f in REQUIRED_JET_FIELDS if f != "eventNumber"}
    names["jet_eventNumber"] = "eventNumber"
    names.update({f"trk_{f}": f"trk_{f}" for f in REQUIRED_TRACK_FIELDS + OPTIONAL_TRACK_FIELDS})
    return names


def _branch_map(overrides: Mapping[str, str], path: Path) -> dict[str, str]:
    """Default branch names with the config's overrides; unknown keys are errors."""
    names = default_branches()
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise InputError(
            f"{path}: samples.*.branches has unknown keys {unknown}; known: {sorted(names)}"
        )
    names.update(overrides)
    return names


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
    for field in OPTIONAL_TRACK_FIELDS:
        if field not in tracks.fields:  # not in the input: unknown on real tracks
            out[field][out["valid"]] = -1
    return out, n_tracks


def _non_finite_jets(block: Mapping[str, np.ndarray | ak.Array]) -> dict[str, np.ndarray]:
    """Per float variable with any NaN or inf: the (n_jets,) mask of the jets holding one."""
    out = {}
    for name, values in block.items():
        if isinstance(values, ak.Array):
            flat = ak.to_numpy(ak.flatten(values, axis=None))
            if flat.dtype.kind == "f" and not np.all(np.isfinite(flat)):
                out[name] = ak.to_numpy(ak.any(~np.isfinite(values), axis=1))
        elif values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            bad = ~np.isfinite(values)
            out[name] = bad.reshape(len(bad), -1).any(axis=1)
    return out


def _finite_jets(
    jet_block: Mapping[str, np.ndarray | ak.Array],
    track_block: Mapping[str, np.ndarray | ak.Array],
    path: Path,
    policy: str,
    dropped: Counter | None,
) -> np.ndarray | None:
    """The jets to keep under the NaN/inf policy (None: all finite); 'error' raises instead.

    The error names the file, the variable and how many jets hold such values; 'drop' keeps
    the other jets and counts the dropped ones in `dropped`: in total ('jets') and per
    variable ('jet_pt', 'trk_d0', ...).
    """
    # (what the error calls it, the count's key: named like samples.*.branches) -> jets
    bad = {(f"jet variable '{k}'", f"jet_{k}"): v for k, v in _non_finite_jets(jet_block).items()}
    bad.update({(f"track variable '{k}'", f"trk_{k}"): v
                for k, v in _non_finite_jets(track_block).items()})  # fmt: skip
    if not bad:
        return None
    if policy == "error":
        (what, _), mask = next(iter(bad.items()))
        raise InputError(
            f"{path}: {what} has NaN or inf values in {int(mask.sum())} jets"
            " (ingest.non_finite: drop would skip such jets and count them)"
        )
    any_bad = np.logical_or.reduce(list(bad.values()))
    if dropped is not None:
        dropped["jets"] += int(any_bad.sum())
        for (_, key), mask in bad.items():
            dropped[key] += int(mask.sum())
    return ~any_bad


def iterate_root(
    path: Path,
    tree_name: str,
    overrides: Mapping[str, str],
    max_tracks: int,
    step: int,
    non_finite: str = "error",
    dropped: Counter | None = None,
    sort_key: str = "abs_sd0",
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield canonical (jets, tracks) blocks from a ROOT TTree with one entry per jet.

    non_finite: 'error' (raise on a NaN or inf) or 'drop' (skip such jets, counted in dropped);
    sort_key: a SORT_KEYS name, the order (descending) in which tracks are kept.
    """
    import uproot

    check_sort_key(sort_key)
    names = _branch_map(overrides, path)
    try:
        file = uproot.open(path)
    except Exception as err:  # uproot raises many types for corrupt or truncated files
        raise InputError(f"{path}: cannot be opened as a ROOT file ({err})") from err
    with file:
        try:
            tree, wanted = _root_tree(file, tree_name, names, path)
        except InputError:
            raise
        except Exception as err:  # corrupt directory or streamers: uproot raises many types
            raise InputError(
                f"{path}: corrupt ROOT metadata ({type(err).__name__}: {err})"
            ) from err
        try:
            for chunk in tree.iterate(sorted(set(wanted.values())), step_size=step):
                yield _root_chunk_to_canonical(
                    chunk, wanted, max_tracks, path, non_finite, dropped, sort_key
                )
        except InputError:
            raise
        except Exception as err:
            raise InputError(f"{path}: failed while reading tree '{tree_name}': {err}") from err


def _root_tree(
    file: Any, tree_name: str, names: Mapping[str, str], path: Path
) -> tuple[Any, dict[str, str]]:
    """The tree and the branches to read (optional ones only where the tree has them)."""
    if tree_name not in file:
        raise InputError(
            f"{path}: no tree '{tree_name}'; the file has {sorted(file.keys(cycle=False))}"
        )
    tree = file[tree_name]
    available = set(tree.keys())
    optional = {names[f"trk_{f}"] for f in OPTIONAL_TRACK_FIELDS}
    wanted = {key: branch for key, branch in names.items() if branch in available
              or branch not in optional}  # fmt: skip
    missing = sorted(b for b in wanted.values() if b not in available)
    if missing:
        raise InputError(
            f"{path}: tree '{tree_name}' lacks branches {missing}; it has {sorted(available)}"
        )
    return tree, wanted


def _root_chunk_to_canonical(
    chunk: ak.Array,
    names: Mapping[str, str],
    max_tracks: int,
    path: Path,
    non_finite: str = "error",
    dropped: Counter | None = None,
    sort_key: str = "abs_sd0",
) -> tuple[np.ndarray, np.ndarray]:
    """Convert one uproot chunk to canonical numpy blocks."""
    jets_in = {f: ak.to_numpy(chunk[names[f"jet_{f}"]]) for f in REQUIRED_JET_FIELDS}
    track_fields = [f for f in REQUIRED_TRACK_FIELDS + OPTIONAL_TRACK_FIELDS if f"trk_{f}" in names]
    tracks_in = {f: chunk[names[f"trk_{f}"]] for f in track_fields}
    keep = _finite_jets(jets_in, tracks_in, path, non_finite, dropped)
    if keep is not None:
        jets_in = {f: v[keep] for f, v in jets_in.items()}
        tracks_in = {f: v[keep] for f, v in tracks_in.items()}
    tracks_jagged = ak.zip(tracks_in)
    key = track_sort_key(sort_key, tracks_jagged)
    tracks, n_tracks = sort_and_pad(tracks_jagged, key, max_tracks)
    jets = np.zeros(len(n_tracks), dtype=JET_DTYPE)
    for field, values in jets_in.items():
        jets[field] = values
    jets["n_tracks"] = n_tracks
    return jets, tracks


def iterate_h5(
    path: Path,
    overrides: Mapping[str, str],
    max_tracks: int,
    step: int,
    non_finite: str = "error",
    dropped: Counter | None = None,
    sort_key: str = "abs_sd0",
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield canonical blocks from an FTAG-layout HDF5 file (jets table, padded tracks table).

    non_finite: 'error' (raise on a NaN or inf) or 'drop' (skip such jets, counted in dropped);
    sort_key: a SORT_KEYS name, the order (descending) in which tracks are kept.
    """
    check_sort_key(sort_key)
    _branch_map(overrides, path)  # rejects unknown keys
    # HDF5 fields default to the canonical names; overrides use the same jet_/trk_ keys
    jet_names = {f: overrides.get(f"jet_{f}", f) for f in REQUIRED_JET_FIELDS}
    trk_names = {
        f: overrides.get(f"trk_{f}", f) for f in REQUIRED_TRACK_FIELDS + OPTIONAL_TRACK_FIELDS
    }
    try:
        file = h5py.File(path, "r")
    except Exception as err:
        raise InputError(f"{path}: cannot be opened as an HDF5 file ({err})") from err
    with file:
        try:
            jets_ds, tracks_ds, trk_names = _h5_tables(file, path, jet_names, trk_names)
        except InputError:
            raise
        except Exception as err:  # corrupt metadata: h5py and numpy raise many types
            raise InputError(
                f"{path}: corrupt HDF5 metadata ({type(err).__name__}: {err})"
            ) from err
        for start in range(0, jets_ds.shape[0], step):
            try:
                jets_raw = jets_ds[start : start + step]
                tracks_raw = tracks_ds[start : start + step]
            except Exception as err:
                raise InputError(f"{path}: failed reading rows from {start}: {err}") from err
            yield _h5_block_to_canonical(
                jets_raw, tracks_raw, jet_names, trk_names, max_tracks, path, non_finite, dropped,
                sort_key,
            )  # fmt: skip


def _h5_tables(
    file: h5py.File, path: Path, jet_names: Mapping[str, str], trk_names: Mapping[str, str]
) -> tuple[h5py.Dataset, h5py.Dataset, dict[str, str]]:
    """The checked jets and tracks datasets, and the track fields to read (optional: if there)."""
    for key in ("jets", "tracks"):
        if key not in file:
            raise InputError(f"{path}: no dataset '{key}'; the file has {sorted(file.keys())}")
    jets_ds, tracks_ds = file["jets"], file["tracks"]
    if tracks_ds.ndim != 2 or tracks_ds.shape[0] != jets_ds.shape[0]:
        raise InputError(
            f"{path}: 'tracks' has shape {tracks_ds.shape}, expected ({jets_ds.shape[0]}, n)"
        )
    _require_fields(path, "jets", jets_ds.dtype.names or (), jet_names.values())
    track_have = tracks_ds.dtype.names or ()
    optional = {trk_names[f] for f in OPTIONAL_TRACK_FIELDS}
    trk_names = {f: n for f, n in trk_names.items() if n in track_have or n not in optional}
    _require_fields(path, "tracks", track_have, [*trk_names.values(), "valid"])
    return jets_ds, tracks_ds, trk_names


def _require_fields(path: Path, dataset: str, have, wanted) -> None:
    """Raise listing what the dataset has when a wanted field is missing."""
    missing = sorted(set(wanted) - set(have))
    if missing:
        raise InputError(
            f"{path}: dataset '{dataset}' lacks fields {missing}; it has {sorted(have)}"
        )


def _h5_block_to_canonical(
    jets_raw, tracks_raw, jet_names, trk_names, max_tracks: int, path: Path,
    non_finite: str = "error", dropped: Counter | None = None, sort_key: str = "abs_sd0",
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Convert one block of an FTAG file, re-sorting and re-padding its tracks."""
    valid = tracks_raw["valid"].astype(bool)
    keep = _finite_jets(
        {f: jets_raw[n] for f, n in jet_names.items()},
        {f: np.where(valid, tracks_raw[n], 0) for f, n in trk_names.items()},
        path, non_finite, dropped,
    )  # fmt: skip
    if keep is not None:
        jets_raw, tracks_raw, valid = jets_raw[keep], tracks_raw[keep], valid[keep]
    counts = valid.sum(axis=1)
    jagged = ak.unflatten(ak.zip({f: tracks_raw[n][valid] for f, n in trk_names.items()}), counts)
    tracks, n_tracks = sort_and_pad(jagged, track_sort_key(sort_key, jagged), max_tracks)
    jets = np.zeros(len(jets_raw), dtype=JET_DTYPE)
    for field, name in jet_names.items():
        jets[field] = jets_raw[name]
    jets["n_tracks"] = n_tracks
    return jets, tracks
