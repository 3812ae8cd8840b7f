"""Workflow jobs (runs batched per process): grouping, manifests, a failing run, the CLI and DVC forms."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_configs import scenes_config

from mtl_pipelines import dvc, grid, jobs

TINY = scenes_config("tiny", train={"epochs": 1, "seed": 0}, eval={"selection": "last_k", "last_k": 1}, sizes=(4, 4, 4))


@pytest.fixture(scope="module")
def default_plan() -> grid.Plan:
    return grid.plan(grid.load_profile("default"))


def test_jobs_partition_the_runs_without_mixing_stl_and_mtl(default_plan: grid.Plan) -> None:
    per_job = grid.load_profile("default")["runs_per_job"]
    runs, plan_jobs = default_plan.runs, default_plan.jobs
    members = [r for j in plan_jobs.values() for r in j.runs]
    assert sorted(members) == sorted(runs)  # every run in exactly one job
    owner = {r: j.job_id for j in plan_jobs.values() for r in j.runs}
    for job in plan_jobs.values():
        assert 1 <= len(job.runs) <= per_job
        kinds = {(runs[r].benchmark, runs[r].model_key, runs[r].is_stl) for r in job.runs}
        assert len(kinds) == 1, (job.job_id, kinds)
        assert job.benchmark == runs[job.runs[0]].benchmark
        # the STL runs an MTL run is selected against live in the jobs it needs, and those hold only STL runs
        for run_id, stl in job.stl.items():
            assert stl == [r.run_id for r in grid.stl_runs_for(runs, runs[run_id])] and stl
            assert {owner[s] for s in stl} <= set(job.needs)
        for needed in job.needs:
            assert all(runs[r].is_stl for r in plan_jobs[needed].runs)
            assert not plan_jobs[needed].needs  # no chains, hence no cycles
    assert any(len(j.runs) > 1 for j in plan_jobs.values())


def test_one_run_per_job_keeps_run_ids(default_plan: grid.Plan) -> None:
    single = jobs.group(default_plan.runs, 1)
    assert set(single) == set(default_plan.runs)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "4"])
def test_invalid_runs_per_job_is_refused(default_plan: grid.Plan, bad: object) -> None:
    with pytest.raises(ValueError, match=r"runs_per_job must be an integer >= 1, got"):
        jobs.group(default_plan.runs, bad)  # type: ignore[arg-type]


def test_manifests_round_trip_and_are_rewritten_only_when_changed(default_plan: grid.Plan, tmp_path: Path) -> None:
    some = dict(list(default_plan.jobs.items())[:3])
    assert jobs.write_manifests(some, default_plan.runs, tmp_path) == 3
    assert jobs.write_manifests(some, default_plan.runs, tmp_path) == 0  # unchanged: timestamps kept
    for job in some.values():
        spec = jobs.load_manifest(tmp_path / "jobs" / f"{job.job_id}.yaml")
        assert spec.job_id == job.job_id and spec.runs_root == tmp_path / "runs"
        assert [r.run_id for r in spec.runs] == job.runs
        assert [r.config for r in spec.runs] == [default_plan.runs[r].config for r in job.runs]
        assert [r.stl for r in spec.runs] == [job.stl.get(r, []) for r in job.runs]


def test_params_form_matches_the_manifest(default_plan: grid.Plan, tmp_path: Path) -> None:
    _, params_text, _ = dvc.render("default")
    params = tmp_path / "params.yaml"
    params.write_text(params_text)
    job = next(j for j in default_plan.jobs.values() if j.stl)
    jobs.write_manifests({job.job_id: job}, default_plan.runs, tmp_path)
    from_file = jobs.load_manifest(tmp_path / "jobs" / f"{job.job_id}.yaml")
    from_params = dvc.job_spec(params, job.job_id, tmp_path / "runs")
    assert from_params == from_file
    with pytest.raises(ValueError, match=r"has no job 'nope'"):
        dvc.job_spec(params, "nope", tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "not a job manifest"),
        ("job: j\nruns_root: r\nruns: [{id: a}]", r"runs\[0\] needs 'id'"),
        ("runs: [1", "not valid YAML"),
    ],
)
def test_malformed_manifest_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        jobs.load_manifest(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        jobs.load_manifest(tmp_path / "missing.yaml")


def _manifest(tmp_path: Path, configs: dict[str, dict]) -> Path:
    path = tmp_path / "jobs" / "j.yaml"
    path.parent.mkdir(parents=True)
    runs = [{"id": k, "stl": [], "config": v} for k, v in configs.items()]
    path.write_text(yaml.safe_dump({"job": "j", "runs_root": str(tmp_path / "runs"), "runs": runs}))
    return path


def test_a_failing_run_does_not_stop_the_others_but_fails_the_job(tmp_path: Path) -> None:
    bad = {**TINY, "optimizer": {"name": "adam", "lr": 1e30}, "train": {**TINY["train"], "epochs": 2}}
    splits = {"train": {"size": 8}, "val": {"size": 4}, "test": {"size": 4}}
    bad["dataset"] = {**TINY["dataset"], "split_options": splits}
    path = _manifest(tmp_path, {"a-diverges": bad, "b-fine": TINY})
    stamp = tmp_path / "trained.json"
    command = [sys.executable, "-m", "mtl_pipelines.cli", "train", "--job", str(path), "--stamp", str(stamp)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "1 of 2 runs of job j failed to train: a-diverges: NonFiniteLossError" in done.stderr
    assert (tmp_path / "runs" / "b-fine" / "final.json").is_file()  # the other run finished
    assert not (tmp_path / "runs" / "a-diverges" / "final.json").exists()
    assert not stamp.exists()  # the workflow sees the job as failed


def test_job_train_and_evaluate_through_the_cli(tmp_path: Path) -> None:
    path = _manifest(tmp_path, {"r1": TINY, "r2": {**TINY, "method": {"name": "exact+mgda"}}})
    for what in ("train", "evaluate"):
        stamp = tmp_path / f"{what}.json"
        command = [sys.executable, "-m", "mtl_pipelines.cli", what, "--job", str(path), "--stamp", str(stamp)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert f"{what} job j: 2 runs" in done.stdout
        assert set(json.loads(stamp.read_text())["runs"]) == {"r1", "r2"}
    for run in ("r1", "r2"):
        assert (tmp_path / "runs" / run / "eval.json").is_file()
    # a second train of the job skips the finished runs (same final.json, nothing retrained)
    before = (tmp_path / "runs" / "r1" / "checkpoint.pt").stat().st_mtime_ns
    jobs.train_job(jobs.load_manifest(path), log=lambda _: None)
    assert (tmp_path / "runs" / "r1" / "checkpoint.pt").stat().st_mtime_ns == before


def test_cli_refuses_mixed_job_arguments(tmp_path: Path) -> None:
    from mtl_pipelines.cli import main

    assert main(["train", "x.yaml", "--job", "j.yaml"]) == 2
    assert main(["evaluate", "run", "--job", "j.yaml"]) == 2
    assert main(["evaluate", "--job", "j", "--params", "params.yaml"]) == 2  # --runs-root missing
