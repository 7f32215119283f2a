"""Each tracker-realism effect does what it claims, on particles built by hand or by Pythia."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from jettag import config as cfg
from jettag.simulate import pdg
from jettag.simulate.hits import hit_pattern
from jettag.simulate.material import (
    bethe_heitler_fraction,
    hadronic_interactions,
    photon_conversions,
)
from jettag.simulate.particles import Particles
from jettag.simulate.pileup import pileup_particles
from jettag.simulate.tracker import (
    efficiency,
    fake_tracks,
    perigee_parameters,
    reconstruct_tracks,
)
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
    # the vertex is not smeared here, so its term stays out of the uncertainty too
    tracker = dataclasses.replace(sim.tracker, primary_vertex_in_uncertainty=False)
    tracks = reconstruct_tracks(_prompt_pions(20_000, rng), 0.0, tracker, rng)
    return float(np.mean(np.abs(tracks.d0 / tracks.d0_uncertainty) > 4))


def test_resolution_tails_make_heavier_significance_tails():
    without = _significance_tail(_simulation(tails={"enabled": False}, dense={"enabled": False}))
    with_tails = _significance_tail(_simulation(dense={"enabled": False}))
    # a Gaussian gives P(|x| > 4) = 6e-5; 10% of tracks 3x wider give ~1.8%
    assert without < 1e-3
    assert with_tails == pytest.approx(0.10 * 0.182, rel=0.25)


def _residual_tail(sim: cfg.SimulationConfig, pt: float, cut_mm: float) -> float:
    """Fraction of prompt pions of one pT whose |d0| exceeds cut_mm (no vertex smearing)."""
    rng = np.random.default_rng(3)
    tracker = dataclasses.replace(sim.tracker, primary_vertex_in_uncertainty=False)
    tracks = reconstruct_tracks(_prompt_pions(20_000, rng, pt=pt), 0.0, tracker, rng)
    return float(np.mean(np.abs(tracks.d0) > cut_mm))


def test_fixed_distance_tails_do_not_shrink_with_the_track_resolution():
    fixed = {"fraction": 0.0, "fixed_fraction": 0.05, "fixed_width_mm": 0.1}
    sim = _simulation(tails=fixed, dense={"enabled": False})
    core_only = _simulation(tails={"fraction": 0.0}, dense={"enabled": False})
    # sigma(d0) is ~10 um at 20 GeV: beyond 0.2 mm only the fixed component reaches;
    # P(|x| > 2 sigma_fixed) = 4.6 %, so 5 % of tracks put ~0.23 % there at any pT
    for pt in (20.0, 50.0):
        assert _residual_tail(core_only, pt, 0.2) == 0.0
        assert _residual_tail(sim, pt, 0.2) == pytest.approx(0.05 * 0.0455, rel=0.35)


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
    # the track fit's lever arm: the vertex term, the same for both, is left out
    sim = dataclasses.replace(
        sim, tracker=dataclasses.replace(sim.tracker, primary_vertex_in_uncertainty=False)
    )
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


def _photons(n: int, rng, pt: float) -> Particles:
    """Prompt photons, |eta| < 1, as the event record gives them to the conversions."""
    gun = _prompt_pions(n, rng, pt=pt)
    return gun.replace(charge=np.zeros(n), is_hadron=np.zeros(n, bool))


def test_photon_conversions_make_pairs_on_the_layers():
    sim = _simulation()
    material = sim.tracker.material
    rng = np.random.default_rng(11)
    photons = _photons(40_000, rng, pt=4.0)
    pairs = photon_conversions(photons, material, rng)
    n_pairs = len(pairs) // 2
    expected = 1 - np.prod(1 - np.asarray(material.conversion_probability))
    # probabilities grow as 1/sin(theta); |eta| < 1 keeps that factor below 1.55
    assert expected < n_pairs / len(photons) < 1.55 * expected
    electrons, positrons = pairs.select(slice(0, n_pairs)), pairs.select(slice(n_pairs, None))
    assert (electrons.charge == -1).all() and (positrons.charge == 1).all()
    # the pair shares the photon's momentum and direction and starts at one layer
    total = np.hypot(electrons.px + positrons.px, electrons.py + positrons.py)
    assert total == pytest.approx(np.full(n_pairs, 4.0), rel=1e-9)
    np.testing.assert_allclose(electrons.production_radius, positrons.production_radius)
    layers = np.asarray(material.layer_radii_mm)
    distance = np.abs(electrons.production_radius[:, None] - layers[None, :]).min(axis=1)
    assert distance.max() < 1e-6
    assert (pairs.origin == pdg.ORIGIN_OTHER_SECONDARY).all() and not pairs.is_hadron.any()
    # inner layers are thinner: the beam pipe converts a tenth as often as a pixel layer
    pipe = np.isclose(electrons.production_radius, layers[0]).mean()
    ibl = np.isclose(electrons.production_radius, layers[1]).mean()
    assert pipe < 0.3 * ibl


def test_conversion_tracks_are_displaced_by_their_curvature():
    sim = _simulation()
    rng = np.random.default_rng(12)
    pairs = photon_conversions(_photons(40_000, rng, pt=4.0), sim.tracker.material, rng)
    truth = perigee_parameters(
        pairs.x, pairs.y, pairs.z, pairs.px, pairs.py, pairs.pz, pairs.charge,
        sim.tracker.b_field_tesla,
    )  # fmt: skip
    # made at radius r moving radially, a helix of radius R has |d0| = sqrt(R^2 + r^2) - R
    r = pairs.production_radius
    curvature_radius = 1000.0 * truth.pt / (0.299792458 * sim.tracker.b_field_tesla)
    np.testing.assert_allclose(
        np.abs(truth.d0), np.hypot(curvature_radius, r) - curvature_radius, rtol=1e-6
    )
    # the two legs bend apart: opposite signs of d0
    n = len(pairs) // 2
    assert (np.sign(truth.d0[:n]) == -np.sign(truth.d0[n:])).all()
    tracks = reconstruct_tracks(pairs.replace(record_index=np.arange(len(pairs))), 0.0,
                                sim.tracker, rng)  # fmt: skip
    radius = pairs.production_radius[tracks.record_index]
    ibl = sim.tracker.hits.pixel_radii_mm[0]
    in_or_past_ibl = radius >= ibl - 1e-6
    assert in_or_past_ibl.mean() > 0.8  # the beam pipe is thin
    assert (tracks.hits["numberOfInnermostPixelLayerHits"][in_or_past_ibl] == 0).all()
    assert tracks.hits["numberOfInnermostPixelLayerHits"][~in_or_past_ibl].mean() > 0.9
    # made at the second pixel layer (50.5 mm), a 2 GeV leg has d0 ~ 0.4 mm, 40 sigma away
    assert np.median(np.abs(tracks.d0[np.isclose(radius, 50.5)])) > 0.2


def test_photon_conversions_off_draws_nothing():
    sim = _simulation(material={"conversions": False})
    rng = np.random.default_rng(13)
    photons = _photons(1000, rng, pt=4.0)
    state = rng.bit_generator.state
    assert len(photon_conversions(photons, sim.tracker.material, rng)) == 0
    # no draw when off: samples generated without conversions keep their old random stream
    assert rng.bit_generator.state == state


def test_bethe_heitler_energy_sharing():
    x = bethe_heitler_fraction(400_000, np.random.default_rng(14))
    assert ((x >= 0) & (x <= 1)).all()
    counts, edges = np.histogram(x, np.linspace(0, 1, 11))
    lo, hi = edges[:-1], edges[1:]

    def integral(a, b):
        return (b - a) - 2 / 3 * (b**2 - a**2) + 4 / 9 * (b**3 - a**3)

    expected = integral(lo, hi) / integral(0.0, 1.0) * x.size
    np.testing.assert_allclose(counts, expected, rtol=0.02)
    # asymmetric splits are more likely than equal ones (density 1 at the ends, 2/3 at 1/2)
    assert counts[0] > 1.3 * counts[5]


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


def _real_and_fake_tracks(sim: cfg.SimulationConfig, seed: int = 7):
    """Prompt 0.5-10 GeV pion tracks and fakes in 500 GeV jets, from the same tracker."""
    rng = np.random.default_rng(seed)
    n = 20_000
    phi, eta = rng.uniform(-np.pi, np.pi, n), rng.uniform(-2.4, 2.4, n)
    pt = rng.uniform(0.5, 10.0, n)
    pions = Particles.make(
        x=np.zeros(n), y=np.zeros(n), z=np.zeros(n), px=pt * np.cos(phi), py=pt * np.sin(phi),
        pz=pt * np.sinh(eta), charge=rng.choice([-1.0, 1.0], n),
        origin=np.full(n, pdg.ORIGIN_PRIMARY), record_index=np.arange(n),
    )  # fmt: skip
    real = reconstruct_tracks(pions, 0.0, sim.tracker, rng)
    fakes = [fake_tracks(500.0, 0.0, 0.0, 0.4, sim.tracker, rng) for _ in range(4000)]
    return real, {k: np.concatenate([f.hits[k] for f in fakes]) for k in real.hits}


def _crude_hit_cut(hits: dict[str, np.ndarray]) -> np.ndarray:
    """The review's crude fake finder: < 8 SCT hits, shared pixel hits or an impossible pattern."""
    inner = hits["numberOfInnermostPixelLayerHits"] + hits["numberOfNextToInnermostPixelLayerHits"]
    return (
        (hits["numberOfSCTHits"] < 8)
        | (hits["numberOfPixelSharedHits"] > 0)
        | (hits["numberOfPixelHits"] < inner)
    )


def test_fakes_have_the_hit_patterns_of_real_tracks_but_for_the_configured_excess():
    sim = _simulation(dense={"enabled": False})
    real, fake = _real_and_fake_tracks(sim)
    assert fake["numberOfPixelHits"].size > 2000
    impossible = fake["numberOfPixelHits"] < (
        fake["numberOfInnermostPixelLayerHits"] + fake["numberOfNextToInnermostPixelLayerHits"]
    )
    assert not impossible.any()
    removed_real, removed_fake = _crude_hit_cut(real.hits).mean(), _crude_hit_cut(fake).mean()
    # the excess: 1 % more missed hits per layer and 3 % shared innermost hits, nothing like
    # the 97 % of the old random patterns
    assert removed_fake < removed_real + 0.15, (removed_real, removed_fake)
    assert removed_fake > removed_real, (removed_real, removed_fake)
    for name in ("numberOfPixelHits", "numberOfSCTHits", "numberOfInnermostPixelLayerHits"):
        assert fake[name].mean() == pytest.approx(real.hits[name].mean(), abs=0.25), name
    shared = (fake["numberOfPixelSharedHits"] > 0).mean()
    assert 0.03 < shared < 0.09, shared  # about 1 - 0.97^2 with two innermost hits

    # with the switch off, the old random patterns: the crude cut finds nearly every fake
    old = dataclasses.replace(
        sim.tracker, fakes=dataclasses.replace(sim.tracker.fakes, realistic_hit_patterns=False)
    )
    _, old_fake = _real_and_fake_tracks(dataclasses.replace(sim, tracker=old))
    assert _crude_hit_cut(old_fake).mean() > 0.9


def test_more_excess_makes_fakes_more_separable():
    sim = _simulation(dense={"enabled": False})
    worse = dataclasses.replace(
        sim.tracker,
        fakes=dataclasses.replace(
            sim.tracker.fakes, extra_hit_inefficiency=0.1, shared_hit_probability=0.3
        ),
    )
    _, nominal = _real_and_fake_tracks(sim)
    _, excess = _real_and_fake_tracks(dataclasses.replace(sim, tracker=worse))
    assert _crude_hit_cut(excess).mean() > _crude_hit_cut(nominal).mean() + 0.3


def test_efficiency_turn_on_is_atlas_like():
    config = _simulation().tracker.efficiency
    pt = np.array([0.45, 0.5, 0.6, 1.0, 5.0])
    relative = efficiency(pt, np.zeros(pt.size), config) / config.plateau
    # ATLAS Loose tracks: ~80 % of the plateau at 500 MeV, flat above ~1 GeV (the old
    # turn_on_gev 0.25 gave 33 % at 500 MeV)
    assert relative[1] == pytest.approx(0.81, abs=0.03)
    assert relative[2] > 0.95 and relative[3] > 0.999 and relative[4] == pytest.approx(1.0)
    assert relative[0] < relative[1]
    slow = efficiency(pt, np.zeros(pt.size), dataclasses.replace(config, turn_on_gev=0.25))
    assert slow[1] / config.plateau == pytest.approx(0.33, abs=0.02)


def _prompt_pulls(tracker, n_events: int = 1500, seed: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """d0 and z0 sin(theta) pulls of 40 GeV prompt tracks, the vertex redrawn per event."""
    rng = np.random.default_rng(seed)
    d0, z0 = [], []
    for _ in range(n_events):
        pv_z = tracker.primary_vertex_z_resolution_mm * rng.standard_normal()
        pv_xy = tuple(tracker.primary_vertex_xy_resolution_mm * rng.standard_normal(2))
        t = reconstruct_tracks(_prompt_pions(8, rng, pt=40.0), pv_z, tracker, rng, pv_xy)
        d0.append(t.d0 / t.d0_uncertainty)
        z0.append(t.z0_sin_theta / t.z0_sin_theta_uncertainty)
    return np.concatenate(d0), np.concatenate(z0)


def _core(pulls: np.ndarray) -> float:
    """Gaussian-equivalent width of the central 68 %."""
    return float(np.diff(np.quantile(pulls, [0.16, 0.84]))[0] / 2)


def test_vertex_resolution_enters_impact_parameters_and_their_uncertainties():
    sim = _simulation(tails={"enabled": False}, dense={"enabled": False})
    tracker = sim.tracker
    assert tracker.primary_vertex_xy_resolution_mm > 0 and tracker.primary_vertex_in_uncertainty
    d0, z0 = _prompt_pulls(tracker)
    # the vertex error is in the measured values and in the uncertainties: unit pulls
    assert _core(d0) == pytest.approx(1.0, abs=0.05)
    assert _core(z0) == pytest.approx(1.0, abs=0.05)
    # measured from a smeared vertex but with the fit's uncertainty only: pulls too wide
    fit_only = dataclasses.replace(tracker, primary_vertex_in_uncertainty=False)
    d0_wide, z0_wide = _prompt_pulls(fit_only)
    assert _core(d0_wide) > 1.2 and _core(z0_wide) > 1.05
    # the old sample: vertex on the beam line, no xy term, so d0 pulls stay unit
    old = dataclasses.replace(fit_only, primary_vertex_xy_resolution_mm=0.0)
    d0_old, _ = _prompt_pulls(old)
    assert _core(d0_old) == pytest.approx(1.0, abs=0.05)
