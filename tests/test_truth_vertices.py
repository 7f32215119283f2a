"""ftagTruthVertexIndex: truth vertices of tracks from hand-made decays and generated jets."""

from __future__ import annotations

import awkward as ak
import numpy as np
import uproot

from jettag.simulate import pdg
from jettag.simulate.pythia import EventRecord
from jettag.simulate.truth import truth_origin, truth_vertex_index

B_DECAY = (1.0, 0.4, 0.3)  # mm from the hard scatter
D_DECAY = (3.0, 1.2, 0.9)
KS_DECAY = (20.0, 5.0, 10.0)


def _record(rows: list[tuple]) -> EventRecord:
    """An event record from (pdg_id, mother1, x, y, z, charge, final) rows (momenta unused)."""
    columns = list(zip(*rows, strict=True))
    n = len(rows)
    ones = np.ones(n)
    return EventRecord(
        pdg_id=np.array(columns[0]), status=np.ones(n, int), mother1=np.array(columns[1]),
        px=ones, py=ones, pz=ones, e=2 * ones,
        x=np.array(columns[2], float), y=np.array(columns[3], float),
        z=np.array(columns[4], float), charge=np.array(columns[5], float),
        is_final=np.array(columns[6], bool),
    )  # fmt: skip


def _cascade() -> EventRecord:
    """B+ -> D0 pi+, D0 -> K- pi+; a prompt pi-; K_S -> pi+ pi- in flight."""
    return _record(
        [
            (90, 0, 0, 0, 0, 0, False),  # 0: the system
            (2212, 0, 0, 0, 0, 1, False),  # 1, 2: the beams
            (2212, 0, 0, 0, 0, 1, False),
            (521, 1, 0, 0, 0, 1, False),  # 3: B+ made at the hard scatter
            (421, 3, *B_DECAY, 0, False),  # 4: D0 from the B decay vertex
            (211, 3, *B_DECAY, 1, True),  # 5: pi+ from the B decay vertex
            (-321, 4, *D_DECAY, -1, True),  # 6: K- from the D decay vertex
            (211, 4, *D_DECAY, 1, True),  # 7: pi+ from the D decay vertex
            (-211, 1, 0, 0, 0, -1, True),  # 8: prompt pi-
            (310, 1, 0, 0, 0, 0, False),  # 9: K_S
            (211, 9, *KS_DECAY, 1, True),  # 10, 11: its pions
            (-211, 9, *KS_DECAY, -1, True),
        ]
    )


def _positions(record: EventRecord, particles: np.ndarray) -> np.ndarray:
    return np.stack([record.x[particles], record.y[particles], record.z[particles]], axis=1)


def test_b_to_c_cascade_gives_two_vertices_and_prompt_tracks_index_zero():
    record = _cascade()
    charged = np.array([5, 6, 7, 8, 10, 11])
    origin = truth_origin(record, charged)
    # the origins the indices are read with: B's pion, then the D's products (b -> c)
    assert origin.tolist() == [pdg.ORIGIN_FROM_B, pdg.ORIGIN_FROM_BC, pdg.ORIGIN_FROM_BC,
                               pdg.ORIGIN_PRIMARY, pdg.ORIGIN_OTHER_SECONDARY,
                               pdg.ORIGIN_OTHER_SECONDARY]  # fmt: skip
    index = truth_vertex_index(_positions(record, charged), origin)
    # B vertex first (first track), then the D vertex, the prompt pion at the primary (0),
    # the K_S vertex last
    assert index.tolist() == [1, 2, 2, 0, 3, 3]


def test_vertex_numbers_follow_the_first_track_of_each_vertex():
    record = _cascade()
    charged = np.array([10, 6, 5, 11, 7, 8])  # K_S pion first, then D, then B
    index = truth_vertex_index(_positions(record, charged), truth_origin(record, charged))
    assert index.tolist() == [1, 2, 3, 1, 2, 0]


def test_fakes_and_pile_up_have_no_vertex_and_padding_is_minus_one():
    production = np.array([[np.nan] * 3, [0.0, 0.0, 12.0], [0.0, 0.0, 0.0]])
    origin = np.array([pdg.ORIGIN_FAKE, pdg.ORIGIN_PILEUP, pdg.ORIGIN_PRIMARY])
    assert truth_vertex_index(production, origin).tolist() == [-1, -1, 0]
    assert truth_vertex_index(np.empty((0, 3)), np.empty(0, np.int32)).tolist() == []


def test_points_closer_than_0p1_mm_merge_by_single_linkage():
    other = pdg.ORIGIN_OTHER_SECONDARY
    # 0.08 mm steps: a chain of three points 0.16 mm end to end is one vertex
    chain = np.array([[5.0, 0, 0], [5.08, 0, 0], [5.16, 0, 0], [5.40, 0, 0]])
    index = truth_vertex_index(chain, np.full(4, other))
    assert index.tolist() == [1, 1, 1, 2]
    # within 0.1 mm of the hard scatter is the primary vertex; just beyond it is not
    near = np.array([[0.05, 0.05, 0.0], [0.0, 0.0, 0.11]])
    assert truth_vertex_index(near, np.full(2, other)).tolist() == [0, 1]


def test_generated_jets_carry_atlas_like_vertex_indices(generated_root):
    tree = uproot.open(generated_root)["jets"]
    data = tree.arrays(["jet_HadronConeExclTruthLabelID", "trk_ftagTruthOriginLabel",
                        "trk_ftagTruthVertexIndex"])  # fmt: skip
    origin = ak.flatten(data["trk_ftagTruthOriginLabel"]).to_numpy()
    index = ak.flatten(data["trk_ftagTruthVertexIndex"]).to_numpy()
    assert np.all(index[origin == pdg.ORIGIN_PRIMARY] == 0)
    assert np.all(index[np.isin(origin, [pdg.ORIGIN_FAKE, pdg.ORIGIN_PILEUP])] == -1)
    heavy = np.isin(origin, [pdg.ORIGIN_FROM_B, pdg.ORIGIN_FROM_BC, pdg.ORIGIN_FROM_C])
    # a few B and C hadrons decay within 0.1 mm of the hard scatter: their vertex is the primary
    assert heavy.sum() > 50 and np.mean(index[heavy] >= 1) > 0.9

    def displaced_vertices(jet_index: np.ndarray) -> int:
        """Displaced vertices with at least two tracks in one jet."""
        _, counts = np.unique(jet_index[jet_index >= 1], return_counts=True)
        return int((counts >= 2).sum())

    label = data["jet_HadronConeExclTruthLabelID"].to_numpy()
    per_jet = np.array([displaced_vertices(j.to_numpy()) for j in data["trk_ftagTruthVertexIndex"]])
    # b jets hold a B and usually a C decay vertex; light jets only K_S, Lambda, conversions
    assert per_jet[label == 5].mean() > 1.0
    assert per_jet[label == 0].mean() < 0.5
