#!/usr/bin/env bash
# Look at the HTML report in headless Chromium as a reader would: screenshots of every page and a layout check
# (clipped titles, verdict badges, ours vs the paper's cells, pipeline-check labels above their tables, figures
# that load). Exit status 1 when a reader would see a problem (each is printed), 2 on bad arguments.
#
#   bash scripts/browser_check.sh                       # a sample report from synthetic results
#   bash scripts/browser_check.sh reports/default       # a report the pipeline built
#   bash scripts/browser_check.sh REPORT_DIR OUT_DIR    # screenshots + layout.json into OUT_DIR
#
# Screenshots go to reports/_browser_check/screenshots/<report name>/ by default. Needs Chromium (Debian:
# apt-get install -y chromium; another binary: MTL_CHROMIUM=/path/to/chrome).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
if [ "$#" -gt 2 ]; then
  echo "usage: bash scripts/browser_check.sh [REPORT_DIR [OUT_DIR]]" >&2
  exit 2
fi
if [ "$#" -ge 1 ]; then
  report=$1
else
  report=reports/_browser_check/sample_report
  "$PYTHON" -m mtl_pipelines.report.sample "$report"
fi
out=${2:-reports/_browser_check/screenshots/$(basename "$report")}
exec "$PYTHON" -m mtl_pipelines.report.browser "$report" "$out"
