"""What each tracker-realism effect costs: IP3D-like and DIPS rejections with it switched off.

For each variant (all effects on; each one off; all off, close to the first prototype) this
writes a config under results/ablation/<variant>/, runs the workflow there up to the metrics
of both taggers, and prints a table of light and c rejection at 77 % b efficiency. The table
is also written as JSON and markdown (results/ablation/table.{json,md}).

    python benchmarks/realism_ablation.py [--shards 4] [--events 3000] [--variants nominal no_tails]
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
OFF = {
    "no_long_lived_decays": {"long_lived_decays": False},
    "no_pileup": {"pileup": {"enabled": False}},
    "no_resolution_tails": {"tracker": {"tails": {"enabled": False}}},
    "no_material_interactions": {"tracker": {"material": {"enabled": False}}},
    "no_fake_tracks": {"tracker": {"fakes": {"enabled": False}}},
    "no_dense_core_merging": {"tracker": {"dense": {"enabled": False}}},
    "flat_efficiency": {"tracker": {"efficiency": {"forward_loss": 0.0, "turn_on_gev": 0.01}}},
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
    all_off: dict = {}
    for change in OFF.values():
        all_off = _merge(all_off, change)
    table["all_off"] = all_off
    return table


def analysis_config(shards: int, events: int, simulation: dict) -> dict:
    """A small analysis: the ttbar sample, DIPS and the IP3D-like baseline."""
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    base["samples"] = {"ttbar": {**base["samples"]["ttbar"], "n_shards": shards,
                                 "events_per_shard": events}}  # fmt: skip
    base["models"] = {"dips": base["models"]["dips"]}
    base["baselines"] = {"ip3d": base["baselines"]["ip3d"]}
    base["simulation"] = simulation
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
        row[f"{tagger}_light_rej"] = wp["light_rejection"]
        row[f"{tagger}_light_rej_err"] = wp["light_rejection_error"]
        row[f"{tagger}_c_rej"] = wp["c_rejection"]
        row[f"{tagger}_c_rej_err"] = wp["c_rejection_error"]
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
            f"{r[f'{t}_{b}_rej']:.1f} ± {r[f'{t}_{b}_rej_err']:.1f}"
            if r[f"{t}_{b}_rej"] is not None else "inf"
            for t in ("ip3d", "dips") for b in ("light", "c")
        ]  # fmt: skip
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run the variants and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--output", type=Path, default=REPO / "results/ablation")
    args = parser.parse_args()
    table = variants()
    names = args.variants or list(table)
    rows = []
    for name in names:
        rows.append(run_variant(name, table[name], args.shards, args.events, args.output))
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    text = markdown(rows)
    print(text)
    (args.output / "table.md").write_text(text)
    (args.output / "table.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
