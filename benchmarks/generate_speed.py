"""Generator speed on one core: events/s and jets/s for each process, realism on and off.

    python benchmarks/generate_speed.py [--events 400] [--repeats 3]

Prints a table (median over repeats) and writes results/benchmarks/generate_speed.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from record import write_result

from jettag import config as cfg
from jettag.simulate.generate import generate_shard
from jettag.simulate.realism import ideal_detector

REPO = Path(__file__).resolve().parents[1]


def _simulation(realism: bool) -> cfg.SimulationConfig:
    """Default simulation, or with every realism effect off."""
    raw = {
        "samples": {"s": {"source": "generate"}},
        "models": {"m": {"dataset": "s", "architecture": "deepsets"}},
    }
    sim = cfg.section(cfg.SimulationConfig, cfg.validate_config(raw)["simulation"])
    return sim if realism else ideal_detector(sim)


def measure(process: str, realism: bool, events: int, shard: int) -> tuple[float, int]:
    """(seconds, jets) to generate one shard, Pythia initialisation included."""
    raw = {
        "samples": {"s": {"source": "generate", "process": process}},
        "models": {"m": {"dataset": "s", "architecture": "deepsets"}},
    }
    sample = cfg.sample_config(cfg.validate_config(raw), "s")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        stats = generate_shard(
            "s", sample, _simulation(realism), 1, shard, Path(tmp) / "s.root", n_events=events
        )
        return time.perf_counter() - start, stats["jets"]


def main() -> int:
    """Run the grid and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    print(f"{'process':<8}{'realism':>9}{'events/s':>10}{'jets/s':>9}{'jets/event':>12}")
    for process in ("ttbar", "zprime"):
        for realism in (True, False):
            runs = [measure(process, realism, args.events, r) for r in range(args.repeats)]
            seconds = statistics.median(s for s, _ in runs)
            jets = statistics.median(j for _, j in runs)
            row = {
                "process": process,
                "realism": realism,
                "events": args.events,
                "median_seconds": round(seconds, 2),
                "events_per_s": round(args.events / seconds, 1),
                "jets_per_s": round(jets / seconds, 1),
                "jets_per_event": round(jets / args.events, 2),
            }
            rows.append(row)
            print(f"{process:<8}{'on' if realism else 'off':>9}{row['events_per_s']:>10}"
                  f"{row['jets_per_s']:>9}{row['jets_per_event']:>12}")  # fmt: skip
    write_result(REPO / "results/benchmarks/generate_speed.json", {"rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
