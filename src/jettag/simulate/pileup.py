"""Pile-up: charged particles from other pp interactions in the same bunch crossing.

Each pile-up vertex sits at its own z in the luminous region; its charged particles are
prompt with respect to it. Most are removed by the |z0 sin theta| selection relative to the
hard-scatter vertex, but vertices within a few mm leave tracks with large sz0 in jets.
"""

from __future__ import annotations

import numpy as np

from jettag.config import PileupConfig
from jettag.simulate import pdg
from jettag.simulate.particles import Particles


def pileup_particles(
    config: PileupConfig, pv_z_mm: float, beam_spot_sigma_z_mm: float, rng: np.random.Generator
) -> Particles:
    """Charged pile-up particles of one bunch crossing, relative to the hard-scatter vertex."""
    if not config.enabled or config.mu <= 0:
        return Particles.make(*([np.empty(0)] * 7), np.empty(0, np.int32))
    n_vertices = rng.poisson(config.mu)
    per_vertex = rng.poisson(config.charged_per_vertex, n_vertices)
    n = int(per_vertex.sum())
    vertex_z = rng.normal(0.0, beam_spot_sigma_z_mm, n_vertices) - pv_z_mm
    z = np.repeat(vertex_z, per_vertex)
    pt = config.pt_min_gev + rng.exponential(config.pt_mean_above_min_gev, n)
    eta = rng.uniform(-config.abs_eta_max, config.abs_eta_max, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    return Particles.make(
        x=np.zeros(n), y=np.zeros(n), z=z,
        px=pt * np.cos(phi), py=pt * np.sin(phi), pz=pt * np.sinh(eta),
        charge=rng.choice([-1.0, 1.0], n),
        origin=np.full(n, pdg.ORIGIN_PILEUP, np.int32),
    )  # fmt: skip
