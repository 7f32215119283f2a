"""Hadronic interactions and photon conversions in the beam pipe and the pixel layers.

A charged hadron crossing a layer interacts with a probability set by the layer's thickness
in nuclear interaction lengths (scaled by the path length 1/sin(theta)). It stops there, so
its own track loses every later hit, and it emits a few charged secondaries from a vertex at
that radius: tracks with large impact parameters and no relation to any b or c hadron, the
main source of high-sd0 tracks in light jets after lifetime.
"""

from __future__ import annotations

import numpy as np

from jettag.config import MaterialConfig
from jettag.simulate import pdg
from jettag.simulate.particles import Particles


def _radius_crossing(p: Particles, radius: np.ndarray) -> np.ndarray:
    """Path length t (mm) along the transverse direction to a radius; nan if never reached."""
    ux, uy = p.px / p.pt, p.py / p.pt
    b = p.x * ux + p.y * uy
    c = p.x**2 + p.y**2 - radius**2
    disc = b**2 - c
    with np.errstate(invalid="ignore"):
        return np.where(disc >= 0, -b + np.sqrt(np.maximum(disc, 0.0)), np.nan)


def hadronic_interactions(
    particles: Particles, config: MaterialConfig, rng: np.random.Generator
) -> Particles:
    """Stop interacting hadrons at their layer and append their charged secondaries."""
    if not config.enabled or len(particles) == 0:
        return particles
    radii = np.asarray(config.layer_radii_mm)
    probability = np.asarray(config.interaction_probability)
    pt = particles.pt
    sin_theta = pt / np.sqrt(pt**2 + particles.pz**2)
    r0 = particles.production_radius
    end = particles.end_radius.copy()
    # the first layer (inside out) at which each hadron interacts, if any
    for radius, prob in zip(radii, probability, strict=True):
        crosses = particles.is_hadron & (r0 < radius) & np.isinf(end)
        interacts = crosses & (rng.random(len(particles)) < prob / np.maximum(sin_theta, 0.1))
        end[interacts] = radius
    stopped = np.flatnonzero(np.isfinite(end))
    updated = particles.replace(end_radius=end)
    if stopped.size == 0:
        return updated
    parents = updated.select(stopped)
    return Particles.concatenate([updated, _secondaries(parents, config, rng)])


def _secondaries(parents: Particles, config: MaterialConfig, rng: np.random.Generator) -> Particles:
    """Charged products of interacting hadrons, emitted from the interaction points."""
    n_sec = rng.poisson(config.mean_charged_secondaries, len(parents))
    parent = np.repeat(np.arange(len(parents)), n_sec)
    if parent.size == 0:
        return _empty()
    t = _radius_crossing(parents, parents.end_radius)
    pt = parents.pt
    vx = parents.x + t * parents.px / pt
    vy = parents.y + t * parents.py / pt
    vz = parents.z + t * parents.pz / pt
    p_parent = np.sqrt(pt**2 + parents.pz**2)
    direction = np.stack([parents.px, parents.py, parents.pz], axis=1) / p_parent[:, None]
    # each secondary carries a random share of the energy that stays in charged particles
    share = rng.dirichlet(np.ones(3), parent.size)[:, 0] * config.charged_energy_fraction
    momentum = np.maximum(share * p_parent[parent], 0.05)
    kt = np.minimum(rng.exponential(config.mean_kt_gev, parent.size), 0.9 * momentum)
    axis = direction[parent]
    ortho1 = np.cross(axis, np.array([0.0, 0.0, 1.0]))
    ortho1 /= np.linalg.norm(ortho1, axis=1, keepdims=True)
    ortho2 = np.cross(axis, ortho1)
    angle = rng.uniform(0, 2 * np.pi, parent.size)
    longitudinal = np.sqrt(momentum**2 - kt**2)
    p = (
        axis * longitudinal[:, None]
        + ortho1 * (kt * np.cos(angle))[:, None]
        + ortho2 * (kt * np.sin(angle))[:, None]
    )
    return Particles.make(
        x=vx[parent], y=vy[parent], z=vz[parent], px=p[:, 0], py=p[:, 1], pz=p[:, 2],
        charge=rng.choice([-1.0, 1.0], parent.size),
        origin=np.full(parent.size, pdg.ORIGIN_OTHER_SECONDARY, np.int32),
    )  # fmt: skip


def photon_conversions(
    photons: Particles, config: MaterialConfig, rng: np.random.Generator
) -> Particles:
    """The e+e- pairs of the photons that convert in the beam pipe or a pixel layer."""
    if not (config.enabled and config.conversions) or len(photons) == 0:
        return _empty()
    radii = np.asarray(config.layer_radii_mm)
    probability = np.asarray(config.conversion_probability)
    sin_theta = photons.pt / np.sqrt(photons.pt**2 + photons.pz**2)
    r0 = photons.production_radius
    at = np.full(len(photons), np.inf)
    for radius, prob in zip(radii, probability, strict=True):
        crosses = (r0 < radius) & np.isinf(at)
        converts = crosses & (rng.random(len(photons)) < prob / np.maximum(sin_theta, 0.1))
        at[converts] = radius
    converted = np.flatnonzero(np.isfinite(at))
    if converted.size == 0:
        return _empty()
    gamma = photons.select(converted)
    t = _radius_crossing(gamma, at[converted])
    vx = gamma.x + t * gamma.px / gamma.pt
    vy = gamma.y + t * gamma.py / gamma.pt
    vz = gamma.z + t * gamma.pz / gamma.pt
    share = bethe_heitler_fraction(converted.size, rng)  # the electron's share of the energy
    pair_share = np.concatenate([share, 1.0 - share])
    both = np.concatenate([np.arange(converted.size)] * 2)
    return Particles.make(
        x=vx[both], y=vy[both], z=vz[both],
        px=gamma.px[both] * pair_share, py=gamma.py[both] * pair_share,
        pz=gamma.pz[both] * pair_share,
        charge=np.repeat([-1.0, 1.0], converted.size),
        origin=np.full(both.size, pdg.ORIGIN_OTHER_SECONDARY, np.int32),
        is_hadron=np.zeros(both.size, bool),
    )  # fmt: skip


def bethe_heitler_fraction(n: int, rng: np.random.Generator) -> np.ndarray:
    """Energy fractions x of one lepton of a pair, from dsigma/dx ~ 1 - 4/3 x (1 - x)."""
    x = np.empty(n)
    todo = np.arange(n)
    while todo.size:  # accept-reject under the flat bound 1 (the density is 2/3 at x = 1/2)
        candidate = rng.random(todo.size)
        accept = rng.random(todo.size) < 1.0 - 4.0 / 3.0 * candidate * (1.0 - candidate)
        x[todo[accept]] = candidate[accept]
        todo = todo[~accept]
    return x


def _empty() -> Particles:
    """A table without particles."""
    return Particles.make(*([np.empty(0)] * 7), np.empty(0, np.int32))
