"""What an input file may hold, in which units, and how missing canonical fields are derived.

Every quantity an input can provide has a *source key*: `jet_<name>` or `trk_<name>`, the
keys of `samples.<s>.branches`. A file provides a key when the branch (ROOT) or field (HDF5)
it maps to exists. The canonical fields (io/canonical.py) are then read or derived from
what is there, by the named rules of DERIVATIONS (never an expression from the config), in
GeV and mm with ATLAS's sign conventions:

- d0 is the perigee d0 = y cos(phi) - x sin(phi) of the point of closest approach;
- the lifetime sign of sd0 is sign(sin(phi_jet - phi_trk) d0), of sz0 sign((eta_jet -
  eta_trk) z0 sin(theta)); signed significances found in a file are used as given;
- deta = eta_trk - eta_jet and dphi = phi_trk - phi_jet, wrapped into [-pi, pi).

Derivations work on flat per-track arrays; a jet quantity used by a track rule is repeated
over the jet's tracks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from jettag.io.canonical import HIT_FIELDS
from jettag.kinematics import wrap_phi

# Source keys a sample may map, beyond the canonical fields themselves.
# (the integer truth label is jet_<label_variable> of the class set: io/readers.py)
JET_KEYS = ("pt", "eta", "phi", "mass", "energy", "eventNumber")
TRACK_KEYS = (
    "pt",
    "eta",
    "phi",
    "charge",
    "d0",
    "z0SinTheta",
    "d0Uncertainty",
    "z0SinThetaUncertainty",
    "IP3D_signed_d0_significance",
    "IP3D_signed_z0_significance",
    "deta",
    "dphi",
    "qOverP",
    "theta",
    "z0",
    "z0Uncertainty",
    "px",
    "py",
    "pz",
    "energy",
    "ftagTruthOriginLabel",
    "ftagTruthVertexIndex",
    *HIT_FIELDS,
)
SOURCE_KEYS = tuple(f"jet_{k}" for k in JET_KEYS) + tuple(f"trk_{k}" for k in TRACK_KEYS)

# Canonical fields every ingested sample has (read or derived) ...
REQUIRED = (
    "jet_pt",
    "jet_eta",
    "trk_pt",
    "trk_eta",
    "trk_charge",
    "trk_d0",
    "trk_z0SinTheta",
    "trk_d0Uncertainty",
    "trk_z0SinThetaUncertainty",
    "trk_IP3D_signed_d0_significance",
    "trk_IP3D_signed_z0_significance",
    "trk_deta",
    "trk_dphi",
)
# ... and those it may lack: placeholders then (NaN, or -1 for integers), listed in the
# canonical file's `absent_fields`, and refused as model inputs.
OPTIONAL = (
    "jet_phi",
    "jet_mass",
    "trk_phi",
    "trk_ftagTruthOriginLabel",
    "trk_ftagTruthVertexIndex",
    *(f"trk_{h}" for h in HIT_FIELDS),
)

# Unit class of each dimensionful source key (significances, angles, counts have none).
ENERGY_KEYS = frozenset(
    {"jet_pt", "jet_mass", "jet_energy", "trk_pt", "trk_px", "trk_py", "trk_pz", "trk_energy"}
)
INVERSE_ENERGY_KEYS = frozenset({"trk_qOverP"})
LENGTH_KEYS = frozenset(
    {
        "trk_d0",
        "trk_z0SinTheta",
        "trk_d0Uncertainty",
        "trk_z0SinThetaUncertainty",
        "trk_z0",
        "trk_z0Uncertainty",
    }
)
ENERGY_TO_GEV = {"GeV": 1.0, "MeV": 1.0e-3, "TeV": 1.0e3}
LENGTH_TO_MM = {"mm": 1.0, "um": 1.0e-3, "cm": 10.0}


def to_canonical_units(key: str, values: np.ndarray, energy: str, length: str) -> np.ndarray:
    """values of a source key converted from the sample's units to GeV and mm."""
    if key in ENERGY_KEYS:
        return values * ENERGY_TO_GEV[energy]
    if key in INVERSE_ENERGY_KEYS:
        return values / ENERGY_TO_GEV[energy]
    if key in LENGTH_KEYS:
        return values * LENGTH_TO_MM[length]
    return values


def unit_of(key: str, energy: str, length: str) -> str | None:
    """The unit a source key is read in, or None for a dimensionless key."""
    if key in ENERGY_KEYS:
        return energy
    if key in INVERSE_ENERGY_KEYS:
        return f"1/{energy}"
    if key in LENGTH_KEYS:
        return length
    return None


def _theta_from_eta(eta: np.ndarray) -> np.ndarray:
    """Polar angle from pseudorapidity."""
    return 2.0 * np.arctan(np.exp(-eta))


def lifetime_signed_d0_significance(d0, d0_sigma, dphi) -> np.ndarray:
    """ATLAS's sd0: sign(sin(phi_jet - phi_trk) d0) |d0| / sigma, with dphi = phi_trk - phi_jet.

    Positive when the track crosses the jet axis in front of the primary vertex, as tracks
    from a b-hadron decay along the jet do.
    """
    sign = np.where(np.sin(-dphi) * d0 >= 0.0, 1.0, -1.0)
    return sign * np.abs(d0) / d0_sigma


def lifetime_signed_z0_significance(z0_sin_theta, sigma, deta) -> np.ndarray:
    """sz0: sign((eta_jet - eta_trk) z0 sin theta) |z0 sin theta| / sigma (ATLAS's z sign)."""
    sign = np.where(-deta * z0_sin_theta >= 0.0, 1.0, -1.0)
    return sign * np.abs(z0_sin_theta) / sigma


def _sd0(v: Mapping[str, np.ndarray]) -> np.ndarray:
    """sd0 from the canonical track fields."""
    return lifetime_signed_d0_significance(v["trk_d0"], v["trk_d0Uncertainty"], v["trk_dphi"])


def _sz0(v: Mapping[str, np.ndarray]) -> np.ndarray:
    """sz0 from the canonical track fields."""
    return lifetime_signed_z0_significance(
        v["trk_z0SinTheta"], v["trk_z0SinThetaUncertainty"], v["trk_deta"]
    )


def _mass(v: Mapping[str, np.ndarray]) -> np.ndarray:
    """Jet mass from its energy, pT and eta."""
    p = v["jet_pt"] * np.cosh(v["jet_eta"])
    return np.sqrt(np.maximum(v["jet_energy"] ** 2 - p**2, 0.0))


@dataclasses.dataclass(frozen=True)
class Derivation:
    """One named rule: a canonical field computed from other fields."""

    target: str
    inputs: tuple[str, ...]
    formula: str  # what the log and `jettag check-config` print
    compute: Callable[[Mapping[str, np.ndarray]], np.ndarray]


def _rule(target: str, inputs: str, formula: str, compute) -> Derivation:
    """A Derivation with its inputs given as one space-separated string."""
    return Derivation(target, tuple(inputs.split()), formula, compute)


# In order of preference for each target: the first rule whose inputs are there is used.
DERIVATIONS = (
    _rule("trk_theta", "trk_eta", "2 atan(exp(-eta))", lambda v: _theta_from_eta(v["trk_eta"])),
    _rule(
        "trk_theta",
        "trk_pt trk_pz",
        "atan2(pT, pz)",
        lambda v: np.arctan2(v["trk_pt"], v["trk_pz"]),
    ),
    _rule(
        "trk_eta",
        "trk_px trk_py trk_pz",
        "asinh(pz / pT)",
        lambda v: np.arcsinh(v["trk_pz"] / np.maximum(np.hypot(v["trk_px"], v["trk_py"]), 1e-12)),
    ),
    _rule(
        "trk_eta",
        "trk_theta",
        "-log tan(theta / 2)",
        lambda v: -np.log(np.tan(0.5 * v["trk_theta"])),
    ),
    _rule("trk_eta", "jet_eta trk_deta", "eta_jet + deta", lambda v: v["jet_eta"] + v["trk_deta"]),
    _rule("trk_pt", "trk_px trk_py", "hypot(px, py)", lambda v: np.hypot(v["trk_px"], v["trk_py"])),
    _rule(
        "trk_pt",
        "trk_qOverP trk_theta",
        "sin(theta) / |q/p|",
        lambda v: np.sin(v["trk_theta"]) / np.abs(v["trk_qOverP"]),
    ),
    _rule(
        "trk_phi", "trk_px trk_py", "atan2(py, px)", lambda v: np.arctan2(v["trk_py"], v["trk_px"])
    ),
    _rule(
        "trk_phi",
        "jet_phi trk_dphi",
        "phi_jet + dphi",
        lambda v: wrap_phi(v["jet_phi"] + v["trk_dphi"]),
    ),
    _rule("trk_charge", "trk_qOverP", "sign(q/p)", lambda v: np.sign(v["trk_qOverP"])),
    _rule("trk_deta", "trk_eta jet_eta", "eta - eta_jet", lambda v: v["trk_eta"] - v["jet_eta"]),
    _rule(
        "trk_dphi",
        "trk_phi jet_phi",
        "phi - phi_jet, wrapped",
        lambda v: wrap_phi(v["trk_phi"] - v["jet_phi"]),
    ),
    _rule(
        "trk_z0SinTheta",
        "trk_z0 trk_theta",
        "z0 sin(theta)",
        lambda v: v["trk_z0"] * np.sin(v["trk_theta"]),
    ),
    _rule(
        "trk_d0Uncertainty",
        "trk_d0 trk_IP3D_signed_d0_significance",
        "|d0 / sd0|",
        lambda v: np.abs(v["trk_d0"] / v["trk_IP3D_signed_d0_significance"]),
    ),
    _rule(
        "trk_z0SinThetaUncertainty",
        "trk_z0Uncertainty trk_theta",
        "sigma(z0) sin(theta) (the theta uncertainty neglected)",
        lambda v: v["trk_z0Uncertainty"] * np.sin(v["trk_theta"]),
    ),
    _rule(
        "trk_z0SinThetaUncertainty",
        "trk_z0SinTheta trk_IP3D_signed_z0_significance",
        "|z0 sin(theta) / sz0|",
        lambda v: np.abs(v["trk_z0SinTheta"] / v["trk_IP3D_signed_z0_significance"]),
    ),
    _rule(
        "trk_IP3D_signed_d0_significance",
        "trk_d0 trk_d0Uncertainty trk_dphi",
        "sign(sin(phi_jet - phi_trk) d0) |d0| / sigma(d0)",
        _sd0,
    ),
    _rule(
        "trk_IP3D_signed_z0_significance",
        "trk_z0SinTheta trk_z0SinThetaUncertainty trk_deta",
        "sign((eta_jet - eta_trk) z0 sin theta) |z0 sin theta| / sigma",
        _sz0,
    ),
    _rule("jet_mass", "jet_energy jet_pt jet_eta", "sqrt(E^2 - (pT cosh eta)^2)", _mass),
)


@dataclasses.dataclass(frozen=True)
class FieldPlan:
    """How each canonical field of a sample is obtained: read, derived, or absent."""

    read: tuple[str, ...]  # source keys read from the file, in SOURCE_KEYS order
    derived: tuple[Derivation, ...]  # in the order they are computed
    absent: tuple[str, ...]  # OPTIONAL keys neither read nor derivable

    def describe(self) -> list[str]:
        """One line per derived or absent field, for the log and check-config."""
        lines = [f"{d.target} = {d.formula} (from {', '.join(d.inputs)})" for d in self.derived]
        return lines + [f"{key}: absent (not in the file, not derivable)" for key in self.absent]


def plan_fields(
    available: Iterable[str], targets: Iterable[str] = REQUIRED + OPTIONAL
) -> tuple[FieldPlan, dict[str, list[str]]]:
    """The FieldPlan for the available source keys, and the required targets it cannot serve.

    The second value maps each unservable REQUIRED target to the derivations that would
    serve it (as text naming their inputs), for an error that lists every one at once.
    """
    have = set(available)
    targets = list(targets)
    derived: list[Derivation] = []
    progress = True
    while progress:  # rules feed each other (theta -> pt, eta -> deta -> sz0): to a fixed point
        progress = False
        for rule in DERIVATIONS:
            if rule.target not in have and all(i in have for i in rule.inputs):
                derived.append(rule)
                have.add(rule.target)
                progress = True
    needed = _needed_inputs(targets, derived)
    derived = [d for d in derived if d.target in needed]
    missing = {
        t: [f"{d.formula} from {', '.join(d.inputs)}" for d in DERIVATIONS if d.target == t]
        for t in targets
        if t in REQUIRED and t not in have
    }
    plan = FieldPlan(
        read=tuple(k for k in SOURCE_KEYS if k in set(available) and k in needed),
        derived=tuple(derived),
        absent=tuple(t for t in targets if t in OPTIONAL and t not in have),
    )
    return plan, missing


def _needed_inputs(targets: list[str], derived: list[Derivation]) -> set[str]:
    """Targets and, transitively, the inputs of the rules that derive them."""
    by_target = {d.target: d for d in derived}
    needed: set[str] = set()
    stack = list(targets)
    while stack:
        key = stack.pop()
        if key in needed:
            continue
        needed.add(key)
        if key in by_target:
            stack.extend(by_target[key].inputs)
    return needed


def derive(values: dict[str, np.ndarray], plan: FieldPlan) -> dict[str, np.ndarray]:
    """Add the plan's derived fields to values (flat float64 track arrays, jets repeated)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        for rule in plan.derived:
            values[rule.target] = rule.compute(values)
    return values
