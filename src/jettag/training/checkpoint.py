"""Checkpoints: plain tensors and builtins only, written atomically, read with weights_only;
and the trained network a checkpoint holds (what prediction, saliency, export load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from jettag.atomic import atomic_path
from jettag.config import ModelConfig, model_from_dict
from jettag.io.model_inputs import InputSpec
from jettag.models.registry import build_model


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a kill mid-write leaves the previous one intact)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint without unpickling arbitrary objects; a crafted pickle is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a loadable jettag checkpoint ({err})") from err


def model_for_spec(model_config: ModelConfig, spec: InputSpec) -> nn.Module:
    """build_model for the inputs and classes of an input spec (freshly initialised)."""
    return build_model(
        model_config, len(spec.track_norms), len(spec.jet_norms), len(spec.classes),
        (spec.track_norms, spec.jet_norms),
    )  # fmt: skip


def load_trained_model(path: Path) -> tuple[nn.Module, InputSpec]:
    """A trained network in eval mode and the inputs it expects, from best.pt."""
    state = load_checkpoint(path)
    try:
        return trained_model_from_state(state)
    except RuntimeError as err:  # load_state_dict: the layers the network has differ
        raise ValueError(
            f"{path}: its weights do not fit the network this jettag builds for its config"
            " (written by a jettag whose layers differ, e.g. the transformer's pair head"
            f" before 65a6b93); delete it and rerun its training ({err})"
        ) from err


def trained_model_from_state(state: dict) -> tuple[nn.Module, InputSpec]:
    """A trained network in eval mode and its inputs, from a loaded checkpoint."""
    # a checkpoint written before a config key existed still loads, with that key's default
    model_config = model_from_dict(state["model_config"])
    spec = InputSpec.from_dict(state["inputs"])
    model = model_for_spec(model_config, spec)
    model.load_state_dict(state["model_state"])
    model.eval()
    return model, spec
