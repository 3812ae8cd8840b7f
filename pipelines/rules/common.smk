# The grid of the chosen profile (single source of truth shared with `mtl dvc`): runs, studies, paths.
import os
import shlex
import sys

from mtl_pipelines import grid

# The interpreter running Snakemake (e.g. .venv/bin/python) runs the CLI: no need to activate the venv.
MTL = f"{shlex.quote(sys.executable)} -m mtl_pipelines.cli"

PROFILE = grid.load_profile(config["profile"])
PLAN = grid.plan(PROFILE)
RUNS = PLAN.runs
STUDIES = grid.load_studies()
CHOSEN = [s for s in STUDIES if PROFILE["studies"] == "all" or s in PROFILE["studies"]]
RESULTS = PROFILE["results_dir"]
REPORTS = PROFILE["reports_dir"]
LOGS = f"{RESULTS}/logs"

# The resolved config of every run, written while the DAG is built (only files whose content changed are
# rewritten, so unchanged runs keep their timestamps): training jobs then read one small file instead of
# re-expanding the whole grid in each process.
grid.write_configs(PROFILE, RUNS)


def run_eval(run_id):
    return f"{RESULTS}/runs/{run_id}/eval.json"


def stl_evals(wildcards):
    """Evaluated STL runs an MTL run needs for validation-based selection (seed 001)."""
    run = RUNS[wildcards.run]
    if run.is_stl or run.config["eval"]["selection"] != "best_val":
        return []
    return [run_eval(r.run_id) for r in grid.stl_runs_for(RUNS, run)]


def study_tables(study):
    return [f"{REPORTS}/{study}/table.{ext}" for ext in ("md", "tex", "csv")]


def study_inputs(wildcards):
    return [run_eval(r.run_id) for r in RUNS.values() if wildcards.study in r.studies]


def benchmark_stamp(wildcards):
    return f"{RESULTS}/prepared/{RUNS[wildcards.run].benchmark}.json"


wildcard_constraints:
    run="[A-Za-z0-9_.+-]+",
    study="[A-Za-z0-9_]+",
    benchmark="[A-Za-z0-9_]+",
