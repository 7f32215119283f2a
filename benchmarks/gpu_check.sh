#!/usr/bin/env bash
# The one prepared GPU check (docs in benchmarks/gpu_check.py): jets/s per model size, the
# device tests, and the workflow/configs/gpu.yaml analysis timed; a CPU dry mode without CUDA.
#   bash benchmarks/gpu_check.sh [--dry] [--cores N] [--output FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if ! command -v jettag > /dev/null; then
    # the workflow's rules call the `jettag` command; installing it downloads nothing
    pip install --no-deps --no-build-isolation -q -e . \
        || echo "gpu_check: could not install jettag; the analysis step will fail" >&2
fi
python - <<'PY'
import importlib.util

wanted = ("torch", "pytest", "snakemake", "pythia8mc", "fastjet", "uproot", "awkward", "h5py", "mplhep")
missing = [m for m in wanted if importlib.util.find_spec(m) is None]
if missing:
    print("gpu_check: missing", ", ".join(missing), "- the steps that need them are recorded as failed")
PY
exec python benchmarks/gpu_check.py "$@"
