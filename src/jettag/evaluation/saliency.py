"""Saliency maps: the gradient of the discriminant with respect to each track input.

As in arXiv:1312.6034 and the DIPS note (ATL-PHYS-PUB-2020-014): signal jets (b for D_b) with
exactly n_tracks tracks, tracks ranked by lifetime-signed d0 significance, split into jets
that pass and fail the discriminant's cut at a working point. A map is (n_inputs, n_tracks):
entry [k, t] is the mean over jets of dD/dx, x the k-th normalised input (norm.yaml:
x = (transform(v) - mean) / std) of the track of rank t. The model sees the same arrays as
in the predict stage. D is the one formula of discriminant.py, on float64 softmax
probabilities (torch), so gradients flow.

Jets are unweighted, as in evaluate.py (ATLAS quotes performance on the natural spectrum).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from jettag.atomic import json_safe
from jettag.errors import InputError
from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.performance import TaggedJets, cut_at_efficiency, tagged_jets
from jettag.evaluation.predict import inference_device, probabilities, scoring_batches
from jettag.io.model_inputs import InputSpec, read_model_inputs
from jettag.io.results import SaliencyMaps
from jettag.training.checkpoint import load_checkpoint, load_trained_model

SD0 = "IP3D_signed_d0_significance"


@dataclasses.dataclass(frozen=True)
class TaggerInputs:
    """A trained network and one prepared split as the network's input arrays.

    track_x: (n_jets, max_tracks, n_track_inputs) float32, normalised, zero on padding;
    valid: (n_jets, max_tracks) bool, True = real track; jet_x: (n_jets, n_jet_inputs);
    truth: (n_jets,) class index into the file's classes; pt_gev: (n_jets,) jet pT;
    sd0: (n_jets, max_tracks) lifetime-signed d0 significance, None when the file has none;
    file_index / model_index: class name -> index into the file's classes / the network's
    outputs (they may differ).
    """

    model: nn.Module
    spec: InputSpec
    tagger: str
    file_classes: tuple[str, ...]
    track_x: np.ndarray
    valid: np.ndarray
    jet_x: np.ndarray
    truth: np.ndarray
    pt_gev: np.ndarray
    sd0: np.ndarray | None
    file_index: dict[str, int]
    model_index: dict[str, int]

    def is_flavour(self, flavour: str) -> np.ndarray:
        """(n_jets,) bool, True for jets of this truth flavour."""
        return self.truth == self.file_index[flavour]

    def tagged(self, track_x: np.ndarray, discriminant: Discriminant) -> TaggedJets:
        """The network's discriminant on these track inputs (and the split's jet inputs)."""
        prob = probabilities(self.model, track_x, self.valid, self.jet_x)
        by_class = {c: prob[:, self.model_index[c]] for c in self.model_index}
        return tagged_jets(self.tagger, by_class, self.file_classes, self.truth, self.pt_gev,
                           discriminant)  # fmt: skip


def load_tagger_inputs(checkpoint: Path, split_file: Path) -> TaggerInputs:
    """The network of a checkpoint (eval mode) and a prepared split file, ready to score."""
    model, spec = load_trained_model(checkpoint)
    model.to(inference_device())
    tagger = str(load_checkpoint(checkpoint).get("model_name", Path(checkpoint).stem))
    inputs = read_model_inputs(split_file, spec)
    with h5py.File(split_file, "r") as f:
        file_classes = tuple(str(c) for c in f["jets"].attrs["flavour_label"])
        pt_gev = f["jets"].fields("pt")[:]
        has_sd0 = SD0 in (f["tracks"].dtype.names or ())
        sd0 = f["tracks"].fields(SD0)[:] if has_sd0 else None
        valid_tracks = f["tracks"].fields("valid")[:] if has_sd0 else None
    # sd0 (ranking) comes from the tables, the inputs from model_inputs: the same rows
    if sd0 is not None and not np.array_equal(valid_tracks, inputs["valid"]):
        raise InputError(f"{split_file}: tracks table and model_inputs disagree; rerun prepare")
    if list(file_classes) != list(spec.classes):
        raise InputError(
            f"{split_file}: classes {list(file_classes)}, but {checkpoint} was trained on"
            f" {list(spec.classes)}"
        )
    return TaggerInputs(
        model=model, spec=spec, tagger=tagger, file_classes=file_classes,
        track_x=inputs["tracks"], valid=inputs["valid"], jet_x=inputs["jets"],
        truth=inputs["labels"], pt_gev=pt_gev, sd0=sd0,
        file_index={c: k for k, c in enumerate(file_classes)},
        model_index={c: k for k, c in enumerate(spec.classes)},
    )  # fmt: skip


def discriminant_gradients(
    model: nn.Module,
    track_x: np.ndarray,
    valid: np.ndarray,
    jet_x: np.ndarray,
    model_index: dict[str, int],
    discriminant: Discriminant,
) -> np.ndarray:
    """dD/d(track inputs) of each jet: (n_jets, max_tracks, n_track_inputs), zero on padding."""
    model.requires_grad_(False)  # only the inputs need gradients
    device = next(model.parameters()).device
    gradients = np.zeros_like(track_x)
    for rows in scoring_batches(valid, device):
        x = torch.from_numpy(track_x[rows]).to(device).requires_grad_(True)
        with torch.enable_grad():
            mask, jets = (torch.from_numpy(a[rows]).to(device) for a in (valid, jet_x))
            logits = model(x, mask, jets)
            # float64: probabilities of 1e-30 stay above the discriminant's floor
            prob = torch.softmax(logits.double(), dim=1)
            score = discriminant.scores({c: prob[:, k] for c, k in model_index.items()})
            # jets do not interact in eval mode, so the gradient of the sum is per-jet
            (grad,) = torch.autograd.grad(score.sum(), x)
        gradients[rows] = grad.cpu().numpy()
    return gradients


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
    discriminant: Discriminant,
    n_tracks: int = 8,
    b_efficiency: float = 0.77,
) -> SaliencyMaps:
    """Mean dD/d(input) maps of signal jets with n_tracks tracks passing/failing the WP; JSON.

    b_efficiency: the working point, a signal efficiency (of b jets for D_b).
    """
    data = load_tagger_inputs(checkpoint, split_file)
    signal = discriminant.signal
    if not data.is_flavour(signal).any():
        raise ValueError(f"{split_file}: no {signal} jets to define the working point")
    jets = data.tagged(data.track_x, discriminant)
    db, is_b = jets.discriminant, jets.mask(signal)
    cut = cut_at_efficiency(jets, b_efficiency)

    chosen = is_b & (data.valid.sum(axis=1) == n_tracks)
    order_by = SD0 if SD0 in data.spec.track_names and data.sd0 is not None else None
    sd0 = data.sd0[chosen] if order_by else None
    track_x, valid = _rank_tracks(data.track_x[chosen], data.valid[chosen], sd0, n_tracks)
    grads = discriminant_gradients(
        data.model, track_x, valid, data.jet_x[chosen], data.model_index, discriminant
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
        "discriminant": discriminant.to_dict(),
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
    return SaliencyMaps.from_dict(json_safe(result))
