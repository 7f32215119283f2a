"""What each tracker-realism effect costs: IP3D-like and DIPS rejections with it switched off.

For each variant (all effects on; each one off; all off, close to the first prototype) this
writes a config under results/ablation/<variant>/, runs the workflow there up to the metrics
of both taggers, and prints a table of light and c rejection at 77 % b efficiency. The table
is also written as JSON and markdown (results/ablation/table.{json,md}).

    python benchmarks/realism_ablation.py [--shards 4] [--events 3000] [--variants nominal no_tails]

`--quick` runs no workflow: each variant's sample (one shard of --events ttbar events) is
generated in this process's pool, and the sample itself is measured (tracks per jet, track
efficiency, fakes and the crude hit cut, impact-parameter pulls, jet response) together with
a quick IP3D-like tagger (graded (sd0, sz0) templates from even events, scored on odd ones).
It only needs `jettag.simulate` and the `simulation` config, so it also runs against an older
checkout (PYTHONPATH=<clone>/src, variant `nominal`) for before/after comparisons:

    python benchmarks/realism_ablation.py --quick --events 3000 --jobs 2 \
        --variants nominal v1_sample truth_jets
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
OFF = {
    "no_long_lived_decays": {"long_lived_decays": False},
    "no_pileup": {"pileup": {"enabled": False}},
    "no_resolution_tails": {"tracker": {"tails": {"enabled": False}}},
    "no_material_interactions": {"tracker": {"material": {"enabled": False}}},
    "no_photon_conversions": {"tracker": {"material": {"conversions": False}}},
    "no_fake_tracks": {"tracker": {"fakes": {"enabled": False}}},
    "no_dense_core_merging": {"tracker": {"dense": {"enabled": False}}},
    "flat_efficiency": {"tracker": {"efficiency": {"forward_loss": 0.0, "turn_on_gev": 0.01}}},
}
# Issue 15 ("physics realism v2"): each new effect off gives the sample before it
V2_OFF = {
    "random_fake_hit_patterns": {"tracker": {"fakes": {"realistic_hit_patterns": False}}},
    "slow_efficiency_turn_on": {"tracker": {"efficiency": {"turn_on_gev": 0.25}}},
    "no_vertex_resolution_terms": {
        "tracker": {"primary_vertex_xy_resolution_mm": 0.0, "primary_vertex_in_uncertainty": False}
    },
    "truth_jets": {"jets": {"reconstruction": {"enabled": False}}},
}


def _fixed_tails(fraction: float, width_mm: float) -> dict:
    """Simulation override: fixed-distance impact-parameter tails on."""
    return {"tracker": {"tails": {"fixed_fraction": fraction, "fixed_width_mm": width_mm}}}


# Candidate effects, not (yet) on by default: each variant switches one on
CANDIDATES = {
    "fixed_tails_2pc_50um": _fixed_tails(0.02, 0.05),
    "fixed_tails_5pc_30um": _fixed_tails(0.05, 0.03),
    "fixed_tails_5pc_100um": _fixed_tails(0.05, 0.1),
}


def _merge(base: dict, change: dict) -> dict:
    """Deep-merge change into a copy of base."""
    out = copy.deepcopy(base)
    for key, value in change.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def variants() -> dict[str, dict]:
    """Simulation overrides of every variant."""
    table = {"nominal": {}}
    table.update(OFF)
    table.update(V2_OFF)
    table.update(CANDIDATES)
    v1: dict = {}
    for change in V2_OFF.values():
        v1 = _merge(v1, change)
    # the sample as it was before issue 15 (bit for bit: same seeds, same draws)
    table["v1_sample"] = v1
    all_off: dict = {}
    # the slow turn-on is not part of the idealised tracker: flat_efficiency is
    for name, change in {**V2_OFF, **OFF}.items():
        if name != "slow_efficiency_turn_on":
            all_off = _merge(all_off, change)
    table["all_off"] = all_off
    return table


def analysis_config(shards: int, events: int, simulation: dict) -> dict:
    """A small analysis: the ttbar sample, DIPS and the IP3D-like baseline."""
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    base["samples"] = {"ttbar": {**base["samples"]["ttbar"], "n_shards": shards,
                                 "test_shards": 0, "events_per_shard": events}}  # fmt: skip
    base["models"] = {"dips": {**base["models"]["dips"], "members": 1}}  # one training a variant
    base["baselines"] = {"ip3d": base["baselines"]["ip3d"]}
    base["simulation"] = simulation
    # these name the zprime sample, which the ablation does not have
    base.pop("transfer", None)
    base.pop("search", None)
    base["plots"] = {**base.get("plots", {}), "formats": ["png"]}
    return base


def run_variant(name: str, simulation: dict, shards: int, events: int, root: Path) -> dict:
    """Run one variant's workflow and return its rejections at 77 % b efficiency."""
    workdir = root / name
    workdir.mkdir(parents=True, exist_ok=True)
    for item in ("Snakefile", "workflow"):
        target = workdir / item
        if target.is_dir():
            shutil.rmtree(target)
        (shutil.copytree if (REPO / item).is_dir() else shutil.copy)(REPO / item, target)
    (workdir / "config.yaml").write_text(
        yaml.safe_dump(analysis_config(shards, events, simulation))
    )
    start = time.perf_counter()
    run = subprocess.run(
        ["snakemake", "results/metrics/ip3d.json", "results/metrics/dips.json",
         "results/plots/sample_ttbar_n_tracks.png", "--cores", "2", "--configfile", "config.yaml"],
        cwd=workdir, capture_output=True, text=True,
    )  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"variant {name} failed:\n{run.stderr[-3000:]}")
    row = {"variant": name, "minutes": round((time.perf_counter() - start) / 60, 1)}
    for tagger in ("ip3d", "dips"):
        metrics = json.loads((workdir / f"results/metrics/{tagger}.json").read_text())
        wp = metrics["working_points"]["77"]
        for bkg in ("light", "c"):
            row[f"{tagger}_{bkg}_rej"] = wp[f"{bkg}_rejection"]
            row[f"{tagger}_{bkg}_rej_err"] = wp[f"{bkg}_rejection_error"]
            row[f"{tagger}_{bkg}_rej_interval"] = wp[f"{bkg}_rejection_interval"]
        row["n_test_jets"] = metrics["n_jets"]
    return row


def markdown(rows: list[dict]) -> str:
    """The table as markdown."""
    lines = [
        "| variant | IP3D-like light rej. | IP3D-like c rej. | DIPS light rej. | DIPS c rej. |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [
            f"{r[f'{t}_{b}_rej']:.1f} [{r[f'{t}_{b}_rej_interval'][0]:.1f}, "
            f"{r[f'{t}_{b}_rej_interval'][1]:.1f}]"
            if r[f"{t}_{b}_rej"] is not None else "inf"
            for t in ("ip3d", "dips") for b in ("light", "c")
        ]  # fmt: skip
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- quick mode: the sample itself, and an IP3D-like tagger fitted here -----------------

ORIGIN_PRIMARY, ORIGIN_FAKE, ORIGIN_FROM_B, ORIGIN_FROM_BC = 2, 1, 3, 4
SD0_BINS = np.array([-40, -20, -10, -6, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6, 10,
                     20, 40], dtype=float)  # fmt: skip
SZ0_BINS = np.array([-40, -10, -4, -2, -1, -0.5, 0, 0.5, 1, 2, 4, 10, 40], dtype=float)
B_EFFICIENCY = 0.77
GUN_PT_GEV = (0.5, 1.0, 5.0)
GUN_PARTICLES = 20_000
JET_PT_BINS_GEV = ((20, 30), (50, 80), (150, 400))


def crude_hit_cut(tracks: dict[str, np.ndarray]) -> np.ndarray:
    """True where a track fails the crude fake-finding cut of the issue-15 review.

    SCT hits < 8, or any shared pixel hit, or fewer pixel hits than IBL + next-to-IBL hits
    (an impossible pattern).
    """
    return (
        (tracks["numberOfSCTHits"] < 8)
        | (tracks["numberOfPixelSharedHits"] > 0)
        | (tracks["numberOfPixelHits"]
           < tracks["numberOfInnermostPixelLayerHits"]
           + tracks["numberOfNextToInnermostPixelLayerHits"])
    )  # fmt: skip


def grades(tracks: dict[str, np.ndarray]) -> np.ndarray:
    """ATLAS Run-2 IP3D-like track grades (as models/ip3d.py GRADES), first match wins."""
    ibl = tracks["numberOfInnermostPixelLayerHits"] == 0
    nibl = tracks["numberOfNextToInnermostPixelLayerHits"] == 0
    shared = tracks["numberOfPixelSharedHits"] > 0
    return np.select([ibl & nibl, ibl, nibl, shared], [0, 1, 2, 3], default=4)


def core_width(pulls: np.ndarray) -> float:
    """Width of the narrow Gaussian of a two-Gaussian fit (both at 0) to a pull distribution."""
    from scipy.optimize import curve_fit

    edges = np.linspace(-8, 8, 161)
    counts, _ = np.histogram(pulls, edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = edges[1] - edges[0]
    n = counts.sum()

    def model(x, fraction, core, tail):
        gauss = lambda s: np.exp(-0.5 * (x / s) ** 2) / (s * np.sqrt(2 * np.pi))  # noqa: E731
        return n * width * (fraction * gauss(core) + (1 - fraction) * gauss(tail))

    (fraction, core, tail), _ = curve_fit(
        model, centres, counts, p0=(0.9, 1.0, 3.0), sigma=np.sqrt(np.maximum(counts, 1)),
        bounds=([0.3, 0.3, 0.3], [1.0, 5.0, 20.0]),
    )  # fmt: skip
    return float(min(core, tail) if fraction > 0.5 else max(core, tail))


def _rejection(score_b, score_bkg) -> tuple[float, list[float]]:
    """Background rejection at B_EFFICIENCY and its central 68 % Clopper-Pearson interval."""
    from scipy.stats import beta

    cut = np.quantile(score_b, 1 - B_EFFICIENCY)
    passed, n = int((score_bkg > cut).sum()), score_bkg.size
    # scipy here, not jettag.evaluation: quick mode also runs against older checkouts
    low = beta.ppf(0.15865, passed, n - passed + 1) if passed else 0.0
    high = beta.ppf(0.84135, passed + 1, n - passed)
    rejection = n / passed if passed else float("inf")
    return rejection, [1 / high, 1 / low if low > 0 else float("inf")]


def quick_ip3d(jets: dict, tracks: dict, counts: np.ndarray) -> dict[str, float]:
    """Graded (sd0, sz0) log-likelihood-ratio tagger: templates from even events, score odd."""
    from jettag.io.fields import lifetime_signed_d0_significance, lifetime_signed_z0_significance
    from jettag.kinematics import wrap_phi

    jet_of_track = np.repeat(np.arange(counts.size), counts)
    label = jets["jet_HadronConeExclTruthLabelID"]
    sd0 = lifetime_signed_d0_significance(
        tracks["d0"],
        tracks["d0Uncertainty"],
        wrap_phi(tracks["phi"] - jets["jet_phi"][jet_of_track]),
    )
    sz0 = lifetime_signed_z0_significance(
        tracks["z0SinTheta"], tracks["z0SinThetaUncertainty"],
        tracks["eta"] - jets["jet_eta"][jet_of_track],
    )  # fmt: skip
    i = np.clip(np.digitize(sd0, SD0_BINS) - 1, 0, SD0_BINS.size - 2)
    j = np.clip(np.digitize(sz0, SZ0_BINS) - 1, 0, SZ0_BINS.size - 2)
    cell = (grades(tracks) * (SD0_BINS.size - 1) + i) * (SZ0_BINS.size - 1) + j
    n_cells = 5 * (SD0_BINS.size - 1) * (SZ0_BINS.size - 1)
    train_jet = jets["eventNumber"] % 2 == 0
    train = train_jet[jet_of_track]
    pdfs = {}
    for flavour in (5, 0):
        on = train & (label[jet_of_track] == flavour)
        hist = np.bincount(cell[on], minlength=n_cells) + 0.5
        pdfs[flavour] = hist / hist.sum()
    llr = np.log(pdfs[5] / pdfs[0])
    score = np.bincount(jet_of_track, weights=llr[cell], minlength=counts.size)
    test = ~train_jet
    out = {}
    for name, flavour in (("light", 0), ("c", 4)):
        rej, interval = _rejection(score[test & (label == 5)], score[test & (label == flavour)])
        out[f"ip3d_{name}_rej"], out[f"ip3d_{name}_rej_interval"] = rej, interval
    return out


def gun_efficiency(simulation, seed: int) -> dict[str, float]:
    """Loose-track efficiency of prompt pions (|eta| < 2.5) at fixed pT, material included.

    The tracker's pT cut is lowered to 0.4 GeV, the track-finding threshold, so that the
    0.5 GeV point measures reconstruction and not the tagging selection's pT > 0.5 GeV.
    """
    import dataclasses

    from jettag.simulate import pdg
    from jettag.simulate.material import hadronic_interactions
    from jettag.simulate.particles import Particles
    from jettag.simulate.tracker import reconstruct_tracks

    tracker = dataclasses.replace(simulation.tracker, pt_min_gev=0.4)
    rng = np.random.default_rng(seed)
    out = {}
    for pt in GUN_PT_GEV:
        found = 0
        for _ in range(GUN_PARTICLES // 200):  # 200 at a time: no merged clusters between them
            n = 200
            phi, eta = rng.uniform(-np.pi, np.pi, n), rng.uniform(-2.5, 2.5, n)
            pions = Particles.make(
                x=np.zeros(n), y=np.zeros(n), z=np.zeros(n), px=pt * np.cos(phi),
                py=pt * np.sin(phi), pz=pt * np.sinh(eta), charge=rng.choice([-1.0, 1.0], n),
                origin=np.full(n, pdg.ORIGIN_PRIMARY), record_index=np.arange(n),
            )  # fmt: skip
            pions = hadronic_interactions(pions, tracker.material, rng)
            tracks = reconstruct_tracks(pions, 0.0, tracker, rng)
            found += int((tracks.record_index >= 0).sum())
        out[f"efficiency_{pt:g}gev"] = found / GUN_PARTICLES
    return out


def sample_quantities(path: Path) -> dict[str, float]:
    """Tracks per jet, fakes, the crude hit cut, pulls, lifetime signs and the jet response."""
    import awkward as ak
    import uproot

    arrays = uproot.open(path)["jets"].arrays()
    counts = ak.to_numpy(arrays["n_trk"])
    jets = {k: ak.to_numpy(arrays[k]) for k in arrays.fields if not k.startswith("trk_")
            and k != "n_trk"}  # fmt: skip
    tracks = {k[4:]: ak.to_numpy(ak.flatten(arrays[k])) for k in arrays.fields
              if k.startswith("trk_")}  # fmt: skip
    label = jets["jet_HadronConeExclTruthLabelID"]
    origin = tracks["ftagTruthOriginLabel"]
    fake = origin == ORIGIN_FAKE
    crude = crude_hit_cut(tracks)
    primary = origin == ORIGIN_PRIMARY
    jet_of_track = np.repeat(np.arange(counts.size), counts)
    from_b = np.isin(origin, (ORIGIN_FROM_B, ORIGIN_FROM_BC)) & (label[jet_of_track] == 5)
    dphi = np.angle(np.exp(1j * (tracks["phi"] - jets["jet_phi"][jet_of_track])))
    lifetime_positive = np.sin(-dphi) * tracks["d0"] > 0  # sign(sin(phi_jet - phi_trk) d0)
    impossible = tracks["numberOfPixelHits"] < (
        tracks["numberOfInnermostPixelLayerHits"] + tracks["numberOfNextToInnermostPixelLayerHits"]
    )
    out = {
        "jets": int(counts.size),
        "b_jets": int((label == 5).sum()),
        "light_jets": int((label == 0).sum()),
        "tracks_per_b_jet": float(counts[label == 5].mean()),
        "tracks_per_c_jet": float(counts[label == 4].mean()),
        "tracks_per_light_jet": float(counts[label == 0].mean()),
        "fake_fraction": float(fake.mean()),
        "fakes_removed_by_crude_cut": float(crude[fake].mean()),
        "real_removed_by_crude_cut": float(crude[~fake].mean()),
        "fakes_sct_below_8": float((tracks["numberOfSCTHits"][fake] < 8).mean()),
        "real_sct_below_8": float((tracks["numberOfSCTHits"][~fake] < 8).mean()),
        "fakes_shared": float((tracks["numberOfPixelSharedHits"][fake] > 0).mean()),
        "real_shared": float((tracks["numberOfPixelSharedHits"][~fake] > 0).mean()),
        "fakes_impossible": float(impossible[fake].mean()),
        "d0_pull_core": core_width(tracks["d0"][primary] / tracks["d0Uncertainty"][primary]),
        "z0_pull_core": core_width(
            tracks["z0SinTheta"][primary] / tracks["z0SinThetaUncertainty"][primary]
        ),
        "b_tracks_positive_lifetime_sign": float(lifetime_positive[from_b].mean()),
    }
    if "jet_truth_pt" in jets:
        response = jets["jet_pt"] / jets["jet_truth_pt"]
        for lo, hi in JET_PT_BINS_GEV:
            inside = (jets["jet_truth_pt"] > lo) & (jets["jet_truth_pt"] < hi)
            out[f"jer_{lo}_{hi}"] = float(np.std(response[inside]))
        dphi_axis = np.angle(np.exp(1j * (jets["jet_phi"] - jets["jet_truth_phi"])))
        axis = np.hypot(jets["jet_eta"] - jets["jet_truth_eta"], dphi_axis)
        out["median_axis_shift"] = float(np.median(axis))
    out.update(quick_ip3d(jets, tracks, counts))
    return out


def quick_variant(name: str, simulation: dict, events: int, root: Path) -> dict:
    """Generate one variant's shard in this process and measure it."""
    from jettag import config as cfg
    from jettag.simulate.generate import generate_shard

    config = cfg.validate_config(analysis_config(1, events, simulation))
    sim = cfg.section(cfg.SimulationConfig, config["simulation"])
    path = root / name / "0.root"
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    generate_shard("ttbar", cfg.sample_config(config, "ttbar"), sim, config["seed"], 0, path,
                   n_events=events)  # fmt: skip
    row = {"variant": name, "generate_s": round(time.perf_counter() - start, 1)}
    row.update(sample_quantities(path))
    row.update(gun_efficiency(sim, config["seed"]))
    return row


QUICK_COLUMNS = (
    ("tracks/b jet", "tracks_per_b_jet", "{:.2f}"),
    ("tracks/light jet", "tracks_per_light_jet", "{:.2f}"),
    ("eff 0.5 GeV", "efficiency_0.5gev", "{:.3f}"),
    ("eff 1 GeV", "efficiency_1gev", "{:.3f}"),
    ("eff 5 GeV", "efficiency_5gev", "{:.3f}"),
    ("fake frac.", "fake_fraction", "{:.4f}"),
    ("fakes cut", "fakes_removed_by_crude_cut", "{:.3f}"),
    ("real cut", "real_removed_by_crude_cut", "{:.3f}"),
    ("d0 pull core", "d0_pull_core", "{:.3f}"),
    ("z0 pull core", "z0_pull_core", "{:.3f}"),
    ("B trk sd0>0", "b_tracks_positive_lifetime_sign", "{:.3f}"),
)


def quick_markdown(rows: list[dict]) -> str:
    """The quick table as markdown: sample quantities and the quick IP3D-like rejections."""
    head = [c[0] for c in QUICK_COLUMNS] + ["IP3D-like light rej.", "IP3D-like c rej."]
    lines = ["| variant | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for r in rows:
        cells = [fmt.format(r[key]) for _, key, fmt in QUICK_COLUMNS]
        cells += [
            f"{r[f'ip3d_{b}_rej']:.1f} [{r[f'ip3d_{b}_rej_interval'][0]:.1f}, "
            f"{r[f'ip3d_{b}_rej_interval'][1]:.1f}]"
            for b in ("light", "c")
        ]
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_quick(names: list[str], table: dict, events: int, jobs: int, root: Path) -> list[dict]:
    """Every variant's quick row, `jobs` variants at a time."""
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(quick_variant, n, table[n], events, root) for n in names]
        return [f.result() for f in futures]


def main() -> int:
    """Run the variants and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="measure generated samples in-process, no workflow, no DIPS",
    )
    parser.add_argument("--jobs", type=int, default=2, help="--quick: variants at a time")
    args = parser.parse_args()  # fmt: skip
    table = variants()
    names = args.variants or list(table)
    if args.quick:
        output = args.output or REPO / "results/ablation_quick"
        start = time.perf_counter()
        rows = run_quick(names, table, args.events, args.jobs, output)
        text = quick_markdown(rows)
        print(text)
        print(f"{len(rows)} variants, {args.events} events each, "
              f"{(time.perf_counter() - start) / 60:.1f} min")  # fmt: skip
        (output / "table.md").write_text(text)
        (output / "table.json").write_text(json.dumps(rows, indent=2) + "\n")
        return 0
    output = args.output or REPO / "results/ablation"
    rows = []
    for name in names:
        rows.append(run_variant(name, table[name], args.shards, args.events, output))
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    text = markdown(rows)
    print(text)
    (output / "table.md").write_text(text)
    (output / "table.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
