"""The predict stage: class probabilities of a tagger on the test split (io/predictions.py).

A network reads its inputs from the split's model-ready arrays (io/model_inputs.py), the
very arrays it was trained on; the IP3D-like baseline reads the track table's significances.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch

from jettag.errors import InputError
from jettag.io.canonical import FTAG_LABEL
from jettag.io.model_inputs import read_model_inputs
from jettag.io.predictions import write_predictions
from jettag.models import ip3d
from jettag.training.checkpoint import load_trained_model

# Jets per forward pass. Batches are cut from the jets sorted by track multiplicity, so a
# transformer attends over little padding; small batches keep that padding small (the
# small transformer: 8192 unsorted 3.4k jets/s, 512 sorted 13.9k jets/s on one CPU core).
PREDICT_BATCH = 512
CUDA_PREDICT_BATCH = 16384  # a GPU wants large batches; sorting still trims the padding


def inference_device() -> torch.device:
    """Where trained networks score jets: the GPU when there is one (in fp32), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def scoring_batches(valid: np.ndarray, device: torch.device) -> list[np.ndarray]:
    """Row indices of each scoring batch: jets sorted by track multiplicity, then cut.

    Each jet's output does not depend on the others in its batch (masked tracks contribute
    nothing), so the order is free; sorted, a transformer attends over little padding.
    """
    size = PREDICT_BATCH if device.type == "cpu" else CUDA_PREDICT_BATCH
    order = np.argsort(valid.sum(axis=1), kind="stable")
    return [order[start : start + size] for start in range(0, len(order), size)]


@torch.no_grad()
def probabilities(
    model: torch.nn.Module, track_x: np.ndarray, valid: np.ndarray, jet_x: np.ndarray
) -> np.ndarray:
    """Softmax outputs (n_jets, n_classes) of a network on model-input arrays, in input order."""
    device = next(model.parameters()).device
    batches = scoring_batches(valid, device)
    out = []
    for rows in batches:
        logits = model(*(torch.from_numpy(a[rows]).to(device) for a in (track_x, valid, jet_x)))
        out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
    if not out:
        return np.zeros((0, 0), np.float32)
    result = np.empty((len(track_x), out[0].shape[1]), np.float32)
    result[np.concatenate(batches)] = np.concatenate(out)
    return result


def network_probabilities(checkpoint: Path, split_file: Path) -> np.ndarray:
    """Softmax outputs (n_jets, n_classes) of one trained member on a prepared split."""
    model, spec = load_trained_model(checkpoint)
    model.to(inference_device())
    inputs = read_model_inputs(split_file, spec)
    if not len(inputs["labels"]):
        return np.zeros((0, len(spec.classes)), np.float32)
    return probabilities(model, inputs["tracks"], inputs["valid"], inputs["jets"])


def _read_test(path: Path) -> tuple[np.ndarray, list[str], dict]:
    """Jets, class names and jet attributes of a prepared split."""
    try:
        with h5py.File(path, "r") as f:
            classes = [str(c) for c in f["jets"].attrs["flavour_label"]]
            return f["jets"][:], classes, dict(f["jets"].attrs)
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: cannot read the test split ({err})") from err


def predict(
    tagger: str, test_path: Path, member_files: Sequence[Path], kind: str, output: Path
) -> None:
    """Score the test split with every member (checkpoints, or IP3D templates) and write them."""
    jets, classes, attrs = _read_test(test_path)
    if kind == "network":
        members = np.stack([network_probabilities(p, test_path) for p in member_files])
    elif kind == "ip3d":
        templates = ip3d.Templates.from_dict(json.loads(Path(member_files[0]).read_text()))
        if templates.classes != classes:
            raise ValueError(f"{member_files[0]}: classes {templates.classes} != {classes}")
        with h5py.File(test_path, "r") as f:
            tracks = f["tracks"][:]
        members = ip3d.score(templates, tracks)[None]
    else:
        raise ValueError(f"unknown tagger kind '{kind}'")
    label_variable = str(attrs.get("label_variable", FTAG_LABEL))  # older splits: ftag's
    write_predictions(output, tagger, classes, jets, members, attrs, label_variable)
