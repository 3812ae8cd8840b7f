"""Snakemake starts the longest jobs first: the train jobs of full epochs (the default profile's Multi-MNIST at
finding scale) and the preparation of their data carry priority 1, every other job 0 (started last, a 20-run
Multi-MNIST job kept one of two cores idle for the final ~10 minutes of a fresh-clone measurement)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from mtl_pipelines import grid

BIN = Path(sys.executable).parent


def _dry_run_priorities(work: Path) -> dict[str, int]:
    """``{job or benchmark wildcard: priority}`` of every train and prepare job of a dry run (default profile)."""
    done = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--cores", "2", "reproduce_tables", "--config", "profile=default"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, int] = {}
    for block in re.split(r"\n(?=(?:local)?rule )", done.stdout):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule is None or rule.group(1) not in ("train", "prepare"):
            continue
        key = re.search(r"wildcards: (?:job|benchmark)=(\S+)", block).group(1)
        priority = re.search(r"priority: (\d+)", block)
        out[key] = int(priority.group(1)) if priority else 0
    return out


def test_full_epoch_jobs_and_their_data_come_first(tmp_path: Path, workflow_copy) -> None:
    work = workflow_copy(tmp_path / "wf")
    priorities = _dry_run_priorities(work)
    plan = grid.plan(grid.load_profile("default"))
    full = {
        job_id
        for job_id, job in plan.jobs.items()
        if any(plan.runs[r].config.get("train", {}).get("max_steps_per_epoch", 0) is None for r in job.runs)
    }
    assert full and all(job_id.startswith("multi_mnist-") for job_id in full)
    trains = {k: v for k, v in priorities.items() if k in plan.jobs}
    assert set(trains) == set(plan.jobs)
    assert {k for k, v in trains.items() if v == 1} == full
    assert {k for k, v in priorities.items() if k not in plan.jobs and v == 1} == {"multi_mnist"}
