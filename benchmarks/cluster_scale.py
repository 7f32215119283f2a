"""Data preparation at scale on the local SLURM: sharded (one ingest job per file) vs one job.

A sample of --files files of --jets-per-file jets each (default 16 x 250k = 4M jets) is made
by replicating a canonical file with new event numbers in every copy (as FTAG-layout HDF5
inputs). Then, with the same config:
  - sharded: `snakemake --profile <the SLURM profile, sized for the node>` ingests every file
    as its own SLURM job and prepares the dataset from the parts (one job);
  - one job: `jettag ingest` over all files, then `jettag prepare`, each one process;
  - one streamed training epoch of DIPS on the prepared train split.
Wall time, peak memory per job (Snakemake's benchmark files for the SLURM jobs, /usr/bin/time
for the others) and jets/s are printed as a table, with a projection to 100M jets on N
nodes, and written to results/benchmarks/cluster_scale.json. The two ways' prepared files are
compared dataset by dataset.

    python benchmarks/cluster_scale.py [--source data/ingested/ttbar/0.h5] [--files 16]
        [--jets-per-file 250000] [--nodes 1 10 50]

Needs a SLURM cluster (bash .ci/slurm_up.sh starts a one-node one, as root).
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import yaml
from record import write_result
from scaling import timed

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.slurm_cluster import fitted_profile, node_size  # noqa: E402

BLOCK = 100_000
TARGET_JETS = 100_000_000


def replicate_files(source: Path, n_files: int, jets_per_file: int, directory: Path) -> list[Path]:
    """n_files FTAG-layout files of copies of source, every copy with its own event numbers."""
    files = []
    with h5py.File(source, "r") as src:
        jets_in, tracks_in = src["jets"][:], src["tracks"][:]
    n_src = len(jets_in)
    offset = int(jets_in["eventNumber"].max()) + 1
    copies_per_file = -(-jets_per_file // n_src)
    for index in range(n_files):
        path = directory / f"input_{index:03d}.h5"
        with h5py.File(path, "w") as out:
            jets = out.create_dataset(
                "jets", (jets_per_file,), jets_in.dtype, chunks=(8192,), compression="lzf"
            )
            tracks = out.create_dataset("tracks", (jets_per_file, tracks_in.shape[1]),
                                        tracks_in.dtype, chunks=(1024, tracks_in.shape[1]),
                                        compression="lzf")  # fmt: skip
            for start in range(0, jets_per_file, BLOCK):
                stop = min(start + BLOCK, jets_per_file)
                rows = np.arange(start, stop)
                copy = index * copies_per_file + rows // n_src
                block = jets_in[rows % n_src]
                block["eventNumber"] = block["eventNumber"] + copy * offset
                jets[start:stop] = block
                tracks[start:stop] = tracks_in[rows % n_src]
        files.append(path)
    return files


def _benchmark_rows(directory: Path) -> list[dict]:
    """Snakemake benchmark files (s, max_rss in MB) of one rule, one per job."""
    rows = []
    for path in sorted(directory.rglob("*.tsv")):
        with path.open() as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        rows.append({"job": str(path.relative_to(directory)), "s": float(row["s"]),
                     "max_rss_mb": float(row["max_rss"])})  # fmt: skip
    return rows


def _snakemake_elapsed(work: Path) -> float:
    """Seconds of the last Snakemake run in work ('Elapsed time' of its log)."""
    last = max((work / ".snakemake/log").glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime)
    match = re.search(r"Elapsed time: (\d+):(\d+):([\d.]+)", last.read_text())
    if match is None:
        sys.exit(f"{last}: no 'Elapsed time' line")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _same_prepared(a: Path, b: Path) -> bool:
    """Whether two prepared directories hold identical datasets and YAML files."""
    for name in ("norm.yaml", "weights.yaml"):
        if (a / name).read_bytes() != (b / name).read_bytes():
            return False
    for name in ("train.h5", "val.h5", "test.h5"):
        with h5py.File(a / name) as fa, h5py.File(b / name) as fb:
            names: list[str] = []
            fa.visit(lambda n, names=names: names.append(n))
            for key in names:
                if isinstance(fa[key], h5py.Dataset):
                    for start in range(0, fa[key].shape[0], BLOCK):
                        if not np.array_equal(fa[key][start : start + BLOCK],
                                              fb[key][start : start + BLOCK]):  # fmt: skip
                            return False
    return True


def main() -> int:
    """Make the sample, run both ways and the training epoch, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO / "data/ingested/ttbar/0.h5")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--jets-per-file", type=int, default=250_000)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--workdir", type=Path, default=REPO / "results/benchmarks/cluster_work")
    parser.add_argument("--reuse-sharded", action="store_true",
                        help="keep the inputs and sharded run of an earlier call")  # fmt: skip
    args = parser.parse_args()
    if not args.source.exists():
        sys.exit(f"{args.source}: no canonical file to replicate; pass --source")
    work = args.workdir
    n_jets = args.files * args.jets_per_file
    reuse = args.reuse_sharded and (work / "data/prepared/big/train.h5").exists()
    if reuse:
        files = sorted((work / "inputs").glob("input_*.h5"))
    else:
        shutil.rmtree(work, ignore_errors=True)
        (work / "inputs").mkdir(parents=True)
        files = replicate_files(args.source, args.files, args.jets_per_file, work / "inputs")

    config = yaml.safe_load((REPO / "workflow/configs/ci.yaml").read_text())
    config["samples"] = {"big": {"source": "h5", "files": [str(f) for f in files]}}
    config["models"] = {"dips": {**config["models"]["dips"], "dataset": "big"}}
    config["models"]["dips"]["training"].update(
        {"epochs": 1, "batch_size": 1000, "loader": "stream"}
    )
    config["baselines"] = {}
    for key in ("search", "transfer", "evaluation"):
        config.pop(key, None)
    cpus, mem_mb = node_size()
    if not reuse:
        for name in ("Snakefile", "config.yaml"):
            shutil.copy(REPO / name, work)
        shutil.copytree(REPO / "workflow", work / "workflow")
        (work / "big.yaml").write_text(yaml.safe_dump(config))
        profile = fitted_profile(work / "site_profile", cpus, mem_mb - 1000)
        sharded = subprocess.run(
            ["snakemake", "data/prepared/big/train.h5", "--profile", str(profile),
             "--configfile", "big.yaml"], cwd=work, capture_output=True, text=True,
        )  # fmt: skip
        if sharded.returncode != 0:
            sys.exit(f"sharded run failed:\n{sharded.stderr[-5000:]}")
    sharded_s = _snakemake_elapsed(work)
    ingest_jobs = _benchmark_rows(work / "results/benchmarks/ingest")
    prepare_job = _benchmark_rows(work / "results/benchmarks/prepare")[0]

    jettag = [sys.executable, "-m", "jettag.cli"]
    common = ["--config", str(work / "big.yaml")]
    single = work / "single"
    shutil.rmtree(single, ignore_errors=True)
    single.mkdir()
    one_ingest_s, one_ingest_mb = timed([*jettag, "ingest", *common, "--sample", "big",
                                         "--output", str(single / "big.h5"),
                                         *map(str, files)])  # fmt: skip
    one_prepare_s, one_prepare_mb = timed([*jettag, "prepare", *common, "--dataset", "big",
                                           "--input", str(single / "big.h5"), "--output-dir",
                                           str(single / "prepared")])  # fmt: skip
    identical = _same_prepared(work / "data/prepared/big", single / "prepared")

    with h5py.File(work / "data/prepared/big/train.h5") as f:
        n_train = f["jets"].shape[0]
    epoch_s, epoch_mb = timed([*jettag, "train", *common, "--model", "dips", "--member", "0",
                               "--data-dir", str(work / "data/prepared/big"), "--output-dir",
                               str(work / "epoch"), "--threads", str(cpus)])  # fmt: skip
    shutil.rmtree(work / "inputs")  # tens of GB
    shutil.rmtree(single)

    ingest_job_s = float(np.median([j["s"] for j in ingest_jobs]))
    per_job_rate = args.jets_per_file / ingest_job_s  # jets/s of one ingest job (one core)
    prepare_rate = n_jets / prepare_job["s"]
    projection = []
    for nodes in args.nodes:
        cores = nodes * cpus
        ingest_time = TARGET_JETS / (per_job_rate * cores)
        projection.append({"nodes": nodes, "cores": cores, "ingest_s": ingest_time,
                           "prepare_s": TARGET_JETS / prepare_rate,
                           "one_job_ingest_s": TARGET_JETS / (n_jets / one_ingest_s)})  # fmt: skip
    result = {
        "jets": n_jets, "files": args.files, "node_cpus": cpus,
        "sharded": {"wall_s": sharded_s, "ingest_jobs": ingest_jobs, "prepare": prepare_job,
                    "ingest_job_median_s": ingest_job_s,
                    "ingest_max_rss_mb": max(j["max_rss_mb"] for j in ingest_jobs)},
        "one_job": {"ingest_s": one_ingest_s, "ingest_rss_mb": one_ingest_mb,
                    "prepare_s": one_prepare_s, "prepare_rss_mb": one_prepare_mb,
                    "wall_s": one_ingest_s + one_prepare_s},
        "prepared_identical": identical,
        "training_epoch": {"train_jets": n_train, "wall_s": epoch_s, "rss_mb": epoch_mb,
                           "jets_per_s": n_train / epoch_s},
        "projection_100M": projection,
    }  # fmt: skip
    print(f"{n_jets} jets in {args.files} files, a {cpus}-CPU SLURM node")
    print(f"{'way':<28}{'wall s':>9}{'peak MB':>9}{'jets/s':>10}")
    print(f"{'sharded: ingest + prepare':<28}{sharded_s:9.1f}{'':>9}{n_jets / sharded_s:10.0f}")
    print(f"{'  one ingest job (median)':<28}{ingest_job_s:9.1f}"
          f"{result['sharded']['ingest_max_rss_mb']:9.0f}{per_job_rate:10.0f}")  # fmt: skip
    print(f"{'  prepare job':<28}{prepare_job['s']:9.1f}{prepare_job['max_rss_mb']:9.0f}"
          f"{prepare_rate:10.0f}")  # fmt: skip
    print(f"{'one job: ingest':<28}{one_ingest_s:9.1f}{one_ingest_mb:9.0f}"
          f"{n_jets / one_ingest_s:10.0f}")  # fmt: skip
    print(f"{'one job: prepare':<28}{one_prepare_s:9.1f}{one_prepare_mb:9.0f}"
          f"{n_jets / one_prepare_s:10.0f}")  # fmt: skip
    print(f"{'one streamed DIPS epoch':<28}{epoch_s:9.1f}{epoch_mb:9.0f}{n_train / epoch_s:10.0f}")
    print(f"prepared files identical both ways: {identical}")
    for row in projection:
        print(f"100M jets on {row['nodes']} nodes ({row['cores']} cores): ingest"
              f" {row['ingest_s'] / 60:.1f} min (one job: {row['one_job_ingest_s'] / 60:.0f}"
              f" min), prepare {row['prepare_s'] / 60:.0f} min")  # fmt: skip
    write_result(REPO / "results/benchmarks/cluster_scale.json", result)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
