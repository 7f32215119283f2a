"""Vertexing performance of the track-pair head: hand-built jets whose answers are worked out
by hand, and random jets checked against a per-jet Python implementation written here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import beta

import jettag.plotting.vertexing as vertexing_plots
from jettag.evaluation.vertexing import (
    MATCH_EFFICIENCY,
    MATCH_PURITY,
    VertexingPerformance,
    clean_reco_vertices,
    clean_truth_vertices,
    find_vertices,
    match_vertices,
    vertexing_performance,
)
from jettag.plotting.style import FigureText

HF = {3, 4, 5}
CLASSES = ["b", "c", "light"]
TEXT = FigureText("ATLAS", "Simulation Internal", 13.6, "Test sample")


def _tracks(rows: list[list[int]], width: int, fill: int = -1) -> np.ndarray:
    """Ragged per-jet lists padded to (n_jets, width)."""
    out = np.full((len(rows), width), fill, dtype=np.int64)
    for k, row in enumerate(rows):
        out[k, : len(row)] = row
    return out


def _valid(counts: list[int], width: int) -> np.ndarray:
    return np.arange(width)[None, :] < np.asarray(counts)[:, None]


def _all_pairs(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair i < j of each jet's valid tracks, flat."""
    jets, firsts, seconds = [], [], []
    for jet, row in enumerate(valid):
        n = int(row.sum())
        for i in range(n):
            for j in range(i + 1, n):
                jets.append(jet)
                firsts.append(i)
                seconds.append(j)
    return (np.array(jets, dtype=np.int64), np.array(firsts, dtype=np.int64),
            np.array(seconds, dtype=np.int64))  # fmt: skip


# --- reconstruction ---------------------------------------------------------------------------


def test_components_chain_singletons_and_padding():
    valid = _valid([5, 3, 0], 6)
    # jet 0: a-b and b-c above threshold, a-c below: one vertex of 3 (a, b, c = 1, 2, 3);
    # track 0 alone, track 4 joined to nothing above threshold; jet 1: tracks 1, 2 together
    pair_jet = np.array([0, 0, 0, 0, 0, 1, 1])
    first = np.array([1, 2, 1, 0, 3, 0, 1])
    second = np.array([2, 3, 3, 4, 4, 1, 2])
    probability = np.array([0.9, 0.7, 0.1, 0.5, 0.2, 0.3, 0.51])
    reco = find_vertices(valid, pair_jet, first, second, probability, threshold=0.5)
    assert reco.dtype == np.int16
    # 0.5 is not above the threshold of 0.5: tracks 0 and 4 stay single
    assert reco.tolist() == [[-1, 0, 0, 0, -1, -1], [-1, 0, 0, -1, -1, -1], [-1] * 6]
    # numbered per jet in the order of the first track: (0, 4) first, then (1, 2, 3)
    reco = find_vertices(valid, pair_jet, first, second, probability, threshold=0.45)
    assert reco.tolist() == [[0, 1, 1, 1, 0, -1], [-1, 0, 0, -1, -1, -1], [-1] * 6]


def test_components_refuse_pairs_on_padding_or_out_of_order():
    valid = _valid([2], 4)
    with pytest.raises(ValueError, match="padding"):
        find_vertices(valid, np.array([0]), np.array([1]), np.array([2]), np.array([0.9]))
    with pytest.raises(ValueError, match="pair_first < pair_second"):
        find_vertices(valid, np.array([0]), np.array([1]), np.array([0]), np.array([0.9]))


def test_truth_cleaning_keeps_pure_hf_vertices_of_two_or_more_tracks():
    truth = _tracks([[1, 1, 2, 2, 3, 0, 0, -1], [4, 4, 4, 1, 1]], 9)
    origin = _tracks([[3, 4, 5, 2, 3, 3, 3, 1], [5, 5, 5, 3, 7]], 9)
    cleaned = clean_truth_vertices(truth, origin)
    # vertex 1: all HF, kept; 2: holds a primary track, dropped; 3: one track, dropped;
    # 0: the primary vertex, dropped even with HF-labelled tracks; padding stays -1
    assert cleaned.tolist() == [[1, 1, -1, -1, -1, -1, -1, -1, -1],
                                [4, 4, 4, -1, -1, -1, -1, -1, -1]]  # fmt: skip
    # barcode-like indices clean the same way and keep their values
    sparse = np.where(truth > 0, truth * 1000, truth)
    assert (clean_truth_vertices(sparse, origin) == np.where(cleaned > 0, cleaned * 1000,
                                                             cleaned)).all()  # fmt: skip


def test_reco_cleaning_with_and_without_predicted_origins():
    reco = _tracks([[0, 0, 0, 1, 1, 2, 2, 3], [0, 0, 1, 1, 2, 2]], 8)
    origin = _tracks([[2, 2, 3, 2, 3, 7, 7, 3], [2, 3, 2, 3, 5, 5]], 8)
    # no origins: every vertex of >= 2 tracks stays (3 has one track)
    assert clean_reco_vertices(reco, None).tolist() == [[0, 0, 0, 1, 1, 2, 2, -1],
                                                        [0, 0, 1, 1, 2, 2, -1, -1]]  # fmt: skip
    # jet 0: vertex 0 holds the most primary tracks (2), dropped; 2 has no HF track, dropped;
    # jet 1: vertices 0 and 1 tie on one primary track each, the smaller index goes
    assert clean_reco_vertices(reco, origin).tolist() == [[-1, -1, -1, 1, 1, -1, -1, -1],
                                                          [-1, -1, 1, 1, 2, 2, -1, -1]]  # fmt: skip


def _one_jet(truth: dict[int, list[int]], reco: dict[int, list[int]], width: int = 40):
    """(1, width) truth and reco vertex arrays from {vertex: tracks}."""
    t, r = np.full((1, width), -1), np.full((1, width), -1)
    for v, tracks in truth.items():
        t[0, tracks] = v
    for v, tracks in reco.items():
        r[0, tracks] = v
    return t, r


@pytest.mark.parametrize(
    ("truth_size", "shared", "reco_size", "matched"),
    [
        (20, 13, 26, 1),  # 13/20 = 0.65 and 13/26 = 0.5: both exactly at the requirement
        (20, 12, 24, 0),  # 12/20 = 0.60 < 0.65
        (20, 13, 27, 0),  # 13/27 < 0.5
        (3, 2, 4, 1),  # 2/3 = 0.667, 2/4 = 0.5
        (2, 1, 1, 0),  # 1/2 = 0.5 < 0.65 (purity 1)
    ],
)
def test_matching_requirements_at_the_boundary(truth_size, shared, reco_size, matched):
    assert (MATCH_EFFICIENCY, MATCH_PURITY) == (0.65, 0.5)
    truth_tracks = list(range(truth_size))
    reco_tracks = truth_tracks[:shared] + list(range(truth_size, truth_size + reco_size - shared))
    t, r = _one_jet({1: truth_tracks}, {0: reco_tracks})
    counts = match_vertices(t, r)
    assert counts.n_matched.tolist() == [matched]
    assert counts.inclusive_found.tolist() == [bool(matched)]  # one vertex each: the same test


def test_matching_is_one_to_one_and_greedy_with_the_tie_breaks():
    # reco 0 overlaps truth 1 (3 tracks) and truth 2 (3 tracks) equally; the smaller truth
    # vertex (2, of 3 tracks, vs 1, of 4) wins the tie, and reco 0 is used up
    t, r = _one_jet({1: [0, 1, 2, 3], 2: [4, 5, 6]}, {0: [1, 2, 3, 4, 5, 6]})
    counts = match_vertices(t, r)
    assert counts.n_matched.tolist() == [1]  # truth 2: 3/3 and 3/6, passes
    # truth 1 would pass with reco 0 too (3/4, 3/6), but a reco vertex matches once
    t, r = _one_jet({1: [0, 1, 2, 3], 2: [4, 5, 6]}, {0: [1, 2, 3, 4, 5, 6], 1: [7, 8]})
    assert match_vertices(t, r).n_matched.tolist() == [1]
    # the tie break decides: truth 1 (5 tracks) and truth 2 (2) share 2 with reco 0; by index
    # truth 1 would take it and fail (2/5), leaving nothing; by size truth 2 takes it (2/2, 2/4)
    t, r = _one_jet({1: [0, 1, 2, 3, 4], 2: [5, 6]}, {0: [0, 1, 5, 6]})
    assert match_vertices(t, r).n_matched.tolist() == [1]
    # truth 2 - reco 0 share 2 (2/2, 2/4: passes), truth 1 - reco 0 too (2/3, 2/4: would
    # pass): the smaller truth vertex (2) takes reco 0, truth 1 is left reco 1 (1/3: fails)
    t, r = _one_jet({1: [0, 1, 2], 2: [3, 4]}, {0: [0, 1, 3, 4], 1: [2, 5]})
    counts = match_vertices(t, r)
    assert (counts.n_truth.tolist(), counts.n_reco.tolist(), counts.n_matched.tolist()) == (
        [2], [2], [1])  # fmt: skip


def test_inclusive_vertexing_merges_each_side():
    # two truth vertices, one reco vertex holding both: exclusively one match (3/3, 3/6),
    # inclusively the merged vertices coincide (6/6, 6/6)
    t, r = _one_jet({1: [0, 1, 2], 2: [3, 4, 5]}, {0: [0, 1, 2, 3, 4, 5]})
    counts = match_vertices(t, r)
    assert (counts.n_matched.tolist(), counts.inclusive_found.tolist()) == ([1], [True])
    # reco vertices across the truth ones: each pairing shares 1 track (1/3 < 0.65), no
    # exclusive match; merged, 4 of the 6 truth tracks are in the 6 reco ones (0.667, 0.667)
    t, r = _one_jet({1: [0, 1, 2], 2: [3, 4, 5]}, {0: [0, 3, 6], 1: [1, 4, 7]})
    counts = match_vertices(t, r)
    assert (counts.n_matched.tolist(), counts.inclusive_found.tolist()) == ([0], [True])
    # reco vertices mostly outside the truth tracks: inclusively 2/6 of the truth, not found
    t, r = _one_jet({1: [0, 1, 2], 2: [3, 4, 5]}, {0: [0, 6, 7], 1: [3, 8, 9]})
    assert match_vertices(t, r).inclusive_found.tolist() == [False]
    # no reco vertex: nothing found; no truth vertex: not counted as found
    t, r = _one_jet({1: [0, 1]}, {})
    assert match_vertices(t, r).inclusive_found.tolist() == [False]
    t, r = _one_jet({}, {0: [0, 1]})
    counts = match_vertices(t, r)
    assert (counts.n_truth.tolist(), counts.n_reco.tolist(), counts.inclusive_found.tolist()) == (
        [0], [1], [False])  # fmt: skip


# --- the counts of a result -------------------------------------------------------------------


def _small_sample():
    """Four jets worked out by hand: b (30 GeV), b (80 GeV), c (30 GeV), light (30 GeV)."""
    width = 6
    counts = [5, 4, 3, 4]
    valid = _valid(counts, width)
    truth = _tracks([[1, 1, 1, 0, -1], [1, 1, 2, 2], [1, 1, 0], [0, 0, -1, -1]], width)
    origin = _tracks([[3, 3, 4, 2, 1], [3, 4, 5, 5], [5, 5, 2], [2, 2, 0, 1]], width)
    pair_jet, first, second = _all_pairs(valid)
    probability = np.full(pair_jet.shape, 0.1)

    def above(jet, i, j, p=0.9):
        probability[(pair_jet == jet) & (first == i) & (second == j)] = p

    above(0, 0, 1)  # jet 0: found (3/3, 3/3)
    above(0, 1, 2)
    above(1, 0, 1)  # jet 1: truth 1 found, truth 2 not: 1 of 2 matched; inclusive 2/4 fails
    above(2, 0, 2)  # jet 2: reco {0, 2}: 1/2 < 0.65, not found
    above(3, 2, 3)  # light jet: a reco vertex of a pile-up and a fake track
    reco = find_vertices(valid, pair_jet, first, second, probability)
    arrays = dict(truth_vertex=truth, truth_origin=origin, valid=valid, reco_vertex=reco,
                  reco_origin=None, pair_jet=pair_jet, pair_first=first, pair_second=second,
                  probability=probability, pt_gev=np.array([30.0, 80.0, 30.0, 30.0]),
                  flavour_label=np.array([0, 0, 1, 2]), class_names=CLASSES,
                  pt_bins_gev=[20.0, 50.0, 100.0])  # fmt: skip
    return vertexing_performance(model="gn2", **arrays), arrays


def test_counts_of_hand_built_jets():
    result, _ = _small_sample()
    assert result.counts["b"] == {
        "n_jets": [1, 1], "n_jets_with_truth": [1, 1], "n_inclusive_found": [1, 0],
        "n_truth_vertices": [1, 2], "n_matched_vertices": [1, 1], "n_reco_vertices": [1, 1],
        "n_jets_with_reco": [1, 1],
    }  # fmt: skip
    assert result.counts["c"] == {
        "n_jets": [1, 0], "n_jets_with_truth": [1, 0], "n_inclusive_found": [0, 0],
        "n_truth_vertices": [1, 0], "n_matched_vertices": [0, 0], "n_reco_vertices": [1, 0],
        "n_jets_with_reco": [1, 0],
    }  # fmt: skip
    assert result.counts["light"]["n_jets_with_reco"] == [1, 0]
    assert result.counts["light"]["n_jets_with_truth"] == [0, 0]
    # pairs, truly same vertex (index >= 0) / predicted / both, and among HF tracks:
    # jet 0: truth pairs (0,1), (0,2), (1,2) [vertex 1], none at vertex 0 alone; predicted
    # (0,1), (1,2); jet 1: truth (0,1), (2,3), predicted (0,1)
    assert result.pairs["b"] == {
        "all": {"truth_same": 5, "predicted_same": 3, "both": 3},
        "hf": {"truth_same": 5, "predicted_same": 3, "both": 3},
    }
    # jet 2: truth (0,1) [HF]; predicted (0,2): not the same vertex, and track 2 is primary
    assert result.pairs["c"] == {
        "all": {"truth_same": 1, "predicted_same": 1, "both": 0},
        "hf": {"truth_same": 1, "predicted_same": 0, "both": 0},
    }
    # light jet: the primary pair (0,1) is truly one vertex, the predicted (2,3) is not
    assert result.pairs["light"]["all"] == {"truth_same": 1, "predicted_same": 1, "both": 0}
    assert result.inclusive_efficiency("b").value.tolist() == [1.0, 0.0]
    assert result.exclusive_efficiency("b").value.tolist() == [1.0, 0.5]
    assert np.isnan(result.inclusive_efficiency("c").value[1])  # no c-jet in the bin
    assert result.reco_vertex_rate("light").value.tolist()[0] == 1.0


def test_ratios_carry_clopper_pearson_intervals():
    result, _ = _small_sample()
    ratio = result.exclusive_efficiency("b")
    k, n, cl = 1, 2, result.interval_cl
    assert ratio.low[1] == pytest.approx(beta.ppf((1 - cl) / 2, k, n - k + 1))
    assert ratio.high[1] == pytest.approx(beta.ppf((1 + cl) / 2, k + 1, n - k))
    assert (ratio.low[0], ratio.high[0]) == (pytest.approx(beta.ppf((1 - cl) / 2, 1, 1)), 1.0)
    purity = result.pair_purity("b")
    assert float(purity.value) == 1.0 and float(purity.high) == 1.0
    assert float(result.pair_efficiency("b", hf=True).value) == pytest.approx(3 / 5)
    assert np.isnan(float(result.pair_purity("c", hf=True).value))  # nothing predicted


def test_a_result_writes_the_file_it_reads_back(tmp_path):
    result, _ = _small_sample()
    again = VertexingPerformance.from_dict(result.to_dict())
    assert again == result
    result.write(tmp_path / "gn2.json")
    text = (tmp_path / "gn2.json").read_text()
    assert VertexingPerformance.read(tmp_path / "gn2.json") == result
    data = json.loads(text)
    assert list(data) == [
        "model", "classes", "pt_bins_gev", "threshold", "match_efficiency", "match_purity",
        "hf_origins", "reco_cleaned_with_origins", "interval_cl", "counts", "pairs",
    ]  # fmt: skip
    counts = [x for c in data["counts"].values() for column in c.values() for x in column]
    assert all(type(x) is int for x in counts)  # exact counts, not floats


# --- random jets against a per-jet implementation ---------------------------------------------


def _random_sample(n_jets: int, width: int, seed: int):
    """Random jets with vertices, origins and pair scores that both agree and disagree."""
    rng = np.random.default_rng(seed)
    n_tracks = rng.integers(0, width + 1, n_jets)
    valid = _valid(n_tracks.tolist(), width)
    truth = rng.choice([-1, 0, 1, 2, 3], size=(n_jets, width), p=[0.2, 0.3, 0.2, 0.2, 0.1])
    hf = rng.choice([3, 4, 5], size=truth.shape)
    origin = np.where(truth >= 1, np.where(rng.random(truth.shape) < 0.85, hf, 2),
                      np.where(truth == 0, 2, rng.choice([0, 1, 7], size=truth.shape)))  # fmt: skip
    reco_origin = np.where(rng.random(truth.shape) < 0.7, origin, rng.integers(0, 8, truth.shape))
    truth, origin = np.where(valid, truth, -1), np.where(valid, origin, -1)
    reco_origin = np.where(valid, reco_origin, -1)
    pair_jet, first, second = _all_pairs(valid)
    same = (truth[pair_jet, first] == truth[pair_jet, second]) & (truth[pair_jet, first] >= 0)
    probability = np.clip(rng.normal(np.where(same, 0.65, 0.3), 0.25), 0, 1).round(2)
    pt = rng.uniform(10, 300, n_jets)
    flavour = rng.integers(-1, 3, n_jets)  # -1: a class the result does not list
    return valid, truth, origin, reco_origin, pair_jet, first, second, probability, pt, flavour


def _components(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Vertex per track of one jet by depth-first search; single tracks -1."""
    neighbours = {i: set() for i in range(n)}
    for i, j in edges:
        neighbours[i].add(j)
        neighbours[j].add(i)
    out, seen, count = [-1] * n, set(), 0
    for start in range(n):
        if start in seen:
            continue
        stack, members = [start], []
        seen.add(start)
        while stack:
            node = stack.pop()
            members.append(node)
            for other in neighbours[node] - seen:
                seen.add(other)
                stack.append(other)
        if len(members) >= 2:
            for node in members:
                out[node] = count
            count += 1
    return out


def _groups(indices: list[int]) -> dict[int, set[int]]:
    groups: dict[int, set[int]] = {}
    for track, v in enumerate(indices):
        if v >= 0:
            groups.setdefault(v, set()).add(track)
    return groups


def _clean_truth(truth: list[int], origin: list[int]) -> dict[int, set[int]]:
    return {v: tracks for v, tracks in _groups(truth).items()
            if v >= 1 and len(tracks) >= 2 and all(origin[i] in HF for i in tracks)}  # fmt: skip


def _clean_reco(reco: list[int], origin: list[int] | None) -> dict[int, set[int]]:
    vertices = {v: tracks for v, tracks in _groups(reco).items() if len(tracks) >= 2}
    if origin is None:
        return vertices
    primaries = {v: sum(origin[i] == 2 for i in tracks) for v, tracks in vertices.items()}
    if primaries and max(primaries.values()) > 0:
        most = max(primaries.values())
        del vertices[min(v for v, k in primaries.items() if k == most)]
    return {v: tracks for v, tracks in vertices.items() if any(origin[i] in HF for i in tracks)}


def _passes(shared: int, truth_size: int, reco_size: int) -> bool:
    return truth_size > 0 and reco_size > 0 and (
        shared / truth_size >= 0.65 and shared / reco_size >= 0.5)  # fmt: skip


def _match(truth: dict[int, set[int]], reco: dict[int, set[int]]) -> tuple[int, bool]:
    """(matched truth vertices, inclusive vertex found) by the sequential greedy."""
    candidates = sorted(
        (-len(tt & rt), len(tt), len(rt), t, r)
        for t, tt in truth.items() for r, rt in reco.items() if tt & rt
    )  # fmt: skip
    used_t, used_r, matched = set(), set(), 0
    for minus_shared, t_size, r_size, t, r in candidates:
        if t in used_t or r in used_r:
            continue
        used_t.add(t)
        used_r.add(r)
        matched += _passes(-minus_shared, t_size, r_size)
    all_t = set().union(*truth.values()) if truth else set()
    all_r = set().union(*reco.values()) if reco else set()
    return matched, _passes(len(all_t & all_r), len(all_t), len(all_r))


@pytest.mark.parametrize("with_origins", [False, True])
def test_random_jets_agree_with_a_per_jet_implementation(with_origins):
    width, edges, threshold = 9, [20.0, 60.0, 150.0, 250.0], 0.5
    (valid, truth, origin, reco_origin, pair_jet, first, second, probability, pt,
     flavour) = _random_sample(200, width, seed=11 + with_origins)  # fmt: skip
    reco = find_vertices(valid, pair_jet, first, second, probability, threshold)
    result = vertexing_performance(
        model="m", truth_vertex=truth, truth_origin=origin, valid=valid, reco_vertex=reco,
        reco_origin=reco_origin if with_origins else None, pair_jet=pair_jet, pair_first=first,
        pair_second=second, probability=probability, pt_gev=pt, flavour_label=flavour,
        class_names=CLASSES, pt_bins_gev=edges, threshold=threshold,
    )  # fmt: skip

    expected = {name: {key: [0] * (len(edges) - 1) for key in result.counts[name]}
                for name in CLASSES}  # fmt: skip
    pairs = {name: {s: {"truth_same": 0, "predicted_same": 0, "both": 0} for s in ("all", "hf")}
             for name in CLASSES}  # fmt: skip
    n_vertices = n_matched = n_found = 0
    for jet in range(len(valid)):
        n = int(valid[jet].sum())
        mine = pair_jet == jet
        jet_pairs = list(zip(first[mine], second[mine], probability[mine], strict=True))
        components = _components(n, [(i, j) for i, j, p in jet_pairs if p > threshold])
        assert reco[jet, :n].tolist() == components
        assert (reco[jet, n:] == -1).all()
        k = int(np.searchsorted(edges, pt[jet], side="right")) - 1
        if not (0 <= flavour[jet] < len(CLASSES) and 0 <= k < len(edges) - 1):
            continue
        t = _clean_truth(truth[jet, :n].tolist(), origin[jet, :n].tolist())
        r = _clean_reco(components, reco_origin[jet, :n].tolist() if with_origins else None)
        matched, found = _match(t, r)
        c = expected[CLASSES[flavour[jet]]]
        c["n_jets"][k] += 1
        c["n_jets_with_truth"][k] += bool(t)
        c["n_inclusive_found"][k] += bool(t) and found
        c["n_truth_vertices"][k] += len(t)
        c["n_matched_vertices"][k] += matched
        c["n_reco_vertices"][k] += len(r)
        c["n_jets_with_reco"][k] += bool(r)
        n_vertices, n_matched, n_found = n_vertices + len(t), n_matched + matched, n_found + found
        for i, j, p in jet_pairs:
            same = truth[jet, i] == truth[jet, j] >= 0
            is_hf = origin[jet, i] in HF and origin[jet, j] in HF
            for subset in ("all", "hf") if is_hf else ("all",):
                entry = pairs[CLASSES[flavour[jet]]][subset]
                entry["truth_same"] += bool(same)
                entry["predicted_same"] += bool(p > threshold)
                entry["both"] += bool(same and p > threshold)
    assert result.counts == expected
    assert result.pairs == pairs
    # the sample exercises what it is meant to: matches, misses and inclusive finds
    assert 0 < n_matched < n_vertices and n_found > 10


# --- the figure -------------------------------------------------------------------------------


def test_the_figure_draws_efficiencies_and_the_light_jet_rate(tmp_path, monkeypatch):
    (valid, truth, origin, reco_origin, pair_jet, first, second, probability, pt,
     _) = _random_sample(600, 12, seed=3)  # fmt: skip
    # b and c jets hold the HF vertices, light jets none (their truth vertices are removed)
    flavour = np.random.default_rng(4).integers(0, 3, len(valid))
    truth = np.where((flavour[:, None] == 2) & (truth > 0), -1, truth)
    reco = find_vertices(valid, pair_jet, first, second, probability)
    result = vertexing_performance(
        model="gn2", truth_vertex=truth, truth_origin=origin, valid=valid, reco_vertex=reco,
        reco_origin=reco_origin, pair_jet=pair_jet, pair_first=first, pair_second=second,
        probability=probability, pt_gev=pt, flavour_label=flavour, class_names=CLASSES,
        pt_bins_gev=[20.0, 50.0, 100.0, 200.0, 300.0],
    )  # fmt: skip
    assert vertexing_plots.efficiency_classes(result) == ["b", "c"]
    drawn = []
    real_finish = vertexing_plots.finish

    def finish(fig, ax, *args):
        drawn.append([(a.get_ylabel(), a.get_xlabel(), a.get_ylim(),
                       [t.get_text() for t in a.get_legend().get_texts()])
                      for a in fig.axes])  # fmt: skip
        return real_finish(fig, ax, *args)

    monkeypatch.setattr(vertexing_plots, "finish", finish)
    written = vertexing_plots.plot_vertexing(result, "GN2", tmp_path / "gn2", TEXT, ["png"])
    assert [p.name for p in written] == ["gn2_inclusive.png", "gn2_exclusive.png"]
    assert all(p.stat().st_size > 10_000 for p in written)
    (top, bottom), (exclusive,) = drawn
    assert top[0] == "Inclusive vertex-finding efficiency" and top[3] == ["$b$-jets", "$c$-jets"]
    assert top[2][0] == 0.0 and top[2][1] == pytest.approx(1 / vertexing_plots.DATA_FRACTION)
    assert bottom[:2] == ("Reco-vertex rate", "Jet $p_T$ [GeV]") and bottom[3] == ["Light-jets"]
    rate = result.reco_vertex_rate("light")
    assert bottom[2][0] == 0.0 and bottom[2][1] > np.nanmax(rate.high)
    assert exclusive[:2] == ("Exclusive vertex efficiency", "Jet $p_T$ [GeV]")
    assert exclusive[3] == ["$b$-jets", "$c$-jets"]
