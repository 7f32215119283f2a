"""Predictions files: one tagger's class probabilities on the test jets, in the FTAG layout.

puma and the ATLAS tools read the same file. Layout:
  jets                  structured (n,): the test jets' pt, eta, phi, truth label (the class
                        set's label_variable: HadronConeExclTruthLabelID for ftag),
                        flavour_label, eventNumber, n_tracks, and per class the member average
                        `<tagger>_pb`, `_pc`, `_pu` (puma's suffixes, jettag.flavours); for an
                        ensemble also `<tagger>_pb_std`, ... (the members' spread, jet by jet)
  jets attrs            `flavour_label` (class names in label order), `label_variable`,
                        `tagger`, and the test
                        split's own attributes (provenance of the sample)
  member_probabilities  (members, n, classes) float32: every member's probabilities
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import numpy.lib.recfunctions as rfn

from jettag.atomic import atomic_path
from jettag.errors import InputError
from jettag.flavours import probability_column
from jettag.io.canonical import FTAG_LABEL, with_fields


def kept_jet_fields(label_variable: str = FTAG_LABEL) -> tuple[str, ...]:
    """The test-jet fields a predictions file keeps, the class set's truth label among them."""
    return ("pt", "eta", "phi", label_variable, "flavour_label", "eventNumber", "n_tracks")


MEMBERS = "member_probabilities"


@dataclasses.dataclass(frozen=True)
class Predictions:
    """A predictions file as read: the jets table, its classes and every member's outputs."""

    path: Path
    tagger: str
    classes: tuple[str, ...]
    jets: np.ndarray  # structured (n,), the layout above
    members: np.ndarray | None  # (members, n, classes); None in files without the dataset

    def probability(self, flavour: str) -> np.ndarray:
        """(n,) the member-averaged probability of a class."""
        return self.jets[probability_column(self.tagger, flavour)]

    def member_probabilities(self, member: int) -> dict[str, np.ndarray]:
        """Class name -> (n,) probabilities of one ensemble member."""
        if self.members is None:
            raise InputError(f"{self.path}: no '{MEMBERS}' dataset")
        return {name: self.members[member][:, k] for k, name in enumerate(self.classes)}


def write_predictions(
    path: Path,
    tagger: str,
    classes: Sequence[str],
    test_jets: np.ndarray,
    members: np.ndarray,
    attributes: Mapping[str, object] | None = None,
    label_variable: str = FTAG_LABEL,
) -> None:
    """Write a tagger's predictions: the kept test-jet fields and its members' probabilities.

    members: (members, n, classes); their mean is the tagger's output, their spread (for more
    than one member) is kept per jet.
    """
    mean = members.mean(axis=0)
    names = [probability_column(tagger, c) for c in classes]
    columns = {name: mean[:, k].astype(np.float32) for k, name in enumerate(names)}
    if len(members) > 1:  # a deep ensemble: how much its members disagree, jet by jet
        std = members.std(axis=0, ddof=1)
        columns.update(
            {f"{name}_std": std[:, k].astype(np.float32) for k, name in enumerate(names)}
        )
    kept = list(kept_jet_fields(label_variable))
    table = with_fields(rfn.repack_fields(test_jets[kept]), columns)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        ds = f.create_dataset("jets", data=table, compression="gzip")
        ds.attrs["flavour_label"] = list(classes)
        ds.attrs["tagger"] = tagger
        ds.attrs["label_variable"] = label_variable
        for key, value in (attributes or {}).items():
            if key not in ("flavour_label", "tagger", "label_variable"):
                ds.attrs[key] = value
        f.create_dataset(MEMBERS, data=members.astype(np.float32), compression="gzip")


def read_predictions(path: Path) -> Predictions:
    """Read a predictions file; one without a probability column per class is an InputError."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            jets = f["jets"][:]
            classes = tuple(str(c) for c in f["jets"].attrs["flavour_label"])
            tagger = str(f["jets"].attrs["tagger"])
            members = f[MEMBERS][:] if MEMBERS in f else None
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: not a readable predictions file ({err})") from err
    columns = [probability_column(tagger, name) for name in classes]
    absent = [c for c in columns if c not in (jets.dtype.names or ())]
    if absent:
        raise InputError(f"{path}: jets have no probability columns {absent}")
    return Predictions(path, tagger, classes, jets, members)
