#!/usr/bin/env bash
# The one prepared GPU check (docs in benchmarks/gpu_check.py): jets/s per model size, the
# device tests, and the workflow/configs/gpu.yaml analysis timed; a CPU dry mode without CUDA.
#   bash benchmarks/gpu_check.sh [--dry] [--require-gpu] [--budget S] [--cores N] [--output FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
# the device image's interpreter is python3 (the one that holds its CUDA torch)
PY="${PYTHON:-$(command -v python3 || command -v python)}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .gpu_wheels ]; then
    # a device machine reaches no package index: what its image lacks travels as wheels
    # (python benchmarks/gpu_wheels.py here, then `carry: [".gpu_wheels"]`)
    "$PY" -m pip install -q --no-index --no-deps .gpu_wheels/*.whl \
        || echo "gpu_check: could not install .gpu_wheels" >&2
fi
if ! command -v jettag > /dev/null; then
    # the workflow's rules call the `jettag` command; installing it downloads nothing
    "$PY" -m pip install --no-deps --no-build-isolation -q -e . \
        || echo "gpu_check: could not install jettag; the analysis step will fail" >&2
fi
"$PY" - <<'CHECK'
import importlib.util

wanted = ("torch", "pytest", "jsonschema", "snakemake", "pythia8mc", "fastjet", "uproot",
          "awkward", "h5py", "mplhep")
missing = [m for m in wanted if importlib.util.find_spec(m) is None]
if missing:
    print("gpu_check: missing", ", ".join(missing), "- the steps that need them are recorded as failed")
CHECK
exec "$PY" benchmarks/gpu_check.py "$@"
