"""Small kinematic helpers shared by simulation, preprocessing and evaluation."""

from __future__ import annotations

import numpy as np


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Wrap angles into [-pi, pi)."""
    return (np.asarray(phi) + np.pi) % (2.0 * np.pi) - np.pi


def delta_r(eta1: np.ndarray, phi1: np.ndarray, eta2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """Angular distance sqrt(d_eta^2 + d_phi^2), broadcasting like numpy."""
    return np.hypot(eta1 - eta2, wrap_phi(phi1 - phi2))


def pt_eta_phi_m(px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray):
    """(pT, eta, phi, mass) of four-vectors; eta of a zero-pT vector is clipped, not inf."""
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-12))
    phi = np.arctan2(py, px)
    mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
    return pt, eta, phi, mass
