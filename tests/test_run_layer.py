"""The run layer: a run directory is consistent (every file carrying the config hash belongs to the run) or
refused; damaged run files end in exit 2 naming the file, what is wrong and what to do, with nothing changed;
stale temp files of a killed write are removed on resume; diagnostics come from the step's own forward."""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from tiny_configs import scenes_config

from mtl_pipelines import cli
from mtl_pipelines import run as runmod
from mtl_pipelines.evaluate import evaluate_run
from mtl_pipelines.train import train

TINY: dict[str, Any] = scenes_config("layer", "exact+mgda", train={"epochs": 1, "seed": 4, "max_steps_per_epoch": 1})
OTHER = {**TINY, "train": {**TINY["train"], "seed": 5}}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished + evaluated run of TINY, and one of another config (OTHER)."""
    root = tmp_path_factory.mktemp("finished")
    out = {}
    for key, config in (("tiny", TINY), ("other", OTHER)):
        train(config, root / key, progress=False)
        evaluate_run(root / key, progress=False)
        out[key] = root / key
    (root / "run.yaml").write_text(yaml.safe_dump(TINY))
    out["config"] = root / "run.yaml"
    return out


def _digest(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        return {directory.name: hashlib.sha256(directory.read_bytes()).hexdigest()} if directory.exists() else {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _swap_final_hash(d: Path) -> None:
    data = json.loads((d / runmod.FINAL).read_text())
    data["config_hash"] = "0123456789ab"
    (d / runmod.FINAL).write_text(json.dumps(data))


def _other_checkpoint_without_config(d: Path, other: Path) -> None:
    for name in runmod.RUN_FILES:
        (d / name).unlink(missing_ok=True)
    shutil.copy(other / runmod.CHECKPOINT, d / runmod.CHECKPOINT)


# (case, how to damage a copy of the finished run, command, expected words in the message)
CASES: list[tuple[str, Callable[[Path, dict[str, Path]], Any], str, list[str]]] = [
    ("truncated checkpoint", lambda d, f: _truncate(d / runmod.CHECKPOINT),
     "train", [runmod.CHECKPOINT, "damaged", "--restart", "dvc pull"]),
    ("random checkpoint", lambda d, f: (d / runmod.CHECKPOINT).write_bytes(bytes(range(256)) * 8),
     "train", [runmod.CHECKPOINT, "damaged", "--restart"]),
    ("empty checkpoint", lambda d, f: (d / runmod.CHECKPOINT).write_bytes(b""),
     "evaluate", [runmod.CHECKPOINT, "damaged", "0 bytes"]),
    ("checkpoint without keys", lambda d, f: torch.save({"epoch": 0}, d / runmod.CHECKPOINT),
     "train", [runmod.CHECKPOINT, "damaged", "without", "model", "--restart"]),
    ("final.json holding []", lambda d, f: (d / runmod.FINAL).write_text("[]"),
     "train", [runmod.FINAL, "damaged", "got list", "--restart"]),
    ("final.json not JSON", lambda d, f: (d / runmod.FINAL).write_text("{"),
     "evaluate", [runmod.FINAL, "not a JSON file"]),
    ("final.json of another config", lambda d, f: _swap_final_hash(d),
     "train", [runmod.FINAL, "belongs to another config", "--restart"]),
    ("final.json of another config (evaluate)", lambda d, f: _swap_final_hash(d),
     "evaluate", [runmod.FINAL, "belongs to another config"]),
    ("final.json without its checkpoint", lambda d, f: (d / runmod.CHECKPOINT).unlink(),
     "train", [runmod.CHECKPOINT, "is missing", "dvc pull", "--restart"]),
    ("final.json without its checkpoint (evaluate)", lambda d, f: (d / runmod.CHECKPOINT).unlink(),
     "evaluate", [runmod.CHECKPOINT, "is missing"]),
    ("invalid config.yaml", lambda d, f: (d / runmod.CONFIG).write_text("dataset: [unclosed"),
     "train", [runmod.CONFIG, "damaged", "--restart"]),
    ("config.yaml of no valid config", lambda d, f: (d / runmod.CONFIG).write_text("method: {name: pcgard}"),
     "evaluate", [runmod.CONFIG, "damaged"]),
    ("checkpoint of another config, no config.yaml", lambda d, f: _other_checkpoint_without_config(d, f["other"]),
     "train", [runmod.CHECKPOINT, "belongs to another config", "--restart"]),
    ("run directory of another config", lambda d, f: (d / runmod.CONFIG).write_text(
        (f["other"] / runmod.CONFIG).read_text()), "train", ["different config", "--restart"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "damage", "command", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_damaged_or_inconsistent_run_directory_exits_2_and_changes_nothing(
    finished: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    damage: Callable[[Path, dict[str, Path]], Any],
    command: str,
    words: list[str],
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished["tiny"], run_dir)
    damage(run_dir, finished)
    before = _digest(run_dir)
    argv = (
        ["train", str(finished["config"]), "--run-dir", str(run_dir)]
        if command == "train"
        else ["evaluate", str(run_dir)]
    )
    assert cli.main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err, (word, err)
    assert _digest(run_dir) == before  # a refused directory gets nothing written (no config.yaml either)


def test_run_dir_that_is_a_file_and_a_manifest_without_runs_root(
    finished: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert cli.main(["train", str(finished["config"]), "--run-dir", str(a_file), "--quiet"]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err and a_file.read_text() == "x"
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump({"job": "j", "runs": [{"id": "r", "config": TINY}]}))
    assert cli.main(["train", "--job", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert str(manifest) in err and "runs_root" in err


def test_a_full_disk_exits_2_naming_the_file_and_the_run_resumes_afterwards(
    finished: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import mtl_pipelines.io

    def full(fd: int) -> None:  # where a full disk surfaces on a delayed-allocation filesystem
        raise OSError(errno.ENOSPC, "No space left on device")

    run_dir = tmp_path / "run"
    monkeypatch.setattr(mtl_pipelines.io.os, "fsync", full)
    assert cli.main(["train", str(finished["config"]), "--run-dir", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(run_dir / runmod.CONFIG) in err and "disk is full" in err and "run the same command again" in err
    assert not list(run_dir.glob(".*.tmp"))
    monkeypatch.undo()
    assert cli.main(["train", str(finished["config"]), "--run-dir", str(run_dir), "--quiet"]) == 0
    final = runmod.Run(run_dir, TINY).read_final()
    assert final["last"] == json.loads((finished["tiny"] / runmod.FINAL).read_text())["last"]


def test_stale_temp_files_are_removed_on_resume_and_restart_trains_the_new_config(
    finished: dict[str, Path], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    two_epochs = {**TINY, "train": {**TINY["train"], "epochs": 2}}
    train(two_epochs, run_dir, progress=False, stop_after_epochs=1)
    stale = [run_dir / ".checkpoint.pt.k1ll3d.tmp", run_dir / ".metrics.jsonl.x.tmp"]
    for path in stale:
        path.write_bytes(b"half a write")
    (run_dir / "notes.txt").write_text("mine")  # not a run file: never touched
    train(two_epochs, run_dir, progress=False)
    assert not any(p.exists() for p in stale)
    # --restart: the run's files go, the new config trains, other files stay
    with pytest.raises(runmod.RunError, match="different config"):
        train(OTHER, run_dir, progress=False)
    result = train(OTHER, run_dir, progress=False, restart=True)
    assert result["config_hash"] == runmod.Run(run_dir, OTHER).hash and (run_dir / "notes.txt").read_text() == "mine"


def test_the_report_refuses_an_eval_json_of_another_config(finished: dict[str, Path], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished["tiny"], run_dir)
    assert set(runmod.Run(run_dir, TINY).read_results()) == {"final", "eval", "diagnostics"}
    shutil.copy(finished["other"] / runmod.EVAL, run_dir / runmod.EVAL)
    with pytest.raises(runmod.RunError, match=r"eval\.json belongs to another config"):
        runmod.Run(run_dir, TINY).read_results()


def test_diagnostics_come_from_the_step_and_leave_training_unchanged(tmp_path: Path) -> None:
    """Diagnostics every step read the Jacobian rows of the step's own forward: no extra forward, so
    BatchNorm running statistics (MTAN has them) and every metric equal those of a run without diagnostics."""
    config = copy.deepcopy(TINY)
    config["train"].update(epochs=2, max_steps_per_epoch=2)
    plain = train(config, tmp_path / "plain", progress=False)
    config["train"]["diagnostics_every"] = 1
    diagnosed = train(config, tmp_path / "diagnosed", progress=False)
    assert diagnosed["last"] == plain["last"]
    a = torch.load(tmp_path / "plain" / runmod.CHECKPOINT, weights_only=True)["model"]
    b = torch.load(tmp_path / "diagnosed" / runmod.CHECKPOINT, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    records = [json.loads(line) for line in (tmp_path / "diagnosed" / runmod.DIAGNOSTICS).read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4] and all(len(r["cosine"]) == 1 for r in records)
