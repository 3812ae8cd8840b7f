"""Build the CPU image with podman from a local Debian base and run the pipeline inside it.

containers/install_tools.sh installs podman/runc/mmdebstrap with apt-get when missing; containers/build.sh
builds `--target cpu --base local` (a Debian bookworm rootfs made with mmdebstrap and imported, since no
image registry is reachable here) with the pinned stack from an offline wheelhouse. The base rootfs, the
wheelhouse and podman's layers are cached on the machine (/var/cache/mtl-containers, /var/lib/containers),
so only the first build on a fresh machine is slow. Then a subset of the smoke profile runs inside the image
as its non-root user and must give the same tables, byte for byte, as the same targets run on the host.
Needs root and apt-get (or podman already installed); skipped with the reason otherwise, or when
MTL_SKIP_CONTAINER is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTAINERS = ROOT / "containers"
TAG = "localhost/mtl-repro:test-cpu"
# A deterministic smoke study (002_fig4 measures wall time, so it cannot match across runs).
STUDY = "004_table2"
TARGET = f"reports/smoke/{STUDY}/table.csv"

pytestmark = pytest.mark.integration


def _skip_reason() -> str | None:
    if sys.platform != "linux":
        return f"podman builds need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "the container test needs root (apt-get, podman storage under /var/lib/containers)"
    if not shutil.which("podman") and not shutil.which("apt-get"):
        return "podman is not installed and apt-get is unavailable to install it"
    if os.environ.get("MTL_SKIP_CONTAINER"):
        return "MTL_SKIP_CONTAINER is set"
    return None


def _run(*args: str | Path, cwd: Path = ROOT, timeout: float = 900, env: dict | None = None):
    full_env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS / "containers.conf"), **(env or {})}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def cpu_image():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    tools = _run("bash", CONTAINERS / "install_tools.sh", timeout=600)
    if tools.returncode != 0:
        pytest.skip(f"could not install podman with apt-get: {tools.stderr.strip()[-500:]}")
    t0 = time.monotonic()
    build = _run(
        "bash", CONTAINERS / "build.sh", "--target", "cpu", "--base", "local", "--tag", TAG, "--prune", timeout=1800
    )
    assert build.returncode == 0, f"image build failed:\n{build.stdout[-3000:]}\n{build.stderr[-5000:]}"
    print(f"\ncontainer build (cpu, local base): {time.monotonic() - t0:.0f} s")
    return TAG


def test_image_has_the_pinned_stack_a_non_root_user_and_mtl_as_entry_point(cpu_image):
    res = _run("podman", "run", "--rm", cpu_image, "--help")
    assert res.returncode == 0 and "usage: mtl" in res.stdout, res.stdout + res.stderr
    probe = (
        "import os, torch, torchvision, snakemake, dvc, mtl_pipelines, mtl_core;"
        "print(os.getuid(), torch.__version__, torchvision.__version__, mtl_pipelines.__file__)"
    )
    res = _run("podman", "run", "--rm", "--entrypoint", "python", cpu_image, "-c", probe)
    assert res.returncode == 0, res.stderr
    uid, torch_v, vision_v, where = res.stdout.split()
    assert uid != "0"
    assert (torch_v.split("+")[0], vision_v.split("+")[0]) == ("2.14.1", "0.29.1")
    assert where.startswith("/opt/mtl/src/pipelines/")


SMK = ["snakemake", TARGET, "--cores", "2", "--config", "profile=smoke"]


@pytest.fixture(scope="module")
def host_run(cpu_image, tmp_path_factory, workflow_copy) -> Path:
    """The same targets run on the host (the tables every containerised run must reproduce byte for byte)."""
    host = workflow_copy(tmp_path_factory.mktemp("host") / "wf")
    t0 = time.monotonic()
    res = _run(sys.executable, "-m", *SMK, cwd=host, timeout=900)
    assert res.returncode == 0, f"snakemake on the host failed:\n{(res.stdout + res.stderr)[-6000:]}"
    print(f"\n{STUDY} smoke on the host: {time.monotonic() - t0:.0f} s")
    return host


def _same_tables_written_by(work: Path, host: Path, uid: int) -> None:
    for name in ("table.csv", "table.md", "table.tex"):
        ours = (work / "reports" / "smoke" / STUDY / name).read_bytes()
        assert ours == (host / "reports" / "smoke" / STUDY / name).read_bytes(), name
    # Every run of the study was trained and evaluated, by the expected user.
    evals = sorted((work / "results" / "smoke" / "runs").glob("*/eval.json"))
    assert evals and all(p.stat().st_uid == uid for p in evals)


def test_smoke_study_inside_the_image_matches_the_host_run(cpu_image, host_run, tmp_path, workflow_copy):
    inside = workflow_copy(tmp_path / "inside")
    inside.chmod(0o777)  # the image's user (uid 1000) writes results into the bind-mounted directory
    t0 = time.monotonic()
    res = _run(
        "podman", "run", "--rm", "-v", f"{inside}:{inside}", "-w", inside, "--entrypoint", SMK[0], cpu_image,
        *SMK[1:], timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, f"snakemake in the container failed:\n{(res.stdout + res.stderr)[-6000:]}"
    _same_tables_written_by(inside, host_run, uid=1000)  # the image's non-root user
    print(f"\n{STUDY} smoke: {time.monotonic() - t0:.0f} s with Snakemake inside the container")


def test_sdm_apptainer_runs_every_job_inside_the_image(cpu_image, host_run, tmp_path, workflow_copy):
    """Snakemake on the host with `--sdm apptainer` and `container_image` set (the cluster set-up of
    docs/hpc.md) wraps every job in `apptainer exec <image>`. Apptainer itself is not packaged here, so
    tests/fixtures/apptainer_shim stands in for its CLI and runs each wrapped command in the OCI image the SIF
    would be built from: what is tested is the workflow side (the directive, the command used inside the
    image, the bind of the working directory), not Apptainer."""
    work = workflow_copy(tmp_path / "sdm")
    sif = tmp_path / "mtl-repro-cpu.sif"
    sif.write_text("placeholder: the shim runs the OCI image instead\n")
    calls = tmp_path / "apptainer_calls.log"
    env = {
        "PATH": f"{ROOT / 'tests/fixtures/apptainer_shim'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
        f"{os.environ.get('PATH', '')}",
        "MTL_APPTAINER_LOG": str(calls),
        "MTL_APPTAINER_OCI_IMAGE": cpu_image,
    }
    t0 = time.monotonic()
    res = _run(
        sys.executable, "-m", *SMK, f"container_image={sif}", "--sdm", "apptainer", cwd=work, env=env, timeout=900
    )
    assert res.returncode == 0, f"snakemake --sdm apptainer failed:\n{(res.stdout + res.stderr)[-6000:]}"
    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", res.stdout + res.stderr)
    assert steps, (res.stdout + res.stderr)[-3000:]
    executed = calls.read_text().splitlines()
    # one `apptainer exec` per job, each on the configured image, running the CLI of the image's python
    assert len(executed) == int(steps[-1][1]), executed
    assert all(f" {sif} " in c and "python -m mtl_pipelines.cli" in c for c in executed), executed
    assert str(Path(sys.executable).parent) not in "\n".join(executed)  # no host interpreter inside
    _same_tables_written_by(work, host_run, uid=os.getuid())  # Apptainer runs jobs as the calling user
    print(f"\n{STUDY} smoke: {len(executed)} jobs through --sdm apptainer in {time.monotonic() - t0:.0f} s")


def test_cuda_target_is_the_cpu_stack_plus_the_nvidia_runtime_settings(cpu_image):
    """The `cuda` stage reuses every layer of `cpu` (so it builds in seconds here) and adds only the variables
    through which the NVIDIA container toolkit injects the host driver. No GPU here: nothing runs on one."""
    cuda_tag = TAG.replace("-cpu", "-cuda")
    build = _run("bash", CONTAINERS / "build.sh", "--target", "cuda", "--base", "local", "--tag", cuda_tag)
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        layers = {}
        for tag in (cpu_image, cuda_tag):
            res = _run("podman", "image", "inspect", "--format", "{{json .RootFS.Layers}}|{{json .Config.Env}}", tag)
            assert res.returncode == 0, res.stderr
            layer_json, env_json = res.stdout.strip().split("|", 1)
            layers[tag] = (json.loads(layer_json), json.loads(env_json))
        assert layers[cuda_tag][0][: len(layers[cpu_image][0])] == layers[cpu_image][0]
        added = set(layers[cuda_tag][1]) - set(layers[cpu_image][1])
        # the NVIDIA runtime's variables and cuBLAS's workspace for deterministic GEMMs (train.deterministic)
        assert added == {
            "NVIDIA_VISIBLE_DEVICES=all",
            "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
            "CUBLAS_WORKSPACE_CONFIG=:4096:8",
        }
    finally:
        _run("podman", "rmi", cuda_tag)
