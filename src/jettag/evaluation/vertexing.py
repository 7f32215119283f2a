"""Vertexing performance of a track-pair head (GN2's "same vertex" task), from numpy arrays.

Track arrays are per jet, (n_jets, max_tracks), valid entries packed first:
- `truth_vertex` (ftagTruthVertexIndex): 0 = the hard-scatter primary vertex, 1..k = distinct
  displaced truth vertices, -1 = no truth vertex of the hard scatter (fakes, pile-up) and padding;
- `truth_origin` (ftagTruthOriginLabel, flavours.TRACK_ORIGINS), -1 on padding; heavy flavour
  (HF) = from B, from B->C, from C;
- `valid` bool, True = real track.
The pair head scores each pair (i < j) of a jet's valid tracks, given flat: `pair_jet`,
`pair_first`, `pair_second` (int, (P,)) and `probability` ((P,)) that both share a vertex.

Reconstructed vertices are the connected components of the graph of pairs scored above a
threshold (find_vertices). Both sides are cleaned to HF vertices as in puma's vertexing
utilities (clean_truth_vertices, clean_reco_vertices), then matched one-to-one per jet
(match_vertices): exclusively, each truth vertex with at most one reco vertex, and inclusively,
all of a jet's vertices merged into one on each side. A match needs at least
MATCH_EFFICIENCY of the truth vertex's tracks and MATCH_PURITY of the reco vertex's.

Everything is vectorised over jets (numpy tables indexed by jet and vertex), so a test set of
~10^5 jets takes seconds, not the minutes of a Python loop over jets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from jettag.atomic import json_safe
from jettag.evaluation.metrics import INTERVAL_CL, efficiency_interval
from jettag.io.results import Result

HF_ORIGINS = (3, 4, 5)  # from B, from B->C, from C (flavours.TRACK_ORIGINS)
PRIMARY_ORIGIN = 2
MATCH_EFFICIENCY = 0.65  # shared / truth-vertex tracks a match needs
MATCH_PURITY = 0.5  # shared / reco-vertex tracks a match needs
DEFAULT_THRESHOLD = 0.5  # pair probability above which two tracks share a vertex

# the per-bin counts of each class, in the file's order
COUNTS = (
    "n_jets",  # jets in the bin
    "n_jets_with_truth",  # with >= 1 cleaned truth vertex
    "n_inclusive_found",  # of those, with the merged truth vertex matched by the merged reco
    "n_truth_vertices",  # cleaned truth vertices
    "n_matched_vertices",  # of those, matched one-to-one
    "n_reco_vertices",  # cleaned reco vertices
    "n_jets_with_reco",  # jets with >= 1 cleaned reco vertex
)
PAIR_COUNTS = ("truth_same", "predicted_same", "both")


@dataclasses.dataclass(frozen=True)
class BinomialRatio:
    """passed / total with its central Clopper-Pearson interval; NaN where total is 0."""

    passed: np.ndarray
    total: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray


def binomial_ratio(passed: Sequence[int] | int, total: Sequence[int] | int,
                   cl: float = INTERVAL_CL) -> BinomialRatio:  # fmt: skip
    """Ratios of counts (scalars or per bin) with their central Clopper-Pearson intervals."""
    passed_arr = np.asarray(passed, dtype=np.int64)
    total_arr = np.asarray(total, dtype=np.int64)
    flat = [efficiency_interval(float(k), float(n), cl)
            for k, n in zip(passed_arr.ravel(), total_arr.ravel(), strict=True)]  # fmt: skip
    bounds = np.array(flat, dtype=float).reshape((*passed_arr.shape, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(total_arr > 0, passed_arr / np.maximum(total_arr, 1), np.nan)
    return BinomialRatio(passed_arr, total_arr, value, bounds[..., 0], bounds[..., 1])


@dataclasses.dataclass
class VertexingPerformance(Result):
    """results/vertexing/<model>.json: vertex-finding counts per class and jet-pT bin, and the
    track-pair counts per class, from which every efficiency, rate and interval follows."""

    model: str
    classes: list[str]
    pt_bins_gev: list[float]
    threshold: float
    match_efficiency: float
    match_purity: float
    hf_origins: list[int]
    reco_cleaned_with_origins: bool
    interval_cl: float
    counts: dict[str, dict[str, list[int]]]  # class -> COUNTS key -> one count per pT bin
    pairs: dict[str, dict[str, dict[str, int]]]  # class -> "all" | "hf" -> PAIR_COUNTS key

    def inclusive_efficiency(self, name: str) -> BinomialRatio:
        """Per pT bin: jets with a found inclusive vertex / jets with a cleaned truth vertex."""
        c = self.counts[name]
        return binomial_ratio(c["n_inclusive_found"], c["n_jets_with_truth"], self.interval_cl)

    def exclusive_efficiency(self, name: str) -> BinomialRatio:
        """Per pT bin: matched truth vertices / cleaned truth vertices (exclusive vertexing)."""
        c = self.counts[name]
        return binomial_ratio(c["n_matched_vertices"], c["n_truth_vertices"], self.interval_cl)

    def reco_vertex_rate(self, name: str) -> BinomialRatio:
        """Per pT bin: jets with a cleaned reco vertex / all jets (light jets: the fake rate)."""
        c = self.counts[name]
        return binomial_ratio(c["n_jets_with_reco"], c["n_jets"], self.interval_cl)

    def pair_efficiency(self, name: str, hf: bool = False) -> BinomialRatio:
        """Track pairs predicted and truly from one vertex / truly from one (HF pairs if hf)."""
        p = self.pairs[name]["hf" if hf else "all"]
        return binomial_ratio(p["both"], p["truth_same"], self.interval_cl)

    def pair_purity(self, name: str, hf: bool = False) -> BinomialRatio:
        """Track pairs predicted and truly from one vertex / predicted from one (HF if hf)."""
        p = self.pairs[name]["hf" if hf else "all"]
        return binomial_ratio(p["both"], p["predicted_same"], self.interval_cl)


@dataclasses.dataclass(frozen=True)
class JetVertexCounts:
    """Per jet, (n_jets,) each: cleaned truth and reco vertices, matched ones, and whether the
    merged (inclusive) truth vertex is found."""

    n_truth: np.ndarray
    n_reco: np.ndarray
    n_matched: np.ndarray
    inclusive_found: np.ndarray  # bool; False for jets without a truth vertex


def _check_tracks(name: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The array, refused unless it is (n_jets, max_tracks) like the others."""
    array = np.asarray(array)
    if array.shape != shape:
        raise ValueError(f"{name}: shape {array.shape}, expected {shape}")
    return array


def _pairs(valid: np.ndarray, pair_jet: np.ndarray, pair_first: np.ndarray,
           pair_second: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray, ...]:  # fmt: skip
    """The pair arrays as int64 (and the probabilities), refused unless they are (P,) each and
    pair i < j of a jet's valid tracks."""
    jet = np.asarray(pair_jet, dtype=np.int64)
    first = np.asarray(pair_first, dtype=np.int64)
    second = np.asarray(pair_second, dtype=np.int64)
    probability = np.asarray(probability, dtype=np.float64)
    n_jets, max_tracks = valid.shape
    if not (jet.shape == first.shape == second.shape == probability.shape) or jet.ndim != 1:
        raise ValueError("pair_jet, pair_first, pair_second and probability must be (P,) each")
    if not jet.size:
        return jet, first, second, probability
    in_range = ((jet >= 0) & (jet < n_jets) & (first >= 0) & (first < second)
                & (second < max_tracks))  # fmt: skip
    if not in_range.all():
        raise ValueError("pairs must have 0 <= pair_first < pair_second < max_tracks and a jet"
                         " index within the arrays")  # fmt: skip
    if not (valid[jet, first] & valid[jet, second]).all():
        raise ValueError("a track pair refers to a padding slot (valid is False)")
    return jet, first, second, probability


def find_vertices(
    valid: np.ndarray,
    pair_jet: np.ndarray,
    pair_first: np.ndarray,
    pair_second: np.ndarray,
    probability: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
) -> np.ndarray:
    """Reco vertex per track, (n_jets, max_tracks) int16: components of the pairs above threshold.

    Components of >= 2 tracks are numbered 0, 1, ... within their jet in the order of their
    first track; single tracks and padding are -1.
    """
    valid = np.asarray(valid, dtype=bool)
    n_jets, max_tracks = valid.shape
    jet, first, second, probability = _pairs(valid, pair_jet, pair_first, pair_second,
                                             probability)  # fmt: skip
    if valid.size == 0:
        return np.full(valid.shape, -1, dtype=np.int16)
    # one graph over every track slot of every jet: no edge crosses jets, so its components
    # are each jet's vertices, found in one C call instead of a Python loop over jets
    n_nodes = n_jets * max_tracks
    edge = probability > threshold
    rows, cols = (jet * max_tracks + first)[edge], (jet * max_tracks + second)[edge]
    graph = coo_matrix((np.ones(rows.size, dtype=bool), (rows, cols)),
                       shape=(n_nodes, n_nodes)).tocsr()  # fmt: skip
    _, label = connected_components(graph, directed=False)
    size = np.bincount(label)
    # a component's first slot is its smallest node: numbering by it orders them per jet
    _, first_node = np.unique(label, return_index=True)  # first_node[c] for component c
    vertex_components = np.flatnonzero(size >= 2)
    starts = first_node[vertex_components]
    order = np.argsort(starts, kind="stable")
    components, starts = vertex_components[order], starts[order]
    owner = starts // max_tracks
    # rank within the jet: position minus the position of the jet's first vertex
    jet_start = np.searchsorted(owner, owner, side="left")
    index_of = np.full(label.max() + 1 if label.size else 0, -1, dtype=np.int64)
    index_of[components] = np.arange(components.size) - jet_start
    out = index_of[label].reshape(n_jets, max_tracks)
    out[~valid] = -1
    return out.astype(np.int16)


def _dense_vertices(vertex: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, int]:
    """Vertex indices where keep, -1 elsewhere, all below V; and V, so that (jet, vertex)
    tables are (n_jets, V) arrays. Indices are kept as they are unless they are large, then
    renumbered 0, 1, ... per jet in index order."""
    vertex = np.where(keep, vertex.astype(np.int64), -1)
    max_tracks = vertex.shape[1]
    top = int(vertex.max(initial=-1))
    if top < max_tracks:  # the usual case: indices are already small, tables stay compact
        return vertex, top + 1
    # sparse indices (barcode-like): rank each jet's distinct indices
    jet = np.broadcast_to(np.arange(vertex.shape[0])[:, None], vertex.shape)
    key = jet[keep] * (top + 1) + vertex[keep]
    distinct, inverse = np.unique(key, return_inverse=True)
    owner = distinct // (top + 1)
    rank = np.arange(distinct.size) - np.searchsorted(owner, owner, side="left")
    out = np.full(vertex.shape, -1, dtype=np.int64)
    out[keep] = rank[inverse]
    return out, int(rank.max(initial=-1)) + 1


def _per_vertex(vertex: np.ndarray, n_vertices: int, where: np.ndarray | None = None) -> np.ndarray:
    """(n_jets, n_vertices) number of tracks of each vertex (those where `where`, if given)."""
    n_jets = vertex.shape[0]
    selected = vertex >= 0 if where is None else (vertex >= 0) & where
    jet = np.broadcast_to(np.arange(n_jets)[:, None], vertex.shape)[selected]
    flat = np.bincount(jet * n_vertices + vertex[selected], minlength=n_jets * n_vertices)
    return flat.reshape(n_jets, n_vertices)


def _kept(vertex: np.ndarray, keep_vertex: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The original index of each track whose vertex is kept, -1 elsewhere (original's type)."""
    if keep_vertex.shape[1] == 0:  # no vertex in any jet
        return np.full(vertex.shape, -1, dtype=original.dtype)
    rows = np.broadcast_to(np.arange(vertex.shape[0])[:, None], vertex.shape)
    kept = (vertex >= 0) & keep_vertex[rows, np.maximum(vertex, 0)]
    return np.where(kept, original, -1).astype(original.dtype)


def clean_truth_vertices(truth_vertex: np.ndarray, truth_origin: np.ndarray) -> np.ndarray:
    """Truth vertex per track with only HF vertices kept (>= 2 tracks, all HF), others -1.

    Index 0 is the primary vertex by convention and never an HF decay vertex, whatever the
    origins of its tracks say. Kept vertices keep their index.
    """
    truth_vertex = np.asarray(truth_vertex)
    truth_origin = _check_tracks("truth_origin", truth_origin, truth_vertex.shape)
    vertex, n_vertices = _dense_vertices(truth_vertex, truth_vertex >= 1)
    hf = np.isin(truth_origin, HF_ORIGINS)
    size = _per_vertex(vertex, n_vertices)
    non_hf = _per_vertex(vertex, n_vertices, ~hf)
    return _kept(vertex, (size >= 2) & (non_hf == 0), truth_vertex)


def clean_reco_vertices(reco_vertex: np.ndarray, reco_origin: np.ndarray | None) -> np.ndarray:
    """Reco vertex per track with only candidate HF vertices kept (>= 2 tracks), others -1.

    With predicted track origins, the vertex holding the most predicted-primary tracks (the
    primary vertex; ties: the smaller index) and vertices without a predicted-HF track are
    dropped too. Kept vertices keep their index.
    """
    reco_vertex = np.asarray(reco_vertex)
    vertex, n_vertices = _dense_vertices(reco_vertex, reco_vertex >= 0)
    keep = _per_vertex(vertex, n_vertices) >= 2
    if reco_origin is not None:
        reco_origin = _check_tracks("reco_origin", reco_origin, reco_vertex.shape)
        # a single track is no vertex, so it cannot be the primary-vertex candidate either
        n_primary = np.where(keep, _per_vertex(vertex, n_vertices, reco_origin == PRIMARY_ORIGIN),
                             0)  # fmt: skip
        rows = np.arange(vertex.shape[0])
        primary = n_primary.argmax(axis=1) if n_vertices else np.zeros(len(rows), dtype=int)
        has_primary = n_primary.max(axis=1, initial=0) > 0
        keep[rows[has_primary], primary[has_primary]] = False
        keep &= _per_vertex(vertex, n_vertices, np.isin(reco_origin, HF_ORIGINS)) > 0
    return _kept(vertex, keep, reco_vertex)


def _passes(shared: np.ndarray, truth_size: np.ndarray, reco_size: np.ndarray) -> np.ndarray:
    """Whether a truth-reco pairing meets the efficiency and purity requirements."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((reco_size > 0) & (truth_size > 0) & (shared / truth_size >= MATCH_EFFICIENCY)
                & (shared / reco_size >= MATCH_PURITY))  # fmt: skip


def match_vertices(truth_vertex: np.ndarray, reco_vertex: np.ndarray) -> JetVertexCounts:
    """Match cleaned truth and reco vertices per jet, exclusively and inclusively.

    Exclusive: greedy one-to-one, the pairing with most shared tracks first (ties: the smaller
    truth vertex, then the smaller reco vertex, in tracks; then the lower indices); a pairing
    uses up both vertices, and counts as matched only if shared / truth size >=
    MATCH_EFFICIENCY and shared / reco size >= MATCH_PURITY. Inclusive: each side's vertices
    merged into one, under the same requirements. Vertices are the indices >= 0 of the
    (already cleaned) arrays; one-track vertices count as vertices here.
    """
    truth_vertex = np.asarray(truth_vertex)
    reco_vertex = _check_tracks("reco_vertex", reco_vertex, truth_vertex.shape)
    n_jets = truth_vertex.shape[0]
    truth, n_t = _dense_vertices(truth_vertex, truth_vertex >= 0)
    reco, n_r = _dense_vertices(reco_vertex, reco_vertex >= 0)
    truth_size = _per_vertex(truth, n_t)
    reco_size = _per_vertex(reco, n_r)
    both = (truth >= 0) & (reco >= 0)

    # candidate pairings: every (jet, truth, reco) that shares a track, with its count
    jet_of = np.broadcast_to(np.arange(n_jets)[:, None], truth.shape)
    key = (jet_of[both] * n_t + truth[both]) * n_r + reco[both]
    key, shared = np.unique(key, return_counts=True)
    jet, rest = np.divmod(key, n_t * n_r) if key.size else (key, key)
    t, r = np.divmod(rest, n_r) if key.size else (key, key)
    t_size, r_size = truth_size[jet, t], reco_size[jet, r]
    order = np.lexsort((r, t, r_size, t_size, -shared, jet))  # the last key sorts first
    jet, t, r, shared, t_size, r_size = (a[order] for a in (jet, t, r, shared, t_size, r_size))

    # greedy in rounds: each jet's best remaining pairing is taken (the sequential greedy
    # would take it too: nothing ranked above it is left in its jet), and the pairings that
    # share a vertex with it are dropped; the rounds are as many as a jet's most matches
    n_matched = np.zeros(n_jets, dtype=np.int64)
    while jet.size:
        best = np.r_[True, jet[1:] != jet[:-1]]
        taken_jet = jet[best]
        n_matched[taken_jet] += _passes(shared[best], t_size[best], r_size[best])
        used_t = np.zeros(n_jets * n_t, dtype=bool)
        used_r = np.zeros(n_jets * n_r, dtype=bool)
        used_t[taken_jet * n_t + t[best]] = True
        used_r[taken_jet * n_r + r[best]] = True
        left = ~(used_t[jet * n_t + t] | used_r[jet * n_r + r])
        jet, t, r, shared, t_size, r_size = (a[left] for a in (jet, t, r, shared, t_size, r_size))

    inclusive = _passes(both.sum(axis=1), (truth >= 0).sum(axis=1), (reco >= 0).sum(axis=1))
    return JetVertexCounts(
        n_truth=(truth_size > 0).sum(axis=1),
        n_reco=(reco_size > 0).sum(axis=1),
        n_matched=n_matched,
        inclusive_found=inclusive,
    )


def pair_labels(
    truth_vertex: np.ndarray,
    truth_origin: np.ndarray,
    valid: np.ndarray,
    pair_jet: np.ndarray,
    pair_first: np.ndarray,
    pair_second: np.ndarray,
    probability: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, np.ndarray]:
    """Per pair (P,) bool: truly from one vertex (equal index >= 0), predicted so (probability
    above threshold), and HF (both tracks of HF origin)."""
    valid = np.asarray(valid, dtype=bool)
    truth_vertex = _check_tracks("truth_vertex", truth_vertex, valid.shape)
    truth_origin = _check_tracks("truth_origin", truth_origin, valid.shape)
    jet, first, second, probability = _pairs(valid, pair_jet, pair_first, pair_second,
                                             probability)  # fmt: skip
    t_first, t_second = truth_vertex[jet, first], truth_vertex[jet, second]
    hf_track = np.isin(truth_origin, HF_ORIGINS)  # per track: far fewer than pairs
    hf = hf_track[jet, first] & hf_track[jet, second]
    return {
        "truth_same": (t_first == t_second) & (t_first >= 0),
        "predicted_same": probability > threshold,
        "hf": hf,
    }


def vertexing_performance(
    *,
    model: str,
    truth_vertex: np.ndarray,
    truth_origin: np.ndarray,
    valid: np.ndarray,
    reco_vertex: np.ndarray,
    reco_origin: np.ndarray | None,
    pair_jet: np.ndarray,
    pair_first: np.ndarray,
    pair_second: np.ndarray,
    probability: np.ndarray,
    pt_gev: np.ndarray,
    flavour_label: np.ndarray,
    class_names: Sequence[str],
    pt_bins_gev: Sequence[float],
    threshold: float = DEFAULT_THRESHOLD,
) -> VertexingPerformance:
    """Vertex-finding and track-pair counts per class and jet-pT bin (see the module docstring).

    reco_vertex is find_vertices' output at the same threshold. Jet pT bin k holds
    edges[k] <= pt < edges[k + 1]; jets outside the edges, or of no listed class, count
    nowhere, the pair counts included (one jet selection for every number in the file).
    """
    valid = np.asarray(valid, dtype=bool)
    shape = valid.shape
    # padding is never a vertex, whatever a file holds there
    truth_vertex = np.where(valid, _check_tracks("truth_vertex", truth_vertex, shape), -1)
    truth_origin = np.where(valid, _check_tracks("truth_origin", truth_origin, shape), -1)
    reco_vertex = np.where(valid, _check_tracks("reco_vertex", reco_vertex, shape), -1)
    if reco_origin is not None:
        reco_origin = np.where(valid, _check_tracks("reco_origin", reco_origin, shape), -1)
    edges = np.asarray(pt_bins_gev, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"pt_bins_gev must be increasing edges, got {list(pt_bins_gev)}")
    pt_gev = np.asarray(pt_gev, dtype=np.float64)
    flavour = np.asarray(flavour_label, dtype=np.int64)
    if pt_gev.shape != (shape[0],) or flavour.shape != (shape[0],):
        raise ValueError(f"pt_gev and flavour_label must be ({shape[0]},) like the jets")

    matches = match_vertices(
        clean_truth_vertices(truth_vertex, truth_origin),
        clean_reco_vertices(reco_vertex, reco_origin),
    )
    n_bins, n_classes = len(edges) - 1, len(class_names)
    pt_bin = np.searchsorted(edges, pt_gev, side="right") - 1
    selected = (pt_bin >= 0) & (pt_bin < n_bins) & (flavour >= 0) & (flavour < n_classes)
    # one flat (class, bin) cell per jet; unselected jets go to a cell that is cut off
    cell = np.where(selected, flavour * n_bins + pt_bin, n_classes * n_bins)

    def per_cell(weights: np.ndarray) -> np.ndarray:
        """(n_classes, n_bins) sums of a per-jet count."""
        flat = np.bincount(cell, weights=weights.astype(np.int64), minlength=n_classes * n_bins + 1)
        return flat[:-1].round().astype(np.int64).reshape(n_classes, n_bins)

    has_truth = matches.n_truth > 0
    tables = {
        "n_jets": per_cell(np.ones(shape[0], dtype=np.int64)),
        "n_jets_with_truth": per_cell(has_truth),
        "n_inclusive_found": per_cell(has_truth & matches.inclusive_found),
        "n_truth_vertices": per_cell(matches.n_truth),
        "n_matched_vertices": per_cell(matches.n_matched),
        "n_reco_vertices": per_cell(matches.n_reco),
        "n_jets_with_reco": per_cell(matches.n_reco > 0),
    }
    pairs = pair_labels(truth_vertex, truth_origin, valid, pair_jet, pair_first, pair_second,
                        probability, threshold)  # fmt: skip
    jet = np.asarray(pair_jet, dtype=np.int64)
    pair_class = np.where(selected[jet], flavour[jet], n_classes)

    def per_class(mask: np.ndarray) -> np.ndarray:
        """(n_classes,) number of pairs where mask."""
        return np.bincount(pair_class[mask], minlength=n_classes + 1)[:-1]

    pair_tables = {}
    for subset, among in (("all", np.ones(jet.shape, dtype=bool)), ("hf", pairs["hf"])):
        truth_same, predicted = pairs["truth_same"] & among, pairs["predicted_same"] & among
        pair_tables[subset] = {
            "truth_same": per_class(truth_same),
            "predicted_same": per_class(predicted),
            "both": per_class(truth_same & predicted),
        }
    result = {
        "model": model,
        "classes": list(class_names),
        "pt_bins_gev": edges.tolist(),
        "threshold": float(threshold),
        "match_efficiency": MATCH_EFFICIENCY,
        "match_purity": MATCH_PURITY,
        "hf_origins": list(HF_ORIGINS),
        "reco_cleaned_with_origins": reco_origin is not None,
        "interval_cl": INTERVAL_CL,
        "counts": {
            name: {key: [int(x) for x in tables[key][c]] for key in COUNTS}
            for c, name in enumerate(class_names)
        },
        "pairs": {
            name: {
                subset: {key: int(counts[key][c]) for key in PAIR_COUNTS}
                for subset, counts in pair_tables.items()
            }
            for c, name in enumerate(class_names)
        },
    }
    return VertexingPerformance.from_dict(json_safe(result))
