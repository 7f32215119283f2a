"""Truth information from the event record: weakly decaying heavy hadrons, track origins."""

from __future__ import annotations

import numpy as np

from jettag.kinematics import delta_r
from jettag.simulate import pdg
from jettag.simulate.pythia import EventRecord

_MAX_ANCESTRY_DEPTH = 500  # parton showers make long mother chains; this is far beyond them
BEAM_PARTICLES = 2  # entries 1 and 2 of a Pythia event record are the beams (0: the system)


def last_in_chain(record: EventRecord, selected: np.ndarray) -> np.ndarray:
    """Mask of selected particles none of whose daughters is also selected (weak decays)."""
    has_selected_daughter = np.zeros(selected.size, dtype=bool)
    has_selected_daughter[record.mother1[selected]] = True
    return selected & ~has_selected_daughter


def labelling_particles(record: EventRecord, pt_min_gev: float) -> dict[int, np.ndarray]:
    """Indices of weakly decaying B and C hadrons and final taus above pT, by label value."""
    pt = record.pt
    b = last_in_chain(record, pdg.is_b_hadron(record.pdg_id))
    c = last_in_chain(record, pdg.is_c_hadron(record.pdg_id))
    tau = last_in_chain(record, np.abs(record.pdg_id) == 15)
    return {
        pdg.LABEL_B: np.flatnonzero(b & (pt > pt_min_gev)),
        pdg.LABEL_C: np.flatnonzero(c & (pt > pt_min_gev)),
        pdg.LABEL_TAU: np.flatnonzero(tau & (pt > pt_min_gev)),
    }


def truth_origin(record: EventRecord, particles: np.ndarray) -> np.ndarray:
    """ftagTruthOriginLabel of the given particles, from their chain of mothers."""
    is_b = pdg.is_b_hadron(record.pdg_id)
    is_c = pdg.is_c_hadron(record.pdg_id)
    is_tau = np.abs(record.pdg_id) == 15
    is_long_lived = np.isin(np.abs(record.pdg_id), pdg.LONG_LIVED_LIGHT)
    from_b = np.zeros(particles.size, dtype=bool)
    from_c = np.zeros_like(from_b)
    from_tau = np.zeros_like(from_b)
    from_long_lived = np.zeros_like(from_b)
    current = particles.copy()
    for _ in range(_MAX_ANCESTRY_DEPTH):
        current = record.mother1[current]
        alive = current > 0
        if not alive.any():
            break
        from_b |= alive & is_b[current]
        from_c |= alive & is_c[current]
        from_tau |= alive & is_tau[current]
        from_long_lived |= alive & is_long_lived[current]
        current = np.where(alive, current, 0)
    origin = np.full(particles.size, pdg.ORIGIN_PRIMARY, dtype=np.int32)
    origin[from_long_lived] = pdg.ORIGIN_OTHER_SECONDARY
    origin[from_tau] = pdg.ORIGIN_FROM_TAU
    origin[from_c] = pdg.ORIGIN_FROM_C
    origin[from_b] = pdg.ORIGIN_FROM_B
    origin[from_b & from_c] = pdg.ORIGIN_FROM_BC
    return origin


def prompt_isolated_leptons(
    record: EventRecord, pt_min_gev: float, cone: float, max_fraction: float
) -> np.ndarray:
    """Indices of final electrons and muons not from hadron decays, with little activity around."""
    candidates = np.flatnonzero(
        record.is_final & np.isin(np.abs(record.pdg_id), (11, 13)) & (record.pt > pt_min_gev)
    )
    if candidates.size == 0:
        return candidates
    is_hadron = pdg.is_hadron(record.pdg_id)
    from_hadron = np.zeros(candidates.size, dtype=bool)
    current = candidates.copy()
    for _ in range(_MAX_ANCESTRY_DEPTH):
        current = record.mother1[current]
        alive = current > BEAM_PARTICLES  # the colliding protons are everybody's ancestors
        if not alive.any():
            break
        from_hadron |= alive & is_hadron[current]
        current = np.where(alive, current, 0)
    prompt = candidates[~from_hadron]
    visible = np.flatnonzero(record.is_final & ~np.isin(np.abs(record.pdg_id), pdg.NEUTRINOS))
    dr = delta_r(record.eta[prompt, None], record.phi[prompt, None],
                 record.eta[None, visible], record.phi[None, visible])  # fmt: skip
    around = np.where((dr < cone) & (visible[None, :] != prompt[:, None]), record.pt[visible], 0.0)
    return prompt[around.sum(axis=1) < max_fraction * record.pt[prompt]]


# Truth vertices closer than this are one vertex, as the FTAG truth decorators merge them
VERTEX_MERGE_DISTANCE_MM = 0.1
PRIMARY_VERTEX_INDEX = 0
NO_TRUTH_VERTEX = -1


def truth_vertex_index(
    production: np.ndarray, origin: np.ndarray, merge_distance_mm: float = VERTEX_MERGE_DISTANCE_MM
) -> np.ndarray:
    """ftagTruthVertexIndex of one jet's tracks: 0 primary, 1, 2, .. displaced, -1 none.

    production: (n_tracks, 3) production vertex of each track's truth particle, mm from the
    hard-scatter vertex (NaN for fakes); origin: (n_tracks,) ftagTruthOriginLabel.
    Tracks produced within merge_distance_mm of the hard scatter share index 0; the other
    production points are grouped by single linkage at the same distance (a chain of close
    points is one vertex), numbered 1, 2, .. in the order of their first track. Fakes and
    pile-up tracks have no vertex of the hard scatter: -1.
    """
    index = np.full(origin.size, NO_TRUTH_VERTEX, dtype=np.int32)
    has_vertex = (
        np.isfinite(production).all(axis=1)
        & (origin != pdg.ORIGIN_FAKE)
        & (origin != pdg.ORIGIN_PILEUP)
    )
    primary = has_vertex & (np.linalg.norm(production, axis=1) < merge_distance_mm)
    index[primary] = PRIMARY_VERTEX_INDEX
    displaced = np.flatnonzero(has_vertex & ~primary)
    if displaced.size == 0:
        return index
    points = production[displaced]
    close = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2) < merge_distance_mm
    group = np.arange(displaced.size)
    # single linkage: each point takes the smallest group among its neighbours until stable;
    # at most n passes, and vertices hold a handful of tracks
    while True:
        merged = np.where(close, group[None, :], displaced.size).min(axis=1)
        if np.array_equal(merged, group):
            break
        group = merged
    # groups are named by their first member, so first appearance orders them
    _, numbered = np.unique(group, return_inverse=True)
    index[displaced] = PRIMARY_VERTEX_INDEX + 1 + numbered
    return index
