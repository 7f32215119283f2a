"""The predict stage: class probabilities of every tagger on the test split, FTAG layout.

The output `jets` table keeps pt, eta, labels and eventNumber and adds `<tagger>_pb`,
`<tagger>_pc`, `<tagger>_pu` (puma's convention; the member average) and, for an ensemble,
`<tagger>_pb_std` etc. (the spread of the members per jet). Each member's probabilities are
kept in the `member_probabilities` dataset, shape (members, jets, classes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import numpy.lib.recfunctions as rfn
import torch

from jettag.atomic import atomic_path
from jettag.io.canonical import with_fields
from jettag.models import ip3d
from jettag.training.data import build_inputs
from jettag.training.loop import load_trained_model

KEPT_JET_FIELDS = (
    "pt",
    "eta",
    "phi",
    "HadronConeExclTruthLabelID",
    "flavour_label",
    "eventNumber",
    "n_tracks",
)
SHORT_CLASS = {"b": "pb", "c": "pc", "light": "pu", "tau": "ptau"}
PREDICT_BATCH = 8192


def _read_test(path: Path) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """Jets, tracks, class names and jet attributes of a prepared split."""
    with h5py.File(path, "r") as f:
        classes = [str(c) for c in f["jets"].attrs["flavour_label"]]
        attrs = {k: v for k, v in f["jets"].attrs.items() if k != "flavour_label"}
        return f["jets"][:], f["tracks"][:], classes, attrs


@torch.no_grad()
def probabilities(
    model: torch.nn.Module, track_x: np.ndarray, valid: np.ndarray, jet_x: np.ndarray
) -> np.ndarray:
    """Softmax outputs (n_jets, n_classes) of a network on model-input arrays, in batches."""
    out = []
    for start in range(0, len(track_x), PREDICT_BATCH):
        rows = slice(start, start + PREDICT_BATCH)
        logits = model(
            torch.from_numpy(track_x[rows]), torch.from_numpy(valid[rows]),
            torch.from_numpy(jet_x[rows]),
        )  # fmt: skip
        out.append(torch.softmax(logits.float(), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def network_probabilities(checkpoint: Path, jets: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """Softmax outputs (n_jets, n_classes) of one trained member, on the CPU in batches."""
    model, spec = load_trained_model(checkpoint)
    track_x, valid, jet_x = build_inputs(jets, tracks, spec)
    if not len(jets):
        return np.zeros((0, len(spec.classes)), np.float32)
    return probabilities(model, track_x, valid, jet_x)


def predict(
    tagger: str, test_path: Path, member_files: Sequence[Path], kind: str, output: Path
) -> None:
    """Score the test split with every member (checkpoints, or IP3D templates) and write them."""
    jets, tracks, classes, attrs = _read_test(test_path)
    if kind == "network":
        members = np.stack([network_probabilities(p, jets, tracks) for p in member_files])
    elif kind == "ip3d":
        templates = ip3d.Templates.from_dict(json.loads(Path(member_files[0]).read_text()))
        if templates.classes != classes:
            raise ValueError(f"{member_files[0]}: classes {templates.classes} != {classes}")
        members = ip3d.score(templates, tracks)[None]
    else:
        raise ValueError(f"unknown tagger kind '{kind}'")
    mean = members.mean(axis=0)
    kept = jets[list(KEPT_JET_FIELDS)]
    names = [f"{tagger}_{SHORT_CLASS.get(c, 'p' + c)}" for c in classes]
    columns = {name: mean[:, k].astype(np.float32) for k, name in enumerate(names)}
    if len(members) > 1:  # a deep ensemble: how much its members disagree, jet by jet
        std = members.std(axis=0, ddof=1)
        columns.update(
            {f"{name}_std": std[:, k].astype(np.float32) for k, name in enumerate(names)}
        )
    table = with_fields(rfn.repack_fields(kept), columns)
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as f:
        ds = f.create_dataset("jets", data=table, compression="gzip")
        ds.attrs["flavour_label"] = classes
        ds.attrs["tagger"] = tagger
        for key, value in attrs.items():
            ds.attrs[key] = value
        f.create_dataset(
            "member_probabilities", data=members.astype(np.float32), compression="gzip"
        )
