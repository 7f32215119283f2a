"""Input transforms, their inverses and the fitting of the normalisation: what every stored
model input means, in one place.

A model input is x = (transform(v) - mean) / std of a physical value v. The transforms are
named, built-in functions (never an expression from the config); INVERSES names the inverse
of each one that has one (the feature-transform study's network layer,
models/input_transforms.py, applies them in torch). mean and std are fitted on the training
split only, streaming (MeanVarianceAccumulator, fit_normalisation). The same definitions
serve prepare, the stored model-ready arrays, training, evaluation and the ONNX metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from jettag.config import InputConfig

LOG_FLOOR = 1e-6
TRANSFORMS = ("none", "abs", "log", "signed_log")
# the inverse of each invertible transform: log's is exp (of values floored at LOG_FLOOR),
# signed_log's is sign(t) (exp|t| - 1); abs loses the sign and has none
INVERSES = {"log": "exp", "signed_log": "signed_expm1"}


def out_of_domain(name: str, values: np.ndarray) -> int:
    """How many values a named transform refuses (the negative ones for log); 0 for the rest."""
    if name == "log":
        return int(np.count_nonzero(values < 0))
    return 0


def apply_transform(name: str, values: np.ndarray) -> np.ndarray:
    """Apply a named transform; log of a negative value is an error, not a NaN."""
    if name == "none":
        return values
    if name == "abs":
        return np.abs(values)
    if name == "signed_log":
        return np.sign(values) * np.log1p(np.abs(values))
    if name == "log":
        n_negative = out_of_domain(name, values)
        if n_negative:
            raise ValueError(f"log transform of {n_negative} negative values")
        # an exact zero is physical (a one-track jet has dR = 0): floor it, do not make -inf
        return np.log(np.maximum(values, LOG_FLOOR))
    raise ValueError(f"unknown transform '{name}'")


@dataclass(frozen=True)
class Normalisation:
    """Per-input transform, shift and scale, as stored in norm.yaml."""

    name: str
    transform: str
    mean: float
    std: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Transform, then standardise."""
        return (apply_transform(self.transform, values) - self.mean) / self.std

    def to_dict(self) -> dict:
        """Serialisable form."""
        return {"transform": self.transform, "mean": self.mean, "std": self.std}


def normalisation_from_dict(data: dict[str, dict]) -> dict[str, Normalisation]:
    """Read back the mapping written by Normalisation.to_dict."""
    return {
        name: Normalisation(name, entry["transform"], float(entry["mean"]), float(entry["std"]))
        for name, entry in data.items()
    }


class MeanVarianceAccumulator:
    """Streaming mean and variance (Chan et al. parallel update); numerically stable."""

    def __init__(self) -> None:
        self.count = 0.0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, values: np.ndarray) -> None:
        """Add a chunk of values."""
        values = np.asarray(values, dtype=np.float64).ravel()
        n = values.size
        if n == 0:
            return
        mean = values.mean()
        m2 = ((values - mean) ** 2).sum()
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total

    def result(self) -> tuple[float, float]:
        """(mean, standard deviation); std 1 where there is no spread, so division is safe."""
        if self.count == 0:
            raise ValueError("no values to normalise")
        std = float(np.sqrt(self.m2 / self.count))
        return float(self.mean), std if std > 0 else 1.0


def fit_normalisation(
    inputs: Sequence[InputConfig], values_by_name: dict[str, MeanVarianceAccumulator]
) -> dict[str, Normalisation]:
    """Normalisations from filled accumulators; inputs with normalise=False get (0, 1)."""
    out = {}
    for spec in inputs:
        mean, std = values_by_name[spec.name].result() if spec.normalise else (0.0, 1.0)
        out[spec.name] = Normalisation(spec.name, spec.transform, mean, std)
    return out
