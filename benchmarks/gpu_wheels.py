"""Wheels the GPU check needs that the lent GPU machine lacks, fetched here into .gpu_wheels/.

    python benchmarks/gpu_wheels.py [--python-version 3.12] [--output .gpu_wheels]

The device machine (workplace image 'cuda': Python 3.12, torch with CUDA, numpy, h5py,
matplotlib, scipy, pyyaml, pytest, onnx; /work/.library/device/KINDS.md) reaches no package
index, so what jettag needs beyond its image travels as wheels in the run's `carry`
(64 MiB in all). The versions are the ones installed here, so the GPU runs the code the CPU
tests ran. Wheels without a binary for that Python (pure-Python sdists) are built here.
`benchmarks/gpu_check.sh` installs everything in .gpu_wheels/ (no index, no dependencies)
before it starts. PuLP (16 MB, Snakemake's optional ILP scheduler) is left out: the check
runs Snakemake with `--scheduler greedy`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# jettag's requirements and Snakemake's closure, less what the image holds
WANTED = (
    "jsonschema", "jsonschema-specifications", "referencing", "rpds-py",
    "awkward", "awkward-cpp", "uproot", "cramjam", "vector", "fastjet", "pythia8mc",
    "mplhep", "mplhep-data", "uhi",
    "snakemake", "snakemake-interface-common", "snakemake-interface-executor-plugins",
    "snakemake-interface-logger-plugins", "snakemake-interface-report-plugins",
    "snakemake-interface-scheduler-plugins", "snakemake-interface-storage-plugins",
    "annotated-types", "argparse-dataclass", "conda-inject", "configargparse",
    "connection-pool", "docutils", "dpath", "fastjsonschema", "gitdb", "gitpython",
    "greenlet", "humanfriendly", "immutables", "jupyter-core", "nbformat", "platformdirs",
    "pydantic", "pydantic-core", "smart-open", "smmap", "sqlalchemy", "sqlmodel", "tenacity",
    "throttler", "traitlets", "typing-inspection", "yte",
)  # fmt: skip
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
LIMIT_MIB = 60  # the carry's 64 MiB, less the working tree


def fetch(name: str, version: str, python: str, output: Path) -> str:
    """Download the binary wheel for that Python, else build one here; how it came."""
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    abi = "cp" + python.replace(".", "")
    download = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                "--python-version", python, "--implementation", "cp", "--abi", abi,
                "--abi", "abi3", "--abi", "none", *platforms, "-d", str(output),
                f"{name}=={version}"]  # fmt: skip
    if subprocess.run(download, capture_output=True, text=True).returncode == 0:
        return "downloaded"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(output),
             f"{name}=={version}"]  # fmt: skip
    run = subprocess.run(build, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"gpu_wheels: {name}=={version}: no wheel for Python {python}:\n"
                         f"{run.stderr[-2000:]}")  # fmt: skip
    return "built"


def main() -> int:
    """Fetch every wanted wheel; print a table and the total size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--output", type=Path, default=Path(".gpu_wheels"))
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    for name in WANTED:
        version = metadata.version(name)
        how = fetch(name, version, args.python_version, args.output)
        print(f"{name:<40}{version:<14}{how}")
    total = sum(f.stat().st_size for f in args.output.glob("*.whl")) / 2**20
    print(f"{len(list(args.output.glob('*.whl')))} wheels, {total:.1f} MiB in {args.output}")
    if total > LIMIT_MIB:
        print(f"gpu_wheels: more than {LIMIT_MIB} MiB: the device run's carry would refuse it")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
