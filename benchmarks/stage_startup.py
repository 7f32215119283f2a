"""Wall time of stages that need no network, one `jettag` process each, for source trees.

A default analysis runs ~150 `jettag` commands; most evaluate or draw in well under a second,
so what a command imports at start-up is a large part of its time. This runs each stage as
its own process on synthetic predictions (three taggers, 30k test jets each) and prints the
median wall time over interleaved repeats, for this tree and for others given with
--compare (e.g. a clone of an older commit, run with that tree's src/ first on PYTHONPATH).

    python benchmarks/stage_startup.py --repeats 7 --compare /tmp/old-clone
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from record import write_result

REPO = Path(__file__).resolve().parents[1]
JETS = 30_000
TAGGERS = ("ip3d", "dips", "transformer")


def write_predictions(
    path: Path, tagger: str, labels: np.ndarray, rng: np.random.Generator
) -> Path:
    """A predictions file in the FTAG layout: these jets' softmax probabilities."""
    logits = rng.normal(size=(JETS, 3)) + 2.5 * np.eye(3)[labels]
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    dtype = [("pt", "f4"), ("eta", "f4"), ("flavour_label", "i4"),
             *((f"{tagger}_{s}", "f4") for s in ("pb", "pc", "pu"))]  # fmt: skip
    jets = np.zeros(JETS, dtype=dtype)
    jets["pt"] = np.linspace(20.0, 500.0, JETS)  # the same test jets for every tagger
    jets["eta"] = np.linspace(-2.5, 2.5, JETS)
    jets["flavour_label"] = labels
    for k, suffix in enumerate(("pb", "pc", "pu")):
        jets[f"{tagger}_{suffix}"] = prob[:, k]
    with h5py.File(path, "w") as f:
        f.create_dataset("jets", data=jets, compression="gzip")
        f["jets"].attrs["flavour_label"] = ["b", "c", "light"]
        f["jets"].attrs["tagger"] = tagger
    return path


def takes_dataset(tree: Path) -> bool:
    """Whether a tree's working-points command names its dataset (since issue 15)."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    run = subprocess.run([sys.executable, "-m", "jettag.cli", "working-points", "--help"],
                         env=env, capture_output=True, text=True, check=True)  # fmt: skip
    return "--dataset" in run.stdout


def commands(work: Path, tree: Path) -> dict[str, list[str]]:
    """The timed commands of a tree, by name (the same but for the arguments it needs)."""
    config = str(REPO / "workflow/configs/ci.yaml")
    preds = [str(work / f"{t}.h5") for t in TAGGERS]
    dataset = ["--dataset", "ttbar"] if takes_dataset(tree) else []
    return {
        "import jettag.cli": [sys.executable, "-c", "import jettag.cli"],
        "jettag working-points": [
            sys.executable, "-m", "jettag.cli", "working-points", "--config", config, *dataset,
            "--output-json", str(work / "wp.json"), "--output-md", str(work / "wp.md"), *preds,
        ],
        "jettag evaluate": [
            sys.executable, "-m", "jettag.cli", "evaluate", "--config", config,
            "--predictions", preds[1], "--output", str(work / "dips.json"),
        ],
        "jettag performance": [
            sys.executable, "-m", "jettag.cli", "performance", "--config", config,
            "--predictions", preds[1], "--output-pt", str(work / "pt.json"),
            "--output-scores", str(work / "scores.json"),
        ],
    }  # fmt: skip


def run_once(command: list[str], tree: Path) -> float:
    """Wall seconds of one command with a tree's src/ first on the import path."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def torch_imported(tree: Path) -> bool:
    """Whether `import jettag.cli` of a tree loads torch."""
    code = "import sys, jettag.cli; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)  # fmt: skip
    return run.stdout.strip() == "True"


def main() -> int:
    """Print the table and write results/benchmarks/stage_startup.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--compare", type=Path, nargs="*", default=[],
                        help="other source trees (repository roots)")  # fmt: skip
    args = parser.parse_args()
    trees = [REPO, *args.compare]
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        labels = rng.choice(3, JETS, p=[0.34, 0.12, 0.54])
        for tagger in TAGGERS:
            write_predictions(work / f"{tagger}.h5", tagger, labels, rng)
        timed = {tree: commands(work, tree) for tree in trees}
        names = list(timed[REPO])
        seconds = {(t, name): [] for t in trees for name in names}
        for _ in range(args.repeats):  # interleaved, so that machine noise hits every tree
            for name in names:
                for tree in trees:
                    seconds[tree, name].append(run_once(timed[tree][name], tree))
    rows = {}
    print(f"{'command':<24}" + "".join(f"{t!s:>28}" for t in trees))
    for name in names:
        medians = [statistics.median(seconds[t, name]) for t in trees]
        rows[name] = {str(t): {"median_s": m, "runs_s": seconds[t, name]}
                      for t, m in zip(trees, medians, strict=True)}  # fmt: skip
        print(f"{name:<24}" + "".join(f"{m:>27.3f}s" for m in medians))
    loads = {str(t): torch_imported(t) for t in trees}
    print("import jettag.cli loads torch:", loads)
    write_result(REPO / "results/benchmarks/stage_startup.json",
                 {"repeats": args.repeats, "jets": JETS, "commands": rows,
                  "cli_imports_torch": loads})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
