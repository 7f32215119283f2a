"""Saliency maps: the gradient of D_b with respect to each track input, averaged over b jets.

As in arXiv:1312.6034 and the DIPS note (ATL-PHYS-PUB-2020-014): b jets with exactly n_tracks
tracks, tracks ranked by lifetime-signed d0 significance, split into jets that pass and fail
the D_b cut of a working point. A map is (n_inputs, n_tracks): entry [k, t] is the mean over
jets of dD_b/dx, x the k-th normalised input (norm.yaml: x = (transform(v) - mean) / std) of
the track of rank t. The model sees the same arrays as in the predict stage.

Jets are unweighted, as in evaluate.py (ATLAS quotes performance on the natural spectrum).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from jettag.atomic import write_json
from jettag.evaluation.metrics import b_discriminant, cut_for_efficiency
from jettag.evaluation.predict import probabilities
from jettag.training.checkpoint import load_checkpoint
from jettag.training.data import InputSpec, build_inputs
from jettag.training.loop import load_trained_model

SD0 = "IP3D_signed_d0_significance"
FLAVOURS = ("b", "c", "light")
BATCH = 8192


@dataclasses.dataclass(frozen=True)
class TaggerInputs:
    """A trained network and one prepared split as the network's input arrays.

    track_x: (n_jets, max_tracks, n_track_inputs) float32, normalised, zero on padding;
    valid: (n_jets, max_tracks) bool, True = real track; jet_x: (n_jets, n_jet_inputs);
    truth: (n_jets,) class index into the file's classes; file_index / model_index: flavour
    name -> index into the file's classes / the network's outputs (they may differ).
    """

    model: nn.Module
    spec: InputSpec
    tagger: str
    sample_label: str
    tracks: np.ndarray
    track_x: np.ndarray
    valid: np.ndarray
    jet_x: np.ndarray
    truth: np.ndarray
    file_index: dict[str, int]
    model_index: dict[str, int]

    def is_flavour(self, flavour: str) -> np.ndarray:
        """(n_jets,) bool, True for jets of this truth flavour."""
        return self.truth == self.file_index[flavour]


def load_tagger_inputs(checkpoint: Path, split_file: Path) -> TaggerInputs:
    """The network of a checkpoint (eval mode) and a prepared split file, ready to score."""
    model, spec = load_trained_model(checkpoint)
    tagger = str(load_checkpoint(checkpoint).get("model_name", Path(checkpoint).stem))
    with h5py.File(split_file, "r") as f:
        jets, tracks = f["jets"][:], f["tracks"][:]
        file_classes = [str(c) for c in f["jets"].attrs["flavour_label"]]
        sample_label = str(f["jets"].attrs.get("sample_label", ""))
    for classes, where in ((file_classes, split_file), (spec.classes, checkpoint)):
        missing = [c for c in FLAVOURS if c not in classes]
        if missing:
            raise ValueError(f"{where}: classes {list(classes)} lack {missing}")
    track_x, valid, jet_x = build_inputs(jets, tracks, spec)
    return TaggerInputs(
        model=model, spec=spec, tagger=tagger, sample_label=sample_label, tracks=tracks,
        track_x=track_x, valid=valid, jet_x=jet_x, truth=jets["flavour_label"],
        file_index={c: file_classes.index(c) for c in FLAVOURS},
        model_index={c: spec.classes.index(c) for c in FLAVOURS},
    )  # fmt: skip


def discriminant(prob: np.ndarray, model_index: dict[str, int], f_c: float) -> np.ndarray:
    """D_b (n_jets,) from softmax outputs (n_jets, n_classes)."""
    pb, pc, pu = (prob[:, model_index[c]] for c in FLAVOURS)
    return b_discriminant(pb, pc, pu, f_c)


def _discriminant_torch(logits: torch.Tensor, model_index: dict[str, int], f_c: float):
    """D_b (batch,) from logits, differentiable; log-softmax keeps tiny probabilities finite."""
    log_p = torch.log_softmax(logits.float(), dim=1)
    log_fc = torch.tensor(f_c).log()  # -inf for f_c = 0 drops the c term, as it should
    log_fu = torch.tensor(1.0 - f_c).log()
    denominator = torch.logaddexp(
        log_p[:, model_index["c"]] + log_fc, log_p[:, model_index["light"]] + log_fu
    )
    return log_p[:, model_index["b"]] - denominator


def discriminant_gradients(
    model: nn.Module,
    track_x: np.ndarray,
    valid: np.ndarray,
    jet_x: np.ndarray,
    model_index: dict[str, int],
    f_c: float,
) -> np.ndarray:
    """dD_b/d(track inputs) of each jet: (n_jets, max_tracks, n_track_inputs), zero on padding."""
    model.requires_grad_(False)  # only the inputs need gradients
    out = []
    for start in range(0, len(track_x), BATCH):
        rows = slice(start, start + BATCH)
        x = torch.from_numpy(track_x[rows].copy()).requires_grad_(True)
        with torch.enable_grad():
            logits = model(x, torch.from_numpy(valid[rows]), torch.from_numpy(jet_x[rows]))
            # jets do not interact in eval mode, so the gradient of the sum is per-jet
            (grad,) = torch.autograd.grad(_discriminant_torch(logits, model_index, f_c).sum(), x)
        out.append(grad.numpy())
    if not out:
        return np.zeros_like(track_x)
    return np.concatenate(out)


def _rank_tracks(
    track_x: np.ndarray, valid: np.ndarray, sd0: np.ndarray | None, n_tracks: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first n_tracks (all valid) of each jet sorted by sd0 descending (stable), rest kept."""
    if sd0 is None:
        return track_x, valid
    order = np.argsort(-sd0[:, :n_tracks], axis=1, kind="stable")
    ranked = track_x.copy()
    ranked[:, :n_tracks] = np.take_along_axis(track_x[:, :n_tracks], order[..., None], axis=1)
    return ranked, valid


def _mean_and_error(grads: np.ndarray) -> tuple[list | None, list | None]:
    """Mean map (n_inputs, n_tracks) over jets and its standard error; None without jets."""
    n = len(grads)
    if n == 0:
        return None, None
    mean = grads.mean(axis=0).T
    error = grads.std(axis=0, ddof=1).T / np.sqrt(n) if n > 1 else None
    return mean.tolist(), None if error is None else error.tolist()


def saliency_maps(
    checkpoint: Path,
    split_file: Path,
    f_c: float,
    output: Path,
    n_tracks: int = 8,
    b_efficiency: float = 0.77,
) -> dict:
    """Mean dD_b/d(input) maps for b jets with n_tracks tracks passing/failing the WP; JSON."""
    data = load_tagger_inputs(checkpoint, split_file)
    db = discriminant(
        probabilities(data.model, data.track_x, data.valid, data.jet_x), data.model_index, f_c
    )
    is_b = data.is_flavour("b")
    if not is_b.any():
        raise ValueError(f"{split_file}: no b jets to define the working point")
    cut = cut_for_efficiency(db[is_b], np.ones(int(is_b.sum())), b_efficiency)

    chosen = is_b & (data.valid.sum(axis=1) == n_tracks)
    order_by = SD0 if SD0 in data.spec.track_names else None
    sd0 = data.tracks[SD0][chosen] if order_by else None
    track_x, valid = _rank_tracks(data.track_x[chosen], data.valid[chosen], sd0, n_tracks)
    grads = discriminant_gradients(
        data.model, track_x, valid, data.jet_x[chosen], data.model_index, f_c
    )[:, :n_tracks]
    passing = db[chosen] > cut
    categories = {"passing": grads[passing], "failing": grads[~passing]}
    maps, errors = {}, {}
    for name, category in categories.items():
        maps[name], errors[name] = _mean_and_error(category)

    result = {
        "tagger": data.tagger,
        "checkpoint": str(checkpoint),
        "split_file": str(split_file),
        "sample_label": data.sample_label,
        "f_c": f_c,
        "b_efficiency": b_efficiency,
        "cut": cut,
        "n_tracks": n_tracks,
        "track_order": order_by,
        "inputs": data.spec.track_names,
        "transforms": {n.name: n.transform for n in data.spec.track_norms},
        "n_b_jets": int(is_b.sum()),
        "n_jets": {name: len(category) for name, category in categories.items()},
        "maps": maps,
        "map_errors": errors,
    }
    write_json(output, result)
    return result
