"""A prepared split as a model's tensors (read by io.model_inputs), batches and K folds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import yaml

from jettag.errors import InputError
from jettag.features.split import assign_fold
from jettag.io import model_inputs
from jettag.io.canonical import absent_fields, sample_name
from jettag.io.model_inputs import (
    ORIGIN_FIELD,
    InputSpec,
    read_model_inputs,
    read_model_inputs_from_tables,
)

BUCKET_BATCHES = 32
SCAN_JETS = 65_536  # rows read at a time when looking for a labelled track


@dataclass
class TensorData:
    """A split as tensors.

    tracks: (n_jets, max_tracks, n_track_features) float32, zero on padding;
    valid: (n_jets, max_tracks) bool, True = real track; jets: (n_jets, n_jet_features);
    labels: (n_jets,) int64; weights: (n_jets,) float32; track_origin: (n_jets, max_tracks)
    int8 truth origin of each track (ftagTruthOriginLabel), -1 on padding and where unknown;
    track_vertex: (n_jets, max_tracks) int16 truth vertex index (ftagTruthVertexIndex), -1 on
    padding and where unknown; event_number: (n_jets,) int64, for K-fold assignment.
    """

    tracks: torch.Tensor
    valid: torch.Tensor
    jets: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor
    track_origin: torch.Tensor
    track_vertex: torch.Tensor
    event_number: torch.Tensor

    def subset(self, rows: torch.Tensor) -> TensorData:
        """The jets at rows (a bool mask or indices), in that order."""
        return TensorData(*(getattr(self, f.name)[rows] for f in dataclasses.fields(self)))

    def with_label_noise(self, fraction: float, n_classes: int, seed: int) -> TensorData:
        """A copy where a random `fraction` of the jets carry another class, drawn uniformly."""
        if fraction <= 0:
            return self
        generator = torch.Generator().manual_seed(seed)
        n_flipped = round(fraction * len(self))
        rows = torch.randperm(len(self), generator=generator)[:n_flipped]
        # a shift of 1..n_classes-1 classes: never the true one
        shift = torch.randint(1, n_classes, (n_flipped,), generator=generator)
        labels = self.labels.clone()
        labels[rows] = (labels[rows] + shift) % n_classes
        return dataclasses.replace(self, labels=labels)

    @classmethod
    def concatenate(cls, parts: Sequence[TensorData]) -> TensorData:
        """One split made of several (same inputs), in order."""
        return cls(
            *(torch.cat([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls))
        )

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TensorData:
        """Tensors sharing memory with a model's arrays (io.model_inputs layout)."""
        return cls(
            tracks=torch.from_numpy(arrays["tracks"]),
            valid=torch.from_numpy(arrays["valid"]),
            jets=torch.from_numpy(arrays["jets"]),
            labels=torch.from_numpy(arrays["labels"].astype(np.int64)),
            weights=torch.from_numpy(arrays["weights"]),
            track_origin=torch.from_numpy(arrays["track_origin"]),
            track_vertex=torch.from_numpy(arrays["track_vertex"]),
            event_number=torch.from_numpy(arrays["event_number"]),
        )

    def __len__(self) -> int:
        return self.labels.shape[0]

    def batch_indices(
        self, batch_size: int, generator: torch.Generator | None = None, bucket: bool = False
    ) -> list[torch.Tensor | slice]:
        """Row indices of each batch (see batch_indices).

        The order comes from the CPU (CPU generators), so a split held on a GPU gives the
        same batches as in host memory.
        """
        return batch_indices(self.valid.sum(dim=1).cpu(), batch_size, generator, bucket)

    def batches(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        start_batch: int = 0,
        bucket: bool = False,
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """(tracks, valid, jets, labels, weights, track_origin, track_vertex) batches.

        Shuffled with a generator.

        start_batch skips the first batches of the same order (resuming an epoch).
        """
        for index in self.batch_indices(batch_size, generator, bucket)[start_batch:]:
            yield self.batch(index)

    def batch(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, ...]:
        """The batches' tensors (see batches) of the jets at index."""
        fields = (
            self.tracks, self.valid, self.jets, self.labels, self.weights, self.track_origin,
            self.track_vertex,
        )  # fmt: skip
        if isinstance(index, slice):
            return tuple(t[index] for t in fields)
        if self.tracks.device.type != "cpu":  # gathered where the split lives
            index = index.to(self.tracks.device, non_blocking=True)
            return tuple(t.index_select(0, index) for t in fields)
        # numpy's take gathers rows ~8 times faster than torch indexing on the CPU here
        rows = index.numpy()
        return tuple(torch.from_numpy(np.take(t.numpy(), rows, axis=0)) for t in fields)

    def to(self, device: torch.device) -> TensorData:
        """The split copied to a device, whose batches are then gathered there."""
        return TensorData(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))

    def nbytes(self) -> int:
        """Bytes held by the split's tensors."""
        return sum(
            getattr(self, f.name).element_size() * getattr(self, f.name).nelement()
            for f in dataclasses.fields(self)
        )


def class_weight_tensor(
    data_dir: Path, use_class_weights: bool, n_classes: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The loss's weight per class: weights.yaml's class_weights, or ones when they are off."""
    if not use_class_weights:
        return torch.ones(n_classes, dtype=torch.float32, device=device)
    path = Path(data_dir) / "weights.yaml"
    try:
        values = yaml.safe_load(path.read_text())["class_weights"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as err:
        raise InputError(f"{path}: no class_weights to read ({err!r})") from err
    if len(values) != n_classes:
        raise InputError(f"{path}: {len(values)} class_weights for {n_classes} classes")
    return torch.tensor(values, dtype=torch.float32, device=device)


def place_on_device(
    splits: Sequence, device: torch.device, mode: str, free_bytes: int | None = None
) -> list:
    """The splits copied to the device when training.data_on_device allows and they fit, else
    as given (a step then copies nothing from the host).

    auto: on CUDA, in-memory splits that together take under half the free device memory
    (the rest is for activations); never: batches are copied from the host at each step.
    """
    if device.type != "cuda" or mode == "never":
        return list(splits)
    if not all(isinstance(s, TensorData) for s in splits):
        return list(splits)  # streamed splits do not fit by construction
    need = sum(s.nbytes() for s in splits)
    if free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    if need > free_bytes // 2:
        return list(splits)
    return [s.to(device) for s in splits]


def to_device(tensors: Sequence[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Tensors moved to the device; host tensors go through pinned memory, without blocking."""
    if device.type != "cuda":
        return [t.to(device) for t in tensors]
    return [
        t.pin_memory().to(device, non_blocking=True) if t.device.type == "cpu" else t
        for t in tensors
    ]


def batch_indices(
    multiplicity: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
    bucket: bool = False,
) -> list[torch.Tensor | slice]:
    """Row indices of each batch: in order, shuffled (generator), or shuffled and bucketed.

    multiplicity: (n_jets,) tracks per jet. Without a generator, bucket=True sorts all jets
    by multiplicity (for evaluation).

    Bucketing sorts each run of BUCKET_BATCHES batches by track multiplicity before cutting
    it, so a batch holds jets of similar multiplicity and a transformer attends over fewer
    padding slots; the batches are then shuffled again.
    """
    n = multiplicity.shape[0]
    if generator is None and bucket:
        # evaluation: order is free, so sort by multiplicity and attend over little padding
        return list(torch.argsort(multiplicity, stable=True).split(batch_size))
    if generator is None:
        return [slice(start, start + batch_size) for start in range(0, n, batch_size)]
    order = torch.randperm(n, generator=generator)
    if not bucket:
        return list(order.split(batch_size))
    chunks = []
    for chunk in order.split(batch_size * BUCKET_BATCHES):
        chunk = chunk[torch.argsort(multiplicity[chunk], stable=True)]
        chunks.extend(chunk.split(batch_size))
    return [chunks[k] for k in torch.randperm(len(chunks), generator=generator)]


def load_split(
    path: Path, spec: InputSpec, max_jets: int | None = None, need_track_origin: bool = False
) -> TensorData:
    """A prepared split as a model's tensors (the first max_jets rows; see read_model_inputs)."""
    return TensorData.from_arrays(read_model_inputs(path, spec, max_jets, need_track_origin))


def load_split_from_tables(
    path: Path, spec: InputSpec, max_jets: int | None = None, need_track_origin: bool = False
) -> TensorData:
    """load_split from the FTAG tables (files without model-ready arrays, benchmarks)."""
    arrays = read_model_inputs_from_tables(path, spec, max_jets, need_track_origin)
    return TensorData.from_arrays(arrays)


@dataclass(frozen=True)
class TrackTask:
    """An auxiliary per-track task: the truth field it learns and the key that weights it."""

    name: str  # in messages: 'the track-origin task'
    field: str  # canonical track field
    array: str  # model_inputs array
    weight: str  # training key

    def weight_key(self, model_name: str) -> str:
        """The config key that turns a model's task off."""
        return f"models.{model_name}.training.{self.weight}"


TRACK_ORIGIN_TASK = TrackTask("track-origin", ORIGIN_FIELD, "track_origin", "track_origin_weight")
TRACK_VERTEX_TASK = TrackTask(
    "track-vertexing", model_inputs.VERTEX_FIELD, "track_vertex", "track_vertex_weight"
)


def origin_weight_key(model_name: str) -> str:
    """The config key that turns a model's track-origin task off."""
    return TRACK_ORIGIN_TASK.weight_key(model_name)


def check_track_labels(paths: Sequence[Path], model_name: str, task: TrackTask) -> None:
    """Refuse an auxiliary track task on prepared files whose tracks lack its truth label.

    Such a file's labels are placeholders (-1): the task would have no labelled track and
    its loss no value. A file says so in its jets attribute `absent_fields`; a file from
    before that attribute has no valid track with a label >= 0.
    """
    key = task.weight_key(model_name)
    for path in paths:
        try:
            with h5py.File(path, "r") as f:
                attrs = dict(f["jets"].attrs)
                absent = task.field in absent_fields(attrs, path)
                labelled, n_valid = (False, 0) if absent else _any_labelled_track(f, task)
        except (OSError, KeyError) as err:
            raise InputError(f"{path}: cannot read prepared split ({err})") from err
        if absent:
            # a split file's stem is 'train', not the sample: name it only when recorded
            sample = f"sample '{sample_name(attrs, path)}'" if "sample" in attrs else "its sample"
            raise InputError(
                f"{path}: the {task.name} task ({task.weight} > 0) learns each track's"
                f" '{task.field}', which {sample} does not provide (absent from its input"
                f" files); set {key} to 0"
            )
        if not labelled:
            raise InputError(
                f"{path}: the {task.name} task ({task.weight} > 0) has no labelled track:"
                f" '{task.field}' is -1 (unknown) on all {n_valid} valid tracks; set {key}"
                f" to 0, or ingest inputs that provide '{task.field}'"
            )


def check_track_origins(paths: Sequence[Path], model_name: str) -> None:
    """check_track_labels for the track-origin task."""
    check_track_labels(paths, model_name, TRACK_ORIGIN_TASK)


def _any_labelled_track(f: h5py.File, task: TrackTask) -> tuple[bool, int]:
    """(whether a valid track has a label >= 0, valid tracks scanned); stops at the first."""
    if model_inputs.GROUP in f and task.array in f[model_inputs.GROUP]:
        group = f[model_inputs.GROUP]
        valid, label = group["valid"], group[task.array]

        def read(rows: slice) -> tuple[np.ndarray, np.ndarray]:
            return valid[rows], label[rows]
    else:
        tracks = f["tracks"]
        if task.field not in (tracks.dtype.names or ()):
            return False, int(np.count_nonzero(tracks.fields("valid")[:]))

        def read(rows: slice) -> tuple[np.ndarray, np.ndarray]:
            block = tracks.fields(["valid", task.field])[rows]
            return block["valid"], block[task.field]

    n_valid = 0
    for start in range(0, f["jets"].shape[0], SCAN_JETS):
        is_valid, labels = read(slice(start, start + SCAN_JETS))
        if np.any(labels[is_valid] >= 0):
            return True, n_valid
        n_valid += int(np.count_nonzero(is_valid))
    return False, n_valid


def kfold_splits(
    data_dir: Path, spec: InputSpec, n_folds: int, fold: int, need_track_origin: bool = False
) -> tuple[TensorData, TensorData]:
    """(training, validation) of fold `fold`: the train and val splits pooled, fold held out."""
    pool = TensorData.concatenate(
        [load_split(data_dir / f"{name}.h5", spec, need_track_origin=need_track_origin)
         for name in ("train", "val")]
    )  # fmt: skip
    held_out = torch.from_numpy(assign_fold(pool.event_number.numpy(), n_folds) == fold)
    return pool.subset(~held_out), pool.subset(held_out)
