"""Fitting an IP3D-like baseline: its track templates from the training split."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import h5py

from jettag.io.canonical import absent_fields
from jettag.models import ip3d

if TYPE_CHECKING:
    from jettag.config import BaselineConfig


def fit_baseline(train_file: Path, baseline: BaselineConfig) -> ip3d.Templates:
    """Templates of each class's signed-significance distributions, from a prepared train.h5.

    `baseline`: the template binning (sd0_bins, sz0_bins) and the track grading asked for
    (track_grades; the stage reads these keys only); grades need fields the file may lack
    (choose_grading says which).
    """
    with h5py.File(train_file, "r") as f:
        jets, tracks = f["jets"][:], f["tracks"][:]
        classes = [str(c) for c in f["jets"].attrs["flavour_label"]]
        absent = absent_fields(f["jets"].attrs, train_file)
    grading = ip3d.choose_grading(baseline.track_grades, tracks, absent, str(train_file))
    return ip3d.fit_templates(tracks, jets["flavour_label"], classes, baseline.sd0_bins,
                              baseline.sz0_bins, grading)  # fmt: skip
