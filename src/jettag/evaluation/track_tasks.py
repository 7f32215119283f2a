"""The vertexing stage: a model's track-pair head on a test split -> VertexingPerformance.

The pair head's probabilities become vertices (tracks joined by pairs above the threshold,
evaluation/vertexing.py), which are matched to the truth vertices (ftagTruthVertexIndex) of
the same split, as puma's vertexing performance does for GN2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from jettag.errors import InputError
from jettag.evaluation.predict import inference_device, scoring_batches
from jettag.evaluation.vertexing import (
    DEFAULT_THRESHOLD,
    VertexingPerformance,
    find_vertices,
    vertexing_performance,
)
from jettag.io.model_inputs import VERTEX_FIELD, read_model_inputs
from jettag.models.transformer import valid_pairs
from jettag.training.checkpoint import load_trained_model


@dataclass(frozen=True)
class PairPredictions:
    """A pair head's outputs on a split: every pair of valid tracks of each jet.

    jet, first, second: (n_pairs,) int64 (first < second, slots of the split's tracks);
    probability: (n_pairs,) float32 same-vertex probability; origin: (n_jets, max_tracks)
    int8 predicted track origin (-1 on padding), None without an origin head.
    """

    jet: np.ndarray
    first: np.ndarray
    second: np.ndarray
    probability: np.ndarray
    origin: np.ndarray | None


@torch.no_grad()
def pair_predictions(model: torch.nn.Module, arrays: dict[str, np.ndarray]) -> PairPredictions:
    """Run a model with a pair head over a split's model inputs (io.model_inputs layout)."""
    device = next(model.parameters()).device
    valid = arrays["valid"]
    parts: list[tuple[np.ndarray, ...]] = []
    origin = None
    for rows in scoring_batches(valid, device):
        batch = [torch.from_numpy(arrays[k][rows]).to(device) for k in ("tracks", "valid", "jets")]
        try:
            _, origin_logits, pair_logits = model.forward_with_tracks(*batch)
        except RuntimeError as err:  # built without auxiliary heads
            raise InputError(f"the model has no track-pair head ({err})") from err
        if pair_logits is None:
            raise InputError(
                "the model has no track-pair head: train it with training.track_vertex_weight > 0"
            )
        jet, first, second = (t.cpu().numpy() for t in valid_pairs(batch[1]))
        probability = torch.sigmoid(pair_logits.float()).cpu().numpy()
        parts.append((rows[jet], first, second, probability))
        if origin_logits is not None:
            if origin is None:
                origin = np.full(valid.shape, -1, np.int8)
            block = np.full((len(rows), valid.shape[1]), -1, np.int8)
            block[valid[rows]] = origin_logits.argmax(dim=1).cpu().numpy()
            origin[rows] = block
    if not parts:
        empty = np.empty(0, np.int64)
        return PairPredictions(empty, empty, empty, np.empty(0, np.float32), origin)
    jet, first, second, probability = (np.concatenate(c) for c in zip(*parts, strict=True))
    return PairPredictions(jet, first, second, probability, origin)


def evaluate_vertexing(
    model_name: str,
    checkpoint: Path,
    test_path: Path,
    pt_bins_gev: Sequence[float],
    threshold: float = DEFAULT_THRESHOLD,
) -> VertexingPerformance:
    """Vertex finding of a trained model's pair head on a test split, against the truth."""
    model, spec = load_trained_model(checkpoint)
    model.to(inference_device())
    arrays = read_model_inputs(test_path, spec)
    valid = arrays["valid"]
    if not (arrays["track_vertex"][valid] >= 0).any():
        raise InputError(
            f"{test_path}: no track has a truth vertex ('{VERTEX_FIELD}' is -1 everywhere):"
            " the vertexing performance needs it"
        )
    try:
        with h5py.File(test_path, "r") as f:
            pt = f["jets"].fields("pt")[:]
    except (OSError, KeyError) as err:
        raise InputError(f"{test_path}: cannot read the jets' pt ({err})") from err
    try:
        pairs = pair_predictions(model, arrays)
    except InputError as err:
        raise InputError(f"{checkpoint}: {err}") from err
    reco = find_vertices(valid, pairs.jet, pairs.first, pairs.second, pairs.probability, threshold)
    return vertexing_performance(
        model=model_name,
        truth_vertex=arrays["track_vertex"],
        truth_origin=arrays["track_origin"],
        valid=valid,
        reco_vertex=reco,
        reco_origin=pairs.origin,
        pair_jet=pairs.jet,
        pair_first=pairs.first,
        pair_second=pairs.second,
        probability=pairs.probability,
        pt_gev=pt,
        flavour_label=arrays["labels"],
        class_names=spec.classes,
        pt_bins_gev=pt_bins_gev,
        threshold=threshold,
    )
