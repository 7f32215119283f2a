"""Named input transforms and the per-input normalisation: what every stored model input means.

A model input is x = (transform(v) - mean) / std of a physical value v. The transforms are
named, built-in functions (never an expression from the config). The same definitions serve
prepare (which fits mean and std), the stored model-ready arrays, training, evaluation and
the ONNX metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_FLOOR = 1e-6


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
