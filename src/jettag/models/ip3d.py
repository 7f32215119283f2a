"""An IP3D-like baseline: per-flavour templates of track (grade, sd0, sz0), summed log-likelihoods.

No training: templates are histograms of training tracks of each flavour. As in ATLAS's IP3D,
tracks are first put into categories ("track grades", GRADES) by their silicon hit pattern,
because a track without a hit on the innermost layers, or with shared hits, has a different
resolution and is more often a secondary (material, V0) or fake track: its (sd0, sz0) means
something else. A jet's log-likelihood under flavour f is the sum over its tracks of
log p_f(grade, sd0, sz0); with equal priors the softmax of these gives p_b, p_c, p_light, so the
same D_b applies to it. The grades used travel with the templates (templates.json), so
scoring needs no config.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from jettag.errors import InputError

log = logging.getLogger(__name__)

SD0 = "IP3D_signed_d0_significance"
SZ0 = "IP3D_signed_z0_significance"
PSEUDO_COUNT = 0.5  # per bin, so an empty bin gives a finite (large) penalty, not -inf

IBL_HITS = "numberOfInnermostPixelLayerHits"
NEXT_TO_IBL_HITS = "numberOfNextToInnermostPixelLayerHits"
PIXEL_SHARED_HITS = "numberOfPixelSharedHits"


@dataclass(frozen=True)
class Grade:
    """A track category: every (field, minimum, maximum) bound holds, inclusive; None is open."""

    name: str
    description: str
    requires: tuple[tuple[str, int, int | None], ...] = ()

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return {
            "name": self.name,
            "description": self.description,
            "requires": [{"field": f, "min": lo, "max": hi} for f, lo, hi in self.requires],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Grade:
        """Inverse of to_dict."""
        requires = tuple((r["field"], int(r["min"]), r["max"]) for r in data["requires"])
        return cls(str(data["name"]), str(data["description"]), requires)


@dataclass(frozen=True)
class GradeTable:
    """Ordered, exclusive track grades: a track takes the first grade whose bounds it meets."""

    name: str
    source: str
    grades: tuple[Grade, ...]

    def __post_init__(self) -> None:
        names = [g.name for g in self.grades]
        if not self.grades or self.grades[-1].requires or len(set(names)) != len(names):
            # a catch-all last grade is what makes the grades exhaustive
            raise ValueError(
                f"track grades '{self.name}': need distinct names and a last grade with no"
                f" requirement (have {names})"
            )

    @property
    def fields(self) -> tuple[str, ...]:
        """The hit-count fields the grades read, in first-use order."""
        return tuple(dict.fromkeys(f for g in self.grades for f, _, _ in g.requires))

    @property
    def names(self) -> list[str]:
        """Grade names, in order (the template's grade axis)."""
        return [g.name for g in self.grades]

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return {
            "name": self.name,
            "source": self.source,
            "grades": [g.to_dict() for g in self.grades],
        }

    @classmethod
    def from_dict(cls, data: dict) -> GradeTable:
        """Inverse of to_dict."""
        grades = tuple(Grade.from_dict(g) for g in data["grades"])
        return cls(str(data["name"]), str(data["source"]), grades)


GRADES = GradeTable(
    name="atlas-run2-hit-pattern",
    source=(
        "ATLAS Run 2 IP2D/IP3D track categories (ATL-PHYS-PUB-2017-013; athena JetTagTools"
        " DetailedTrackGradeFactory with useRun2TrackGrading), reduced to the hit counts of"
        " the canonical file"
    ),
    grades=(
        Grade(
            "0HitIn0HitNIn",
            "no hit on the innermost (IBL) nor on the next-to-innermost pixel layer",
            ((IBL_HITS, 0, 0), (NEXT_TO_IBL_HITS, 0, 0)),
        ),
        Grade("0HitIn", "no innermost-layer (IBL) hit", ((IBL_HITS, 0, 0),)),
        Grade("0HitNIn", "no next-to-innermost-layer hit", ((NEXT_TO_IBL_HITS, 0, 0),)),
        Grade("PixShared", "at least one shared pixel hit", ((PIXEL_SHARED_HITS, 1, None),)),
        Grade("Good", "every other track", ()),
    ),
)
"""The track grades of the IP3D-like baseline, after ATLAS's Run 2 IP3D (ATL-PHYS-PUB-2017-013).

ATLAS's 14 exclusive categories, in its order of precedence: no hit on both innermost layers
(4 grades by which hits were expected), no IBL hit (expected or not), no next-to-innermost hit
(expected or not), shared hits on both innermost layers, shared pixel hits, shared SCT hits,
split hits on both innermost layers, split pixel hits, good. The canonical file has neither
the expected-hit flags nor shared SCT or split hit counts, so: the expected/not-expected pairs
are merged (a missing hit is nearly always "expected" in ATLAS, the extrapolated track crossing
an active module); both pixel-shared grades are merged into PixShared (numberOfPixelSharedHits
does not say which layer); SctShared and the split grades go into Good.
"""

ONE_GRADE = GradeTable(
    name="none",
    source="no track grades: one category for all tracks (the original IP3D-like baseline)",
    grades=(Grade("All", "every track", ()),),
)


def choose_grading(
    track_grades: bool, tracks: np.ndarray, absent: Collection[str], source: str
) -> GradeTable:
    """GRADES when asked for and the sample has their hit counts, else ONE_GRADE (logged).

    A file's `absent_fields` names the hit counts its inputs lacked (placeholders, -1); a
    file written before that attribute existed shows them as -1 on every track.
    """
    if not track_grades:
        log.info("%s: track grades off (track_grades: false): one template for all tracks", source)
        return ONE_GRADE
    valid = tracks["valid"]
    missing = [f for f in GRADES.fields if f in absent or f not in (tracks.dtype.names or ())]
    placeholders = [
        f
        for f in GRADES.fields
        if f not in missing and valid.any() and (tracks[f][valid] < 0).all()
    ]
    if missing or placeholders:
        log.warning(
            "%s: the sample has no %s (absent from its inputs): every track in one grade, not"
            " the %d track grades of %s",
            source, ", ".join(missing + placeholders), len(GRADES.grades), GRADES.name,
        )  # fmt: skip
        return ONE_GRADE
    return GRADES


def assign_grades(tracks: np.ndarray, grading: GradeTable) -> np.ndarray:
    """Grade index of each track, (n_jets, max_tracks) int; -1 on padding.

    A valid track with a negative hit count in a field the grades read is an error: that is a
    placeholder, and grading it would put the track in a category silently.
    """
    valid = tracks["valid"]
    for name in grading.fields:
        bad = valid & (tracks[name] < 0)
        if bad.any():
            raise InputError(
                f"{int(bad.sum())} of {int(valid.sum())} tracks have no {name} (placeholder"
                f" -1), which the track grades '{grading.name}' read; fit the templates with"
                " track_grades: false, or on a sample with hit counts"
            )
    out = np.full(valid.shape, -1, dtype=np.int64)
    for index, grade in enumerate(grading.grades):
        match = valid & (out < 0)
        for name, lo, hi in grade.requires:
            values = tracks[name]
            match &= values >= lo
            if hi is not None:
                match &= values <= hi
        out[match] = index
    return out


@dataclass(frozen=True)
class Templates:
    """Normalised per-class densities; log_density (n_classes, n_grades, n_sd0_bins, n_sz0_bins).

    Each class's density is normalised over (grade, sd0, sz0) together: it is the probability
    of what a track shows, its grade included, so a grade's different share among b, c and
    light tracks counts as well as its IP shapes.
    """

    sd0_edges: np.ndarray
    sz0_edges: np.ndarray
    log_density: np.ndarray
    classes: list[str]
    grading: GradeTable = ONE_GRADE

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return {
            "sd0_edges": self.sd0_edges.tolist(),
            "sz0_edges": self.sz0_edges.tolist(),
            "classes": self.classes,
            "track_grades": self.grading.to_dict(),
            "log_density": self.log_density.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Templates:
        """Inverse of to_dict; templates from before track grades have one grade."""
        log_density = np.asarray(data["log_density"])
        if "track_grades" in data:
            grading = GradeTable.from_dict(data["track_grades"])
        else:
            grading, log_density = ONE_GRADE, log_density[:, None]
        if log_density.shape[:2] != (len(data["classes"]), len(grading.grades)):
            raise InputError(
                f"templates of shape {log_density.shape} do not match {len(data['classes'])}"
                f" classes and {len(grading.grades)} track grades"
            )
        return cls(
            np.asarray(data["sd0_edges"]), np.asarray(data["sz0_edges"]), log_density,
            list(data["classes"]), grading,
        )  # fmt: skip


def _bins(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin index with under/overflow into the edge bins."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)


def fit_templates(
    tracks: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    sd0_edges: np.ndarray | list[float],
    sz0_edges: np.ndarray | list[float],
    grading: GradeTable = ONE_GRADE,
) -> Templates:
    """Histogram valid tracks' (grade, sd0, sz0) per jet flavour, each normalised to unit sum."""
    sd0_edges, sz0_edges = np.asarray(sd0_edges, float), np.asarray(sz0_edges, float)
    valid = tracks["valid"]
    track_labels = np.broadcast_to(labels[:, None], valid.shape)[valid]
    g = assign_grades(tracks, grading)[valid]
    i = _bins(sd0_edges, tracks[SD0][valid])
    j = _bins(sz0_edges, tracks[SZ0][valid])
    shape = (len(classes), len(grading.grades), sd0_edges.size - 1, sz0_edges.size - 1)
    counts = np.full(shape, PSEUDO_COUNT)
    np.add.at(counts, (track_labels, g, i, j), 1.0)
    if len(grading.grades) > 1:
        shares = np.bincount(g, minlength=len(grading.grades)) / max(g.size, 1)
        text = ", ".join(f"{n} {s:.1%}" for n, s in zip(grading.names, shares, strict=True))
        log.info("track grades (%s): %s", grading.name, text)
    density = counts / counts.sum(axis=(1, 2, 3), keepdims=True)
    return Templates(sd0_edges, sz0_edges, np.log(density), list(classes), grading)


def score(templates: Templates, tracks: np.ndarray) -> np.ndarray:
    """Class probabilities (n_jets, n_classes) from summed per-track log-likelihoods."""
    valid = tracks["valid"]
    g = np.maximum(assign_grades(tracks, templates.grading), 0)  # padding: masked below
    i = _bins(templates.sd0_edges, tracks[SD0])
    j = _bins(templates.sz0_edges, tracks[SZ0])
    per_track = templates.log_density[:, g, i, j]  # (n_classes, n_jets, max_tracks)
    log_likelihood = np.where(valid[None], per_track, 0.0).sum(axis=2).T
    log_likelihood -= log_likelihood.max(axis=1, keepdims=True)
    probabilities = np.exp(log_likelihood)
    return probabilities / probabilities.sum(axis=1, keepdims=True)
