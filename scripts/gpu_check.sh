#!/usr/bin/env bash
# The GPU path end to end on one GPU in <= 8 minutes: CUDA tests of all packages, a paper-protocol step loop
# per benchmark family (LS, exact, features, SAM family; time and peak memory), the determinism settings'
# cost and the CPU/GPU ratio. Writes benchmarks/results/gpu_check.json and .md (machine named).
#
#   bash scripts/gpu_check.sh --dry-run      # what it would do and the estimated time (no GPU needed)
#   bash scripts/gpu_check.sh                # run it (options: python scripts/gpu_check.py --help)
#   podman run --rm --gpus all -v "$PWD:/work" -w /work <image> bash scripts/gpu_check.sh   # in the image
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
# the driver keeps its own 480 s deadline; this is the backstop if a CUDA call hangs
exec timeout --signal=TERM --kill-after=10 540 "$python" scripts/gpu_check.py "$@"
