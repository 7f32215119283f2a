"""Write the same jets (a canonical jettag file) in the layouts users bring.

- ATLAS training-dataset-dumper HDF5: MeV, `pt_btagJes`, tracks with qOverP, deta, dphi and
  the signed significances but no pt/eta/phi, no d0 uncertainty; no jet phi or mass.
- ATLAS-style ROOT ntuple: one entry per jet, MeV, jagged `jet_trk_*` branches with a counter
  branch, significances but no uncertainties.
- JetClass/weaver-style ROOT: GeV, particle four-vectors with neutral particles among them,
  Delphes's d0 sign, dz (z0) with its error, one-hot labels, no event number.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import uproot

from jettag.io.canonical import HIT_FIELDS

PION_MASS = 0.13957

ATLAS_ROOT_TREE = "bTag_AntiKt4EMPFlowJets"
ATLAS_ROOT_BRANCHES = {
    "jet_mass": "jet_m",
    "jet_HadronConeExclTruthLabelID": "jet_truthflav",
    "jet_eventNumber": "eventnb",
    "trk_pt": "jet_trk_pt",
    "trk_eta": "jet_trk_eta",
    "trk_phi": "jet_trk_phi",
    "trk_charge": "jet_trk_charge",
    "trk_d0": "jet_trk_d0",
    "trk_z0SinTheta": "jet_trk_z0sintheta",
    "trk_IP3D_signed_d0_significance": "jet_trk_ip3d_d0sig",
    "trk_IP3D_signed_z0_significance": "jet_trk_ip3d_z0sig",
    "trk_ftagTruthOriginLabel": "jet_trk_truthOrigin",
    **{f"trk_{h}": f"jet_trk_{h}" for h in HIT_FIELDS},
}


def _real(tracks: np.ndarray, name: str) -> ak.Array:
    """The valid tracks' values of one field, jagged per jet."""
    valid = tracks["valid"]
    return ak.unflatten(tracks[name][valid], valid.sum(axis=1))


def write_atlas_tdd_h5(path: Path, jets: np.ndarray, tracks: np.ndarray) -> Path:
    """The dumper layout, in MeV; track order reversed (ingest sorts again)."""
    jet_out = np.zeros(len(jets), dtype=[("pt_btagJes", "f4"), ("eta_btagJes", "f4"),
                                         ("HadronConeExclTruthLabelID", "i4"),
                                         ("eventNumber", "i8")])  # fmt: skip
    jet_out["pt_btagJes"] = jets["pt"] * 1000.0
    jet_out["eta_btagJes"] = jets["eta"]
    jet_out["HadronConeExclTruthLabelID"] = jets["HadronConeExclTruthLabelID"]
    jet_out["eventNumber"] = jets["eventNumber"]
    names = ["deta", "dphi", "d0", "z0SinTheta", "IP3D_signed_d0_significance",
             "IP3D_signed_z0_significance"]  # fmt: skip
    dtype = [("valid", "?"), ("qOverP", "f4"), *[(n, "f4") for n in names],
             ("ftagTruthOriginLabel", "i4"), *[(h, "i1") for h in HIT_FIELDS]]  # fmt: skip
    trk_out = np.zeros(tracks.shape, dtype=dtype)
    for name in ["valid", *names, "ftagTruthOriginLabel", *HIT_FIELDS]:
        trk_out[name] = tracks[name]
    momentum_mev = tracks["pt"].astype(np.float64) * np.cosh(tracks["eta"]) * 1000.0
    with np.errstate(divide="ignore", invalid="ignore"):  # padding
        trk_out["qOverP"] = np.where(tracks["valid"], tracks["charge"] / momentum_mev, 0.0)
    n_valid = tracks["valid"].sum(axis=1)
    for row, n in enumerate(n_valid):  # the dumper's order is not jettag's
        trk_out[row, :n] = trk_out[row, :n][::-1]
    with h5py.File(path, "w") as f:
        f.create_dataset("jets", data=jet_out)
        f.create_dataset("tracks", data=trk_out)
    return path


def write_atlas_root(path: Path, jets: np.ndarray, tracks: np.ndarray) -> Path:
    """One entry per jet, MeV, jagged jet_trk_* branches counted by jet_trk_n."""
    jet_branches = {
        "jet_pt": (jets["pt"] * 1000.0).astype(np.float32),
        "jet_eta": jets["eta"],
        "jet_phi": jets["phi"],
        "jet_m": (jets["mass"] * 1000.0).astype(np.float32),
        "jet_truthflav": jets["HadronConeExclTruthLabelID"],
        "eventnb": jets["eventNumber"],
    }
    fields = {branch.removeprefix("jet_trk_"): key.removeprefix("trk_")
              for key, branch in ATLAS_ROOT_BRANCHES.items() if key.startswith("trk_")}  # fmt: skip
    trk = {short: _real(tracks, name) for short, name in fields.items()}
    trk["pt"] = trk["pt"] * 1000.0
    trk = ak.zip({k: ak.values_astype(v, np.float32 if k != "truthOrigin" and k not in HIT_FIELDS
                                      else np.int32) for k, v in trk.items()})  # fmt: skip
    with uproot.recreate(path) as f:
        f.mktree(ATLAS_ROOT_TREE, {**{k: v.dtype for k, v in jet_branches.items()},
                                   "jet_trk": trk.type.content},
                 counter_name=lambda counted: f"{counted}_n")  # fmt: skip
        f[ATLAS_ROOT_TREE].extend({**jet_branches, "jet_trk": trk})
    return path


def write_jetclass_root(
    path: Path,
    jets: np.ndarray,
    tracks: np.ndarray,
    seed: int = 1,
    one_hot: dict[str, np.ndarray] | None = None,
) -> Path:
    """weaver/JetClass style: four-vectors, neutrals, Delphes d0 sign, one-hot, no events.

    one_hot: the label branches (name -> 0/1 per jet); label_b, label_c and label_l from
    the jets' HadronConeExclTruthLabelID by default, JetClass's ten label_<class> if given.
    """
    rng = np.random.default_rng(seed)
    energy = np.sqrt((jets["pt"] * np.cosh(jets["eta"])) ** 2 + jets["mass"] ** 2)
    label = jets["HadronConeExclTruthLabelID"]
    if one_hot is None:
        one_hot = {"label_b": label == 5, "label_c": label == 4, "label_l": label == 0}
    jet_branches = {
        "jet_pt": jets["pt"], "jet_eta": jets["eta"], "jet_phi": jets["phi"],
        "jet_energy": energy.astype(np.float32),
        **{name: np.asarray(flag).astype(np.float32) for name, flag in one_hot.items()},
    }  # fmt: skip
    valid = tracks["valid"]
    pt, eta, phi = (tracks[k].astype(np.float64) for k in ("pt", "eta", "phi"))
    theta = 2.0 * np.arctan(np.exp(-eta))
    columns = {
        "part_px": pt * np.cos(phi), "part_py": pt * np.sin(phi), "part_pz": pt * np.sinh(eta),
        "part_energy": np.sqrt((pt * np.cosh(eta)) ** 2 + PION_MASS**2),
        "part_charge": tracks["charge"], "part_deta": tracks["deta"], "part_dphi": tracks["dphi"],
        "part_d0val": -tracks["d0"],  # Delphes: D0 = (x py - y px) / pT
        "part_d0err": tracks["d0Uncertainty"],
        "part_dzval": tracks["z0SinTheta"] / np.sin(theta),
        "part_dzerr": tracks["z0SinThetaUncertainty"] / np.sin(theta),
    }  # fmt: skip
    flat = {k: np.asarray(v, dtype=np.float64)[valid] for k, v in columns.items()}
    counts = valid.sum(axis=1)
    # two neutral particles per jet, first in each list (charged_only drops them)
    neutral = {k: np.zeros(2 * len(jets)) for k in flat}
    neutral["part_px"] = rng.uniform(1, 10, 2 * len(jets))
    neutral["part_energy"] = neutral["part_px"] * 1.5
    neutral["part_pz"] = neutral["part_px"] * 0.5
    neutral["part_d0err"][:] = neutral["part_dzerr"][:] = 1.0
    part = {}
    for key in flat:
        real = ak.unflatten(flat[key], counts)
        fake = ak.unflatten(neutral[key], np.full(len(jets), 2))
        part[key.removeprefix("part_")] = ak.values_astype(
            ak.concatenate([fake, real], axis=1), np.float32
        )
    part = ak.zip(part)
    with uproot.recreate(path) as f:
        f.mktree("tree", {**{k: np.asarray(v).dtype for k, v in jet_branches.items()},
                          "part": part.type.content},
                 counter_name=lambda counted: "jet_nparticles")  # fmt: skip
        f["tree"].extend({**jet_branches, "part": part})
    return path
