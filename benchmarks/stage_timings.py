"""Wall time and peak memory of every stage of a finished workflow run.

Snakemake's `benchmark:` directive writes one TSV per job under results/benchmarks/; this
script collects them into a table (printed) and results/benchmarks/stage_timings.json.

    snakemake --cores 2 && python benchmarks/stage_timings.py
"""

from __future__ import annotations

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from record import write_result


def collect(root: Path) -> dict[str, dict]:
    """Per stage: jobs, total and median seconds, largest max RSS (MB)."""
    jobs: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(root.rglob("*.tsv")):
        stage = path.relative_to(root).parts[0].removesuffix(".tsv")
        with open(path, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                jobs[stage].append(row)
    table = {}
    for stage, rows in jobs.items():
        seconds = [float(r["s"]) for r in rows]
        rss = [float(r["max_rss"]) for r in rows if r.get("max_rss") not in (None, "", "-")]
        table[stage] = {
            "jobs": len(rows),
            "total_s": round(sum(seconds), 1),
            "median_s": round(statistics.median(seconds), 1),
            "max_rss_mb": round(max(rss), 0) if rss else None,
        }
    return table


def main() -> int:
    """Print the table and write the JSON."""
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("results/benchmarks")
    table = collect(root)
    if not table:
        print(f"no benchmark files under {root}; run the workflow first", file=sys.stderr)
        return 1
    print(f"{'stage':<14}{'jobs':>6}{'total s':>10}{'median s':>10}{'max RSS MB':>12}")
    for stage, row in table.items():
        print(f"{stage:<14}{row['jobs']:>6}{row['total_s']:>10}{row['median_s']:>10}"
              f"{row['max_rss_mb'] if row['max_rss_mb'] is not None else '-':>12}")  # fmt: skip
    write_result(root / "stage_timings.json", {"stages": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())
