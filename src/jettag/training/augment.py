"""On-the-fly augmentation: rotations of a jet's tracks about the jet axis.

The physics of a jet does not depend on its orientation about its own axis (to the
precision of the small-angle (deta, dphi) picture), so rotating the (deta, dphi) pair of
every track of a jet by one random angle makes a new, equally valid training jet, provided
the inputs tied to the track's direction follow it:

- deta, dphi (track minus jet) are rotated; they must be untransformed ('none').
- d0 and z0SinTheta are re-signed. Their signs are tied to the direction through the
  lifetime signs (DESIGN.md): sd0 has sign(sin(-dphi) d0), sz0 sign(-deta z0 sin(theta)).
  The rotation keeps |d0|, |z0 sin(theta)| and the lifetime signs (it does not move a
  track's crossing of the jet axis along the jet), so the rotated values are
      d0'        = L_d0 * sign(sin(-dphi')) * |d0|
      z0sinth'   = L_z0 * sign(-deta')      * |z0 sin(theta)|
  with the lifetime sign L taken from the (unchanged) signed significance when the model
  reads it with a sign-preserving transform ('none', 'signed_log'); a model without it
  (or with it as 'abs') gets L from the unrotated geometry itself, sign(sin(-dphi) d0)
  and sign(-deta z0 sin(theta)), the definition the significances are derived with, so
  the lifetime sign implicit in its inputs survives the rotation. Either way, recomputing
  the lifetime sign from the rotated inputs gives back L.
  At exactly zero: a significance of 0 counts as positive (as ingest's derivation counts
  a zero product, io/fields.py); a track left exactly on the jet axis in the relevant
  coordinate (sin(dphi') = 0, deta' = 0) fixes no sign and keeps its value; a zero d0 or
  z0 sin(theta) has no sign to set and stays zero (to the float32 rounding of its
  normalised value). A rotation by 0 is the identity on jets whose inputs obey the
  convention (every jet ingest derives); it re-signs only tracks whose stored d0 (z0)
  disagrees with their stored significance.
  With 'abs' (or 'log') they carry no sign: nothing to re-sign.
- Absolute track directions (eta, phi) would no longer match the rotated (deta, dphi): a
  model reading them cannot use this augmentation (an error at construction).
- Every other input (significances, dR, pT fraction, charge, uncertainties, hit counts) is
  invariant and untouched.

Work is done on the transformed values t = x * std + mean in float64: the allowed
transforms of d0 and z0SinTheta are odd and sign-preserving, so sign(t) = sign(v) and
flipping the sign of v flips that of t (no inverse transform, so |v| is kept to rounding).
Values that do not change keep their stored bits exactly; padding stays zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jettag.io.model_inputs import InputSpec
from jettag.transforms import Normalisation

SIGNED_TRANSFORMS = ("none", "signed_log")  # odd, sign-preserving
# raw impact parameter -> (its lifetime-signed significance, the direction that signs it)
RESIGNED = {
    "d0": ("IP3D_signed_d0_significance", "dphi"),
    "z0SinTheta": ("IP3D_signed_z0_significance", "deta"),
}
DIRECTIONS = ("eta", "phi")  # absolute track direction: not rotated, so refused


@dataclass(frozen=True)
class _Column:
    """One input: its row in the gathered block (k, n_tracks) and its x = (t - mean) / std."""

    slot: int
    mean: float
    std: float

    def physical(self, block: torch.Tensor) -> torch.Tensor:
        """The transformed value t (float64) of this input from a gathered block (k, n_tracks)."""
        return block[self.slot] * self.std + self.mean


@dataclass(frozen=True)
class _Resign:
    """A raw impact parameter to re-sign, the significance giving its lifetime sign (or None)."""

    value: _Column
    significance: _Column | None
    direction: str  # "dphi" or "deta"


class AxisRotation:
    """Rotates normalised (deta, dphi) track inputs by a random angle per jet, re-signing d0, z0.

    See the module docstring for the rules; raises ValueError at construction for inputs
    that cannot follow a rotation.
    """

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
        directions = [n for n in DIRECTIONS if n in names]
        if directions:
            raise ValueError(
                f"rotation about the jet axis cannot rotate the absolute track directions"
                f" {directions} (track inputs): a rotated jet would contradict its deta, dphi;"
                " drop them from the model's track_inputs or turn rotate_about_jet_axis off"
            )
        # the inputs a rotation reads or writes (gathered per batch into a float64 block)
        used = ["deta", "dphi"]
        resigned = []
        for name, (significance, direction) in RESIGNED.items():
            if name not in norms or norms[name].transform not in SIGNED_TRANSFORMS:
                continue  # absent, or 'abs' / 'log': no sign to set
            signed = significance in norms and _carries_sign(norms[significance])
            resigned.append((name, significance if signed else None, direction))
            used += [name] + ([significance] if signed else [])
        self.gather = [names.index(n) for n in used]
        column = {n: _Column(k, norms[n].mean, norms[n].std) for k, n in enumerate(used)}
        self.deta, self.dphi = column["deta"], column["dphi"]
        self.resign = [
            _Resign(column[name], column[significance] if significance else None, direction)
            for name, significance, direction in resigned
        ]

    def __call__(
        self, tracks: torch.Tensor, valid: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """A copy of tracks (batch, max_tracks, features) rotated by a random angle per jet."""
        angle = 2 * torch.pi * torch.rand(tracks.shape[0], generator=generator)
        return self.rotate(tracks, valid, angle)

    def rotate(
        self, tracks: torch.Tensor, valid: torch.Tensor, angle: torch.Tensor
    ) -> torch.Tensor:
        """tracks (batch, max_tracks, f) rotated by angle (batch,) radians; padding stays zero.

        valid: (batch, max_tracks) bool, True = real track.
        """
        # real tracks only (most slots are padding, which stays as it is: zero)
        rows = tracks[valid]  # (n_tracks, f)
        angle = angle.to(tracks.device, torch.float64)[:, None].expand(valid.shape)[valid]
        sin = torch.sin(angle)
        cos_minus_1 = -2 * torch.sin(angle / 2) ** 2  # cos - 1 without cancellation
        x = rows[:, self.gather].T.to(torch.float64).contiguous()  # (k, n_tracks)
        new = x.clone()
        deta, dphi = self.deta.physical(x), self.dphi.physical(x)
        # as increments of the stored values, so that a rotation by 0 changes no bit; rounded
        # to the stored precision now, since the signs below must hold for what is stored
        new[self.deta.slot] = (
            x[self.deta.slot] + (cos_minus_1 * deta - sin * dphi) / self.deta.std
        ).to(tracks.dtype)
        new[self.dphi.slot] = (
            x[self.dphi.slot] + (sin * deta + cos_minus_1 * dphi) / self.dphi.std
        ).to(tracks.dtype)
        # the rotated directions as stored (what a consumer of the inputs recomputes)
        rotated = {"deta": self.deta.physical(new), "dphi": self.dphi.physical(new)}
        before = {"deta": deta, "dphi": dphi}
        for item in self.resign:
            t = item.value.physical(x)
            if item.significance is not None:
                lifetime = item.significance.physical(x)
            else:  # the lifetime sign the unrotated inputs imply
                lifetime = _toward(before[item.direction], item.direction) * t
            lifetime = torch.where(lifetime >= 0, 1.0, -1.0)
            toward = torch.sign(_toward(rotated[item.direction], item.direction))
            flip = (toward != 0) & (t != 0) & (torch.sign(t) != lifetime * toward)
            flipped = ((-t - item.value.mean) / item.value.std).to(tracks.dtype)
            new[item.value.slot] = torch.where(flip, flipped, x[item.value.slot])
        for col in (self.deta, self.dphi, *(item.value for item in self.resign)):
            rows[:, self.gather[col.slot]] = new[col.slot].to(tracks.dtype)
        out = tracks.clone()
        out[valid] = rows
        return out


def _toward(direction: torch.Tensor, name: str) -> torch.Tensor:
    """The factor whose sign times that of the impact parameter is its lifetime sign.

    sin(phi_jet - phi_trk) = sin(-dphi) for d0; eta_jet - eta_trk = -deta for z0 sin(theta).
    """
    return torch.sin(-direction) if name == "dphi" else -direction


def _carries_sign(norm: Normalisation) -> bool:
    """Whether an input's stored value keeps the sign of the physical value."""
    return norm.transform in SIGNED_TRANSFORMS
