"""Reconstructed jets: truth-particle jets smeared as ATLAS's calibrated EMPFlow R = 0.4 jets.

The calorimeter is not simulated. What the tagger sees of a jet is its axis (the reference of
every track's lifetime sign, deta, dphi and dR), its pT (the reference of every track's pT
fraction, and a jet input) and its eta; each is the truth jet's, smeared with ATLAS's
measured resolutions. The flavour label stays with the truth jet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jettag.config import JetReconstructionConfig
from jettag.kinematics import wrap_phi

MIN_RESPONSE = 0.01  # a Gaussian JER at 10 GeV reaches zero; such a jet only has to stay finite


@dataclass(frozen=True)
class Jets:
    """Jet four-momenta as (n,) arrays: pT (GeV), eta, phi, mass (GeV)."""

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray

    def select(self, mask: np.ndarray) -> Jets:
        """The jets where mask is True (or at the given indices)."""
        return Jets(self.pt[mask], self.eta[mask], self.phi[mask], self.mass[mask])


def pt_resolution(pt: np.ndarray, config: JetReconstructionConfig) -> np.ndarray:
    """Relative JER sigma(pT)/pT = N/pT (+) S/sqrt(pT) (+) C."""
    pt = np.asarray(pt, dtype=float)
    return np.sqrt((config.noise_gev / pt) ** 2 + config.stochastic**2 / pt + config.constant**2)


def angular_resolution(pt: np.ndarray, config: JetReconstructionConfig) -> np.ndarray:
    """Resolution of each axis coordinate (eta, phi): A/pT (+) B."""
    return np.hypot(config.angular_gev / np.asarray(pt, dtype=float), config.angular_constant)


def reconstruct_jets(
    truth: Jets, config: JetReconstructionConfig, rng: np.random.Generator
) -> Jets:
    """Reconstructed jets, one per truth jet; the truth jets themselves when switched off."""
    if not config.enabled or truth.pt.size == 0:
        return truth
    n = truth.pt.size
    response = config.energy_scale + pt_resolution(truth.pt, config) * rng.standard_normal(n)
    response = np.maximum(response, MIN_RESPONSE)
    angle = angular_resolution(truth.pt, config)
    return Jets(
        pt=truth.pt * response,
        eta=truth.eta + angle * rng.standard_normal(n),
        phi=wrap_phi(truth.phi + angle * rng.standard_normal(n)),
        # the four-vector is scaled as a whole: the mass follows the energy response
        mass=truth.mass * response,
    )
