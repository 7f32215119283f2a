"""Model inputs from prepared HDF5 files: transformed, normalised, padded tensors."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import yaml

from jettag.features.split import assign_fold
from jettag.features.transforms import Normalisation, normalisation_from_dict
from jettag.io.readers import InputError

BUCKET_BATCHES = 32
ORIGIN_FIELD = "ftagTruthOriginLabel"


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


@dataclass
class TensorData:
    """A split as tensors.

    tracks: (n_jets, max_tracks, n_track_features) float32, zero on padding;
    valid: (n_jets, max_tracks) bool, True = real track; jets: (n_jets, n_jet_features);
    labels: (n_jets,) int64; weights: (n_jets,) float32; track_origin: (n_jets, max_tracks)
    int8 truth origin of each track (ftagTruthOriginLabel), -1 on padding and where unknown;
    event_number: (n_jets,) int64, for K-fold assignment.
    """

    tracks: torch.Tensor
    valid: torch.Tensor
    jets: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor
    track_origin: torch.Tensor
    event_number: torch.Tensor

    def subset(self, rows: torch.Tensor) -> TensorData:
        """The jets at rows (a bool mask or indices), in that order."""
        return TensorData(*(getattr(self, f.name)[rows] for f in dataclasses.fields(self)))

    @classmethod
    def concatenate(cls, parts: Sequence[TensorData]) -> TensorData:
        """One split made of several (same inputs), in order."""
        return cls(
            *(torch.cat([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls))
        )

    def __len__(self) -> int:
        return self.labels.shape[0]

    def batch_indices(
        self, batch_size: int, generator: torch.Generator | None = None, bucket: bool = False
    ) -> list[torch.Tensor | slice]:
        """Row indices of each batch: in order, shuffled (generator), or shuffled and bucketed.

        Without a generator, bucket=True sorts all jets by multiplicity (for evaluation).

        Bucketing sorts each run of BUCKET_BATCHES batches by track multiplicity before cutting
        it, so a batch holds jets of similar multiplicity and a transformer attends over fewer
        padding slots; the batches are then shuffled again.
        """
        n = len(self)
        if generator is None and bucket:
            # evaluation: order is free, so sort by multiplicity and attend over little padding
            return list(torch.argsort(self.valid.sum(dim=1), stable=True).split(batch_size))
        if generator is None:
            return [slice(start, start + batch_size) for start in range(0, n, batch_size)]
        order = torch.randperm(n, generator=generator)
        if not bucket:
            return list(order.split(batch_size))
        multiplicity = self.valid.sum(dim=1)
        chunks = []
        for chunk in order.split(batch_size * BUCKET_BATCHES):
            chunk = chunk[torch.argsort(multiplicity[chunk], stable=True)]
            chunks.extend(chunk.split(batch_size))
        return [chunks[k] for k in torch.randperm(len(chunks), generator=generator)]

    def batches(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        start_batch: int = 0,
        bucket: bool = False,
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """(tracks, valid, jets, labels, weights, track_origin) batches; shuffled with a generator.

        start_batch skips the first batches of the same order (resuming an epoch).
        """
        for index in self.batch_indices(batch_size, generator, bucket)[start_batch:]:
            yield (
                self.tracks[index], self.valid[index], self.jets[index],
                self.labels[index], self.weights[index], self.track_origin[index],
            )  # fmt: skip


def build_inputs(
    jets: np.ndarray, tracks: np.ndarray, spec: InputSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transformed, normalised arrays (tracks (n, t, f), valid (n, t), jets (n, j)) from tables."""
    valid = tracks["valid"]
    track_out = np.zeros((*valid.shape, len(spec.track_norms)), dtype=np.float32)
    for k, norm in enumerate(spec.track_norms):
        track_out[..., k][valid] = norm.apply(tracks[norm.name][valid])
    jet_out = np.zeros((len(jets), len(spec.jet_norms)), dtype=np.float32)
    for k, norm in enumerate(spec.jet_norms):
        jet_out[:, k] = norm.apply(jets[norm.name])
    return track_out, valid, jet_out


def load_split(
    path: Path, spec: InputSpec, max_jets: int | None = None, need_track_origin: bool = False
) -> TensorData:
    """Read a prepared split file into tensors (the first max_jets rows, already shuffled).

    need_track_origin: the tracks must carry ftagTruthOriginLabel (auxiliary task); without
    it, track_origin is -1 everywhere when the file has no such field.
    """
    try:
        with h5py.File(path, "r") as f:
            rows = slice(0, max_jets)
            jets, tracks = f["jets"][rows], f["tracks"][rows]
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: cannot read prepared split ({err})") from err
    missing = [n for n in spec.track_names if n not in tracks.dtype.names]
    if missing:
        raise InputError(f"{path}: tracks lack inputs {missing}; have {tracks.dtype.names}")
    if ORIGIN_FIELD in tracks.dtype.names:
        origin = np.where(tracks["valid"], tracks[ORIGIN_FIELD], -1).astype(np.int8)
    elif need_track_origin:
        raise InputError(
            f"{path}: tracks have no '{ORIGIN_FIELD}' for the track-origin task"
            f" (training.track_origin_weight > 0); have {tracks.dtype.names}"
        )
    else:
        origin = np.full(tracks.shape, -1, dtype=np.int8)
    track_x, valid, jet_x = build_inputs(jets, tracks, spec)
    return TensorData(
        tracks=torch.from_numpy(track_x),
        valid=torch.from_numpy(np.ascontiguousarray(valid)),
        jets=torch.from_numpy(jet_x),
        labels=torch.from_numpy(jets["flavour_label"].astype(np.int64)),
        weights=torch.from_numpy(jets["sample_weight"].astype(np.float32)),
        track_origin=torch.from_numpy(origin),
        event_number=torch.from_numpy(jets["eventNumber"].astype(np.int64)),
    )


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
