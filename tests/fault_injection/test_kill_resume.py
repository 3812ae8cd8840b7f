"""Kill at random, resume, compare bit-for-bit: ``mtl train`` is SIGKILLed at several random points of one
run (during start-up, an epoch, an evaluation or a checkpoint write, wherever the clock falls), started
again each time, and must end with exactly the metrics, summary and weights of an uninterrupted run.

The kill points come from a seeded generator (``MTL_KILL_SEED`` picks another draw; the seed and the
points are in the failure message). Marked slow: each kill costs one process start (~5 s of imports here).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from mtl_pipelines.run import FINAL, MEASURED_FIELDS, METRICS, Run
from mtl_pipelines.train import train

CONFIG = {
    "name": "killed",
    "dataset": {
        "name": "cityscapes_standin",
        "options": {"resolution": [32, 64]},
        "split_options": {"train": {"size": 16}, "val": {"size": 4}, "test": {"size": 4}},
    },
    "model": {"name": "mtan", "options": {"width": 0.0625}},
    "method": {"name": "exact+pcgrad"},
    "optimizer": {"name": "adam", "lr": 1e-3},
    "train": {"epochs": 6, "batch_size": 4, "seed": 11},
    "eval": {"batch_size": 4, "selection": "last_k", "last_k": 2},
}
KILLS = 4


def _records(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if k not in MEASURED_FIELDS} for r in records]


def _final(run_dir: Path) -> dict:
    return {k: v for k, v in json.loads((run_dir / FINAL).read_text()).items() if k not in MEASURED_FIELDS}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return Run.open(run_dir).load_checkpoint()["model"]  # the run layer's safe loader


def _epochs_done(run_dir: Path, since_ns: int) -> int:
    """Epochs checkpointed, counted once this process has reached training (it rewrites metrics.jsonl from
    the checkpoint right before its first epoch); -1 before that."""
    try:
        if (run_dir / METRICS).stat().st_mtime_ns < since_ns:
            return -1
        return len(_records(run_dir))
    except FileNotFoundError:
        return -1


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_is_bit_identical(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    train(CONFIG, reference, progress=False)
    lines = (reference / METRICS).read_text().splitlines()
    epoch_seconds = max(json.loads(line)["seconds"] for line in lines)  # training + evaluation of one epoch

    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "mtl_pipelines.cli", "train", str(config_path), "--run-dir", str(run_dir)]
    command.append("--quiet")
    seed = int(os.environ.get("MTL_KILL_SEED", "15"))
    draw = random.Random(seed)
    # each kill point: after epoch e is checkpointed (increasing), a random fraction of an epoch later
    targets = sorted(draw.sample(range(CONFIG["train"]["epochs"] - 1), KILLS))
    points: list[str] = []
    for target in targets:
        since = time.time_ns()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while _epochs_done(run_dir, since) < target and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        delay = draw.uniform(0.0, 1.0) * epoch_seconds
        time.sleep(delay)
        if process.poll() is not None:  # finished before the kill point: nothing left to interrupt
            points.append(f"epoch {target} + {delay:.2f}s: had finished")
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        points.append(f"epoch {target} + {delay:.2f}s: killed with {max(_epochs_done(run_dir, 0), 0)} epochs saved")
    context = f"MTL_KILL_SEED={seed}, kill points: {points}"
    assert sum("killed" in p for p in points) >= 2, f"fewer than 2 kills landed inside the run; {context}"

    print(context)  # shown with pytest -s or on failure
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, f"{finished.stderr}\n{context}"
    assert _records(run_dir) == _records(reference), context
    assert _final(run_dir) == _final(reference), context
    resumed, uninterrupted = _weights(run_dir), _weights(reference)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), context
