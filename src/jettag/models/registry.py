"""Build a tagger network from its config section by architecture name."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from jettag.config import ModelConfig
from jettag.flavours import TRACK_ORIGINS
from jettag.models.deepsets import DeepSets
from jettag.models.input_transforms import InputTransform, WithInputTransform
from jettag.models.transformer import TransformerTagger
from jettag.transforms import Normalisation


def build_model(
    config: ModelConfig,
    n_track_features: int,
    n_jet_features: int,
    n_classes: int,
    inputs: tuple[Sequence[Normalisation], Sequence[Normalisation]] | None = None,
) -> nn.Module:
    """The network named by config.architecture, freshly initialised.

    A track-origin head is built when training.track_origin_weight > 0, a track-pair
    (vertexing) head when training.track_vertex_weight > 0 (transformer only). With
    training.input_transforms other than the default, the network sits behind an
    InputTransform whose buffers are identity maps until filled (training fits them; a
    checkpoint's state restores them); by default there is no such layer. inputs: the
    (track, jet) normalisations of the model's inputs, which the transformer's pairwise
    features read their kinematics through.
    """
    if config.transformer.pairwise_features and not config.training.input_transforms.is_identity:
        raise ValueError("transformer.pairwise_features reads the inputs as prepared: it cannot"
                         " be combined with training.input_transforms")  # fmt: skip
    network = _network(config, n_track_features, n_jet_features, n_classes, inputs)
    if config.training.input_transforms.is_identity:
        return network
    return WithInputTransform(InputTransform(n_track_features, n_jet_features), network)


def _network(
    config: ModelConfig,
    n_track_features: int,
    n_jet_features: int,
    n_classes: int,
    inputs: tuple[Sequence[Normalisation], Sequence[Normalisation]] | None,
) -> nn.Module:
    """The tagger of config.architecture."""
    n_origins = len(TRACK_ORIGINS) if config.training.track_origin_weight > 0 else 0
    vertexing = config.training.track_vertex_weight > 0
    if vertexing and config.architecture != "transformer":
        raise ValueError(
            f"training.track_vertex_weight > 0 needs the transformer's track-pair head;"
            f" architecture '{config.architecture}' has none"
        )
    if config.architecture == "deepsets":
        return DeepSets(n_track_features, n_jet_features, n_classes, config.deepsets, n_origins)
    if config.architecture == "transformer":
        return TransformerTagger(
            n_track_features,
            n_jet_features,
            n_classes,
            config.transformer,
            n_origins,
            vertexing,
            inputs,
        )
    raise ValueError(f"unknown architecture '{config.architecture}'")
