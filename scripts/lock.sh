#!/usr/bin/env bash
# Regenerate requirements/constraints.txt from a fully bootstrapped .venv (run after adding a dependency).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
{
  echo "# Pinned versions of every third-party package (generated with \`pip freeze\` from a working environment;"
  echo "# regenerate with scripts/lock.sh). torch/torchvision are also installed explicitly by bootstrap.sh."
  "$VENV/bin/python" -m pip freeze --exclude-editable | grep -v -E '^(mtl-|-e )|@ file' | sort
} > requirements/constraints.txt
echo "requirements/constraints.txt: $(grep -vc '^#' requirements/constraints.txt) pins"
