"""Transfer learning: start a training from a model pretrained on another dataset.

The pretrained model keeps its own input normalisation (the one fitted on its training
sample): its per-track network learnt features of inputs scaled that way, so the target
sample is scaled the same way rather than refitted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import yaml
from torch import nn

from jettag.config import ModelConfig, model_from_dict
from jettag.errors import InputError
from jettag.io.model_inputs import InputSpec
from jettag.training.checkpoint import load_checkpoint


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A pretrained checkpoint's weights and the inputs (with normalisation) it was trained on."""

    path: Path
    spec: InputSpec
    model_state: dict[str, torch.Tensor]


def load_pretrained(path: Path, model_config: ModelConfig, data_dir: Path) -> Pretrained:
    """The checkpoint at path, checked to fit the model to train and the target's classes."""
    state = load_checkpoint(path)
    source = model_from_dict(state["model_config"])
    if source.architecture != model_config.architecture or getattr(
        source, source.architecture
    ) != getattr(model_config, model_config.architecture):
        raise InputError(
            f"{path}: pretrained {source.architecture} {getattr(source, source.architecture)}"
            f" differs from the model to train ({model_config.architecture}"
            f" {getattr(model_config, model_config.architecture)})"
        )
    spec = InputSpec.from_dict(state["inputs"])
    for group, wanted, have in (
        ("track", model_config.track_inputs, spec.track_names),
        ("jet", model_config.jet_inputs, spec.jet_names),
    ):
        if wanted is not None and list(wanted) != have:
            raise InputError(f"{path}: pretrained on {group} inputs {have}, not {list(wanted)}")
    target_classes = tuple(yaml.safe_load((data_dir / "weights.yaml").read_text())["classes"])
    if target_classes != spec.classes:
        raise InputError(
            f"{path}: pretrained on classes {list(spec.classes)}, but"
            f" {data_dir / 'weights.yaml'} has {list(target_classes)}"
        )
    return Pretrained(path, spec, state["model_state"])


def freeze_encoder(model: nn.Module) -> list[nn.Module]:
    """Stop gradients through the per-track network; returns the modules to keep in eval mode.

    Eval mode keeps dropout off and normalisation statistics fixed in the frozen part, so it
    computes exactly the features it was pretrained to compute.
    """
    modules, parameters = model.track_encoder()
    for parameter in parameters:
        parameter.requires_grad_(False)
    return modules
