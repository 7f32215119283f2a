"""ONNX export of a trained tagger, for deployment in experiment software.

The graph takes model inputs as the training saw them, transformed and normalised, and
returns class probabilities. How to make those inputs from physical values (each variable's
transform, mean and std, in feature order) and the class names travel in the model's
metadata, so the file alone is enough to run the tagger:

- inputs: `track_features` (batch, tracks, n_track_features) float32, `track_valid`
  (batch, tracks) bool, True = real track, and, when the model reads jet variables,
  `jet_features` (batch, n_jet_features) float32; batch and tracks are dynamic axes.
- output: `probabilities` (batch, n_classes), softmax over the classes in `classes`.
- metadata: `jettag_inputs` (JSON: per track and jet variable its transform, mean, std),
  `classes`, `track_features`, `jet_features` (JSON lists), `jettag_model` (the model
  section), `source_checkpoint`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from jettag.atomic import atomic_path
from jettag.training.checkpoint import load_checkpoint, trained_model_from_state

OPSET = 18


class _TrackTagger(nn.Module):
    """What the ONNX graph computes for a model reading tracks only: dense forward, softmax."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, track_features: torch.Tensor, track_valid: torch.Tensor) -> torch.Tensor:
        """Class probabilities (batch, n_classes)."""
        return torch.softmax(self.model.forward_dense(track_features, track_valid), dim=1)


class _TrackJetTagger(_TrackTagger):
    """The same for a model that also reads jet variables."""

    def forward(
        self, track_features: torch.Tensor, track_valid: torch.Tensor, jet_features: torch.Tensor
    ) -> torch.Tensor:
        """Class probabilities (batch, n_classes)."""
        logits = self.model.forward_dense(track_features, track_valid, jet_features)
        return torch.softmax(logits, dim=1)


def export_onnx(checkpoint: Path, output: Path) -> dict[str, str]:
    """Write the ONNX graph of a trained member (best.pt); returns the metadata it carries."""
    state = load_checkpoint(checkpoint)
    model, spec = trained_model_from_state(state)
    with_jets = len(spec.jet_norms) > 0
    wrapper = (_TrackJetTagger(model) if with_jets else _TrackTagger(model)).eval()
    # an example with padding, so that masking is part of the traced computation
    batch, slots = 4, 8
    tracks = torch.zeros(batch, slots, len(spec.track_norms))
    valid = torch.arange(slots)[None, :] < torch.tensor([[0], [1], [5], [8]])
    tracks[valid] = torch.randn(int(valid.sum()), len(spec.track_norms))
    args: tuple[torch.Tensor, ...] = (tracks, valid)
    names = ["track_features", "track_valid"]
    batch_dim, track_dim = torch.export.Dim("batch"), torch.export.Dim("tracks")
    shapes: list[dict[int, torch.export.Dim]] = [{0: batch_dim, 1: track_dim}] * 2
    if with_jets:
        args += (torch.randn(batch, len(spec.jet_norms)),)
        names.append("jet_features")
        shapes.append({0: batch_dim})
    metadata = {
        "jettag_inputs": json.dumps(spec.to_dict()),
        "classes": json.dumps(list(spec.classes)),
        "track_features": json.dumps(spec.track_names),
        "jet_features": json.dumps(spec.jet_names),
        "jettag_model": json.dumps(state["model_config"]),
        "source_checkpoint": str(checkpoint),
    }
    program = torch.onnx.export(
        wrapper, args, input_names=names, output_names=["probabilities"],
        dynamic_shapes=tuple(shapes), opset_version=OPSET, dynamo=True, external_data=False,
        verbose=False,
    )  # fmt: skip
    onnx_model = program.model_proto
    for key, value in metadata.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(output) as tmp:
        Path(tmp).write_bytes(onnx_model.SerializeToString())
    return metadata
