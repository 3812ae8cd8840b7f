"""Workflow jobs: the runs one Snakemake/DVC job trains (and then evaluates) in a single process.

Starting a process costs ~4-5 s here (importing torch, torchvision, PyG; building the dataset), more than a
whole toy-scale run of the default profile (~1 s), so a profile may batch runs: ``runs_per_job: N`` groups
the runs of one (benchmark, model) into jobs of at most N runs. STL runs are never grouped with MTL runs:
an MTL run selected on validation Delta_m (seed 001) is evaluated against its STL runs, so the jobs holding
those STL runs are evaluated first (``Job.needs``). Runs of different kinds (:mod:`mtl_pipelines.kinds`:
supervised, the MT10 SAC runs) are never grouped either; a job of a kind that evaluates while it trains has no
evaluation job. With ``runs_per_job: 1`` (the paper and Slurm profiles) every job is one run and its id is the
run id.

A job is described by a manifest (``<results>/jobs/<job>.yaml``: the resolved config of each run and the
STL runs it is evaluated against) written when the DAG is built, or, for DVC, by the ``jobs`` and ``runs``
entries of the generated ``params.yaml`` (:func:`mtl_pipelines.dvc.job_spec`). Runs already finished are
skipped (training resumes a killed run from its checkpoint), so re-running a job whose membership changed
only trains the new runs.
"""

from __future__ import annotations

import hashlib
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mtl_pipelines import io

if TYPE_CHECKING:
    from mtl_pipelines.grid import RunSpec

__all__ = [
    "Job",
    "JobFailed",
    "JobRun",
    "JobSpec",
    "check_runs_per_job",
    "evaluate_job",
    "group",
    "load_manifest",
    "spec_from",
    "train_job",
    "write_manifests",
]


@dataclass
class Job:
    """One workflow job of a plan: its runs (sorted), the STL runs each is evaluated against, and the jobs
    holding those STL runs (their evaluation must come first)."""

    job_id: str
    benchmark: str
    runs: list[str]
    stl: dict[str, list[str]] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    kind: str = "supervised"  # of every run of the job (mtl_pipelines.kinds)

    @property
    def evaluated_separately(self) -> bool:
        """Whether an evaluation job follows the train job (supervised runs: ``mtl evaluate``)."""
        from mtl_pipelines import kinds

        return kinds.KINDS[self.kind].evaluated_separately

    @property
    def needs_data(self) -> bool:
        """Whether the train job waits for its benchmark's prepared data (``mtl prepare``)."""
        from mtl_pipelines import kinds

        return kinds.KINDS[self.kind].needs_data


@dataclass
class JobRun:
    run_id: str
    config: dict[str, Any]
    stl: list[str]


@dataclass
class JobSpec:
    """What a process needs to execute a job: where its runs live and each run's config.

    Every run id (and STL run id) is one safe path component and its directory lies under ``runs_root``:
    a manifest is a file people share, so ``../../x`` or ``/abs/path`` is refused with the offending value
    (:class:`mtl_pipelines.io.UnsafePathError`) before anything is written.
    """

    job_id: str
    runs_root: Path
    runs: list[JobRun]
    source: str = field(default="job", compare=False)  # where it was read from, for messages

    def __post_init__(self) -> None:
        io.check_name(self.job_id, f"{self.source}: job")
        for i, run in enumerate(self.runs):
            io.check_name(run.run_id, f"{self.source}: runs[{i}].id")
            io.check_within(self.runs_root / run.run_id, self.runs_root, f"{self.source}: runs[{i}].id")
            for j, stl in enumerate(run.stl):
                io.check_name(stl, f"{self.source}: runs[{i}].stl[{j}]")

    def run_dir(self, run: JobRun) -> Path:
        return self.runs_root / run.run_id


def _job_id(benchmark: str, model_key: str, is_stl: bool, chunk: list[str]) -> str:
    if len(chunk) == 1:
        return chunk[0]
    digest = hashlib.sha1("\n".join(chunk).encode()).hexdigest()[:12]
    return f"{benchmark}-{model_key}-{'stl' if is_stl else 'mtl'}-{len(chunk)}runs-{digest}"


def check_runs_per_job(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"runs_per_job must be an integer >= 1, got {value!r}")
    return value


def group(runs: Mapping[str, RunSpec], runs_per_job: int) -> dict[str, Job]:
    """Split ``runs`` into jobs of at most ``runs_per_job`` runs of one (kind, benchmark, model, STL or not)."""
    from mtl_pipelines.grid import stl_runs_for
    from mtl_pipelines.kinds import SUPERVISED

    check_runs_per_job(runs_per_job)
    keyed: dict[tuple[str, str, str, bool], list[str]] = {}
    for run in runs.values():
        keyed.setdefault((run.kind, run.benchmark, run.model_key, run.is_stl), []).append(run.run_id)
    jobs: dict[str, Job] = {}
    owner: dict[str, str] = {}
    for (kind, benchmark, model_key, is_stl), ids in keyed.items():
        ids = sorted(ids)
        for start in range(0, len(ids), runs_per_job):
            chunk = ids[start : start + runs_per_job]
            job = Job(_job_id(benchmark, model_key, is_stl, chunk), benchmark, chunk, kind=kind)
            jobs[job.job_id] = job
            owner.update(dict.fromkeys(chunk, job.job_id))
    for job in jobs.values():
        for run_id in job.runs:
            run = runs[run_id]
            if job.kind == SUPERVISED and not run.is_stl and run.config["eval"]["selection"] == "best_val":
                job.stl[run_id] = [r.run_id for r in stl_runs_for(runs, run)]
        job.needs = sorted({owner[s] for stl in job.stl.values() for s in stl})
    return jobs


def manifest(job: Job, runs: Mapping[str, RunSpec], runs_root: str | Path) -> dict[str, Any]:
    return {
        "job": job.job_id,
        "runs_root": str(runs_root),
        "runs": [{"id": r, "stl": job.stl.get(r, []), "config": runs[r].config} for r in job.runs],
    }


def write_manifests(jobs: Mapping[str, Job], runs: Mapping[str, RunSpec], results_dir: str | Path) -> int:
    """Write ``<results>/jobs/<job>.yaml`` for every job whose file is missing or differs (unchanged files
    keep their timestamps, so Snakemake re-runs only the jobs that changed); returns how many were written."""
    written = 0
    for job in jobs.values():
        jobs_dir = Path(results_dir) / "jobs"
        path = io.check_within(jobs_dir / f"{io.check_name(job.job_id, 'job id')}.yaml", jobs_dir, "job manifest")
        text = yaml.safe_dump(manifest(job, runs, Path(results_dir) / "runs"), sort_keys=False)
        if not path.exists() or path.read_text() != text:
            io.write_text(path, text)
            written += 1
    return written


def spec_from(where: str, data: Any) -> JobSpec:
    """The job described by a manifest mapping (``where`` names its source in errors). Every run's config is
    validated here (by its kind, :mod:`mtl_pipelines.kinds`), so a bad value anywhere in the manifest stops the
    job before any run writes a file."""
    from mtl_pipelines import kinds

    if (
        not isinstance(data, Mapping)
        or not isinstance(data.get("runs"), list)
        or not data.get("job")
        or not isinstance(data.get("runs_root"), str)
        or not data["runs_root"]
    ):
        raise ValueError(
            f"{where}: not a job manifest (needs 'job', 'runs_root' (a directory) and a list 'runs'); the workflow "
            "writes it when it builds the DAG: delete it and run the workflow again"
        )
    out = []
    for i, entry in enumerate(data["runs"]):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("config"), Mapping) or "id" not in entry:
            raise ValueError(f"{where}: runs[{i}] needs 'id' and a mapping 'config'")
        stl = entry.get("stl", [])
        if not isinstance(stl, list):
            raise ValueError(f"{where}: runs[{i}].stl: {stl!r} is not a list of run ids")
        run_id = io.check_name(entry["id"], f"{where}: runs[{i}].id")
        config = kinds.resolve(entry["config"], f"{where}: runs[{i}] ({run_id}).config")
        out.append(JobRun(run_id, config, [str(s) for s in stl]))
    return JobSpec(str(data["job"]), Path(data["runs_root"]), out, where)


def load_manifest(path: str | Path) -> JobSpec:
    """The job of a manifest file (FileNotFoundError / ValueError name the file and what is wrong)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; give a job manifest file (<results>/jobs/<job>.yaml)")
    if not path.is_file():
        raise FileNotFoundError(f"job manifest {path} does not exist; the workflow writes it when it builds the DAG")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); give a job manifest") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    return spec_from(str(path), data)


class JobFailed(RuntimeError):
    """Some runs of a job failed (the message names each with its error)."""


def _each(spec: JobSpec, what: str, work: Callable[[JobRun, Path], Any], log: Callable[[str], None]) -> dict:
    """Apply ``work`` to every run of the job; a failing run does not stop the others, but the job fails
    at the end naming every failed run (its traceback is in the log)."""
    done: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for i, run in enumerate(spec.runs, 1):
        run_dir = spec.run_dir(run)
        began = time.perf_counter()
        try:
            work(run, run_dir)
        except Exception as exc:  # any error of one run: reported below, with the run it belongs to
            traceback.print_exc(file=sys.stderr)
            failed[run.run_id] = f"{type(exc).__name__}: {exc}"
            log(f"[{i}/{len(spec.runs)}] {what} {run.run_id} FAILED: {failed[run.run_id]}")
            continue
        seconds = time.perf_counter() - began
        done[run.run_id] = {"seconds": round(seconds, 3)}
        log(f"[{i}/{len(spec.runs)}] {what} {run.run_id} ({seconds:.1f}s)")
    if failed:
        details = "; ".join(f"{r}: {m}" for r, m in failed.items())
        raise JobFailed(f"{len(failed)} of {len(spec.runs)} runs of job {spec.job_id} failed to {what}: {details}")
    return done


def train_job(
    spec: JobSpec, *, stamp: str | Path | None = None, log: Callable[[str], None] = print, **options: Any
) -> dict:
    """Train (or resume, or skip when finished) every run of the job with the trainer of its kind
    (:func:`mtl_pipelines.kinds.train`); write ``stamp`` when all succeeded. ``options``: ``device``,
    ``restart``, ``trust_checkpoints``."""
    from mtl_pipelines import kinds

    def work(run: JobRun, run_dir: Path) -> None:
        kinds.train(run.config, run_dir, progress=False, log=log, **options)

    done = _each(spec, "train", work, log)
    summary = {"job": spec.job_id, "runs": done}
    if stamp:
        io.write_json(stamp, summary)
    return summary


def evaluate_job(
    spec: JobSpec, *, stamp: str | Path | None = None, log: Callable[[str], None] = print, **options: Any
) -> dict:
    """Evaluate every run of the job (clean selected + corrupted test sets) against its STL runs.
    ``options`` go to :func:`mtl_pipelines.evaluate.evaluate_run` (``device``, ``trust_checkpoints``).
    A job of runs that evaluate while they train (MT10 SAC) is refused (ValueError): it has no evaluation."""
    from mtl_pipelines import kinds
    from mtl_pipelines.evaluate import evaluate_run

    for run in spec.runs:
        kind = kinds.get(run.config)
        if not kind.evaluated_separately:
            raise ValueError(
                f"{spec.source}: run {run.run_id} is a {kind.name} run, evaluated while it trains (its final.json): "
                "there is nothing to evaluate; its train job finishes it"
            )

    def work(run: JobRun, run_dir: Path) -> None:
        evaluate_run(run_dir, stl_runs=[spec.runs_root / s for s in run.stl], progress=False, **options)

    summary = {"job": spec.job_id, "runs": _each(spec, "evaluate", work, log)}
    if stamp:
        io.write_json(stamp, summary)
    return summary
