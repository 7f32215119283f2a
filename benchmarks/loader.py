"""Training loader throughput from a prepared dataset: jets/s and peak memory, per way of reading.

    python benchmarks/loader.py [--data-dir data/prepared/ttbar] [--batch-size 1000]

Each way runs in its own process under /usr/bin/time (peak RSS):
  tables   the FTAG jets/tracks tables (lzf), transformed and normalised field by field
  memory   the model_inputs arrays read whole into memory (the time to first batch)
  batches  shuffled batches served from that memory (after the read)
  batches_subset  the same for a model that reads all but the last track input (an ablation
           retraining; a transferred model's other normalisation is the same path)
  stream   shuffled epochs streamed from disk in blocks (read, shuffle and batch, with the
           next buffer read in a background thread): what a training loop sees
  stream_bucketed  the same, batches bucketed by multiplicity (the transformer's setting)
Epoch modes run 3 epochs and report the median of the 2nd and 3rd (the 1st also faults in
the buffers' memory). The files are read right after prepare wrote them, so mostly from the
page cache.
Prints a table and writes results/benchmarks/loader.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from record import write_result

REPO = Path(__file__).resolve().parents[1]
MODES = ("tables", "memory", "batches", "batches_subset", "stream", "stream_bucketed")
TABLE_JETS = 300_000
EPOCHS = 3  # the table path is slow and holds its jets: a sample of them is enough


def measure(mode: str, data_dir: Path, batch_size: int) -> dict:
    """jets and seconds of one way of reading the train split (in this process)."""
    import torch

    from jettag.io.model_inputs import input_spec
    from jettag.training.data import load_split, load_split_from_tables
    from jettag.training.stream import StreamingSplit

    spec = input_spec(data_dir)
    if mode == "batches_subset":
        spec = input_spec(data_dir, tuple(n.name for n in spec.track_norms[:-1]))
    path = data_dir / "train.h5"
    generator = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    if mode == "tables":
        n = len(load_split_from_tables(path, spec, TABLE_JETS))
    elif mode == "memory":
        n = len(load_split(path, spec))
    else:
        if mode in ("batches", "batches_subset"):
            data = load_split(path, spec)
        else:
            data = StreamingSplit([(path, None)], spec, 16 * batch_size, 4)
        bucket = mode == "stream_bucketed"
        seconds = []
        for _ in range(EPOCHS):
            t0 = time.perf_counter()
            n = sum(len(b[3]) for b in data.batches(batch_size, generator, bucket=bucket))
            seconds.append(time.perf_counter() - t0)
        # the first epoch also faults in the buffers' pages: report the later ones
        return {"jets": n, "seconds": statistics.median(seconds[1:]),
                "first_epoch_seconds": seconds[0]}  # fmt: skip
    return {"jets": n, "seconds": time.perf_counter() - t0}


def measure_all(data_dir: Path, batch_size: int = 1000) -> dict[str, dict]:
    """Every mode in a fresh process: jets/s and peak RSS (MB)."""
    out = {}
    for mode in MODES:
        command = [
            "/usr/bin/time", "-f", "%M", sys.executable, __file__, "--data-dir",
            str(data_dir.resolve()), "--batch-size", str(batch_size), "--mode", mode,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if result.returncode != 0:
            raise RuntimeError(f"loader mode {mode} failed:\n{result.stderr[-3000:]}")
        row = json.loads(result.stdout.strip().splitlines()[-1])
        row["jets_per_s"] = row["jets"] / row["seconds"]
        row["peak_rss_mb"] = float(result.stderr.strip().splitlines()[-1]) / 1024.0
        out[mode] = row
    return out


def main() -> int:
    """Measure, print the table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "data/prepared/ttbar")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--mode", choices=MODES, help="measure one way, print JSON (internal)")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.mode, args.data_dir, args.batch_size)))
        return 0
    rows = measure_all(args.data_dir, args.batch_size)
    print(f"{'mode':<16} {'jets':>10} {'jets/s':>12} {'peak MB':>8}")
    for mode, row in rows.items():
        print(f"{mode:<16} {row['jets']:>10} {row['jets_per_s']:>12.0f} {row['peak_rss_mb']:>8.0f}")
    payload = {"data_dir": str(args.data_dir), "batch_size": args.batch_size, "rows": rows}
    write_result(REPO / "results/benchmarks/loader.json", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
