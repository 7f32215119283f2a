"""The IP3D-like baseline's track grades (models/ip3d.py): grading, templates, fallback, I/O.

On the small generated, ingested and prepared sample of conftest.py, and on hand-built tracks
whose hit patterns are known.
"""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest

from jettag import config as cfg
from jettag.cli import main
from jettag.commands import stage_params, stage_settings
from jettag.errors import InputError
from jettag.evaluation.metrics import auc
from jettag.evaluation.predict import predict
from jettag.io.canonical import ABSENT_FIELDS_ATTR, HIT_FIELDS, TRACK_DTYPE
from jettag.io.predictions import read_predictions
from jettag.models import ip3d
from tests.conftest import REPO, minimal_config

CLASSES = ["b", "c", "light"]
SD0_EDGES = [-40, -10, -4, -2, -1, 0, 1, 2, 4, 10, 40]
SZ0_EDGES = [-40, -4, -1, 0, 1, 4, 40]
IBL, NIBL, SHARED = ip3d.IBL_HITS, ip3d.NEXT_TO_IBL_HITS, ip3d.PIXEL_SHARED_HITS


def _split(prepared, name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Jets, tracks and class names of a prepared split."""
    with h5py.File(prepared / f"{name}.h5", "r") as f:
        classes = [str(c) for c in f["jets"].attrs["flavour_label"]]
        return f["jets"][:], f["tracks"][:], classes


def _tracks(patterns: list[tuple[int, int, int]], n_padding: int = 1) -> np.ndarray:
    """One jet's tracks with (IBL, next-to-innermost, shared pixel) hit counts, then padding."""
    tracks = np.zeros((1, len(patterns) + n_padding), dtype=TRACK_DTYPE)
    for k, (ibl, nibl, shared) in enumerate(patterns):
        tracks[0, k]["valid"] = True
        tracks[0, k][IBL], tracks[0, k][NIBL], tracks[0, k][SHARED] = ibl, nibl, shared
        tracks[0, k]["numberOfPixelHits"], tracks[0, k]["numberOfSCTHits"] = 4, 8
    return tracks


def _with_placeholder_hits(tracks: np.ndarray) -> np.ndarray:
    """A copy with every hit count a placeholder (-1), as ingest writes for absent fields."""
    out = tracks.copy()
    for name in HIT_FIELDS:
        out[name] = -1
    return out


def _intended(tracks: np.ndarray) -> dict[str, np.ndarray]:
    """Each grade's hit pattern written out independently of GRADES (exclusive by hand)."""
    ibl, nibl, shared = tracks[IBL] > 0, tracks[NIBL] > 0, tracks[SHARED] > 0
    valid = tracks["valid"]
    return {
        "0HitIn0HitNIn": valid & ~ibl & ~nibl,
        "0HitIn": valid & ~ibl & nibl,
        "0HitNIn": valid & ibl & ~nibl,
        "PixShared": valid & ibl & nibl & shared,
        "Good": valid & ibl & nibl & ~shared,
    }


def test_grade_table_follows_the_atlas_scheme():
    assert ip3d.GRADES.names == ["0HitIn0HitNIn", "0HitIn", "0HitNIn", "PixShared", "Good"]
    assert set(ip3d.GRADES.fields) <= set(HIT_FIELDS)
    assert "ATL-PHYS-PUB-2017-013" in ip3d.GRADES.source
    assert ip3d.ONE_GRADE.names == ["All"] and ip3d.ONE_GRADE.fields == ()
    with pytest.raises(ValueError, match="last grade with no requirement"):
        ip3d.GradeTable("bad", "", (ip3d.Grade("NoIBL", "", ((IBL, 0, 0),)),))


def test_hand_built_tracks_get_the_intended_grade():
    patterns = {
        (0, 0, 2): "0HitIn0HitNIn",  # no innermost hits comes first, shared or not
        (0, 0, 0): "0HitIn0HitNIn",
        (0, 1, 1): "0HitIn",
        (0, 2, 0): "0HitIn",
        (1, 0, 1): "0HitNIn",
        (1, 1, 1): "PixShared",
        (2, 1, 2): "PixShared",
        (1, 1, 0): "Good",
        (3, 2, 0): "Good",
    }
    tracks = _tracks(list(patterns), n_padding=2)
    grades = ip3d.assign_grades(tracks, ip3d.GRADES)
    names = [ip3d.GRADES.names[g] for g in grades[0, : len(patterns)]]
    assert names == list(patterns.values())
    assert (grades[0, len(patterns) :] == -1).all()  # padding has no grade
    assert (ip3d.assign_grades(tracks, ip3d.ONE_GRADE)[0, : len(patterns)] == 0).all()


def test_every_valid_track_of_the_sample_has_exactly_one_intended_grade(prepared):
    _, tracks, _ = _split(prepared, "train")
    grades = ip3d.assign_grades(tracks, ip3d.GRADES)
    valid = tracks["valid"]
    assert ((grades >= 0) == valid).all()
    intended = _intended(tracks)
    assert (np.sum(list(intended.values()), axis=0) == valid).all()  # exclusive, exhaustive
    for index, name in enumerate(ip3d.GRADES.names):
        assert ((grades == index) == intended[name]).all(), name
    # the generated tracker makes every pattern (tracks from beyond the innermost layers,
    # hit inefficiency, merged clusters in dense cores): no grade is empty
    assert all(mask.any() for mask in intended.values()), {k: v.sum() for k, v in intended.items()}


def test_one_grade_is_the_ungraded_template(prepared):
    jets, tracks, classes = _split(prepared, "train")
    labels = jets["flavour_label"]
    one = ip3d.fit_templates(tracks, labels, classes, SD0_EDGES, SZ0_EDGES, ip3d.ONE_GRADE)
    assert one.log_density.shape == (3, 1, len(SD0_EDGES) - 1, len(SZ0_EDGES) - 1)
    # the ungraded IP3D-like templates, written out: clipped 2D histograms plus pseudo counts
    valid = tracks["valid"]
    track_labels = np.broadcast_to(labels[:, None], valid.shape)[valid]
    sd0 = np.clip(tracks[ip3d.SD0][valid], SD0_EDGES[0], SD0_EDGES[-1] - 1e-6)
    sz0 = np.clip(tracks[ip3d.SZ0][valid], SZ0_EDGES[0], SZ0_EDGES[-1] - 1e-6)
    for c in range(len(classes)):
        sel = track_labels == c
        counts = np.histogram2d(sd0[sel], sz0[sel], [SD0_EDGES, SZ0_EDGES])[0] + ip3d.PSEUDO_COUNT
        np.testing.assert_allclose(one.log_density[c, 0], np.log(counts / counts.sum()))
    # graded templates summed over the grade axis are the same counts (but for pseudo counts)
    graded = ip3d.fit_templates(tracks, labels, classes, SD0_EDGES, SZ0_EDGES, ip3d.GRADES)
    n_grades = len(ip3d.GRADES.grades)
    n_bins = (len(SD0_EDGES) - 1) * (len(SZ0_EDGES) - 1)
    for c in range(len(classes)):
        n = (track_labels == c).sum()
        graded_counts = np.exp(graded.log_density[c]) * (n + ip3d.PSEUDO_COUNT * n_grades * n_bins)
        one_counts = np.exp(one.log_density[c, 0]) * (n + ip3d.PSEUDO_COUNT * n_bins)
        np.testing.assert_allclose(
            graded_counts.sum(axis=0) - (n_grades - 1) * ip3d.PSEUDO_COUNT, one_counts, rtol=1e-9
        )
    # and with one grade, the library's default, scoring is the ungraded sum of log-likelihoods
    default = ip3d.fit_templates(tracks, labels, classes, SD0_EDGES, SZ0_EDGES)
    np.testing.assert_array_equal(default.log_density, one.log_density)
    i = np.clip(np.searchsorted(SD0_EDGES, tracks[ip3d.SD0], side="right") - 1, 0, 9)
    j = np.clip(np.searchsorted(SZ0_EDGES, tracks[ip3d.SZ0], side="right") - 1, 0, 5)
    log_l = np.where(valid[None], one.log_density[:, 0][:, i, j], 0.0).sum(axis=2).T
    expected = np.exp(log_l - log_l.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(ip3d.score(one, tracks), expected, rtol=1e-12)


def test_graded_templates_see_the_worse_resolution_of_tracks_without_innermost_hits(prepared):
    # what grading is for: a light-jet track without an IBL hit has a wider sd0 than a Good one
    jets, tracks, classes = _split(prepared, "train")
    valid = tracks["valid"]
    light = np.broadcast_to((jets["flavour_label"] == classes.index("light"))[:, None], valid.shape)
    grade = ip3d.assign_grades(tracks, ip3d.GRADES)
    wide = np.abs(tracks[ip3d.SD0]) > 3.0
    no_ibl = valid & light & (tracks[IBL] == 0)
    good = valid & light & (grade == ip3d.GRADES.names.index("Good"))
    assert no_ibl.sum() > 50 and good.sum() > 1000, (no_ibl.sum(), good.sum())
    assert wide[no_ibl].mean() > 1.5 * wide[good].mean(), (wide[no_ibl].mean(), wide[good].mean())


def test_grading_separates_better_when_grades_differ_in_resolution():
    # hand-built: half the tracks (grade 0HitIn) have sd0 five times wider in every flavour;
    # one template mixes them, graded templates do not
    rng = np.random.default_rng(3)
    n_jets, n_tracks = 4000, 6
    labels = rng.integers(0, 3, n_jets)
    tracks = np.zeros((n_jets, n_tracks), dtype=TRACK_DTYPE)
    tracks["valid"] = True
    tracks[NIBL], tracks["numberOfPixelHits"], tracks["numberOfSCTHits"] = 1, 4, 8
    bad = rng.random((n_jets, n_tracks)) < 0.5
    tracks[IBL] = np.where(bad, 0, 1)
    shift = np.array([0.5, 0.2, 0.0])[labels][:, None]  # b tracks displaced, light prompt
    width = np.where(bad, 5.0, 1.0)
    tracks[ip3d.SD0] = (shift + rng.standard_normal((n_jets, n_tracks))) * width
    tracks[ip3d.SZ0] = rng.standard_normal((n_jets, n_tracks))
    train, test = slice(0, n_jets // 2), slice(n_jets // 2, None)
    aucs = {}
    for name, grading in (("ungraded", ip3d.ONE_GRADE), ("graded", ip3d.GRADES)):
        templates = ip3d.fit_templates(tracks[train], labels[train], CLASSES,
                                       SD0_EDGES, SZ0_EDGES, grading)  # fmt: skip
        p = ip3d.score(templates, tracks[test])
        db = np.log(p[:, 0] / (0.018 * p[:, 1] + 0.982 * p[:, 2]))  # D_b by hand
        aucs[name] = auc(db[labels[test] == 0], db[labels[test] == 2])
    assert aucs["graded"] > aucs["ungraded"] + 0.01, aucs


def test_absent_hit_counts_fall_back_to_one_grade(prepared, caplog):
    _, tracks, _ = _split(prepared, "train")
    placeholders = _with_placeholder_hits(tracks)
    with caplog.at_level(logging.INFO, logger="jettag.models.ip3d"):
        # listed in the file's absent_fields, or (files from before it) -1 on every track
        for absent in (set(HIT_FIELDS), set()):
            caplog.clear()
            grading = ip3d.choose_grading(True, placeholders, absent, "sample.h5")
            assert grading is ip3d.ONE_GRADE
            assert "every track in one grade" in caplog.text and IBL in caplog.text
        caplog.clear()
        assert ip3d.choose_grading(True, tracks, set(), "sample.h5") is ip3d.GRADES
        assert caplog.text == ""
        assert ip3d.choose_grading(False, tracks, set(), "sample.h5") is ip3d.ONE_GRADE
        assert "track_grades: false" in caplog.text
    # grading placeholders is never silent: it is refused, in fitting and in scoring
    with pytest.raises(InputError, match=f"have no {IBL} \\(placeholder -1\\)"):
        ip3d.assign_grades(placeholders, ip3d.GRADES)
    some = tracks.copy()
    some[SHARED][0, 0] = -1
    assert ip3d.choose_grading(True, some, set(), "sample.h5") is ip3d.GRADES  # not all -1
    with pytest.raises(InputError, match=f"1 of {tracks['valid'].sum()} tracks have no {SHARED}"):
        ip3d.assign_grades(some, ip3d.GRADES)
    graded = ip3d.fit_templates(tracks, np.zeros(len(tracks), int), CLASSES, SD0_EDGES,
                                SZ0_EDGES, ip3d.GRADES)  # fmt: skip
    with pytest.raises(InputError, match="placeholder"):
        ip3d.score(graded, placeholders)


def _config_file(tmp_path, **baseline) -> str:
    """A config file for the CLI: the minimal analysis, its baseline's keys overridden."""
    raw = minimal_config()
    raw["baselines"]["ip3d"].update(baseline)
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(raw))  # JSON is YAML
    return str(path)


def _fit(config: str, data_dir, output) -> int:
    """`jettag fit-baseline` on a prepared directory."""
    return main(["fit-baseline", "--config", config, "--baseline", "ip3d", "--data-dir",
                 str(data_dir), "--output", str(output)])  # fmt: skip


def test_fit_baseline_without_hit_counts_uses_one_grade(prepared, tmp_path, caplog):
    data_dir = tmp_path / "no_hits"
    data_dir.mkdir()
    jets, tracks, classes = _split(prepared, "train")
    with h5py.File(prepared / "train.h5", "r") as f:
        attrs = dict(f["jets"].attrs)
    with h5py.File(data_dir / "train.h5", "w") as f:
        f["jets"], f["tracks"] = jets, _with_placeholder_hits(tracks)
        f["jets"].attrs.update(attrs)
        f["jets"].attrs[ABSENT_FIELDS_ATTR] = json.dumps(list(HIT_FIELDS))
    with caplog.at_level(logging.INFO):
        assert _fit(_config_file(tmp_path), data_dir, tmp_path / "templates.json") == 0
    assert "every track in one grade" in caplog.text
    templates = json.loads((tmp_path / "templates.json").read_text())
    assert templates["track_grades"] == ip3d.ONE_GRADE.to_dict()
    assert np.asarray(templates["log_density"]).shape[:2] == (len(classes), 1)


def test_templates_json_round_trip(prepared, tmp_path):
    _, tracks, classes = _split(prepared, "test")
    written = {}
    for track_grades in (True, False):
        out = tmp_path / f"templates_{track_grades}.json"
        assert _fit(_config_file(tmp_path, track_grades=track_grades), prepared, out) == 0
        data = json.loads(out.read_text())
        templates = ip3d.Templates.from_dict(data)
        written[track_grades] = templates
        grading = ip3d.GRADES if track_grades else ip3d.ONE_GRADE
        assert data["track_grades"] == grading.to_dict()  # definitions and names, in the file
        assert templates.grading == grading and templates.classes == classes
        assert templates.log_density.shape[:2] == (len(classes), len(grading.grades))
        again = ip3d.Templates.from_dict(json.loads(json.dumps(templates.to_dict())))
        np.testing.assert_array_equal(again.log_density, templates.log_density)
        assert again.grading == templates.grading
        # predict reads the grades from the templates alone: no config
        predict("ip3d", prepared / "test.h5", [out], "ip3d", tmp_path / f"pred_{track_grades}.h5")
        members = read_predictions(tmp_path / f"pred_{track_grades}.h5").members
        np.testing.assert_allclose(members[0], ip3d.score(templates, tracks), rtol=1e-6)
    assert written[True].grading != written[False].grading
    # templates written before track grades are one-grade templates
    old = written[False].to_dict()
    old.pop("track_grades")
    old["log_density"] = np.asarray(old["log_density"])[:, 0].tolist()
    legacy = ip3d.Templates.from_dict(old)
    np.testing.assert_array_equal(legacy.log_density, written[False].log_density)
    assert legacy.grading == ip3d.ONE_GRADE
    broken = written[True].to_dict() | {"track_grades": ip3d.ONE_GRADE.to_dict()}
    with pytest.raises(InputError, match="do not match 3 classes and 1 track grades"):
        ip3d.Templates.from_dict(broken)


def test_stage_settings_include_track_grades(config):
    settings = stage_settings("fit-baseline", config, baseline="ip3d").as_dict()
    assert settings == {
        "baseline": {
            "sd0_bins": config["baselines"]["ip3d"]["sd0_bins"],
            "sz0_bins": config["baselines"]["ip3d"]["sz0_bins"],
            "track_grades": True,  # the default: ATLAS's IP3D grades its tracks
        }
    }
    # switching grades off reruns the fit and nothing else (predict reads the templates)
    raw = cfg.load_config(REPO / "workflow/configs/ci.yaml")
    before = cfg.validate_config(raw)
    raw["baselines"]["ip3d"]["track_grades"] = False
    after = cfg.validate_config(raw)
    assert (
        stage_settings("fit-baseline", after, baseline="ip3d").as_dict()["baseline"]["track_grades"]
        is False
    )
    assert stage_params("fit-baseline", before, baseline="ip3d") != stage_params(
        "fit-baseline", after, baseline="ip3d"
    )
    assert stage_params("predict", before, tagger="ip3d") == stage_params(
        "predict", after, tagger="ip3d"
    )
