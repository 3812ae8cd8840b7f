"""Checkpoints are untrusted input: loaded with torch.load(weights_only=True), so a pickled payload is refused
and never runs; RNG states are stored in a form the safe loader accepts; checkpoints of the old pickled format
load only through the documented opt-in (--trust-checkpoints / MTL_TRUST_CHECKPOINTS=1)."""

from __future__ import annotations

import os
import random
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny_configs import scenes_config

from mtl_pipelines import cli
from mtl_pipelines import run as runmod
from mtl_pipelines.train import train

TINY: dict[str, Any] = scenes_config("safe", train={"epochs": 2, "seed": 2, "max_steps_per_epoch": 1})


class Payload:
    """What an attacker puts into a shared checkpoint: unpickling it runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def _evil_run(tmp_path: Path, finished: bool) -> tuple[Path, Path]:
    run_dir, marker = tmp_path / "run", tmp_path / "pwned"
    run = runmod.Run(run_dir, TINY)
    run.begin()
    torch.save({"config_hash": run.hash, "model": Payload(marker)}, run.path(runmod.CHECKPOINT))
    if finished:
        run.write_final({k: [] for k in runmod.FINAL_KEYS if k != "config_hash"})
    return run_dir, marker


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_checkpoint_with_a_reduce_payload_is_refused_and_never_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    run_dir, marker = _evil_run(tmp_path, finished=command == "evaluate")
    before = (run_dir / runmod.CHECKPOINT).read_bytes()
    config = tmp_path / "run.yaml"
    config.write_text((run_dir / runmod.CONFIG).read_text())
    argv = ["train", str(config), "--run-dir", str(run_dir)] if command == "train" else ["evaluate", str(run_dir)]
    assert cli.main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(run_dir / runmod.CHECKPOINT) in err and "refused" in err and "posix.system" in err
    assert "--trust-checkpoints" in err
    assert not marker.exists(), "the payload ran"
    assert (run_dir / runmod.CHECKPOINT).read_bytes() == before


def _as_format_1(path: Path) -> None:
    """Rewrite a checkpoint as the pipeline wrote it before the safe format: NumPy/Python RNG states pickled."""
    state = torch.load(path, weights_only=True)
    rng = state["rng"]
    n, p = rng["numpy"], rng["python"]
    state["rng"] = {
        "torch": rng["torch"],
        "numpy": (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]),
        "python": (p["version"], tuple(p["internal"].tolist()), p["gauss_next"]),
    }
    del state["format"]
    torch.save(state, path)


def test_old_checkpoints_load_only_through_the_opt_in_and_resume_exactly(tmp_path: Path) -> None:
    reference = train(TINY, tmp_path / "reference", progress=False)
    run_dir = tmp_path / "old"
    train(TINY, run_dir, progress=False, stop_after_epochs=1)
    _as_format_1(run_dir / runmod.CHECKPOINT)
    with pytest.raises(runmod.RunError, match=r"refused.*numpy.*--trust-checkpoints"):
        train(TINY, run_dir, progress=False)
    with pytest.raises(runmod.RunError, match="refused"):  # the evaluation path refuses it too
        runmod.Run(run_dir, TINY).load_checkpoint()
    resumed = train(TINY, run_dir, progress=False, trust_checkpoints=True)
    assert {k: v for k, v in resumed.items() if k not in runmod.MEASURED_FIELDS} == {
        k: v for k, v in reference.items() if k not in runmod.MEASURED_FIELDS
    }
    # rewritten in the safe format at the next epoch
    assert torch.load(run_dir / runmod.CHECKPOINT, weights_only=True)["format"] == runmod.CHECKPOINT_FORMAT


def test_rng_states_round_trip_through_the_safe_loader(tmp_path: Path) -> None:
    runmod.seed_everything(11)
    state = runmod.rng_state(torch.device("cpu"))
    torch.save(state, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(3).tolist(), torch.rand(2).tolist())  # noqa: NPY002
    random.random(), np.random.rand(5), torch.rand(7)  # noqa: NPY002  (move every stream on)
    runmod.set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True), torch.device("cpu"))
    assert (random.random(), np.random.rand(3).tolist(), torch.rand(2).tolist()) == expected  # noqa: NPY002
