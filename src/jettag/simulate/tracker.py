"""A parametrised tracker: helix perigee parameters, resolution smearing, selection.

Impact parameters are measured from the reconstructed primary vertex. The transverse
impact parameter follows the ATLAS perigee convention, d0 = x sin(phi) - y cos(phi) in the
straight-line limit; the helix in the solenoid field is taken into account exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jettag.config import TrackerConfig

# radius [m] = pT [GeV] / (C * B [T] * |q|)
_CURVATURE_CONSTANT = 0.299792458


@dataclass(frozen=True)
class Perigee:
    """True track parameters at the point of closest approach to the z axis; (n,) arrays."""

    d0: np.ndarray  # mm
    z0: np.ndarray  # mm, along the beam
    phi0: np.ndarray
    theta: np.ndarray
    pt: np.ndarray  # GeV


def perigee_parameters(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    charge: np.ndarray,
    b_field_tesla: float,
) -> Perigee:
    """Perigee parameters of charged helices produced at (x, y, z) relative to the vertex."""
    pt = np.hypot(px, py)
    phi = np.arctan2(py, px)
    q = np.sign(charge)
    radius = 1000.0 * pt / (_CURVATURE_CONSTANT * b_field_tesla * np.abs(charge))
    # centre of the circle: positive charges bend clockwise in a field along +z
    cx = x + q * radius * np.sin(phi)
    cy = y - q * radius * np.cos(phi)
    centre_distance = np.hypot(cx, cy)
    d0 = q * (centre_distance - radius)
    phi0 = np.arctan2(q * cx, -q * cy)
    # transverse arc length from the perigee to the production point, along the motion
    angle_perigee = np.arctan2(-cy, -cx)
    angle_production = np.arctan2(y - cy, x - cx)
    swept = np.angle(np.exp(1j * q * (angle_perigee - angle_production)))
    arc = radius * swept
    z0 = z - arc * pz / pt
    theta = np.arctan2(pt, pz)
    return Perigee(d0=d0, z0=z0, phi0=phi0, theta=theta, pt=pt)


def resolution(constant: float, multiple_scattering: float, pt: np.ndarray, theta: np.ndarray):
    """sigma = constant (+) multiple_scattering / (pT sqrt(sin theta)), added in quadrature."""
    return np.hypot(constant, multiple_scattering / (pt * np.sqrt(np.sin(theta))))


@dataclass(frozen=True)
class Tracks:
    """Reconstructed tracks; every array has shape (n_tracks,)."""

    index: np.ndarray  # index of the truth particle in the event record
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    charge: np.ndarray
    d0: np.ndarray
    z0_sin_theta: np.ndarray
    d0_uncertainty: np.ndarray
    z0_sin_theta_uncertainty: np.ndarray


def reconstruct_tracks(
    candidates: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    charge: np.ndarray,
    pv_z_reco: float,
    tracker: TrackerConfig,
    rng: np.random.Generator,
) -> Tracks:
    """Smear and select charged particles; `candidates` indexes them in the event record.

    Positions are relative to the true primary vertex; `pv_z_reco` is the reconstructed
    vertex z (also relative to the true one), from which z0 is measured.
    """
    production_radius = np.hypot(x, y)
    reachable = production_radius < tracker.max_production_radius_mm
    sel = candidates[reachable]
    true = perigee_parameters(
        x[reachable], y[reachable], z[reachable] - pv_z_reco,
        px[reachable], py[reachable], pz[reachable], charge[reachable],
        tracker.b_field_tesla,
    )  # fmt: skip
    n = sel.size
    res = tracker.pt_resolution
    pt_sigma = np.hypot(res.constant, res.slope_per_gev * true.pt)
    pt = true.pt * (1.0 + pt_sigma * rng.standard_normal(n))
    d0_sigma = resolution(
        tracker.d0_resolution_mm.constant, tracker.d0_resolution_mm.multiple_scattering,
        true.pt, true.theta,
    )  # fmt: skip
    z0_sigma = resolution(
        tracker.z0_resolution_mm.constant, tracker.z0_resolution_mm.multiple_scattering,
        true.pt, true.theta,
    )  # fmt: skip
    d0 = true.d0 + d0_sigma * rng.standard_normal(n)
    z0_sin_theta = true.z0 * np.sin(true.theta) + z0_sigma * rng.standard_normal(n)
    eta = -np.log(np.tan(true.theta / 2.0))
    efficient = rng.random(n) < tracker.efficiency
    keep = (
        efficient
        & (pt > tracker.pt_min_gev)
        & (np.abs(eta) < tracker.abs_eta_max)
        & (np.abs(d0) < tracker.max_abs_d0_mm)
        & (np.abs(z0_sin_theta) < tracker.max_abs_z0_sin_theta_mm)
    )
    return Tracks(
        index=sel[keep],
        pt=pt[keep],
        eta=eta[keep],
        phi=true.phi0[keep],
        charge=np.sign(charge[reachable][keep]),
        d0=d0[keep],
        z0_sin_theta=z0_sin_theta[keep],
        d0_uncertainty=d0_sigma[keep],
        z0_sin_theta_uncertainty=z0_sigma[keep],
    )
