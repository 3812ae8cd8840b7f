"""A real single-node Slurm on this machine runs workflows through `snakemake --executor slurm`.

Started with scripts/slurm/local_slurm.sh (Debian's slurmctld/slurmd/munge, installed by apt-get when
missing), stopped again at the end if this module started it. Needs root and apt-get (or Slurm already
installed); otherwise every test here is skipped with the reason. Each Slurm job costs ~10-15 s of
scheduling and polling overhead, so the workflows are small: the HPC fixture workflow (4 jobs) and a
subset of the pipeline's smoke profile, each compared byte for byte with a local run of the same targets.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCAL_SLURM = ROOT / "scripts" / "slurm" / "local_slurm.sh"
PROFILE = ROOT / "profiles" / "slurm"
FIXTURE = ROOT / "tests" / "fixtures" / "hpc_workflow"
# No slurmdbd on the test cluster: sacct has no records, so job states come from squeue (the cluster keeps
# finished jobs for MinJobAge=600 s). Poll every 2 s instead of the plugin's 40 s default; no account exists.
SLURM_TEST_ARGS = [
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--slurm-no-account",
    "--slurm-keep-successful-logs",
    "--retries",
    "0",
]

pytestmark = pytest.mark.integration


def _skip_reason() -> str | None:
    if sys.platform != "linux":
        return f"local Slurm needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "local Slurm needs root (writes /etc/slurm/slurm.conf, starts slurmctld/slurmd/munged)"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "Slurm is not installed and apt-get is unavailable to install it"
    if os.environ.get("MTL_SKIP_SLURM"):
        return "MTL_SKIP_SLURM is set"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install snakemake-executor-plugin-slurm)"
    return None


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test interpreter's bin first on PATH: jobs run `python`, `snakemake` and `dvc` from it."""
    env = {**os.environ, **(extra or {})}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SLURM_CONF", None)
    return env


def _sh(
    *args: str | Path, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_env(env), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def local_slurm():
    """A running single-node Slurm; stopped afterwards only if this fixture started it."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    install = _sh("bash", LOCAL_SLURM, "install", timeout=600)
    if install.returncode != 0:
        pytest.skip(f"could not install Slurm with apt-get: {install.stderr.strip()[-500:]}")
    already_up = _sh("sinfo", "-h").returncode == 0
    if not already_up:
        # 4 job slots on the 2-core test machine: the jobs' start-up and polling waits overlap.
        start = _sh("bash", LOCAL_SLURM, "start", timeout=120, env={"LOCAL_SLURM_CPUS": "4"})
        assert start.returncode == 0, f"local Slurm did not start:\n{start.stdout}\n{start.stderr}"
    try:
        yield
    finally:
        if not already_up:
            stop = _sh("bash", LOCAL_SLURM, "stop", timeout=120)
            assert stop.returncode == 0, stop.stderr


def _snakemake(workdir: Path, *args: str, snakefile: Path, timeout: float = 400) -> str:
    # The studies and profiles of the workflow copy, not of the installed checkout (which may be edited
    # while the test runs): Slurm jobs re-plan the grid and must see the same run ids as the submitter.
    configs = {"MTL_PIPELINES_CONFIGS": str(workdir / "pipelines" / "configs")}
    res = _sh(
        sys.executable, "-m", "snakemake", "--snakefile", snakefile, "--directory", workdir, *args,
        cwd=workdir, timeout=timeout, env=configs,
    )  # fmt: skip
    log = res.stdout + res.stderr
    assert res.returncode == 0, f"snakemake {' '.join(args)} failed:\n{log[-6000:]}"
    return log


def _slurm_job_ids(log: str) -> dict[str, str]:
    """Slurm job id of every submitted job, keyed by its Snakemake rule, from Snakemake's own log."""
    ids = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_([A-Za-z0-9_]+)", log)
    return {job: rule for job, rule in ids}


def _squeue_states(job_ids) -> dict[str, tuple[str, str]]:
    """(state, comment) of each job as slurmctld records it; the plugin puts the rule name in the comment."""
    res = _sh("squeue", "-h", "-t", "all", "-o", "%i|%T|%k", "-j", ",".join(job_ids))
    assert res.returncode == 0, res.stderr
    rows = [line.split("|", 2) for line in res.stdout.splitlines() if line.strip()]
    return {job: (state, comment) for job, state, comment in rows}


def test_fixture_workflow_runs_every_job_through_slurm_like_locally(local_slurm, tmp_path):
    via_slurm, local = tmp_path / "slurm", tmp_path / "local"
    via_slurm.mkdir()
    local.mkdir()
    snakefile = FIXTURE / "Snakefile"
    t0 = time.monotonic()
    log = _snakemake(via_slurm, "--profile", str(PROFILE), *SLURM_TEST_ARGS, snakefile=snakefile)
    slurm_s = time.monotonic() - t0
    _snakemake(local, "--cores", "2", snakefile=snakefile)

    jobs = _slurm_job_ids(log)
    # prepare, 2 x train, report: every non-local rule went through sbatch.
    assert sorted(jobs.values()) == ["prepare", "report", "train", "train"], log[-3000:]
    states = _squeue_states(jobs)
    for job, rule in jobs.items():
        state, comment = states[job]
        assert state == "COMPLETED", (job, rule, state)
        assert comment.startswith(f"rule_{rule}"), (job, comment)
    # Each job's own log names the Slurm job it ran in (the local run's name none).
    ran_in = {p.name: re.search(r"slurm_job_id=(\d*)", p.read_text()).group(1) for p in (via_slurm / "logs").iterdir()}
    assert sorted(ran_in.values()) == sorted(jobs), ran_in
    assert all(re.search(r"slurm_job_id=\n", p.read_text()) for p in (local / "logs").iterdir())

    table = (via_slurm / "reports" / "table.csv").read_bytes()
    assert table == (local / "reports" / "table.csv").read_bytes()
    assert table.count(b"\n") == 3  # header + one row per seed
    print(f"fixture workflow through Slurm: {len(jobs)} jobs in {slurm_s:.0f} s")


# A deterministic smoke study touching every rule kind but the index (002_fig4 measures wall time).
SMOKE_STUDY = "004_table2"


def test_smoke_study_through_slurm_gives_the_tables_of_the_local_run(local_slurm, tmp_path, workflow_copy):
    via_slurm = workflow_copy(tmp_path / "slurm")
    local = workflow_copy(tmp_path / "local")
    target = f"reports/smoke/{SMOKE_STUDY}/table.csv"
    t0 = time.monotonic()
    # --config takes every following word: keep it last.
    log = _snakemake(
        via_slurm, target, "--profile", str(PROFILE), *SLURM_TEST_ARGS, "--config", "profile=smoke",
        snakefile=via_slurm / "Snakefile", timeout=900,
    )  # fmt: skip
    slurm_s = time.monotonic() - t0
    t0 = time.monotonic()
    _snakemake(local, target, "--cores", "2", "--config", "profile=smoke", snakefile=local / "Snakefile")
    local_s = time.monotonic() - t0

    jobs = _slurm_job_ids(log)
    dry = _snakemake(
        local, target, "--forceall", "--dry-run", "--config", "profile=smoke", snakefile=local / "Snakefile"
    )
    expected = re.findall(r"^rule (\w+):", dry, re.M)
    assert sorted(jobs.values()) == sorted(expected), (jobs, expected)
    assert {"prepare", "train", "evaluate", "report_study"} <= set(jobs.values())
    states = _squeue_states(jobs)
    assert {states[j][0] for j in jobs} == {"COMPLETED"}, states

    for name in ("table.csv", "table.md", "table.tex"):
        produced = (via_slurm / "reports" / "smoke" / SMOKE_STUDY / name).read_bytes()
        assert produced == (local / "reports" / "smoke" / SMOKE_STUDY / name).read_bytes(), name
    print(f"{SMOKE_STUDY} smoke: {len(jobs)} Slurm jobs in {slurm_s:.0f} s, local run {local_s:.0f} s")


def test_dvc_repro_sbatch_wrapper_runs_the_dag_in_one_allocation(local_slurm, tmp_path, monkeypatch):
    """scripts/slurm/dvc_repro.sbatch on a two-stage DVC project: outputs, dvc.lock, then a no-op rerun."""
    repo = tmp_path / "proj"
    repo.mkdir()
    steps = FIXTURE / "steps.py"
    (repo / "dvc.yaml").write_text(
        "stages:\n"
        "  prepare:\n"
        f"    cmd: python {steps} prepare data/points.csv\n"
        "    outs: [data/points.csv]\n"
        "  train:\n"
        f"    cmd: python {steps} train data/points.csv 0 results/fit.json\n"
        "    deps: [data/points.csv]\n"
        "    outs: [results/fit.json]\n"
    )
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        res = _sh(*cmd, cwd=repo)
        assert res.returncode == 0, res.stderr
    wrapper = ROOT / "scripts" / "slurm" / "dvc_repro.sbatch"

    def submit(*extra: str) -> str:
        res = _sh(
            "sbatch", "--wait", "--parsable", "--cpus-per-task=1", "--mem=500", "--time=5",
            "--output", f"{repo}/slurm-%j.out", wrapper, *extra, cwd=repo, timeout=300,
        )  # fmt: skip
        job = res.stdout.strip().split(";")[0]
        out = (repo / f"slurm-{job}.out").read_text() if job else ""
        assert res.returncode == 0, f"sbatch failed: {res.stderr}\n{out}"
        return out

    monkeypatch.setenv("MTL_VENV", str(Path(sys.executable).parent.parent))
    first = submit()
    assert re.search(r"dvc_repro.sbatch: job \d+ on .*stages: all, threads: 1", first), first
    fit = (repo / "results" / "fit.json").read_text()
    assert '"seed": 0' in fit
    assert (repo / "dvc.lock").is_file()
    second = submit("train")
    assert "stages: train" in second and re.search(r"up to date|didn't change", second), second
    assert (repo / "results" / "fit.json").read_text() == fit
