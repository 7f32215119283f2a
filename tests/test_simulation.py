"""Physics of the generator: helix perigee, PDG classes, labels and track origins on real events."""

from __future__ import annotations

import dataclasses

import awkward as ak
import numpy as np
import pytest
import uproot

from jettag import config as cfg
from jettag.io.fields import lifetime_signed_d0_significance
from jettag.kinematics import wrap_phi
from jettag.simulate import pdg
from jettag.simulate.generate import generate_shard, shard_seeds
from jettag.simulate.jets import Jets, angular_resolution, reconstruct_jets
from jettag.simulate.realism import ideal_detector
from jettag.simulate.tracker import perigee_parameters
from tests.conftest import minimal_config


def test_prompt_tracks_have_zero_impact_parameters():
    rng = np.random.default_rng(1)
    n = 50
    p = perigee_parameters(
        np.zeros(n), np.zeros(n), np.zeros(n), rng.normal(0, 2, n), rng.normal(0, 2, n),
        rng.normal(0, 5, n), rng.choice([-1.0, 1.0], n), 2.0,
    )  # fmt: skip
    np.testing.assert_allclose(p.d0, 0, atol=1e-9)
    np.testing.assert_allclose(p.z0, 0, atol=1e-9)


def test_straight_line_limit_and_exact_helix():
    # a very stiff track: ATLAS's d0 = y cos(phi) - x sin(phi), z0 = z - (r.u) cot(theta)
    x, y, z = np.array([1.0]), np.array([0.5]), np.array([3.0])
    p = perigee_parameters(x, y, z, np.array([1e4]), np.array([0.0]), np.array([1e4]),
                           np.array([1.0]), 2.0)  # fmt: skip
    assert p.d0[0] == pytest.approx(0.5, abs=1e-5)
    assert p.z0[0] == pytest.approx(2.0, abs=1e-5)
    # a soft track from (0, 2 mm) moving along -x: the circle centre is known exactly
    pt, b = 1.0, 2.0
    radius = 1000 * pt / (0.299792458 * b)
    p = perigee_parameters(np.array([0.0]), np.array([2.0]), np.array([0.0]), np.array([-pt]),
                           np.array([0.0]), np.array([0.0]), np.array([1.0]), b)  # fmt: skip
    centre = np.array([0.0, 2.0]) + radius * np.array([np.sin(np.pi), -np.cos(np.pi)])
    assert p.d0[0] == pytest.approx(radius - np.linalg.norm(centre), rel=1e-9)
    assert p.d0[0] == pytest.approx(-2.0, rel=1e-4)  # y cos(phi) - x sin(phi) = 2 cos(pi)


@pytest.mark.parametrize("charge", [1.0, -1.0])
def test_decay_along_the_jet_has_atlas_perigee_sign_and_positive_sd0(charge):
    # a b-hadron flies 3 mm along phi_jet = 0.4; a stiff daughter leaves at phi_jet + 0.2
    phi_jet, opening, flight = 0.4, 0.2, 3.0
    phi = phi_jet + opening
    p = perigee_parameters(
        np.array([flight * np.cos(phi_jet)]), np.array([flight * np.sin(phi_jet)]),
        np.array([0.0]), np.array([500 * np.cos(phi)]), np.array([500 * np.sin(phi)]),
        np.array([0.0]), np.array([charge]), 2.0,
    )  # fmt: skip
    # ATLAS perigee: d0 = L sin(phi_jet - phi_trk), negative for this track
    assert p.d0[0] == pytest.approx(flight * np.sin(-opening), rel=1e-3)
    sd0 = lifetime_signed_d0_significance(p.d0, 0.01, wrap_phi(p.phi0 - phi_jet))
    assert sd0[0] == pytest.approx(abs(p.d0[0]) / 0.01)  # in front of the vertex: positive


def test_pdg_classes():
    ids = np.array([511, -521, 5122, 541, 553, 411, -4122, 443, 211, 310, 2101])
    assert is_b(ids) == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert is_c(ids) == [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]


def is_b(ids):
    return pdg.is_b_hadron(ids).astype(int).tolist()


def is_c(ids):
    return pdg.is_c_hadron(ids).astype(int).tolist()


def _arrays(path):
    return uproot.open(path)["jets"].arrays()


def test_generated_sample_is_physical(generated_root):
    jets = _arrays(generated_root)
    label = ak.to_numpy(jets.jet_HadronConeExclTruthLabelID)
    fractions = {k: np.mean(label == k) for k in (0, 4, 5)}
    # ttbar: two b jets per event among ~5 jets; c jets from W decays; light the rest
    assert 0.2 < fractions[5] < 0.45
    assert 0.04 < fractions[4] < 0.2
    assert 0.35 < fractions[0] < 0.7
    assert ak.all(jets.jet_pt > 20) and ak.all(abs(jets.jet_eta) < 2.5)
    ntrk = ak.to_numpy(jets.n_trk)
    assert ntrk[label == 5].mean() > ntrk[label == 0].mean()
    origin = jets.trk_ftagTruthOriginLabel
    from_b = ak.to_numpy(
        ak.sum((origin == pdg.ORIGIN_FROM_B) | (origin == pdg.ORIGIN_FROM_BC), axis=1)
    )
    assert from_b[label == 5].mean() > 1.5  # B decays give several tracks
    assert from_b[label == 0].mean() < 0.2
    # lifetime: tracks from B decays are far more displaced than primary ones
    d0 = np.abs(ak.to_numpy(ak.flatten(jets.trk_d0)))
    flat_origin = ak.to_numpy(ak.flatten(origin))
    assert np.median(d0[flat_origin == pdg.ORIGIN_FROM_B]) > 3 * np.median(
        d0[flat_origin == pdg.ORIGIN_PRIMARY]
    )


def test_generation_is_reproducible_by_seed(tmp_path, config, generated_root):
    simulation = cfg.section(cfg.SimulationConfig, config["simulation"])
    sample = cfg.sample_config(config, "ttbar")
    again = tmp_path / "again.root"
    other = tmp_path / "other.root"
    generate_shard("ttbar", sample, simulation, config["seed"], 0, again, n_events=40)
    generate_shard("ttbar", sample, simulation, config["seed"], 1, other, n_events=40)
    first = _arrays(generated_root)
    a, b = _arrays(again), _arrays(other)
    n = len(a)
    # same seed and shard: the first 40 events are identical to the fixture's
    assert ak.all(a.jet_pt == first.jet_pt[:n]) and ak.all(ak.flatten(a.trk_d0 == first.trk_d0[:n]))
    assert not np.array_equal(ak.to_numpy(b.jet_pt[:5]), ak.to_numpy(a.jet_pt[:5]))
    assert ak.min(b.eventNumber) >= 1_000_000  # event numbers stay unique across shards
    assert shard_seeds(1, "ttbar", 0) != shard_seeds(1, "ttbar", 1)


def test_overlap_removal_drops_jets_made_by_prompt_leptons(tmp_path, config):
    simulation = cfg.section(cfg.SimulationConfig, config["simulation"])
    sample = cfg.sample_config(config, "ttbar")
    off = dataclasses.replace(
        simulation, overlap_removal=dataclasses.replace(simulation.overlap_removal, enabled=False)
    )
    n_on = generate_shard("ttbar", sample, simulation, 5, 0, tmp_path / "on.root", n_events=60)
    n_off = generate_shard("ttbar", sample, off, 5, 0, tmp_path / "off.root", n_events=60)
    removed = n_off["jets"] - n_on["jets"]
    # ttbar: about 0.4 prompt electrons or muons per event (W -> e nu, mu nu, also via tau)
    assert 5 <= removed <= 40
    on, all_jets = _arrays(tmp_path / "on.root"), _arrays(tmp_path / "off.root")
    kept = set(zip(ak.to_list(on.eventNumber), np.round(ak.to_numpy(on.jet_pt), 3), strict=True))
    dropped = [
        n for e, pt, n in zip(ak.to_list(all_jets.eventNumber),
                              np.round(ak.to_numpy(all_jets.jet_pt), 3),
                              ak.to_list(all_jets.n_trk), strict=True)
        if (e, pt) not in kept
    ]  # fmt: skip
    assert len(dropped) == removed
    assert np.median(dropped) <= 2  # a lepton's "jet" has its own track and little else


def test_realism_makes_light_jets_look_more_like_b_jets(tmp_path, config, generated_root):
    simulation = cfg.section(cfg.SimulationConfig, config["simulation"])
    sample = cfg.sample_config(config, "ttbar")
    ideal = tmp_path / "ideal.root"
    generate_shard("ttbar", sample, ideal_detector(simulation), config["seed"], 0, ideal,
                   n_events=300)  # fmt: skip

    def light_tracks(path):
        jets = _arrays(path)
        light = jets[jets.jet_HadronConeExclTruthLabelID == 0]
        significance = ak.to_numpy(ak.flatten(abs(light.trk_d0) / light.trk_d0Uncertainty))
        return significance, ak.to_numpy(ak.flatten(light.trk_ftagTruthOriginLabel))

    real_sd0, real_origin = light_tracks(generated_root)
    ideal_sd0, ideal_origin = light_tracks(ideal)
    # tails, K0S/Lambda decays, material interactions and fakes give light jets large-IP tracks
    assert np.mean(real_sd0 > 3) > 3 * np.mean(ideal_sd0 > 3)
    for origin in (pdg.ORIGIN_PILEUP, pdg.ORIGIN_FAKE, pdg.ORIGIN_OTHER_SECONDARY):
        assert np.any(real_origin == origin)
    assert not np.any(np.isin(ideal_origin, [pdg.ORIGIN_PILEUP, pdg.ORIGIN_FAKE]))
    # without long-lived decays and material, "other secondary" tracks can only come from photons
    assert np.mean(ideal_origin == pdg.ORIGIN_OTHER_SECONDARY) < 0.25 * np.mean(
        real_origin == pdg.ORIGIN_OTHER_SECONDARY
    )


def test_reconstructed_jets_are_smeared_with_the_configured_resolution():
    simulation = cfg.section(
        cfg.SimulationConfig, cfg.validate_config(minimal_config())["simulation"]
    )
    config = simulation.jets.reconstruction
    assert config.enabled
    rng = np.random.default_rng(4)
    n = 50_000
    for pt, expected in ((20.0, 0.24), (300.0, 0.06)):
        truth = Jets(np.full(n, pt), np.zeros(n), np.full(n, 3.1), np.full(n, 5.0))
        reco = reconstruct_jets(truth, config, rng)
        response = reco.pt / truth.pt
        # the documented JER (ATLAS Run 2, EPJC 81 (2021) 689): 24 % at 20 GeV, 6 % at 300 GeV
        assert response.std() == pytest.approx(expected, rel=0.1)
        assert response.mean() == pytest.approx(config.energy_scale, abs=0.01)
        assert np.std(reco.eta) == pytest.approx(angular_resolution(pt, config), rel=0.05)
        dphi = np.angle(np.exp(1j * (reco.phi - truth.phi)))  # across the +-pi seam
        assert np.std(dphi) == pytest.approx(angular_resolution(pt, config), rel=0.05)
        assert np.all(np.abs(reco.phi) <= np.pi)
        np.testing.assert_allclose(reco.mass / truth.mass, response)
    off = dataclasses.replace(config, enabled=False)
    truth = Jets(np.array([50.0]), np.array([0.3]), np.array([1.0]), np.array([8.0]))
    assert reconstruct_jets(truth, off, rng) is truth


def test_generated_jets_are_reconstructed_and_labelled_by_their_truth_jet(generated_root):
    jets = _arrays(generated_root)
    reco, truth = ak.to_numpy(jets.jet_pt), ak.to_numpy(jets.jet_truth_pt)
    response = reco / truth
    # the cut is on the reconstructed pT: some truth jets below it are kept, smeared up
    assert np.all(reco >= 20.0) and (truth < 20.0).any()
    assert 0.95 < np.median(response) < 1.05 and 0.05 < response.std() < 0.3
    dr = np.hypot(
        ak.to_numpy(jets.jet_eta) - ak.to_numpy(jets.jet_truth_eta),
        np.angle(np.exp(1j * (ak.to_numpy(jets.jet_phi) - ak.to_numpy(jets.jet_truth_phi)))),
    )
    assert 0.0 < np.median(dr) < 0.05
    # the lifetime sign is taken from the reconstructed axis: b-hadron tracks still mostly
    # have a positive sd0, but no longer all of them above a few sigma
    origin = ak.to_numpy(ak.flatten(jets.trk_ftagTruthOriginLabel))
    dphi = wrap_phi(ak.to_numpy(ak.flatten(jets.trk_phi - jets.jet_phi)))
    sd0 = lifetime_signed_d0_significance(
        ak.to_numpy(ak.flatten(jets.trk_d0)), ak.to_numpy(ak.flatten(jets.trk_d0Uncertainty)), dphi
    )
    displaced = (origin == pdg.ORIGIN_FROM_B) & (np.abs(sd0) > 3)
    assert np.mean(sd0[displaced] > 0) > 0.85


@pytest.mark.parametrize("process", ["ttbar", "zprime"])
def test_batch_export_is_the_particle_by_particle_record(process):
    """Pythia's awkward batch interface gives the same events, bit for bit, as next()."""
    from jettag.simulate.pythia import (
        ChargeTable,
        extract_event,
        generate_records,
        make_pythia,
        zprime_settings,
    )

    extra = zprime_settings(2000.0) if process == "zprime" else []
    pythia = make_pythia(process, 13000.0, 11, 35.0, True, extra)
    expected = []
    for _ in range(5):
        assert pythia.next()
        expected.append(extract_event(pythia.event))
    pythia = make_pythia(process, 13000.0, 11, 35.0, True, extra)
    records = generate_records(pythia, 5, ChargeTable(pythia.particleData))
    assert len(records) == 5
    for want, got in zip(expected, records, strict=True):
        assert got is not None
        assert want.pdg_id.size > 100  # a real event, with its charged particles
        assert np.any(want.charge != 0) and np.any(want.is_final)
        for f in dataclasses.fields(want):
            a, b = getattr(want, f.name), getattr(got, f.name)
            assert a.dtype == b.dtype, f.name
            np.testing.assert_array_equal(a, b, err_msg=f.name)
