"""Model-ready arrays in a prepared split file (the `model_inputs` group): writer and reader.

Next to the FTAG `jets` and `tracks` tables (kept for the ATLAS tools), prepare writes every
input already transformed and normalised, as dense float32 arrays in uncompressed chunks. A
training loader then reads a contiguous block with one memcpy-like HDF5 read (millions of
jets/s) instead of decompressing a compound table and transforming it field by field
(~0.1-0.2 M jets/s). Training and evaluation (predict, saliency, importance, learning curve)
read a model's inputs through ModelInputReader, which selects the model's columns and, for a
model normalised on another sample (transfer learning), re-standardises them exactly.

Layout (n = jets, t = max_tracks):
  model_inputs/tracks        (n, t, n_track_inputs) float32, zero on padding; attrs `norm`
  model_inputs/valid         (n, t) bool, True = real track
  model_inputs/jets          (n, n_jet_inputs) float32; attrs `norm`
  model_inputs/labels        (n,) int32 flavour_label
  model_inputs/weights       (n,) float32 sample_weight
  model_inputs/track_origin  (n, t) int8 ftagTruthOriginLabel, -1 on padding and unknown
  model_inputs/track_vertex  (n, t) int16 ftagTruthVertexIndex, -1 on padding and unknown
                             (absent from files prepared before it existed: read as -1)
  model_inputs/event_number  (n,) int64
The `norm` attributes hold the JSON of norm.yaml's group (name -> transform, mean, std), in
feature order, so a reader can check (or correct) the normalisation a model expects.

Arrays come back as numpy, in the model's feature order (training wraps them in tensors):
  tracks (n, t, f) float32, valid (n, t) bool, jets (n, j) float32, labels (n,) int32,
  weights (n,) float32, track_origin (n, t) int8, track_vertex (n, t) int16,
  event_number (n,) int64.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import yaml

from jettag.errors import InputError
from jettag.transforms import Normalisation, normalisation_from_dict

GROUP = "model_inputs"
ORIGIN_FIELD = "ftagTruthOriginLabel"
VERTEX_FIELD = "ftagTruthVertexIndex"
CHUNK_JETS = 1024
STORED_ARRAYS = (
    "tracks", "valid", "jets", "labels", "weights", "track_origin", "track_vertex",
    "event_number",
)  # fmt: skip
# arrays a file prepared before they existed lacks: read as this fill value
LATER_ARRAYS = {"track_vertex": -1}


@dataclass(frozen=True)
class InputSpec:
    """Which variables a model reads and how each is normalised."""

    track_norms: tuple[Normalisation, ...]
    jet_norms: tuple[Normalisation, ...]
    classes: tuple[str, ...]

    @property
    def track_names(self) -> list[str]:
        """Track input names in feature order."""
        return [n.name for n in self.track_norms]

    @property
    def jet_names(self) -> list[str]:
        """Jet input names in feature order."""
        return [n.name for n in self.jet_norms]

    def to_dict(self) -> dict:
        """Plain form, stored in checkpoints so a model carries its own preprocessing."""
        return {
            "tracks": {n.name: n.to_dict() for n in self.track_norms},
            "jets": {n.name: n.to_dict() for n in self.jet_norms},
            "classes": list(self.classes),
        }

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        """Inverse of to_dict."""
        return cls(
            tuple(normalisation_from_dict(data["tracks"]).values()),
            tuple(normalisation_from_dict(data["jets"]).values()),
            tuple(data["classes"]),
        )


def input_spec(
    data_dir: Path,
    track_inputs: Sequence[str] | None = None,
    jet_inputs: Sequence[str] | None = None,
) -> InputSpec:
    """The inputs of a prepared dataset (norm.yaml), optionally restricted to some of them."""
    norm = yaml.safe_load((data_dir / "norm.yaml").read_text())
    weights = yaml.safe_load((data_dir / "weights.yaml").read_text())
    tracks = normalisation_from_dict(norm["tracks"])
    jets = normalisation_from_dict(norm.get("jets") or {})
    for group, chosen, available in (("track", track_inputs, tracks), ("jet", jet_inputs, jets)):
        missing = sorted(set(chosen or ()) - set(available))
        if missing:
            raise InputError(
                f"{data_dir / 'norm.yaml'}: no {group} inputs {missing}; have {sorted(available)}"
            )
    if track_inputs is not None:
        tracks = {name: tracks[name] for name in track_inputs}
    if jet_inputs is not None:
        jets = {name: jets[name] for name in jet_inputs}
    return InputSpec(tuple(tracks.values()), tuple(jets.values()), tuple(weights["classes"]))


def build_inputs(
    jets: np.ndarray, tracks: np.ndarray, spec: InputSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transformed, normalised arrays (tracks (n, t, f), valid (n, t), jets (n, j)) from tables."""
    return _transformed(jets, tracks, spec.track_norms, spec.jet_norms)


def _transformed(
    jets: np.ndarray,
    tracks: np.ndarray,
    track_norms: Sequence[Normalisation],
    jet_norms: Sequence[Normalisation],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """build_inputs from the normalisations themselves."""
    valid = tracks["valid"]
    track_out = np.zeros((*valid.shape, len(track_norms)), dtype=np.float32)
    for k, norm in enumerate(track_norms):
        track_out[..., k][valid] = norm.apply(tracks[norm.name][valid])
    jet_out = np.zeros((len(jets), len(jet_norms)), dtype=np.float32)
    for k, norm in enumerate(jet_norms):
        jet_out[:, k] = norm.apply(jets[norm.name])
    return track_out, valid, jet_out


def track_origin(tracks: np.ndarray) -> np.ndarray:
    """(n, t) int8 truth origin of real tracks, -1 on padding (and everywhere without the field)."""
    if ORIGIN_FIELD not in (tracks.dtype.names or ()):
        return np.full(tracks.shape, -1, dtype=np.int8)
    return np.where(tracks["valid"], tracks[ORIGIN_FIELD], -1).astype(np.int8)


def track_vertex(tracks: np.ndarray) -> np.ndarray:
    """(n, t) int16 truth vertex index of real tracks, -1 on padding and without the field."""
    if VERTEX_FIELD not in (tracks.dtype.names or ()):
        return np.full(tracks.shape, -1, dtype=np.int16)
    index = tracks[VERTEX_FIELD]
    if index.size and index.max() > np.iinfo(np.int16).max:
        raise InputError(f"'{VERTEX_FIELD}' above {np.iinfo(np.int16).max} in one jet")
    return np.where(tracks["valid"], index, -1).astype(np.int16)


def norm_attribute(norms: Sequence[Normalisation]) -> str:
    """The JSON stored in a dataset's `norm` attribute (feature order kept)."""
    return json.dumps({n.name: n.to_dict() for n in norms})


class ModelInputWriter:
    """Append blocks of (jets, tracks) tables to an open file as model-ready arrays."""

    def __init__(
        self,
        file: h5py.File,
        max_tracks: int,
        track_norms: Sequence[Normalisation],
        jet_norms: Sequence[Normalisation],
    ) -> None:
        self.track_norms, self.jet_norms = tuple(track_norms), tuple(jet_norms)
        self.group = group = file.create_group(GROUP)
        n_trk, n_jet, t = len(self.track_norms), len(self.jet_norms), max_tracks
        self.datasets = {
            name: _extendable(group, name, tail, dtype)
            for name, tail, dtype in (
                ("tracks", (t, n_trk), np.float32),
                ("valid", (t,), np.bool_),
                ("jets", (n_jet,), np.float32),
                ("labels", (), np.int32),
                ("weights", (), np.float32),
                ("track_origin", (t,), np.int8),
                ("track_vertex", (t,), np.int16),
                ("event_number", (), np.int64),
            )
        }
        self.datasets["tracks"].attrs["norm"] = norm_attribute(self.track_norms)
        self.datasets["jets"].attrs["norm"] = norm_attribute(self.jet_norms)

    def append(self, jets: np.ndarray, tracks: np.ndarray) -> None:
        """Transform, normalise and append a block of prepared jets and their tracks."""
        track_x, valid, jet_x = _transformed(jets, tracks, self.track_norms, self.jet_norms)
        columns = {
            "tracks": track_x,
            "valid": valid,
            "jets": jet_x,
            "labels": jets["flavour_label"],
            "weights": jets["sample_weight"],
            "track_origin": track_origin(tracks),
            "track_vertex": track_vertex(tracks),
            "event_number": jets["eventNumber"],
        }
        self.group.attrs["has_track_origin"] = ORIGIN_FIELD in (tracks.dtype.names or ())
        self.group.attrs["has_track_vertex"] = VERTEX_FIELD in (tracks.dtype.names or ())
        n0 = self.datasets["labels"].shape[0]
        n1 = n0 + len(jets)
        for name, values in columns.items():
            dataset = self.datasets[name]
            dataset.resize((n1, *dataset.shape[1:]))
            dataset[n0:n1] = values


def _extendable(group: h5py.Group, name: str, tail: tuple[int, ...], dtype) -> h5py.Dataset:
    """An empty dataset of rows shaped `tail`, uncompressed (read speed over disk space)."""
    # HDF5 chunks cannot be empty: a zero-width axis (no jet inputs) gets an unlimited one
    maxshape = (None, *(d if d else None for d in tail))
    chunks = (CHUNK_JETS, *(d if d else 1 for d in tail))
    return group.create_dataset(
        name, shape=(0, *tail), maxshape=maxshape, dtype=dtype, chunks=chunks
    )


def has_model_inputs(path: Path) -> bool:
    """Whether a prepared split file holds the model-ready arrays (prepare since 2026-11)."""
    try:
        with h5py.File(path, "r") as f:
            return GROUP in f
    except OSError as err:
        raise InputError(f"{path}: cannot read prepared split ({err})") from err


class ModelInputReader:
    """Row ranges of a prepared split's model-ready arrays, in a model's feature order.

    Selects the model's inputs (in its order) from those the file holds. When the model was
    normalised differently (a pretrained model keeps its source dataset's normalisation),
    the stored values are re-standardised exactly: both are affine in the same transform.
    """

    def __init__(self, path: Path, spec: InputSpec, need_track_origin: bool = False) -> None:
        self.path = path
        try:
            self.file = h5py.File(path, "r")
            self.group = self.file[GROUP]
        except (OSError, KeyError) as err:
            raise InputError(f"{path}: no readable '{GROUP}' group ({err}); rerun prepare") from err
        self.tracks = self._columns("tracks", spec.track_norms)
        self.jets = self._columns("jets", spec.jet_norms)
        if need_track_origin and not self.group.attrs.get("has_track_origin", False):
            raise InputError(
                f"{path}: tracks have no '{ORIGIN_FIELD}' for the track-origin task"
                " (training.track_origin_weight > 0)"
            )

    def _columns(self, name: str, norms: Sequence[Normalisation]) -> _Columns:
        """Which stored columns make the model's inputs, and the affine map onto its scale."""
        stored = json.loads(self.group[name].attrs["norm"])
        order = list(stored)
        missing = [n.name for n in norms if n.name not in stored]
        if missing:
            raise InputError(f"{self.path}: no {name} inputs {missing}; have {order}")
        scale, shift = [], []
        for norm in norms:
            have = stored[norm.name]
            if have["transform"] != norm.transform:
                raise InputError(
                    f"{self.path}: input '{norm.name}' was prepared with transform"
                    f" '{have['transform']}', the model expects '{norm.transform}'"
                )
            # (t - m_have) / s_have -> (t - m) / s
            scale.append(have["std"] / norm.std)
            shift.append((have["mean"] - norm.mean) / norm.std)
        index = [order.index(n.name) for n in norms]
        identity = index == list(range(len(order))) and all(
            s == 1 and d == 0 for s, d in zip(scale, shift, strict=True)
        )
        return _Columns(
            index, np.asarray(scale, np.float32), np.asarray(shift, np.float32), identity
        )

    def __len__(self) -> int:
        return self.group["labels"].shape[0]

    def read(self, start: int, stop: int, keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Rows [start, stop) (those where keep is True, when given), in the model's layout."""
        try:
            arrays = {name: self._dataset(name)[start:stop] for name in STORED_ARRAYS}
        except (OSError, KeyError) as err:
            raise InputError(f"{self.path}: failed reading rows {start}-{stop} ({err})") from err
        if keep is not None:
            arrays = {name: values[keep] for name, values in arrays.items()}
        return self.to_model(arrays)

    def _dataset(self, name: str) -> h5py.Dataset | _Filled:
        """A stored array, or its fill value where the file predates it."""
        if name in LATER_ARRAYS and name not in self.group:
            valid = self.group["valid"]
            return _Filled(valid.shape, np.int16, LATER_ARRAYS[name])
        return self.group[name]

    def empty_like(self, n_rows: int) -> dict[str, np.ndarray]:
        """Arrays for n_rows jets in the file's stored layout (to refill with read_into)."""
        return {
            name: np.empty((n_rows, *self._dataset(name).shape[1:]), self._dataset(name).dtype)
            for name in STORED_ARRAYS
        }

    def read_into(
        self, out: dict[str, np.ndarray], offset: int, start: int, stop: int,
        keep: np.ndarray | None = None,
    ) -> int:  # fmt: skip
        """Copy rows [start, stop) (where keep) into out's rows from offset; the next offset."""
        n = stop - start if keep is None else int(np.count_nonzero(keep))
        try:
            for name in STORED_ARRAYS:
                dataset, target = self._dataset(name), out[name][offset : offset + n]
                if target.size == 0:
                    continue
                if keep is None:  # straight from the file into the buffer: no temporary
                    dataset.read_direct(target, np.s_[start:stop])
                else:
                    target[...] = dataset[start:stop][keep]
        except (OSError, KeyError) as err:
            raise InputError(f"{self.path}: failed reading rows {start}-{stop} ({err})") from err
        return offset + n

    def to_model(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Stored-layout arrays (as read) -> the model's columns and normalisation."""
        valid = arrays["valid"]
        tracks = self.tracks.apply(arrays["tracks"])
        if not self.tracks.identity:
            tracks[~valid] = 0.0
        return {**arrays, "tracks": tracks, "jets": self.jets.apply(arrays["jets"])}

    def layout(self) -> tuple[str, str]:
        """The stored inputs and their normalisation (files of one split must share it)."""
        return self.group["tracks"].attrs["norm"], self.group["jets"].attrs["norm"]

    def close(self) -> None:
        """Close the file."""
        self.file.close()

    def __enter__(self) -> ModelInputReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class _Filled:
    """A constant array standing in for a dataset (the subset of h5py's interface used)."""

    shape: tuple[int, ...]
    dtype: type
    value: int

    def __getitem__(self, rows: slice) -> np.ndarray:
        n = len(range(*rows.indices(self.shape[0])))
        return np.full((n, *self.shape[1:]), self.value, self.dtype)

    def read_direct(self, target: np.ndarray, _rows) -> None:
        """Fill target as h5py's read_direct would copy into it."""
        target[...] = self.value


@dataclass(frozen=True)
class _Columns:
    """Stored columns of a model's inputs and the affine map onto the model's normalisation."""

    index: list[int]
    scale: np.ndarray
    shift: np.ndarray
    identity: bool

    def apply(self, values: np.ndarray) -> np.ndarray:
        """(..., n_stored) -> (..., n_model) float32."""
        if self.identity:
            return values
        # indexing the last axis leaves that axis outermost in memory; batches gather rows,
        # which are then scattered: C order makes each row one block (np.take 4x faster)
        return np.ascontiguousarray(values[..., self.index] * self.scale + self.shift)


def read_model_inputs(
    path: Path, spec: InputSpec, max_jets: int | None = None, need_track_origin: bool = False
) -> dict[str, np.ndarray]:
    """A prepared split's inputs for a model (the first max_jets rows, already shuffled).

    Reads the model-ready arrays when the file has them, else builds them from the tables.
    need_track_origin: the tracks must carry ftagTruthOriginLabel (auxiliary task); without
    it, track_origin is -1 everywhere when the file has no such field.
    """
    if has_model_inputs(path):
        with ModelInputReader(path, spec, need_track_origin) as reader:
            return reader.read(0, len(reader) if max_jets is None else min(max_jets, len(reader)))
    return read_model_inputs_from_tables(path, spec, max_jets, need_track_origin)


def read_model_inputs_from_tables(
    path: Path, spec: InputSpec, max_jets: int | None = None, need_track_origin: bool = False
) -> dict[str, np.ndarray]:
    """read_model_inputs from the FTAG jets and tracks tables (transformed and normalised here)."""
    try:
        with h5py.File(path, "r") as f:
            rows = slice(0, max_jets)
            jets, tracks = f["jets"][rows], f["tracks"][rows]
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: cannot read prepared split ({err})") from err
    missing = [n for n in spec.track_names if n not in tracks.dtype.names]
    if missing:
        raise InputError(f"{path}: tracks lack inputs {missing}; have {tracks.dtype.names}")
    if need_track_origin and ORIGIN_FIELD not in tracks.dtype.names:
        raise InputError(
            f"{path}: tracks have no '{ORIGIN_FIELD}' for the track-origin task"
            f" (training.track_origin_weight > 0); have {tracks.dtype.names}"
        )
    track_x, valid, jet_x = build_inputs(jets, tracks, spec)
    return {
        "tracks": track_x,
        "valid": np.ascontiguousarray(valid),
        "jets": jet_x,
        "labels": jets["flavour_label"].astype(np.int32),
        "weights": jets["sample_weight"].astype(np.float32),
        "track_origin": track_origin(tracks),
        "track_vertex": track_vertex(tracks),
        "event_number": jets["eventNumber"].astype(np.int64),
    }
