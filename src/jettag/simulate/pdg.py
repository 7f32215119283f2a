"""Particle classification by PDG id, vectorised over numpy arrays."""

from __future__ import annotations

import numpy as np

from jettag.flavours import FLAVOURS

# Truth origin of a track, as ATLAS's ftagTruthOriginLabel (names: jettag.flavours).
ORIGIN_PILEUP = 0
ORIGIN_FAKE = 1
ORIGIN_PRIMARY = 2
ORIGIN_FROM_B = 3
ORIGIN_FROM_BC = 4
ORIGIN_FROM_C = 5
ORIGIN_FROM_TAU = 6
ORIGIN_OTHER_SECONDARY = 7

# HadronConeExclTruthLabelID values.
LABEL_B = FLAVOURS["b"].label_values[0]
LABEL_C = FLAVOURS["c"].label_values[0]
LABEL_TAU = FLAVOURS["tau"].label_values[0]
LABEL_LIGHT = FLAVOURS["light"].label_values[0]

NEUTRINOS = (12, 14, 16)
# Long-lived light particles whose decays (or conversions) make displaced tracks.
LONG_LIVED_LIGHT = (22, 130, 310, 3122, 3112, 3222, 3312, 3322, 3334)


def _digit(pdg_abs: np.ndarray, position: int) -> np.ndarray:
    """Decimal digit of |id| at a position (0 = units)."""
    return (pdg_abs // 10**position) % 10


def _quark_digits(pdg_id: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Quark digits (thousands, hundreds, tens) of |id| and a hadron mask (mesons, baryons)."""
    a = np.abs(np.asarray(pdg_id)) % 10000  # drop excited-state prefixes
    q3, q2, q1 = _digit(a, 3), _digit(a, 2), _digit(a, 1)
    diquark = (q3 > 0) & (q1 == 0)
    hadron = (np.abs(np.asarray(pdg_id)) > 100) & (_digit(a, 0) > 0) & ~diquark
    return q3, q2, q1, hadron


def _contains(pdg_id: np.ndarray, quark: int) -> np.ndarray:
    """True for hadrons with a quark of this flavour, quarkonia (e.g. J/psi, Upsilon) excluded."""
    q3, q2, q1, hadron = _quark_digits(pdg_id)
    meson = q3 == 0
    onium = meson & (q2 == quark) & (q1 == quark)
    return hadron & ((q3 == quark) | (q2 == quark) | (q1 == quark)) & ~onium


def is_hadron(pdg_id: np.ndarray) -> np.ndarray:
    """True for mesons and baryons."""
    return _quark_digits(pdg_id)[3]


def is_b_hadron(pdg_id: np.ndarray) -> np.ndarray:
    """True for hadrons containing a b quark."""
    return _contains(pdg_id, 5)


def is_c_hadron(pdg_id: np.ndarray) -> np.ndarray:
    """True for hadrons containing a c quark and no b quark."""
    return _contains(pdg_id, 4) & ~_contains(pdg_id, 5)
