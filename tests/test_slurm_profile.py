"""The Slurm profile and the sbatch wrapper, without a Slurm cluster (fast; see test_slurm_integration.py).

The profile is parsed the way Snakemake parses it (YTE-templated YAML); the per-cluster settings come from
the environment; a dry run with the profile proves every key is a valid Snakemake option; the sbatch
wrapper is run outside Slurm against a stand-in `dvc` that records its arguments.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from snakemake.profiles import ProfileConfigFileParser

pytest.importorskip(
    "snakemake_executor_plugin_slurm",
    reason="snakemake-executor-plugin-slurm is not installed (pip install snakemake-executor-plugin-slurm)",
)

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "profiles" / "slurm"
FIXTURE = ROOT / "tests" / "fixtures" / "hpc_workflow"
WRAPPER = ROOT / "scripts" / "slurm" / "dvc_repro.sbatch"


def _parse_profile(monkeypatch, **env: str) -> dict:
    for key in ("MTL_SLURM_ACCOUNT", "MTL_SLURM_PARTITION"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with open(PROFILE / "config.yaml") as stream:
        return dict(ProfileConfigFileParser().parse(stream))


def test_profile_selects_the_slurm_executor_with_defaults_for_undeclared_resources(monkeypatch):
    parsed = _parse_profile(monkeypatch)
    assert parsed["executor"] == "slurm"
    defaults = dict(item.split("=", 1) for item in parsed["default-resources"])
    assert defaults == {"runtime": "60", "mem_mb": "4000"}  # no account/partition unless asked for
    assert int(parsed["latency-wait"]) >= 30  # shared file systems lag behind the compute node


def test_profile_takes_account_and_partition_from_the_environment(monkeypatch):
    parsed = _parse_profile(monkeypatch, MTL_SLURM_ACCOUNT="proj123", MTL_SLURM_PARTITION="gpu-a100")
    defaults = dict(item.split("=", 1) for item in parsed["default-resources"])
    assert defaults["slurm_account"] == "proj123"
    assert defaults["slurm_partition"] == "gpu-a100"
    # An empty variable means "not set", not an empty sbatch -A.
    parsed = _parse_profile(monkeypatch, MTL_SLURM_ACCOUNT="")
    assert not any(item.startswith("slurm_account") for item in parsed["default-resources"])


def test_profile_is_accepted_by_snakemake_and_passes_rule_resources_through(tmp_path):
    """Dry run of the fixture workflow with the profile: every key is a known option, resources resolve."""
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(FIXTURE / "Snakefile"), "--directory",
         str(tmp_path), "--profile", str(PROFILE), "--dry-run"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "MTL_SLURM_PARTITION": "short"},
    )  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    # Rule-declared values win over the profile's defaults; the partition default reaches every job.
    assert "rule train:" in out and "mem_mb=300" in out and "runtime=5" in out, out[-4000:]
    assert "slurm_partition=short" in out


def test_partition_example_is_readable_by_the_plugin():
    from snakemake_executor_plugin_slurm.partitions import read_partition_file

    partitions = {p.name: p for p in read_partition_file(PROFILE / "partitions.example.yaml")}
    assert partitions["gpu"].limits.max_gpu > 0
    assert partitions["cpu"].limits.max_gpu == 0  # CPU jobs must never be placed on GPU nodes by default


def _fake_dvc(bin_dir: Path, record: Path) -> None:
    bin_dir.mkdir()
    script = bin_dir / "dvc"
    script.write_text(f'#!/usr/bin/env bash\necho "dvc $* | OMP=$OMP_NUM_THREADS" >> {record}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def _run_wrapper(cwd: Path, bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MTL_"))}
    full_env.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", MTL_VENV=str(cwd / "no-venv"), **env)
    return subprocess.run(
        ["bash", str(WRAPPER), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60
    )


def test_sbatch_wrapper_splits_stages_from_dvc_options_and_uses_the_allocation_threads(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    record = tmp_path / "calls.txt"
    _fake_dvc(tmp_path / "bin", record)
    res = _run_wrapper(tmp_path, tmp_path / "bin", "train_a", "report_b", "--", "--force", "--no-commit",
                       SLURM_CPUS_PER_TASK="3", SLURM_JOB_ID="42", MTL_DVC_PUSH="1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert record.read_text().splitlines() == [
        "dvc repro --force --no-commit train_a report_b | OMP=3",
        "dvc push train_a report_b | OMP=3",
    ]
    assert "job 42" in res.stdout and "stages: train_a report_b" in res.stdout


def test_sbatch_wrapper_runs_in_the_submit_directory_and_refuses_a_non_repository(tmp_path):
    record = tmp_path / "calls.txt"
    _fake_dvc(tmp_path / "bin", record)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = _run_wrapper(elsewhere, tmp_path / "bin")
    assert res.returncode == 2 and "no dvc.yaml" in res.stderr
    assert not record.exists()
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    res = _run_wrapper(elsewhere, tmp_path / "bin", SLURM_SUBMIT_DIR=str(tmp_path), MTL_DVC_PULL="1")
    assert res.returncode == 0, res.stderr
    assert record.read_text().splitlines() == ["dvc pull --allow-missing | OMP=1", "dvc repro | OMP=1"]


@pytest.mark.parametrize("command", ["", "restart"])
def test_local_slurm_helper_rejects_unknown_commands(command):
    res = subprocess.run(["bash", str(ROOT / "scripts" / "slurm" / "local_slurm.sh"), command],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert res.returncode == 1 and "usage:" in res.stderr


def _submitted_resources(dry_run_log: str) -> dict[str, set[str]]:
    """Rule -> the set of `gpu=` values of its jobs, from a Snakemake dry-run listing."""
    found: dict[str, set[str]] = {}
    for rule, body in re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", dry_run_log, re.M | re.S):
        gpu = re.search(r"resources:.*?\bgpu=(\d+)", body)
        found.setdefault(rule, set()).add(gpu.group(1) if gpu else "0")
    return found


@pytest.mark.parametrize(("gpus", "expected"), [("0", set()), ("1", {"--gpus=1"})])
def test_training_jobs_request_gpus_only_when_the_pipeline_profile_asks(tmp_path, gpus, expected):
    """The pipeline's `gpus` setting (0 in smoke/default, 1 in paper) reaches sbatch as --gpus, for the
    training and evaluation rules only; data preparation and reports never ask for a GPU; the training and
    evaluation commands run on the device they reserved."""
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    workdir = tmp_path / "wf"
    workdir.mkdir()
    shutil.copy2(ROOT / "Snakefile", workdir / "Snakefile")
    shutil.copytree(ROOT / "pipelines", workdir / "pipelines", ignore=shutil.ignore_patterns("src", "tests"))
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(PROFILE), "--dry-run", "--forceall",
         "reports/smoke/004_table2/table.csv", "--config", "profile=smoke", f"gpus={gpus}"],
        cwd=workdir, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MTL_PIPELINES_CONFIGS": str(workdir / "pipelines" / "configs")},
    )  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    gpu_by_rule = _submitted_resources(out)
    assert {"prepare", "train", "evaluate", "report_study"} <= set(gpu_by_rule), gpu_by_rule
    assert gpu_by_rule["train"] == gpu_by_rule["evaluate"] == {gpus}
    assert gpu_by_rule["prepare"] == gpu_by_rule["report_study"] == {"0"}
    # ... and sets the run device from them: cuda (the GPU Slurm made visible) or cpu (never an unreserved GPU)
    commands = [line for line in out.splitlines() if re.search(r"\b(train|evaluate) --job ", line)]
    device = "cuda" if gpus != "0" else "cpu"
    assert commands and all(f"--device {device} " in line for line in commands), commands[:2]

    class _Job:  # what the plugin reads of a job when it writes the sbatch call
        def __init__(self, gpu: str) -> None:
            self.resources = {"gpu": int(gpu)}

    sbatch_flags = set(set_gres_string(_Job(gpus)).split())
    assert sbatch_flags == expected
