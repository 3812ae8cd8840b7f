#!/usr/bin/env bash
# The peers' own environment for benchmarks/peers.py: LibMTL 1.1.5 and TorchJD 0.18 with the project's
# pinned torch. Never installed into the project's environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${PEERS_VENV:-benchmarks/.venv-peers}
python3 -m venv "$PEERS"
PIP=("$PEERS/bin/python" -m pip install -q --disable-pip-version-check)
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1
"${PIP[@]}" --no-deps libmtl==1.1.5          # its metadata pins nothing we lack; avoid resolver churn
"${PIP[@]}" "torchjd[full]==0.18.0" scipy    # TorchJD's CAGrad and Nash-MTL solve with cvxpy/ECOS
echo "peers environment ready: $PEERS"
