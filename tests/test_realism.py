"""Each tracker-realism effect does what it claims, on particles built by hand or by Pythia."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from jettag import config as cfg
from jettag.simulate import pdg
from jettag.simulate.hits import hit_pattern
from jettag.simulate.material import hadronic_interactions
from jettag.simulate.particles import Particles
from jettag.simulate.pileup import pileup_particles
from jettag.simulate.tracker import efficiency, fake_tracks, reconstruct_tracks
from tests.conftest import minimal_config


def _simulation(**tracker_changes) -> cfg.SimulationConfig:
    """The default simulation config with some tracker sections replaced."""
    sim = cfg.section(cfg.SimulationConfig, cfg.validate_config(minimal_config())["simulation"])
    tracker = sim.tracker
    for name, changes in tracker_changes.items():
        tracker = dataclasses.replace(
            tracker, **{name: dataclasses.replace(getattr(tracker, name), **changes)}
        )
    return dataclasses.replace(sim, tracker=tracker)


def _prompt_pions(n: int, rng, pt=5.0, z=0.0) -> Particles:
    phi = rng.uniform(-np.pi, np.pi, n)
    eta = rng.uniform(-1, 1, n)
    return Particles.make(
        x=np.zeros(n), y=np.zeros(n), z=np.full(n, z), px=pt * np.cos(phi), py=pt * np.sin(phi),
        pz=pt * np.sinh(eta), charge=rng.choice([-1.0, 1.0], n),
        origin=np.full(n, pdg.ORIGIN_PRIMARY), record_index=np.arange(n),
    )  # fmt: skip


def _significance_tail(sim: cfg.SimulationConfig, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    tracks = reconstruct_tracks(_prompt_pions(20_000, rng), 0.0, sim.tracker, rng)
    return float(np.mean(np.abs(tracks.d0 / tracks.d0_uncertainty) > 4))


def test_resolution_tails_make_heavier_significance_tails():
    without = _significance_tail(_simulation(tails={"enabled": False}, dense={"enabled": False}))
    with_tails = _significance_tail(_simulation(dense={"enabled": False}))
    # a Gaussian gives P(|x| > 4) = 6e-5; 10% of tracks 3x wider give ~1.8%
    assert without < 1e-3
    assert with_tails == pytest.approx(0.10 * 0.182, rel=0.25)


def test_efficiency_turn_on_and_forward_loss():
    config = _simulation().tracker.efficiency
    eff = efficiency(np.array([0.5, 1.0, 10.0, 10.0]), np.array([0.0, 0.0, 0.0, 2.4]), config)
    assert eff[0] < eff[1] < eff[2]
    assert eff[2] == pytest.approx(config.plateau, rel=1e-3)
    assert eff[3] < eff[2] - 0.05


def test_hit_pattern_follows_production_radius():
    hits_cfg = _simulation().tracker.hits
    rng = np.random.default_rng(1)
    r0 = np.array([0.0, 40.0, 60.0, 130.0])
    perfect = dataclasses.replace(
        hits_cfg, pixel_hit_efficiency=0.999999, sct_hit_efficiency=0.999999
    )
    hits = hit_pattern(r0, np.full(4, np.inf), perfect, rng)
    assert hits.n_pixel.tolist() == [4, 3, 2, 0]
    assert hits.n_innermost.tolist() == [1, 0, 0, 0]
    assert hits.n_sct.tolist() == [8, 8, 8, 8]


def test_tracks_made_beyond_the_innermost_layer_have_worse_resolution():
    sim = _simulation(tails={"enabled": False}, dense={"enabled": False})
    rng = np.random.default_rng(2)
    prompt = _prompt_pions(2000, rng)
    # made at r = 40 mm along the flight direction (d0 = 0), past the innermost layer
    direction = np.stack([prompt.px, prompt.py]) / prompt.pt
    displaced = prompt.replace(
        x=40.0 * direction[0], y=40.0 * direction[1], z=40.0 * prompt.pz / prompt.pt
    )
    a = reconstruct_tracks(prompt, 0.0, sim.tracker, rng)
    a = a.select(a.hits["numberOfInnermostPixelLayerHits"] == 1)  # 2% miss it (inefficiency)
    b = reconstruct_tracks(displaced, 0.0, sim.tracker, rng)
    assert (b.hits["numberOfInnermostPixelLayerHits"] == 0).all()
    common, ia, ib = np.intersect1d(a.record_index, b.record_index, return_indices=True)
    assert common.size > 1000  # the same particles, found both times
    ratio = b.d0_uncertainty[ib] / a.d0_uncertainty[ia]
    np.testing.assert_allclose(ratio, sim.tracker.no_innermost_hit_resolution_factor, rtol=1e-6)


def test_hadronic_interactions_make_displaced_secondaries():
    sim = _simulation()
    rng = np.random.default_rng(3)
    pions = _prompt_pions(20_000, rng, pt=10.0)
    after = hadronic_interactions(pions, sim.tracker.material, rng)
    stopped = np.isfinite(after.end_radius[: len(pions)])
    expected = 1 - np.prod(1 - np.asarray(sim.tracker.material.interaction_probability))
    # probabilities grow as 1/sin(theta); |eta| < 1 keeps that factor below 1.55
    assert expected < stopped.mean() < 1.55 * expected
    secondaries = after.select(np.arange(len(after)) >= len(pions))
    assert (secondaries.origin == pdg.ORIGIN_OTHER_SECONDARY).all()
    layers = np.asarray(sim.tracker.material.layer_radii_mm)
    distance = np.abs(secondaries.production_radius[:, None] - layers[None, :]).min(axis=1)
    assert distance.max() < 1e-6  # every secondary starts on a layer
    off = hadronic_interactions(
        pions, dataclasses.replace(sim.tracker.material, enabled=False), rng
    )
    assert len(off) == len(pions)


def test_pileup_multiplicity_and_z():
    sim = _simulation()
    rng = np.random.default_rng(4)
    counts = [len(pileup_particles(sim.pileup, 0.0, 35.0, rng)) for _ in range(200)]
    assert np.mean(counts) == pytest.approx(sim.pileup.mu * sim.pileup.charged_per_vertex, rel=0.05)
    p = pileup_particles(sim.pileup, 10.0, 35.0, rng)
    assert (p.origin == pdg.ORIGIN_PILEUP).all()
    assert np.std(p.z) > 20  # spread along the beam, not at the hard-scatter vertex
    tracks = reconstruct_tracks(p, 0.0, sim.tracker, rng)
    assert len(tracks) < 0.3 * len(p)  # most fail |z0 sin theta| < 5 mm


def test_merged_clusters_in_dense_cores():
    sim = _simulation(tails={"enabled": False})
    rng = np.random.default_rng(5)
    # pairs of stiff tracks 20 um apart at the IBL: always merged; pairs far apart: never
    n = 500
    base = _prompt_pions(n, rng, pt=200.0)
    twin = base.replace(px=base.px * np.cos(5e-4) - base.py * np.sin(5e-4),
                        py=base.px * np.sin(5e-4) + base.py * np.cos(5e-4))  # fmt: skip
    close = reconstruct_tracks(Particles.concatenate([base, twin]), 0.0, sim.tracker, rng)
    far = reconstruct_tracks(base, 0.0, sim.tracker, rng)
    assert (far.hits["numberOfPixelSharedHits"] == 0).mean() > 0.95
    assert (close.hits["numberOfPixelSharedHits"] > 0).mean() > 0.95
    assert len(close) < 0.8 * 2 * len(far)  # about half of the merged pairs lose a track


def test_fake_rate_grows_with_jet_pt():
    tracker = _simulation().tracker
    rng = np.random.default_rng(6)
    low = np.mean([len(fake_tracks(30.0, 0.0, 0.0, 0.4, tracker, rng)) for _ in range(2000)])
    high = np.mean([len(fake_tracks(500.0, 0.0, 0.0, 0.4, tracker, rng)) for _ in range(2000)])
    assert low == pytest.approx(0.05 + 0.15 * 0.3, rel=0.2)
    assert high == pytest.approx(0.05 + 0.15 * 5.0, rel=0.1)
    t = fake_tracks(500.0, 1.0, 2.0, 0.4, tracker, rng)
    assert (t.origin == pdg.ORIGIN_FAKE).all()
