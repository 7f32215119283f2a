"""The canonical HDF5 layout (ATLAS FTAG): a `jets` table, a (n_jets, max_tracks) `tracks` table."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np

from jettag.errors import InputError

FTAG_LABEL = "HadronConeExclTruthLabelID"


def jet_dtype(label_variable: str = FTAG_LABEL) -> np.dtype:
    """The jets table with the class set's truth label (HadronConeExclTruthLabelID for ftag)."""
    return np.dtype(
        [
            ("pt", "f4"),  # GeV
            ("eta", "f4"),
            ("phi", "f4"),  # NaN when the input has none (see the `absent_fields` attribute)
            ("mass", "f4"),  # GeV; NaN when absent
            (label_variable, "i4"),
            ("eventNumber", "i8"),
            ("n_tracks", "i4"),  # associated tracks before truncation to max_tracks
        ]
    )


JET_DTYPE = jet_dtype()
TRACK_DTYPE = np.dtype(
    [
        ("valid", "?"),
        ("pt", "f4"),  # GeV
        ("eta", "f4"),
        ("phi", "f4"),
        ("charge", "f4"),
        ("d0", "f4"),  # mm, from the primary vertex
        ("z0SinTheta", "f4"),  # mm
        ("d0Uncertainty", "f4"),
        ("z0SinThetaUncertainty", "f4"),
        # lifetime-signed significances (ATLAS signs; as given when the input has them)
        ("IP3D_signed_d0_significance", "f4"),
        ("IP3D_signed_z0_significance", "f4"),
        ("deta", "f4"),  # eta_trk - eta_jet
        ("dphi", "f4"),  # phi_trk - phi_jet, in [-pi, pi)
        ("ftagTruthOriginLabel", "i4"),  # -1 on padding and where unknown
        # per jet: 0 primary vertex, 1.. displaced truth vertices, -1 none (fake, pile-up),
        # padding and where unknown
        ("ftagTruthVertexIndex", "i4"),
        # silicon hit counts; -1 where the input does not have them
        ("numberOfPixelHits", "i1"),
        ("numberOfSCTHits", "i1"),
        ("numberOfInnermostPixelLayerHits", "i1"),
        ("numberOfNextToInnermostPixelLayerHits", "i1"),
        ("numberOfPixelSharedHits", "i1"),
        ("numberOfPixelHoles", "i1"),
    ]
)
HIT_FIELDS = (
    "numberOfPixelHits",
    "numberOfSCTHits",
    "numberOfInnermostPixelLayerHits",
    "numberOfNextToInnermostPixelLayerHits",
    "numberOfPixelSharedHits",
    "numberOfPixelHoles",
)
# What an input must provide, what may be derived and what may be absent: io/fields.py.

# jets attribute written by ingest: JSON list of the canonical fields the sample's inputs did
# not provide (track fields by name, jet fields as jet_<name>); their values are placeholders
ABSENT_FIELDS_ATTR = "absent_fields"


def absent_fields(attrs: Mapping, path: Path) -> set[str]:
    """The fields a canonical file's `absent_fields` attribute names; none without it."""
    raw = attrs.get(ABSENT_FIELDS_ATTR)
    if raw is None:  # written before the attribute existed: nothing known to be absent
        return set()
    try:
        names = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(
            f"{path}: jets attribute '{ABSENT_FIELDS_ATTR}' is not JSON ({err}); rerun ingest"
        ) from err
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError(
            f"{path}: jets attribute '{ABSENT_FIELDS_ATTR}' is not a list of field names:"
            f" {raw!r}; rerun ingest"
        )
    return set(names)


def sample_name(attrs: Mapping, path: Path) -> str:
    """The sample a canonical file holds: its `sample` attribute, else the file's stem."""
    name = attrs.get("sample")
    if isinstance(name, bytes):
        name = name.decode()
    return str(name) if name else path.stem


def compression_options(compression: str) -> dict:
    """h5py keyword arguments for a compression name readable by plain h5py.

    Every chunk carries a Fletcher-32 checksum (built into HDF5, no plugin): a file
    corrupted on disk or in transfer fails to read, naming the dataset, instead of giving
    wrong numbers silently.
    """
    options = {"fletcher32": True}
    return options if compression == "none" else {**options, "compression": compression}


class CanonicalWriter:
    """Append (jets, tracks) blocks to an HDF5 file in the FTAG layout."""

    def __init__(
        self,
        path: Path,
        jet_dtype: np.dtype,
        track_dtype: np.dtype,
        max_tracks: int,
        compression: str = "lzf",
        attrs: dict | None = None,
    ) -> None:
        self.file = h5py.File(path, "w")
        chunk_rows = 1024
        options = compression_options(compression)
        self.jets = self.file.create_dataset(
            "jets", shape=(0,), maxshape=(None,), dtype=jet_dtype, chunks=(chunk_rows * 8,),
            **options,
        )  # fmt: skip
        self.tracks = self.file.create_dataset(
            "tracks", shape=(0, max_tracks), maxshape=(None, max_tracks), dtype=track_dtype,
            chunks=(chunk_rows, max_tracks), **options,
        )  # fmt: skip
        for key, value in (attrs or {}).items():
            self.jets.attrs[key] = value

    @classmethod
    def reopen(cls, path: Path) -> CanonicalWriter:
        """A writer appending to a file this class made (and closed) before."""
        writer = cls.__new__(cls)
        writer.file = h5py.File(path, "a")
        writer.jets, writer.tracks = writer.file["jets"], writer.file["tracks"]
        return writer

    def append(self, jets: np.ndarray, tracks: np.ndarray) -> None:
        """Append a block; jets (n,), tracks (n, max_tracks)."""
        n0 = self.jets.shape[0]
        n1 = n0 + jets.shape[0]
        self.jets.resize((n1,))
        self.tracks.resize((n1, self.tracks.shape[1]))
        self.jets[n0:n1] = jets
        self.tracks[n0:n1] = tracks

    def __enter__(self) -> CanonicalWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.file.close()


CanonicalFiles = Path | Sequence[Path]


def as_paths(paths: CanonicalFiles) -> list[Path]:
    """One canonical file or the parts of a sharded one, as a list."""
    return [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]


def describe_files(paths: CanonicalFiles) -> str:
    """A file, or the first part and how many there are, for messages."""
    files = as_paths(paths)
    return str(files[0]) if len(files) == 1 else f"{files[0]} (and {len(files) - 1} more parts)"


def count_jets(paths: CanonicalFiles) -> int:
    """Jets in a canonical file, or in all parts of a sharded one."""
    total = 0
    for path in as_paths(paths):
        with h5py.File(path, "r") as f:
            total += f["jets"].shape[0]
    return total


def iterate_blocks(
    paths: CanonicalFiles, block_jets: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (jets, tracks) blocks of a canonical file, or of its parts read in order.

    Blocks hold exactly block_jets jets (the last one fewer) whatever the part boundaries,
    so a sharded sample is read in the same blocks as the same jets in one file.
    """
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    n_pending = 0
    for path in as_paths(paths):
        with h5py.File(path, "r") as f:
            jets_ds, tracks_ds = f["jets"], f["tracks"]
            start, n = 0, jets_ds.shape[0]
            while start < n:
                stop = min(start + block_jets - n_pending, n)
                pending.append((jets_ds[start:stop], tracks_ds[start:stop]))
                n_pending += stop - start
                start = stop
                if n_pending == block_jets:
                    yield _joined(pending)
                    pending, n_pending = [], 0
    if n_pending:
        yield _joined(pending)


def _joined(blocks: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One (jets, tracks) block from consecutive pieces (no copy for a single piece)."""
    if len(blocks) == 1:
        return blocks[0]
    track_widths = {tracks.shape[1] for _, tracks in blocks}
    if len(track_widths) != 1:
        raise InputError(f"parts of one sample have different max_tracks: {track_widths}")
    return (
        np.concatenate([jets for jets, _ in blocks]),
        np.concatenate([tracks for _, tracks in blocks]),
    )


# How the jets attributes of a sample's parts combine into those of the whole sample (what
# one ingest job over all of its files writes). JSON text: counters add up, lists are united,
# per-file mappings are joined in part order. An attribute not named here must be equal.
# lifetime_sign_fractions are recomputed from the summed lifetime_sign_counts.
SUMMED_ATTRS = ("dropped_non_finite", "degenerate_significance", "lifetime_sign_counts")
UNITED_ATTRS = (ABSENT_FIELDS_ATTR,)
JOINED_ATTRS = ("field_sources",)
DERIVED_ATTRS = ("lifetime_sign_fractions",)


def lifetime_sign_fractions(counts: Mapping[str, Mapping[str, int]]) -> dict:
    """Per flavour the fractions of valid tracks with sd0 > +3 and < -3, and their count."""
    return {
        name: {
            "tracks": c["tracks"],
            "above_plus_3": c["positive"] / c["tracks"] if c["tracks"] else float("nan"),
            "below_minus_3": c["negative"] / c["tracks"] if c["tracks"] else float("nan"),
        }
        for name, c in counts.items()
    }


def merged_attrs(paths: CanonicalFiles) -> dict:
    """The jets attributes of a sample from those of its parts (see SUMMED_ATTRS)."""
    files = as_paths(paths)
    merged: dict = {}
    for path in files:
        with h5py.File(path, "r") as f:
            attrs = dict(f["jets"].attrs)
        if not merged:
            merged = {k: _json_attr(v, k, path) if _mergeable(k) else v for k, v in attrs.items()}
            continue
        if set(attrs) != set(merged):
            raise InputError(
                f"{path}: jets attributes {sorted(attrs)} differ from the first part's"
                f" ({files[0]}: {sorted(merged)}); ingest every part with the same jettag"
            )
        for key, value in attrs.items():
            if key in DERIVED_ATTRS:
                continue
            if not _mergeable(key):
                if not _equal_attr(value, merged[key]):
                    raise InputError(
                        f"{path}: jets attribute '{key}' = {value!r} differs from the first"
                        f" part's ({files[0]}: {merged[key]!r}); parts of one sample must be"
                        " ingested with the same settings"
                    )
                continue
            value = _json_attr(value, key, path)
            if key in SUMMED_ATTRS:
                merged[key] = _summed(merged[key], value)
            elif key in UNITED_ATTRS:
                merged[key] = sorted(set(merged[key]) | set(value))
            else:
                merged[key] = {**merged[key], **value}
    if "lifetime_sign_counts" in merged:
        merged["lifetime_sign_fractions"] = json.dumps(
            lifetime_sign_fractions(merged["lifetime_sign_counts"])
        )
    return {
        k: json.dumps(v, sort_keys=k in SUMMED_ATTRS) if _mergeable(k) else v
        for k, v in merged.items()
    }


def _mergeable(key: str) -> bool:
    """Whether an attribute combines across parts (rather than being equal in all)."""
    return key in SUMMED_ATTRS + UNITED_ATTRS + JOINED_ATTRS


def _json_attr(value: object, key: str, path: Path) -> object:
    """A JSON attribute's value."""
    try:
        return json.loads(value.decode() if isinstance(value, bytes) else str(value))
    except ValueError as err:
        raise InputError(
            f"{path}: jets attribute '{key}' is not JSON ({err}); rerun ingest"
        ) from err


def _summed(a: object, b: object) -> object:
    """Nested counters added key by key."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _summed(a.get(k, 0), b.get(k, 0)) for k in {**a, **b}}
    return a + b


def _equal_attr(a: object, b: object) -> bool:
    """HDF5 attribute values compare equal (arrays element-wise)."""
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def read_all(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the whole jets and tracks tables of an HDF5 file."""
    with h5py.File(path, "r") as f:
        return f["jets"][:], f["tracks"][:]


def with_fields(table: np.ndarray, columns: dict[str, np.ndarray]) -> np.ndarray:
    """A copy of a structured array (any shape) with columns appended, field by field.

    numpy.lib.recfunctions.append_fields loops in Python over records; this copies whole
    columns and is ~100 times faster on (n_jets, max_tracks) track tables.
    """
    names = table.dtype.names or ()
    dtype = [(n, table.dtype[n]) for n in names]
    dtype += [(n, np.asarray(v).dtype) for n, v in columns.items()]
    out = np.empty(table.shape, dtype=dtype)
    for name in names:
        out[name] = table[name]
    for name, values in columns.items():
        out[name] = values
    return out
