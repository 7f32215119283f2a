"""Track variables relative to the jet, with the ATLAS lifetime sign of impact parameters."""

from __future__ import annotations

import numpy as np

from jettag.io.canonical import with_fields
from jettag.kinematics import wrap_phi

DERIVED_TRACK_FIELDS = (
    "IP3D_signed_d0_significance",
    "IP3D_signed_z0_significance",
    "ptfrac",
    "dr",
    "deta",
    "dphi",
)


def lifetime_signed_d0_significance(d0, d0_sigma, track_phi, jet_phi) -> np.ndarray:
    """|d0|/sigma, positive when the track crosses the jet axis in front of the vertex."""
    sign = np.where(d0 * np.sin(track_phi - jet_phi) >= 0.0, 1.0, -1.0)
    return sign * np.abs(d0) / d0_sigma


def lifetime_signed_z0_significance(z0, z0_sigma, track_eta, jet_eta) -> np.ndarray:
    """|z0 sin theta|/sigma with the sign of z0 (eta_jet - eta_track), as IP3D uses."""
    sign = np.where(z0 * (jet_eta - track_eta) >= 0.0, 1.0, -1.0)
    return sign * np.abs(z0) / z0_sigma


def add_derived_track_fields(jets: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """Return tracks (n, max_tracks) with the DERIVED_TRACK_FIELDS appended; zero on padding."""
    valid = tracks["valid"]
    jet = {k: jets[k][:, None].astype(np.float32) for k in ("pt", "eta", "phi")}
    with np.errstate(divide="ignore", invalid="ignore"):
        dphi = wrap_phi(tracks["phi"] - jet["phi"])
        deta = tracks["eta"] - jet["eta"]
        derived = {
            "IP3D_signed_d0_significance": lifetime_signed_d0_significance(
                tracks["d0"], tracks["d0Uncertainty"], tracks["phi"], jet["phi"]
            ),
            "IP3D_signed_z0_significance": lifetime_signed_z0_significance(
                tracks["z0SinTheta"], tracks["z0SinThetaUncertainty"], tracks["eta"], jet["eta"]
            ),
            "ptfrac": tracks["pt"] / jet["pt"],
            "dr": np.hypot(deta, dphi),
            "deta": deta,
            "dphi": dphi,
        }
    columns = {k: np.where(valid, derived[k], 0.0).astype(np.float32) for k in DERIVED_TRACK_FIELDS}
    return with_fields(tracks, columns)
