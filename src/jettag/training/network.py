"""A network to train, with its input-transform layer fitted (models/input_transforms.py).

When a model un-logs inputs and keeps them standardised, the mean and std of the un-logged
values are fitted here on the training split (train.h5, every training jet, as prepare fits
its own; never val or test), from the prepared values through the layer's own inverse, so
they standardise exactly what the network will see.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jettag.config import ModelConfig
from jettag.errors import ConfigError
from jettag.io.model_inputs import InputSpec, ModelInputReader
from jettag.models.input_transforms import ColumnMap, WithInputTransform, column_plan
from jettag.training.checkpoint import model_for_spec
from jettag.transforms import MeanVarianceAccumulator

log = logging.getLogger(__name__)
FIT_BLOCK_JETS = 16384


def build_network(model_config: ModelConfig, spec: InputSpec, data_dir: Path) -> nn.Module:
    """build_model for spec's inputs, its input-transform layer (if any) fitted on data_dir."""
    model = model_for_spec(model_config, spec)
    if not isinstance(model, WithInputTransform):
        return model
    config = model_config.training.input_transforms
    if not config.log and not set(config.log_inputs) & {*spec.track_names, *spec.jet_names}:
        raise ConfigError(
            f"training.input_transforms.log is false, but none of log_inputs"
            f" {list(config.log_inputs)} is an input of this model ({spec.track_names},"
            f" jet inputs {spec.jet_names})"
        )
    plans = {
        "tracks": column_plan(spec.track_norms, config),
        "jets": column_plan(spec.jet_norms, config),
    }
    maps = {"tracks": model.inputs.tracks, "jets": model.inputs.jets}
    for group, plan in plans.items():  # the inverse first: the fit goes through it
        maps[group].set({k: v for k, v in plan.items() if k not in ("mean", "std")})
    fitted = fit_raw_moments(data_dir / "train.h5", spec, maps, plans)
    for group, plan in plans.items():
        for k, (mean, std) in fitted[group].items():
            plan["mean"][k], plan["std"][k] = mean, std
        maps[group].set(plan)
    names = {"tracks": spec.track_names, "jets": spec.jet_names}
    for group, plan in plans.items():
        for k in np.flatnonzero(plan["changed"]):
            log.info("input %s: %s, then (v - %.6g) / %.6g", names[group][k],
                     "un-logged" if plan["inverse"][k] else "prepare's transform",
                     plan["mean"][k], plan["std"][k])  # fmt: skip
    return model


def fit_raw_moments(
    train_file: Path,
    spec: InputSpec,
    maps: dict[str, ColumnMap],
    plans: dict[str, dict[str, np.ndarray]],
) -> dict[str, dict[int, tuple[float, float]]]:
    """Mean and std of the un-logged values of the columns to refit, over train_file's jets.

    maps: group -> its ColumnMap (inverse and prepared normalisation set); plans: group ->
    column_plan, whose NaN means mark the columns to fit. Tracks: valid ones only.
    """
    columns = {group: np.flatnonzero(np.isnan(plan["mean"])) for group, plan in plans.items()}
    if not any(c.size for c in columns.values()):
        return {group: {} for group in plans}
    accumulators = {
        group: {int(k): MeanVarianceAccumulator() for k in c} for group, c in columns.items()
    }
    with ModelInputReader(train_file, spec) as reader, torch.no_grad():
        for start in range(0, len(reader), FIT_BLOCK_JETS):
            block = reader.read(start, min(start + FIT_BLOCK_JETS, len(reader)))
            valid = block["valid"]
            for group, values in (("tracks", block["tracks"][valid]), ("jets", block["jets"])):
                if not accumulators[group]:
                    continue
                raw = maps[group].raw(torch.from_numpy(np.ascontiguousarray(values))).numpy()
                for k, accumulator in accumulators[group].items():
                    accumulator.update(raw[:, k])
    return {
        group: {k: acc.result() for k, acc in per_column.items()}
        for group, per_column in accumulators.items()
    }
