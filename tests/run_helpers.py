"""Helpers shared by the tests that kill a training process: train in a subprocess and SIGKILL it (with its
loader workers) right after its first checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from mtl_pipelines import run as runmod


def kill_after_first_checkpoint(config: Path, run_dir: Path, *extra: str, timeout: float = 300) -> int:
    """Start ``mtl train config --run-dir run_dir *extra`` in its own process group, SIGKILL the group as soon
    as ``checkpoint.pt`` exists, and return the number of epochs the checkpoint holds. Fails when the process
    ended on its own first (an error, or a run too short to be killed)."""
    argv = [sys.executable, "-m", "mtl_pipelines.cli", "train", str(config), "--run-dir", str(run_dir), "--quiet"]
    process = subprocess.Popen(
        [*argv, *extra], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    checkpoint = run_dir / runmod.CHECKPOINT
    deadline = time.monotonic() + timeout
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if process.poll() is not None:
        stderr = process.stderr.read().decode() if process.stderr else ""
        raise AssertionError(f"mtl train ended before it could be killed (exit {process.returncode}): {stderr}")
    os.killpg(process.pid, signal.SIGKILL)  # the training process and its loader workers
    process.wait()
    assert not (run_dir / runmod.FINAL).exists(), "the run finished before the kill: nothing was tested"
    return int(torch.load(checkpoint, weights_only=True)["epoch"]) + 1
