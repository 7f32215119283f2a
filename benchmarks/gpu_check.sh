#!/usr/bin/env bash
# The one prepared GPU check (docs in benchmarks/gpu_check.py): device tests, throughput,
# and the workflow/configs/gpu.yaml analysis timed end to end; a CPU dry mode without CUDA.
#   bash benchmarks/gpu_check.sh [--dry] [--cores N]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python -c "import jettag" 2>/dev/null; then
    # a bare machine with torch already there: the project itself needs no download
    pip install --no-deps --no-build-isolation -q -e .
fi
exec python benchmarks/gpu_check.py "$@"
