"""The MT10 SAC runs of 003_table5 as workflow jobs: ``mtl train --job`` trains a (tiny) MT10 job from the manifest
the workflow writes, a job killed (SIGKILL) between two checkpoints and started again ends with the numbers of an
uninterrupted job, ``mtl evaluate --job`` refuses it (its runs evaluate while they train), and the Snakemake dry
run of the paper profile schedules every (method, seed) run as its own GPU train job.

Needs the extra ``rl`` (metaworld): the runs are planned only where it is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("metaworld", reason="metaworld is not installed (pip install 'mtl-pipelines[rl]')")

from mtl_pipelines import cli, grid, io, jobs

ROOT = Path(__file__).resolve().parents[2]
TINY = {"total_steps": 40, "init_steps": 20, "max_episode_steps": 20, "eval_every": 20, "batch_size": 10,
        "buffer_capacity": 100, "hidden_dim": 8, "num_layers": 1}  # fmt: skip

# `mtl train --job` in a process that kills itself (SIGKILL: no handler, no cleanup) at its 25th SAC update after
# the first checkpoint, i.e. between the checkpoints of steps 20 and 40
KILLED_AT_UPDATE = """
import os, signal, sys
from mtl_pipelines import cli
from mtl_pipelines.rl import sac, training

saved, updates = [], []
save, update = training.MT10Run.save_checkpoint, sac.SACUpdate.update

def counting_save(self, *args, **kwargs):
    save(self, *args, **kwargs)
    saved.append(1)

def killing_update(self, batch):
    if saved:
        updates.append(1)
        if len(updates) == 25:
            os.kill(os.getpid(), signal.SIGKILL)
    return update(self, batch)

training.MT10Run.save_checkpoint, sac.SACUpdate.update = counting_save, killing_update
sys.exit(cli.main(sys.argv[1:]))
"""


def _job(tmp_path: Path, name: str) -> tuple[Path, grid.RunSpec]:
    """The manifest the workflow writes for the one MT10 run of a tiny profile, under ``tmp_path/name``."""
    profile = {
        **grid.load_profile("smoke"),
        "results_dir": str(tmp_path / name),
        "studies": ["003_table5"],
        "rl": {"mt10_sac": {**TINY, "methods": ["exact+pcgrad"], "device": "cpu"}},
    }
    plan = grid.plan(profile)
    [job] = plan.jobs.values()
    jobs.write_manifests(plan.jobs, plan.runs, profile["results_dir"])
    return tmp_path / name / "jobs" / f"{job.job_id}.yaml", plan.runs[job.runs[0]]


def _numbers(run_dir: Path) -> list[tuple]:
    return [(r["step"], r["success"], r["losses"]) for r in io.read_jsonl(run_dir / "metrics.jsonl")]


@pytest.mark.slow  # builds MT10 in two processes (~15-20 s each here) and trains three tiny runs
def test_an_mt10_train_job_killed_between_checkpoints_resumes_to_the_uninterrupted_numbers(tmp_path, capsys) -> None:
    manifest, run = _job(tmp_path, "killed")
    run_dir = tmp_path / "killed" / "runs" / run.run_id
    stamp = tmp_path / "killed.trained.json"
    argv = ["train", "--job", str(manifest), "--stamp", str(stamp), "--device", "cpu", "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_UPDATE, *argv], env=env, timeout=600, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert (run_dir / "checkpoint.pt").is_file() and not (run_dir / "final.json").exists() and not stamp.exists()
    assert [n[0] for n in _numbers(run_dir)] == [20]  # the evaluation of the checkpoint it left

    assert cli.main(argv) == 0  # the same command again: resumes from step 20
    out = capsys.readouterr().out
    assert f"resuming {run_dir} at step 20" in out and "train job" in out
    assert list(json.loads(stamp.read_text())["runs"]) == [run.run_id]

    reference, _ = _job(tmp_path, "uninterrupted")
    assert cli.main(["train", "--job", str(reference), "--device", "cpu", "--quiet"]) == 0
    uninterrupted = tmp_path / "uninterrupted" / "runs" / run.run_id
    assert _numbers(run_dir) == _numbers(uninterrupted) and [n[0] for n in _numbers(run_dir)] == [20, 40]
    final, expected = (json.loads((d / "final.json").read_text()) for d in (run_dir, uninterrupted))
    assert {k: v for k, v in final.items() if k != "seconds"} == {k: v for k, v in expected.items() if k != "seconds"}

    # a finished job run again trains nothing; it has no evaluation (its policy was evaluated while it trained)
    before = (run_dir / "checkpoint.pt").stat().st_mtime_ns
    assert cli.main(argv) == 0 and (run_dir / "checkpoint.pt").stat().st_mtime_ns == before
    capsys.readouterr()
    assert cli.main(["evaluate", "--job", str(manifest)]) == 2
    assert f"run {run.run_id} is a mt10_sac run, evaluated while it trains" in capsys.readouterr().err


def test_the_paper_profile_schedules_each_mt10_run_as_its_own_gpu_train_job(tmp_path) -> None:
    """Dry run of the paper profile (pipelines/profiles/paper: one GPU, 16 GB and 48 h per train job) on a copy of
    the workflow whose paper profile keeps only 003_table5 (the other studies' 3,900 runs are not the point)."""
    workdir = tmp_path / "wf"
    workdir.mkdir()
    shutil.copy2(ROOT / "Snakefile", workdir / "Snakefile")
    shutil.copytree(ROOT / "pipelines", workdir / "pipelines", ignore=shutil.ignore_patterns("src", "tests"))
    profile_path = workdir / "pipelines" / "configs" / "profiles" / "paper.yaml"
    paper = yaml.safe_load(profile_path.read_text())
    profile_path.write_text(yaml.safe_dump({**paper, "studies": ["003_table5"]}, sort_keys=False))
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "pipelines/profiles/paper", "--dry-run", "--printshellcmds",
         "reports/paper/003_table5/table.csv"],
        cwd=workdir, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MTL_PIPELINES_CONFIGS": str(workdir / "pipelines" / "configs")},
    )  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    blocks = re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", out, re.M | re.S)
    trains = [body for rule, body in blocks if rule == "train"]
    planned = grid.plan({**paper, "studies": ["003_table5"]}).runs
    assert len(trains) == len(planned) == 50
    for body in trains:
        job = re.search(r"wildcards: job=(\S+)", body).group(1)
        assert job in planned  # one run per job, named by its run id
        resources = re.search(r"resources: (.*)", body).group(1)
        assert {"gpu=1", "mem_mb=16000", "runtime=2880"} <= set(resources.split(", ")), resources
        assert "input: results/paper/jobs/" in body and "prepared" not in body  # no data to prepare
    commands = [line for line in out.splitlines() if " train --job " in line]
    assert len(commands) == 50 and all("--device cuda " in c for c in commands)
    # trained, not evaluated: no evaluate or prepare job; the report reads the trained runs
    assert {rule for rule, _ in blocks} == {"train", "report_study"}
