"""Snakemake and DVC on the smoke profile: lint, every rule runs, same tables from both tools, `dvc repro`
twice is a no-op, push/pull to a local remote restores the checkpoints bit-identically, `dvc metrics show`
and `dvc plots show` and `snakemake --report` show the studies, DVC after Snakemake trains nothing again, and
the committed dvc.yaml/params.yaml are what the studies generate.

The smoke workflow (22 runs on 8 stand-in images per split and 64 QM9 molecules, the MT10 runs, the probes) is
executed once per tool in temporary directories (module-scoped fixtures); the whole file takes ~6 minutes on 2
cores, so it is marked slow.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mtl_pipelines import dvc, grid

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REPORTS = "reports/smoke"

pytestmark = pytest.mark.slow


def _run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # read now: the fixtures set some
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _tables(root: Path) -> dict[str, list[dict[str, str]]]:
    """Every study CSV of a report, without the machine-dependent timing study."""
    out = {}
    for path in sorted((root / REPORTS).glob("*/table.csv")):
        if grid.load_studies()[path.parent.name]["builder"] == "cost":
            continue
        out[path.parent.name] = list(csv.DictReader(path.open()))
    return out


@pytest.fixture(scope="module")
def snakemake_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("snakemake")
    _run(
        [
            str(BIN / "snakemake"),
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(work),
            "--cores",
            "2",
            "reproduce_tables",
            "--configfile",
            str(REPO / "pipelines/configs/snakemake.yaml"),
            "--config",
            "profile=smoke",
        ],
        REPO,
    )
    return work


@pytest.fixture(scope="module")
def dvc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("dvc")
    _run(["git", "init", "-q"], work)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init"], work)
    _run([str(BIN / "dvc"), "init", "-q"], work)
    dvc.write("smoke", work)
    _run([str(BIN / "dvc"), "repro", "-q"], work)
    return work


def test_snakemake_lint_is_clean() -> None:
    done = _run([str(BIN / "snakemake"), "--lint", "--config", "profile=smoke"], REPO, timeout=300)
    assert "in a good condition" in done.stdout + done.stderr


def test_bare_snakemake_targets_reproduce_tables(tmp_path: Path, workflow_copy) -> None:
    """`snakemake` without a target builds every table (the default target survives the rule includes)."""
    work = workflow_copy(tmp_path / "wf")
    done = _run([str(BIN / "snakemake"), "-n", "--cores", "1", "--config", "profile=smoke"], work, timeout=300)
    out = done.stdout + done.stderr
    assert "Nothing to be done" not in out, out[-2000:]
    assert "rule report_index:" in out and "rule reproduce_tables:" in out, out[-2000:]


def test_snakemake_runs_every_rule(snakemake_dir: Path) -> None:
    studies = grid.load_profile("smoke")["studies"]
    for study in studies:
        for ext in ("md", "tex", "csv"):
            assert (snakemake_dir / REPORTS / study / f"table.{ext}").stat().st_size > 0
    index = (snakemake_dir / REPORTS / "index.md").read_text()
    assert all(s in index for s in studies) and "stand-in" in index
    assert (snakemake_dir / REPORTS / "index.html").read_text().startswith("<!doctype html>")
    logs = {p.parent.name for p in (snakemake_dir / "results/smoke/logs").glob("*/*.log")}
    assert logs == {"prepare", "train", "evaluate", "report"}
    assert list((snakemake_dir / "results/smoke/benchmarks/train").glob("*.tsv"))
    # published numbers are shown beside ours in the results table
    table = (snakemake_dir / REPORTS / "004_table2/table.md").read_text()
    assert "(75.18)" in table and "Δm%" in table


def test_snakemake_and_dvc_give_the_same_tables(snakemake_dir: Path, dvc_dir: Path) -> None:
    ours, theirs = _tables(snakemake_dir), _tables(dvc_dir)
    assert ours and ours == theirs


def test_dvc_repro_twice_is_a_noop(dvc_dir: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in (dvc_dir / "results").rglob("*.pt")}
    done = _run([str(BIN / "dvc"), "repro"], dvc_dir)
    assert "up to date" in done.stdout
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert "up to date" in _run([str(BIN / "dvc"), "status"], dvc_dir).stdout


def test_dvc_metrics_show_one_row_per_study(dvc_dir: Path) -> None:
    """`dvc metrics show`: a table with one line per study (runs, published cells, distance), nothing else."""
    lines = _run([str(BIN / "dvc"), "metrics", "show"], dvc_dir).stdout.strip().splitlines()
    header, rows = lines[0].split(), lines[1:]
    assert header[0] == "Path" and {"runs", "not_run", "data"} <= set(header), header
    studies = grid.load_profile("smoke")["studies"]
    assert sorted(r.split()[0] for r in rows) == sorted(f"{REPORTS}/summary/metrics/{s}.json" for s in studies)
    summary = json.loads((dvc_dir / REPORTS / "004_table2" / "summary.json").read_text())
    row = next(r.split() for r in rows if "004_table2" in r)
    assert row[header.index("runs")] == str(summary["runs"])


def test_dvc_plots_show_renders_the_report_figures_offline(dvc_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plots"
    _run([str(BIN / "dvc"), "plots", "show", "-o", str(out)], dvc_dir)
    page = (out / "index.html").read_text()
    figures = sorted(p.name for p in (dvc_dir / REPORTS).glob("*/*.png"))
    assert figures and page.count("<img") == len(figures)
    assert "<script" not in page  # images only: no Vega from a CDN, the page works offline
    assert all((out / "static").glob(f"*{name}") for name in figures)


def test_snakemake_report_holds_the_tables_and_figures(snakemake_dir: Path) -> None:
    """`snakemake --report` collects each study's table and figures (the `report()` outputs)."""
    report = snakemake_dir / "report.zip"
    _run(
        [
            str(BIN / "snakemake"),
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(snakemake_dir),
            "--report",
            str(report),
            "reproduce_tables",
            "--configfile",
            str(REPO / "pipelines/configs/snakemake.yaml"),
            "--config",
            "profile=smoke",
        ],
        REPO,
    )
    archive = zipfile.ZipFile(report)
    names = archive.namelist()  # report/data/raw/<hash>/<file name>
    tables = sorted(archive.read(n) for n in names if n.endswith("/table.html"))
    studies = grid.load_profile("smoke")["studies"]
    assert tables == sorted((snakemake_dir / REPORTS / s / "table.html").read_bytes() for s in studies)
    figures = sorted(p.name for p in (snakemake_dir / REPORTS).glob("*/*.png"))
    assert figures and sorted(n.rsplit("/", 1)[1] for n in names if n.endswith(".png")) == figures
    assert sum(n.endswith("/index.html") and "/data/raw/" in n for n in names) == 1


def test_dvc_after_snakemake_reuses_the_trained_runs(snakemake_dir: Path) -> None:
    """What pipelines/README.md says: after a Snakemake run, `dvc status` reports every stage as new (DVC has
    no record of it), and `dvc repro` trains nothing again: the run directories are the same, finished runs
    are skipped; DVC re-does its own bookkeeping and the evaluations. Reproduced for the stages of one MTL job
    evaluated against its STL job (its data, both train jobs, both evaluations): the mechanism is per job, and
    the whole DAG (every job re-evaluated, every study re-reported) cost 3 minutes of the test suite on 2 cores."""
    _run([str(BIN / "dvc"), "init", "--no-scm", "-q"], snakemake_dir)
    dvc.write("smoke", snakemake_dir)
    status = _run([str(BIN / "dvc"), "status"], snakemake_dir).stdout
    assert "train@" in status and "up to date" not in status
    target = sorted(set(re.findall(r"^(evaluate_after_stl@[\w.-]+):", status, re.M)))[0]
    before = {p: p.stat().st_mtime_ns for p in (snakemake_dir / "results").rglob("checkpoint.pt")}
    assert before
    done = _run([str(BIN / "dvc"), "repro", target], snakemake_dir).stdout
    assert {p: p.stat().st_mtime_ns for p in before} == before
    ran = re.findall(r"^Running stage '([^']+)'", done, re.M)
    assert sum(stage.startswith("train@") for stage in ran) == 2 and target in ran, ran  # the MTL and STL jobs
    assert "up to date" in _run([str(BIN / "dvc"), "status", target, "--with-deps"], snakemake_dir).stdout


def test_dvc_push_pull_restores_checkpoints_bit_identical(dvc_dir: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    _run([str(BIN / "dvc"), "remote", "add", "-f", "-d", "local", str(remote)], dvc_dir)
    _run([str(BIN / "dvc"), "push", "-q"], dvc_dir)
    checkpoints = sorted((dvc_dir / "results").rglob("checkpoint.pt"))
    assert checkpoints
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in checkpoints}
    shutil.rmtree(dvc_dir / "results")  # every run directory and stamp
    shutil.rmtree(dvc_dir / ".dvc" / "cache")
    _run([str(BIN / "dvc"), "pull", "-q"], dvc_dir)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in checkpoints} == digests
    assert "up to date" in _run([str(BIN / "dvc"), "status"], dvc_dir).stdout  # nothing to recompute


def test_committed_dvc_files_are_generated_from_the_studies() -> None:
    stale = dvc.check("default", REPO)
    assert not stale, f"{stale} out of date: run `mtl dvc --profile default` at the repo root"
