"""The generate stage: Pythia 8 events -> anti-kt jets with labelled, reconstructed tracks -> ROOT.

One shard is one job: its seeds derive from (config seed, sample name, shard index), so the
same config always gives the same files and shards run in parallel on a cluster.
"""

from __future__ import annotations

import itertools
import logging
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np
from tqdm import tqdm

from jettag.atomic import atomic_path
from jettag.config import MAX_EVENT_NUMBER_PER_SHARD, GenerationConfig, SimulationConfig
from jettag.io.canonical import HIT_FIELDS
from jettag.kinematics import delta_r, pt_eta_phi_m
from jettag.simulate import pdg
from jettag.simulate.jets import Jets, reconstruct_jets
from jettag.simulate.material import hadronic_interactions, photon_conversions
from jettag.simulate.particles import Particles
from jettag.simulate.pileup import pileup_particles
from jettag.simulate.pythia import (
    ChargeTable,
    EventRecord,
    generate_records,
    make_pythia,
    zprime_settings,
)
from jettag.simulate.tracker import Tracks, fake_tracks, reconstruct_tracks
from jettag.simulate.truth import (
    labelling_particles,
    prompt_isolated_leptons,
    truth_origin,
    truth_vertex_index,
)

log = logging.getLogger(__name__)

EVENTS_PER_CLUSTERING_BATCH = 250
TRACK_FIELDS = (
    "pt", "eta", "phi", "charge", "d0", "z0SinTheta", "d0Uncertainty",
    "z0SinThetaUncertainty", "ftagTruthOriginLabel", "ftagTruthVertexIndex", *HIT_FIELDS,
)  # fmt: skip
INT_TRACK_FIELDS = ("ftagTruthOriginLabel", "ftagTruthVertexIndex", *HIT_FIELDS)


@dataclass
class _PendingEvent:
    """What one event contributes once its jets are clustered."""

    number: int
    record: EventRecord
    visible: np.ndarray
    tracks: Tracks
    hadrons: dict[int, np.ndarray]
    leptons: np.ndarray
    rng: np.random.Generator  # this event's own stream: results do not depend on batching


@dataclass
class _Output:
    """Per-jet columns and flattened track columns, accumulated over a shard."""

    jets: dict[str, list] = field(default_factory=lambda: {k: [] for k in _JET_BRANCHES})
    tracks: dict[str, list] = field(default_factory=lambda: {k: [] for k in TRACK_FIELDS})
    n_tracks: list = field(default_factory=list)


_JET_BRANCHES = {
    "jet_pt": np.float32,
    "jet_eta": np.float32,
    "jet_phi": np.float32,
    "jet_mass": np.float32,
    "jet_HadronConeExclTruthLabelID": np.int32,
    "eventNumber": np.int64,
    # the truth-particle jet the reconstructed one (jet_pt, ...) was made from; it carries the label
    "jet_truth_pt": np.float32,
    "jet_truth_eta": np.float32,
    "jet_truth_phi": np.float32,
}


def shard_seeds(seed: int, sample: str, shard: int) -> tuple[int, np.random.SeedSequence]:
    """(Pythia seed, numpy seed sequence) of one shard, stable across runs and machines."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(sample.encode()), shard])
    pythia_seed = int(sequence.generate_state(1)[0] % 900_000_000) + 1
    return pythia_seed, sequence


def generate_shard(
    sample_name: str,
    sample: GenerationConfig,
    simulation: SimulationConfig,
    seed: int,
    shard: int,
    output: Path,
    n_events: int | None = None,
) -> dict[str, int]:
    """Generate one shard and write it as a ROOT TTree with one entry per jet."""
    import fastjet

    n_events = sample.events_per_shard if n_events is None else n_events
    if n_events >= MAX_EVENT_NUMBER_PER_SHARD:
        raise ValueError(f"at most {MAX_EVENT_NUMBER_PER_SHARD - 1} events per shard")
    pythia_seed, sequence = shard_seeds(seed, sample_name, shard)
    extra = []
    if sample.process == "zprime":
        masses = sample.zprime_masses_gev
        extra = zprime_settings(masses[shard % len(masses)])
    pythia = make_pythia(
        sample.process, sample.sqrt_s_gev, pythia_seed, simulation.beam_spot_sigma_z_mm,
        simulation.long_lived_decays, extra,
    )  # fmt: skip
    jet_definition = fastjet.JetDefinition(fastjet.antikt_algorithm, simulation.jets.radius)
    out = _Output()
    pending: list[_PendingEvent] = []
    failures = 0
    progress = tqdm(
        total=n_events, desc=f"generate {sample_name}/{shard}", unit="ev",
        disable=not sys.stderr.isatty(),
    )  # fmt: skip
    charges = ChargeTable(pythia.particleData)
    number = 0
    while number < n_events:
        # a clustering batch of events from Pythia at once (its awkward batch interface)
        batch = min(EVENTS_PER_CLUSTERING_BATCH - len(pending), n_events - number)
        for record in generate_records(pythia, batch, charges):
            if record is None:
                failures += 1
                if failures > 100 + n_events // 10:
                    raise RuntimeError(f"Pythia failed {failures} times in shard {shard}")
                continue
            rng = np.random.default_rng(
                np.random.SeedSequence(sequence.entropy, spawn_key=(number,))
            )
            pending.append(_simulate_detector(record, shard, number, simulation, rng))
            number += 1
            progress.update()
        if len(pending) == EVENTS_PER_CLUSTERING_BATCH or number == n_events:
            _cluster_and_fill(pending, jet_definition, simulation, out)
            pending = []
    progress.close()
    _write_root(out, output)
    return {"events": n_events, "jets": len(out.n_tracks), "pythia_failures": failures}


def _simulate_detector(
    record: EventRecord, shard: int, index: int, simulation: SimulationConfig, rng
) -> _PendingEvent:
    """Everything of one event that does not need the jets: visible particles, tracks, truth."""
    pv = (record.x[0], record.y[0], record.z[0])  # particle 0 sits at the hard-scatter vertex
    final = record.is_final
    visible = np.flatnonzero(final & ~np.isin(np.abs(record.pdg_id), pdg.NEUTRINOS))
    charged = np.flatnonzero(final & (record.charge != 0))
    particles = Particles.make(
        x=record.x[charged] - pv[0], y=record.y[charged] - pv[1], z=record.z[charged] - pv[2],
        px=record.px[charged], py=record.py[charged], pz=record.pz[charged],
        charge=record.charge[charged], origin=truth_origin(record, charged),
        record_index=charged, is_hadron=np.abs(record.pdg_id[charged]) > 100,
    )  # fmt: skip
    pileup = pileup_particles(simulation.pileup, pv[2], simulation.beam_spot_sigma_z_mm, rng)
    particles = Particles.concatenate([particles, pileup])
    particles = hadronic_interactions(particles, simulation.tracker.material, rng)
    photons = np.flatnonzero(final & (record.pdg_id == 22))
    pairs = photon_conversions(
        Particles.make(
            x=record.x[photons] - pv[0], y=record.y[photons] - pv[1], z=record.z[photons] - pv[2],
            px=record.px[photons], py=record.py[photons], pz=record.pz[photons],
            charge=np.zeros(photons.size), origin=np.zeros(photons.size, np.int32),
            record_index=photons, is_hadron=np.zeros(photons.size, bool),
        ),
        simulation.tracker.material, rng,
    )  # fmt: skip
    particles = Particles.concatenate([particles, pairs])
    tracker = simulation.tracker
    pv_z_reco = tracker.primary_vertex_z_resolution_mm * rng.standard_normal()
    pv_xy_reco = (0.0, 0.0)
    if tracker.primary_vertex_xy_resolution_mm > 0:  # no draw when off: the old stream
        x, y = tracker.primary_vertex_xy_resolution_mm * rng.standard_normal(2)
        pv_xy_reco = (float(x), float(y))
    overlap = simulation.overlap_removal
    leptons = (
        prompt_isolated_leptons(
            record,
            overlap.lepton_pt_min_gev,
            overlap.isolation_cone,
            overlap.max_isolation_fraction,
        )
        if overlap.enabled
        else np.empty(0, np.int64)
    )
    return _PendingEvent(
        number=shard * MAX_EVENT_NUMBER_PER_SHARD + index,
        record=record,
        visible=visible,
        tracks=reconstruct_tracks(particles, pv_z_reco, tracker, rng, pv_xy_reco),
        hadrons=labelling_particles(record, simulation.labelling.hadron_pt_min_gev),
        leptons=leptons,
        rng=rng,
    )


def _cluster_and_fill(
    pending: list[_PendingEvent], jet_definition, simulation: SimulationConfig, out: _Output
) -> None:
    """Cluster a batch of events at once (FastJet's vectorised interface) and label the jets."""
    import fastjet

    counts = np.array([p.visible.size for p in pending])
    cols = {
        name: np.concatenate([getattr(p.record, attr)[p.visible] for p in pending])
        for name, attr in (("px", "px"), ("py", "py"), ("pz", "pz"), ("E", "e"))
    }
    particles = ak.unflatten(ak.zip(cols, with_name="Momentum4D"), counts)
    sequence = fastjet.ClusterSequence(particles, jet_definition)
    jets = sequence.inclusive_jets(min_pt=_truth_pt_min(simulation))
    # one conversion for the batch: per-event awkward access costs more than the clustering
    bounds = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(jets, axis=1)))])
    flat = [
        ak.to_numpy(ak.flatten(jets[k], axis=1)).astype(np.float64) for k in ("px", "py", "pz", "E")
    ]
    for event, (start, stop) in zip(pending, itertools.pairwise(bounds), strict=True):
        _fill_event(event, [c[start:stop] for c in flat], simulation, out)


def _truth_pt_min(simulation: SimulationConfig) -> float:
    """pT above which truth jets are clustered: below the cut when reconstruction smears them."""
    jets = simulation.jets
    if jets.reconstruction.enabled:
        return jets.pt_min_gev * jets.reconstruction.truth_pt_min_fraction
    return jets.pt_min_gev


def _fill_event(
    event: _PendingEvent, four_momenta: list[np.ndarray], simulation: SimulationConfig, out: _Output
) -> None:
    """Label one event's jets, associate tracks to them and append the selected jets.

    Labels come from the truth jets; everything else (the pT and eta cuts, overlap removal,
    track association, the fakes, the written kinematics) from the reconstructed ones.
    """
    if four_momenta[0].size == 0:
        return
    truth = Jets(*pt_eta_phi_m(*four_momenta))  # four_momenta: px, py, pz, E of the truth jets
    label = _truth_labels(event, truth, simulation)
    reco = reconstruct_jets(truth, simulation.jets.reconstruction, event.rng)
    if simulation.jets.reconstruction.enabled:
        kept = reco.pt >= simulation.jets.pt_min_gev
        truth, reco, label = truth.select(kept), reco.select(kept), label[kept]
    _fill_jets(event, truth, reco, label, simulation, out)


def _truth_labels(event: _PendingEvent, truth: Jets, simulation: SimulationConfig) -> np.ndarray:
    """HadronConeExclTruthLabelID of the truth jets: each hadron labels its closest jet."""
    record = event.record
    eta, phi = truth.eta, truth.phi
    label = np.full(truth.pt.size, pdg.LABEL_LIGHT, dtype=np.int32)
    # tau, then c, then b: a later assignment overrides an earlier one
    for value in (pdg.LABEL_TAU, pdg.LABEL_C, pdg.LABEL_B):
        hadrons = event.hadrons[value]
        if hadrons.size == 0:
            continue
        dr = delta_r(
            record.eta[hadrons, None], record.phi[hadrons, None], eta[None, :], phi[None, :]
        )
        closest = dr.argmin(axis=1)
        matched = dr[np.arange(hadrons.size), closest] < simulation.labelling.delta_r
        label[closest[matched]] = value
    return label


def _fill_jets(
    event: _PendingEvent,
    truth: Jets,
    reco: Jets,
    label: np.ndarray,
    simulation: SimulationConfig,
    out: _Output,
) -> None:
    """Associate tracks to the reconstructed jets and append the central, non-lepton ones."""
    record = event.record
    pt, eta, phi, mass = reco.pt, reco.eta, reco.phi, reco.mass
    owner = _associate_tracks(event.tracks, pt, eta, phi, simulation)
    central = np.abs(eta) < simulation.jets.abs_eta_max
    if event.leptons.size:
        dr = delta_r(record.eta[event.leptons, None], record.phi[event.leptons, None],
                     eta[None, :], phi[None, :])  # fmt: skip
        central &= ~(dr < simulation.overlap_removal.delta_r).any(axis=0)
    cone = simulation.tracker.association_cone
    for j in np.flatnonzero(central):
        radius = cone.a + np.exp(cone.b + cone.c_per_mev * pt[j] * 1000.0)
        fakes = fake_tracks(pt[j], eta[j], phi[j], radius, simulation.tracker, event.rng)
        tracks = Tracks.concatenate([event.tracks.select(owner == j), fakes])
        out.jets["jet_pt"].append(pt[j])
        out.jets["jet_eta"].append(eta[j])
        out.jets["jet_phi"].append(phi[j])
        out.jets["jet_mass"].append(mass[j])
        out.jets["jet_HadronConeExclTruthLabelID"].append(label[j])
        out.jets["eventNumber"].append(event.number)
        out.jets["jet_truth_pt"].append(truth.pt[j])
        out.jets["jet_truth_eta"].append(truth.eta[j])
        out.jets["jet_truth_phi"].append(truth.phi[j])
        out.n_tracks.append(len(tracks))
        out.tracks["pt"].append(tracks.pt)
        out.tracks["eta"].append(tracks.eta)
        out.tracks["phi"].append(tracks.phi)
        out.tracks["charge"].append(tracks.charge)
        out.tracks["d0"].append(tracks.d0)
        out.tracks["z0SinTheta"].append(tracks.z0_sin_theta)
        out.tracks["d0Uncertainty"].append(tracks.d0_uncertainty)
        out.tracks["z0SinThetaUncertainty"].append(tracks.z0_sin_theta_uncertainty)
        out.tracks["ftagTruthOriginLabel"].append(tracks.origin)
        out.tracks["ftagTruthVertexIndex"].append(
            truth_vertex_index(tracks.truth_vertex, tracks.origin)
        )
        for name in HIT_FIELDS:
            out.tracks[name].append(tracks.hits[name])


def _associate_tracks(tracks: Tracks, pt, eta, phi, simulation: SimulationConfig) -> np.ndarray:
    """Jet index of each track (-1: none): the closest jet whose pT-dependent cone holds it."""
    if tracks.pt.size == 0:
        return np.empty(0, dtype=np.int64)
    cone = simulation.tracker.association_cone
    radius = cone.a + np.exp(cone.b + cone.c_per_mev * pt * 1000.0)
    dr = delta_r(tracks.eta[:, None], tracks.phi[:, None], eta[None, :], phi[None, :])
    dr = np.where(dr < radius[None, :], dr, np.inf)
    owner = dr.argmin(axis=1)
    return np.where(np.isfinite(dr[np.arange(owner.size), owner]), owner, -1)


def _write_root(out: _Output, output: Path) -> None:
    """Write the accumulated jets as a TTree 'jets' with jagged trk_* branches, atomically."""
    import uproot

    jets = {k: np.asarray(v, dtype=_JET_BRANCHES[k]) for k, v in out.jets.items()}
    counts = np.asarray(out.n_tracks, dtype=np.int64)
    track_dtypes = {k: (np.int32 if k in INT_TRACK_FIELDS else np.float32) for k in TRACK_FIELDS}
    flat = {
        k: (np.concatenate(v) if v else np.empty(0)).astype(track_dtypes[k])
        for k, v in out.tracks.items()
    }
    trk = ak.unflatten(ak.zip(flat), counts)  # typed even when the shard has no jets
    with atomic_path(output) as tmp:
        with uproot.recreate(tmp) as f:
            branch_types = {k: v.dtype for k, v in jets.items()} | {"trk": trk.type.content}
            tree = f.mktree("jets", branch_types, counter_name=lambda counted: "n_" + counted)
            if counts.size:
                tree.extend({**jets, "trk": trk})
        log.info("wrote %d jets to %s", counts.size, output)
