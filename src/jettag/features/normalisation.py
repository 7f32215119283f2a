"""Normalisation fitted on the training split with a streaming accumulator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jettag.config import InputConfig
from jettag.transforms import Normalisation


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
