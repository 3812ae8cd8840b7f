"""Container definitions, checked without building (fast; test_container_integration.py builds and runs).

The image must install what the README install installs (same distributions, extras and lock), run as a
non-root user with `mtl` as entry point, from a pinned base that is a build argument; the podman settings
must fit this kind of machine; the Apptainer definition must wrap the same image.
"""

from __future__ import annotations

import importlib.util
import re
import resource
import shlex
import subprocess
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
CONTAINERS = ROOT / "containers"


def _requirements_module():
    spec = importlib.util.spec_from_file_location("mtl_container_requirements", CONTAINERS / "requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _name(req: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", req).group(0)).lower()


def _bootstrap_distributions() -> dict[str, set[str]]:
    """Distribution dir -> extras, as scripts/bootstrap.sh installs them."""
    text = (ROOT / "scripts" / "bootstrap.sh").read_text()
    found: dict[str, set[str]] = {}
    for spec in re.findall(r"-e\s+\"?([A-Za-z0-9_./-]+(?:\[[^\]]*\])?)\"?", text):
        path, _, extras = spec.partition("[")
        found[path.rstrip("/")] = {e for e in extras.rstrip("]").split(",") if e}
    return found


def test_image_installs_every_distribution_and_requirement_of_the_readme_install():
    req = _requirements_module()
    bootstrap = _bootstrap_distributions()
    assert "packages/mtl-core" in bootstrap, bootstrap  # the parser found the install line
    assert set(bootstrap) <= set(req.DISTRIBUTIONS), "a distribution of bootstrap.sh is missing from the image"
    readme = req.third_party_requirements(ROOT, {path: tuple(extras) for path, extras in bootstrap.items()})
    image = req.third_party_requirements(ROOT)
    assert set(readme) <= set(image), sorted(set(readme) - set(image))


def test_image_requirements_are_the_locked_stack():
    req = _requirements_module()
    reqs = req.third_party_requirements(ROOT)
    names = [_name(r) for r in reqs]
    assert reqs[:2] == ["torch==2.14.1", "torchvision==0.29.1"]
    assert len(names) == len(set(names)), "a requirement is listed twice"
    assert not {"mtl-core", "mtl-data", "mtl-models", "mtl-pipelines"} & set(names)
    assert {"snakemake", "dvc", "numpy", "pyyaml"} <= set(names)
    # Every runtime requirement has an exact pin in the README install's lock, so the image is as locked.
    lock = ROOT / "requirements" / "constraints.txt"
    pinned = {_name(line) for line in lock.read_text().splitlines() if "==" in line and not line.startswith("#")}
    build_only = {_name(r) for r in req.BUILD_REQUIREMENTS}
    unpinned = sorted(set(names) - pinned - build_only)
    assert not unpinned, f"not pinned in {lock.name}: {unpinned}"


def test_requirements_reader_names_missing_files_and_unknown_extras(tmp_path):
    req = _requirements_module()
    with pytest.raises(FileNotFoundError, match=r"packages/mtl-core/pyproject\.toml"):
        req.third_party_requirements(tmp_path)
    for rel in req.DISTRIBUTIONS:
        (tmp_path / rel).mkdir(parents=True)
        name = rel.rsplit("/", 1)[-1]
        (tmp_path / rel / "pyproject.toml").write_text(f'[project]\nname = "{name}"\ndependencies = ["numpy>=1"]\n')
    with pytest.raises(ValueError, match=r"extra 'all' not defined; defined extras: \[\]"):
        req.third_party_requirements(tmp_path)


def _containerfile() -> str:
    return (CONTAINERS / "Containerfile").read_text()


def test_containerfile_pins_its_base_as_a_build_argument_and_has_cpu_and_cuda_targets():
    text = _containerfile()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert base, "the base image must be a build argument"
    # Pinned: a dated tag or a digest, never a floating tag.
    assert re.search(r"(@sha256:[0-9a-f]{64}|:[a-z]+-\d{8}(-slim)?)$", base.group(1)), base.group(1)
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.M)
    assert stages == [("${BASE_IMAGE}", "cpu"), ("cpu", "cuda")]
    cuda = text.split("AS cuda", 1)[1]
    assert "NVIDIA_VISIBLE_DEVICES=all" in cuda and "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in cuda
    assert "NVIDIA_VISIBLE_DEVICES" not in text.split("AS cuda", 1)[0].split("AS cpu", 1)[1]


def test_containerfile_runs_as_non_root_with_mtl_as_entry_point_and_the_readme_lock():
    text = _containerfile()
    assert re.search(r"^USER mtl$", text, re.M) and "useradd" in text
    assert re.search(r'^ENTRYPOINT \["mtl"\]$', text, re.M)
    assert "-c requirements/constraints.txt" in text
    # The third-party layer comes before the source is copied, so editing code does not reinstall torch.
    assert text.index("requirements.txt") < text.index("COPY packages/ packages/")
    # Our own distributions are installed without touching the network.
    assert "pip install --no-index --no-deps" in text


def test_dockerignore_keeps_host_state_out_of_the_build_context():
    patterns = {
        line.strip()
        for line in (CONTAINERS / "Containerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", "**/.venv", "data", "results", "reports", ".snakemake"} <= patterns
    assert not any("wheelhouse" in p for p in patterns), "the wheelhouse must stay visible to RUN --mount"


def test_podman_config_fits_machines_without_systemd_and_with_low_rlimits():
    conf = tomllib.loads((CONTAINERS / "containers.conf").read_text())
    assert conf["engine"]["runtime"] == "runc"
    assert conf["engine"]["cgroup_manager"] == "cgroupfs"
    limits = dict(item.split("=", 1) for item in conf["containers"]["default_ulimits"])
    for name, rlimit in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        soft, hard = (int(v) for v in limits[name].split(":"))
        machine_hard = resource.getrlimit(rlimit)[1]
        # runc cannot raise a limit above the caller's hard limit: that is the failure this file avoids.
        assert soft <= hard and (machine_hard == resource.RLIM_INFINITY or hard <= machine_hard), (name, hard)


def test_apptainer_definition_wraps_the_oci_image_and_isolates_user_site_packages():
    text = (CONTAINERS / "mtl.def").read_text()
    header = dict(re.findall(r"^(Bootstrap|From):\s*(.+)$", text, re.M))
    assert header == {"Bootstrap": "docker-archive", "From": "{{ ARCHIVE }}"}
    assert re.search(r"^%arguments\n\s+ARCHIVE=\S+", text, re.M)
    env = text.split("%environment", 1)[1].split("%runscript", 1)[0]
    assert "PYTHONNOUSERSITE=1" in env and "PATH=/opt/mtl/venv/bin:$PATH" in env
    assert 'exec mtl "$@"' in text.split("%runscript", 1)[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--target", "gpu"], "--target must be cuda or cpu, got 'gpu'"), (["--frobnicate"], "unknown option")],
)
def test_build_script_rejects_bad_options_before_doing_anything(args, message):
    res = subprocess.run(["bash", str(CONTAINERS / "build.sh"), *args], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and message in res.stderr, shlex.join(args) + res.stderr


def test_the_cuda_image_leaves_cuda_visible_devices_to_the_scheduler_and_fixes_the_cublas_workspace():
    """Inside the image the run device comes from what the runtime and the scheduler make visible: the cuda
    stage exposes the granted GPUs (NVIDIA_VISIBLE_DEVICES=all) and sets the cuBLAS workspace that
    train.deterministic needs; neither image nor SIF overrides CUDA_VISIBLE_DEVICES (Slurm's allocation)."""
    from mtl_pipelines.run import CUBLAS_WORKSPACE

    text = _containerfile()
    cuda = text.split("AS cuda", 1)[1]
    assert f"CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE}" in cuda
    definition = (CONTAINERS / "mtl.def").read_text()
    env = definition.split("%environment", 1)[1].split("%runscript", 1)[0]
    assert f'CUBLAS_WORKSPACE_CONFIG="${{CUBLAS_WORKSPACE_CONFIG:-{CUBLAS_WORKSPACE}}}"' in env
    for source in (text, env):
        assert not re.search(r"^\s*(ENV|export)\b.*CUDA_VISIBLE_DEVICES", source, re.M)
    # the documented GPU training jobs: --gpus all (docker/podman) and --nv (Apptainer), on --device cuda
    assert re.search(r"docker run --rm --gpus all .* mtl-repro:cuda train run\.yaml --device cuda", text)
    assert "apptainer run --nv mtl-repro-cuda.sif train cfg.yaml --device cuda" in definition
    hpc = (CONTAINERS.parent / "docs" / "hpc.md").read_text()
    assert "--gpus all" in hpc and "--nv" in hpc and "--device cuda" in hpc
