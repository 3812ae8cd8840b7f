#!/usr/bin/env bash
# Create .venv and install the pinned stack plus the four distributions of this monorepo (editable).
#   bash scripts/bootstrap.sh          runtime (what the main job needs)
#   bash scripts/bootstrap.sh --dev    runtime + test/lint tools
# torch/torchvision are pinned exactly (see DEVELOPERS.md); every other package is pinned by
# requirements/constraints.txt so installs are repeatable on CI, in the container and on a laptop.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1
pkgs=(-e packages/mtl-core -e "packages/mtl-data[all]" -e "packages/mtl-models[graph]")
# extra rl: metaworld + mujoco for seed 003 Table 5 (MT10); ~16 s and ~105 MB more, run headless by the default profile
[ -f pipelines/pyproject.toml ] && pkgs+=(-e "pipelines[dvc,rl]")
extra=()
[ "${1:-}" = "--dev" ] && extra=(-r requirements/dev.txt)
"${PIP[@]}" -c requirements/constraints.txt "${pkgs[@]}" "${extra[@]}"
echo "bootstrap: $VENV ready ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
