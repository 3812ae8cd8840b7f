"""A researcher plans and checks the paper grid before downloading any data (issue 16 sec. 1): the task names
of every dataset are declared (``mtl_data.task_names``), so ``grid.plan``, ``mtl grid --profile paper`` and a
Snakemake dry run of the paper profile work on an empty data root; only training and ``mtl prepare`` read
files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mtl_pipelines import cli, grid

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def empty_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("MTL_DATA_ROOT", str(root))
    return root


def test_paper_grid_plans_every_benchmark_without_data(empty_data_root: Path) -> None:
    profile = grid.load_profile("paper")
    plan = grid.plan(profile)
    # nothing is reported unavailable for want of data: every benchmark of the paper profile is real data
    assert not [m for reasons in plan.unavailable.values() for m in reasons if "cannot be loaded" in m]
    benchmarks = {run.benchmark for run in plan.runs.values()}
    assert {"celeba", "qm9", "office_home", "multi_mnist", "multi_fashion", "multi_fashion_mnist"} <= benchmarks
    # the STL runs are planned per declared task, one run per task, seed and model/setting group
    stl = Counter((r.benchmark, r.task) for r in plan.runs.values() if r.is_stl)
    celeba = {task for bench, task in stl if bench == "celeba"}
    assert len(celeba) == 40 and "Young" in celeba
    assert {task for bench, task in stl if bench == "qm9"} == {
        "mu", "alpha", "homo", "lumo", "r2", "zpve", "U0", "U", "H", "G", "c_v"
    }  # fmt: skip
    assert {task for bench, task in stl if bench == "office_home"} == {"Art", "Clipart", "Product", "Real_World"}
    assert {task for bench, task in stl if bench == "multi_fashion"} == {"left", "right"}
    assert list(empty_data_root.iterdir()) == []  # nothing was read or written there


def test_mtl_grid_paper_cli_without_data(empty_data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["grid", "--profile", "paper"]) == 0
    out = capsys.readouterr().out
    assert "grid paper:" in out and "multi_fashion-resnet18_multimnist-stl_left-" in out
    assert list(empty_data_root.iterdir()) == []


@pytest.mark.slow  # builds the DAG of every paper run (~50 s on 2 cores)
def test_snakemake_dry_run_of_the_paper_profile_without_data(empty_data_root: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [
            str(BIN / "snakemake"),
            "-n",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(work),
            "--cores",
            "1",
            "--configfile",
            str(REPO / "pipelines/configs/snakemake.yaml"),
            "--config",
            "profile=paper",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "This was a dry-run" in done.stdout
    assert list(empty_data_root.iterdir()) == []
