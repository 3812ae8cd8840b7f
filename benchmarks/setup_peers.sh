#!/usr/bin/env bash
# The peers' own environment for benchmarks/peers.py: LibMTL 1.1.5 and TorchJD on top of the project's
# venv (--system-site-packages shares its pinned torch). Never installed into the project's environment.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE_VENV:-.venv}
PEERS=${PEERS_VENV:-benchmarks/.venv-peers}
"$BASE/bin/python" -m venv --system-site-packages "$PEERS"
"$PEERS/bin/python" -m pip install -q --disable-pip-version-check --no-deps libmtl==1.1.5 torchjd==0.18.0
# TorchJD's CAGrad and Nash-MTL solve with cvxpy/ECOS
"$PEERS/bin/python" -m pip install -q --disable-pip-version-check "torchjd[full]==0.18.0" torch==2.14.1
echo "peers environment ready: $PEERS"
