# The grid of the chosen profile (single source of truth shared with `mtl dvc`): runs, jobs, studies, paths.
import sys

from mtl_pipelines import grid
from mtl_pipelines import jobs as mtl_jobs

# The interpreter running Snakemake (e.g. .venv/bin/python) runs the CLI: no need to activate the venv.
# Inside the container image (`container_image`), that host path does not exist: the image's python has it.
# Every value pasted into a shell command is quoted (`{...:q}`): profile paths may contain spaces, and
# grid.load_profile refuses shell syntax in them (mtl_pipelines.safe_paths) as a second line of defence.
PYTHON = "python" if config.get("container_image") else sys.executable

PROFILE = grid.load_profile(config["profile"])
PLAN = grid.plan(PROFILE)
RUNS = PLAN.runs
JOBS = PLAN.jobs  # runs batched per process (`runs_per_job` of the profile; one run per job on clusters)
STUDIES = grid.load_studies()
CHOSEN = [s for s in STUDIES if PROFILE["studies"] == "all" or s in PROFILE["studies"]]
RESULTS = PROFILE["results_dir"]
REPORTS = PROFILE["reports_dir"]
LOGS = f"{RESULTS}/logs"

# The manifest of every job (its runs' resolved configs), written while the DAG is built; only files whose
# content changed are rewritten, so unchanged jobs keep their timestamps and are not re-run.
mtl_jobs.write_manifests(JOBS, RUNS, RESULTS)


def job_evaluated(job_id):
    return f"{RESULTS}/jobs/{job_id}.evaluated.json"


def job_finished(job_id):
    """The stamp of a finished job: evaluated, or trained for runs evaluated while they train (MT10 SAC,
    mtl_pipelines.kinds), which have no evaluate job."""
    if JOBS[job_id].evaluated_separately:
        return job_evaluated(job_id)
    return f"{RESULTS}/jobs/{job_id}.trained.json"


def stl_jobs_evaluated(wildcards):
    """Evaluated STL jobs an MTL job needs for validation-based selection (seed 001)."""
    return [job_evaluated(j) for j in JOBS[wildcards.job].needs]


def study_tables(study):
    return [f"{REPORTS}/{study}/{name}" for name in ("table.md", "table.tex", "table.csv", "summary.json")]


def study_inputs(wildcards):
    return [job_finished(j.job_id) for j in JOBS.values() if any(wildcards.study in RUNS[r].studies for r in j.runs)]


def benchmark_stamp(wildcards):
    """The prepared data a train job reads (none for the MT10 runs: metaworld brings its environments)."""
    job = JOBS[wildcards.job]
    return [f"{RESULTS}/prepared/{job.benchmark}.json"] if job.needs_data else []


def _full_epochs(job):
    """Whether a job trains full epochs (``max_steps_per_epoch`` null: a finding-scale benchmark such as the
    default profile's Multi-MNIST) rather than a few capped steps per epoch."""
    return any(RUNS[r].config.get("train", {}).get("max_steps_per_epoch", 0) is None for r in job.runs)


def job_priority(wildcards):
    """Jobs of full epochs first: they are the longest, and a 20-run Multi-MNIST job started last kept one of
    two cores idle for the final ~10 minutes of the default profile (measured from a fresh clone)."""
    return int(_full_epochs(JOBS[wildcards.job]))


def prepare_priority(wildcards):
    """Snakemake does not pass a job's priority on to the jobs it waits for: the data of full-epoch jobs is
    prepared first for the same reason."""
    return int(any(_full_epochs(j) for j in JOBS.values() if j.benchmark == wildcards.benchmark))


def job_runtime(wildcards):
    """Minutes: the per-run budget of the config times the runs in the job."""
    return config["runtime_min"] * len(JOBS[wildcards.job].runs)


wildcard_constraints:
    job="[A-Za-z0-9_.+-]+",
    study="[A-Za-z0-9_]+",
    benchmark="[A-Za-z0-9_]+",
