"""How ingest and prepare scale with the number of jets: wall time and peak memory.

Inputs of each size are made by replicating a canonical (FTAG-layout) file, block by block,
with new eventNumbers for each copy; each stage then runs as its own `jettag` process under
/usr/bin/time (wall seconds and maximum resident set size). Also measured: how fast the
training loader reads the prepared train split, each way of benchmarks/loader.py (jets/s and
peak memory): from the FTAG tables, from the model-ready arrays into memory, and streamed.

    python benchmarks/scaling.py [--source data/ingested/ttbar/0.h5] [--sizes 10000 ... 5000000]

Prints a table and writes results/benchmarks/scaling.json and scaling.png.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import yaml
from loader import measure_all
from record import write_result

REPO = Path(__file__).resolve().parents[1]
BLOCK = 100_000


def replicate(source: Path, n_jets: int, output: Path) -> None:
    """An FTAG-layout file of n_jets: copies of source, each with its own eventNumbers."""
    with h5py.File(source, "r") as src, h5py.File(output, "w") as out:
        jets_in, tracks_in = src["jets"], src["tracks"]
        n_src = jets_in.shape[0]
        offset = int(jets_in["eventNumber"].max()) + 1
        jets = out.create_dataset("jets", (n_jets,), jets_in.dtype, chunks=(8192,))
        tracks = out.create_dataset("tracks", (n_jets, tracks_in.shape[1]), tracks_in.dtype,
                                    chunks=(1024, tracks_in.shape[1]))  # fmt: skip
        for start in range(0, n_jets, BLOCK):
            stop = min(start + BLOCK, n_jets)
            rows = np.arange(start, stop) % n_src
            copy = np.arange(start, stop) // n_src
            # contiguous runs of the source, so each read is a slice
            for k in np.unique(copy):
                sel = copy == k
                lo, hi = rows[sel][0], rows[sel][-1] + 1
                block = jets_in[lo:hi]
                block["eventNumber"] += k * offset
                where = np.arange(start, stop)[sel]
                jets[where[0] : where[-1] + 1] = block
                tracks[where[0] : where[-1] + 1] = tracks_in[lo:hi]


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of a command, from /usr/bin/time."""
    result = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], capture_output=True,
                            text=True)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    wall, rss_kb = result.stderr.strip().splitlines()[-1].split()
    return float(wall), float(rss_kb) / 1024.0


def _size_mb(directory: Path) -> float:
    """Bytes of the files in a directory, in MB."""
    return sum(p.stat().st_size for p in directory.iterdir()) / 1e6


def plot(rows: list[dict], path: Path) -> None:
    """Wall time and peak memory against the number of jets (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jets = [r["jets"] for r in rows]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 5))
    for stage in ("ingest", "prepare"):
        ax_t.plot(jets, [r[f"{stage}_s"] for r in rows], "o-", label=stage)
        ax_m.plot(jets, [r[f"{stage}_rss_mb"] for r in rows], "o-", label=stage)
    ref = np.array(jets, dtype=float)
    ax_t.plot(ref, rows[-1]["prepare_s"] * ref / ref[-1], "k:", label="linear")
    for ax, label in ((ax_t, "Wall time [s]"), (ax_m, "Peak memory (RSS) [MB]")):
        ax.set_xscale("log")
        ax.set_xlabel("Jets")
        ax.set_ylabel(label)
        ax.legend()
    ax_t.set_yscale("log")
    ax_m.set_ylim(0, None)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    """Run the scan, print the table, write JSON and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO / "data/ingested/ttbar/0.h5")
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[10_000, 100_000, 1_000_000, 5_000_000])  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=REPO / "results/benchmarks/scaling_work")
    args = parser.parse_args()
    if not args.source.exists():
        sys.exit(f"{args.source}: no canonical file to replicate; run `snakemake --cores 2` "
                 "first or pass --source")  # fmt: skip
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    jettag = [sys.executable, "-m", "jettag.cli"]
    rows = []
    try:
        for n in args.sizes:
            work = args.workdir / str(n)
            work.mkdir()
            replicate(args.source, n, work / "input.h5")
            config = yaml.safe_load((REPO / "workflow/configs/ci.yaml").read_text())
            config["samples"] = {"s": {"source": "h5", "files": [str(work / "input.h5")]}}
            for model in config["models"].values():
                model["dataset"] = "s"
            config["baselines"] = {}
            for key in ("search", "transfer"):
                config.pop(key, None)
            config["evaluation"] = {}
            (work / "config.yaml").write_text(yaml.safe_dump(config))
            common = ["--config", str(work / "config.yaml")]
            ingest_s, ingest_mb = timed([*jettag, "ingest", *common, "--sample", "s", "--output",
                                         str(work / "s.h5"), str(work / "input.h5")])  # fmt: skip
            prepare_s, prepare_mb = timed([*jettag, "prepare", *common, "--dataset", "s",
                                           "--input", str(work / "s.h5"), "--output-dir",
                                           str(work / "prepared")])  # fmt: skip
            loader = measure_all(work / "prepared")
            row = {"jets": n, "ingest_s": ingest_s, "ingest_rss_mb": ingest_mb,
                   "prepare_s": prepare_s, "prepare_rss_mb": prepare_mb,
                   "prepared_mb": _size_mb(work / "prepared"), "loader": loader}  # fmt: skip
            rows.append(row)
            shutil.rmtree(work)
            print(f"{n:>9} jets: ingest {ingest_s:6.1f} s {ingest_mb:6.0f} MB | prepare"
                  f" {prepare_s:6.1f} s {prepare_mb:6.0f} MB, {row['prepared_mb']:6.0f} MB on"
                  " disk | loader jets/s (peak MB): "
                  + ", ".join(f"{m} {r['jets_per_s']:.0f} ({r['peak_rss_mb']:.0f})"
                              for m, r in loader.items()), flush=True)  # fmt: skip
    finally:
        shutil.rmtree(args.workdir, ignore_errors=True)
    out = REPO / "results/benchmarks"
    write_result(out / "scaling.json", {"source": str(args.source), "rows": rows})
    plot(rows, out / "scaling.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
