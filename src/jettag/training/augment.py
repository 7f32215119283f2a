"""On-the-fly augmentation: rotations of a jet's tracks about the jet axis.

The physics of a jet does not depend on its orientation about its own axis (to the
precision of the small-angle (deta, dphi) picture), so rotating the (deta, dphi) pair of
every track of a jet by one random angle makes a new, equally valid training jet. Inputs
that do not change under the rotation (dR, pT fraction, impact parameters) are untouched.
"""

from __future__ import annotations

import torch

from jettag.io.model_inputs import InputSpec


class AxisRotation:
    """Rotates normalised (deta, dphi) track inputs by a random angle per jet."""

    def __init__(self, spec: InputSpec) -> None:
        names = spec.track_names
        missing = [n for n in ("deta", "dphi") if n not in names]
        if missing:
            raise ValueError(f"rotation about the jet axis needs track inputs {missing}")
        norms = {n.name: n for n in spec.track_norms}
        for name in ("deta", "dphi"):
            if norms[name].transform != "none":
                raise ValueError(
                    f"rotation needs '{name}' untransformed, not {norms[name].transform}"
                )
        self.index = (names.index("deta"), names.index("dphi"))
        self.mean = (norms["deta"].mean, norms["dphi"].mean)
        self.std = (norms["deta"].std, norms["dphi"].std)

    def __call__(
        self, tracks: torch.Tensor, valid: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """A rotated copy of tracks (batch, max_tracks, features); padding stays zero."""
        angle = 2 * torch.pi * torch.rand(tracks.shape[0], generator=generator)
        cos, sin = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
        i, j = self.index
        deta = tracks[..., i] * self.std[0] + self.mean[0]
        dphi = tracks[..., j] * self.std[1] + self.mean[1]
        out = tracks.clone()
        out[..., i] = torch.where(
            valid, (cos * deta - sin * dphi - self.mean[0]) / self.std[0], 0.0
        )
        out[..., j] = torch.where(
            valid, (sin * deta + cos * dphi - self.mean[1]) / self.std[1], 0.0
        )
        return out
