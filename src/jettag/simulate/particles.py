"""A table of charged particles that reach the tracker, before reconstruction."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Particles:
    """Charged particles, arrays of shape (n,).

    Positions are production vertices in mm relative to the true hard-scatter vertex;
    `record_index` points into the Pythia event record (-1 for particles made by jettag:
    pile-up, products of hadronic interactions); `end_radius` is where a particle stops
    (a hadronic interaction in the material), inf when it crosses the whole tracker.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    charge: np.ndarray
    origin: np.ndarray
    record_index: np.ndarray
    is_hadron: np.ndarray
    end_radius: np.ndarray

    def __len__(self) -> int:
        return self.x.size

    @property
    def pt(self) -> np.ndarray:
        """Transverse momentum in GeV."""
        return np.hypot(self.px, self.py)

    @property
    def production_radius(self) -> np.ndarray:
        """Transverse distance of the production vertex from the beam line (mm)."""
        return np.hypot(self.x, self.y)

    def select(self, mask: np.ndarray) -> Particles:
        """The particles where mask is True (or at the given indices)."""
        return Particles(**{f.name: getattr(self, f.name)[mask] for f in dataclasses.fields(self)})

    def replace(self, **changes: np.ndarray) -> Particles:
        """A copy with some columns replaced."""
        return dataclasses.replace(self, **changes)

    @staticmethod
    def concatenate(parts: list[Particles]) -> Particles:
        """All particles of several tables, in order."""
        names = [f.name for f in dataclasses.fields(Particles)]
        return Particles(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})

    @staticmethod
    def make(
        x, y, z, px, py, pz, charge, origin, record_index=None, is_hadron=None, end_radius=None
    ) -> Particles:
        """Build a table, filling the optional columns (-1 index, hadron, no interaction)."""
        n = np.asarray(x).size
        return Particles(
            x=np.asarray(x, float), y=np.asarray(y, float), z=np.asarray(z, float),
            px=np.asarray(px, float), py=np.asarray(py, float), pz=np.asarray(pz, float),
            charge=np.asarray(charge, float), origin=np.asarray(origin, np.int32),
            record_index=np.full(n, -1, np.int64) if record_index is None
            else np.asarray(record_index, np.int64),
            is_hadron=np.ones(n, bool) if is_hadron is None else np.asarray(is_hadron, bool),
            end_radius=np.full(n, np.inf) if end_radius is None else np.asarray(end_radius, float),
        )  # fmt: skip
