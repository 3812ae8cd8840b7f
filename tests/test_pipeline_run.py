"""The training run of mtl_pipelines: determinism, SIGKILL-resume, NaN stop, config validation, Delta_m.

Tiny stand-in data (8 images of 32x64, MTAN at width 1/16) so the whole file runs in well under a minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from tiny_configs import scenes_config

from mtl_pipelines import config as cfg
from mtl_pipelines.evaluate import evaluate_run
from mtl_pipelines.run import CHECKPOINT, MEASURED_FIELDS, METRICS, RunError
from mtl_pipelines.train import NonFiniteLossError, train

TINY = scenes_config(
    "tiny",
    "exact+pcgrad",
    train={"epochs": 3, "seed": 3, "diagnostics_every": 2},
    eval={"selection": "last_k", "last_k": 2},
)


def _metrics(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in MEASURED_FIELDS} for r in records]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "reference"
    train(TINY, run_dir, progress=False)
    return run_dir


def test_run_writes_per_epoch_metrics_and_is_deterministic(reference_run: Path, tmp_path: Path) -> None:
    records = _metrics(reference_run)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert set(records[0]["test"]) == {"segmentation", "depth"}
    assert set(records[0]["test"]["segmentation"]) == {"mIoU", "pix_acc"}
    # training changes the model: the train losses are not all equal across epochs
    assert records[0]["train_loss"] != records[-1]["train_loss"]
    final = json.loads((reference_run / "final.json").read_text())
    mean_last2 = (records[1]["test"]["depth"]["abs_err"] + records[2]["test"]["depth"]["abs_err"]) / 2
    assert final["last_k"]["depth"]["abs_err"] == pytest.approx(mean_last2)
    diagnostics = [json.loads(line) for line in (reference_run / "diagnostics.jsonl").read_text().splitlines()]
    assert diagnostics and all(-1 <= c <= 1 for d in diagnostics for c in d["cosine"])
    assert all(d["condition_number"] >= 1 for d in diagnostics)
    # same config + seed: identical numbers
    again = tmp_path / "again"
    train(TINY, again, progress=False)
    assert _metrics(again) == records


def test_diagnostics_record_the_step_losses_that_make_the_epoch_loss(tmp_path: Path) -> None:
    """Seed 000 Fig. 2 plots task losses next to gradient norms: every diagnosed step records its task losses;
    diagnosed at every step (equal batches), their epoch mean is the epoch's training loss."""
    config = {**TINY, "train": {**TINY["train"], "epochs": 1, "diagnostics_every": 1}, "eval": {"last_k": 1}}
    train(config, tmp_path / "run", progress=False)
    diagnostics = [json.loads(line) for line in (tmp_path / "run" / "diagnostics.jsonl").read_text().splitlines()]
    (record,) = _metrics(tmp_path / "run")
    assert len(diagnostics) == record["steps"] > 1
    tasks = json.loads((tmp_path / "run" / "final.json").read_text())["tasks"]  # the order of the recorded rows
    assert tasks == ["segmentation", "depth"]
    for index, task in enumerate(tasks):
        mean = sum(d["losses"][index] for d in diagnostics) / len(diagnostics)
        assert mean == pytest.approx(record["train_loss"][task], rel=1e-6), task
    assert all(len(d["losses"]) == len(d["grad_norms"]) == 2 for d in diagnostics)


def test_sigkill_then_resume_gives_identical_metrics(reference_run: Path, tmp_path: Path) -> None:
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(TINY))
    run_dir = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "mtl_pipelines.cli",
        "train",
        str(config_path),
        "--run-dir",
        str(run_dir),
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # kill as soon as the first epoch's checkpoint exists (mid-way through epoch 2)
    while not (run_dir / CHECKPOINT).exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (run_dir / CHECKPOINT).exists(), "the run never wrote its first checkpoint"
    assert not (run_dir / "final.json").exists()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _metrics(run_dir) == _metrics(reference_run)


def test_resume_in_process_after_stop(reference_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "stopped"
    assert train(TINY, run_dir, progress=False, stop_after_epochs=1) == {"stopped_after": 1}
    assert len(_metrics(run_dir)) == 1
    train(TINY, run_dir, progress=False)
    assert _metrics(run_dir) == _metrics(reference_run)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(TINY))
    bad["method"] = {"name": "ls"}
    bad["optimizer"]["lr"] = 1e30  # the first update blows the weights up: the next loss is not finite
    run_dir = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at epoch \d+, step \d+"):
        train(bad, run_dir, progress=False)
    assert not (run_dir / "final.json").exists()
    if (run_dir / CHECKPOINT).exists():
        state = torch.load(run_dir / CHECKPOINT, weights_only=True)
        assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"method": {"name": "pcgard"}}, r"method\.name: 'pcgard' is not a valid method.*exact\+pcgrad"),
        ({"dataset": {"name": "nyu"}}, r"dataset\.name: 'nyu' is not a valid dataset.*nyuv2"),
        ({"model": {"name": "mtan", "options": {"widht": 1}}}, r"model\.options\.widht.*width"),
        ({"train": {"epochs": 0}}, r"train\.epochs: 0 is less than the minimum of 1"),
        ({"optimizer": {"name": "rmsprop"}}, r"optimizer\.name: 'rmsprop' is not valid; valid choices: adam"),
        ({"trian": {}}, r"<top level>: Additional properties.*valid fields"),
    ],
)
def test_invalid_config_names_the_field_and_writes_nothing(tmp_path: Path, patch: dict, expected: str) -> None:
    config = {**TINY, **patch}
    with pytest.raises(cfg.ConfigError, match=expected):
        train(config, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_cli_reports_config_error_with_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, "method": {"name": "pcgard"}}))
    out = subprocess.run(
        [sys.executable, "-m", "mtl_pipelines.cli", "train", str(path), "--run-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "method.name: 'pcgard'" in out.stderr and "valid choices" in out.stderr
    assert not (tmp_path / "r").exists()


def test_stl_and_best_val_selection(tmp_path: Path) -> None:
    stl = {
        **TINY,
        "method": {"name": "stl"},
        "dataset": {**TINY["dataset"], "tasks": ["depth"]},
        "eval": {"batch_size": 4, "selection": "best_val"},
    }
    train(stl, tmp_path / "stl", progress=False)
    result = evaluate_run(tmp_path / "stl", progress=False)
    assert set(result["test"]) == {"depth"} and len(result["epochs"]) == 1
    history = _metrics(tmp_path / "stl")
    chosen = history[result["epochs"][0] - 1]
    assert result["test"] == chosen["test"]
    # best_val on one lower-is-better task: no other epoch has both depth errors lower
    others = [r for r in history if r["epoch"] != chosen["epoch"]]
    assert not any(
        all(r["val"]["depth"][m] < chosen["val"]["depth"][m] for m in ("abs_err", "rel_err")) for r in others
    )


def test_run_dir_refuses_another_config(reference_run: Path) -> None:
    other = {**TINY, "train": {**TINY["train"], "seed": 4}}
    with pytest.raises(RunError, match="different config"):
        train(other, reference_run)


def test_help_of_every_command() -> None:
    for command in ("prepare", "train", "evaluate", "report", "grid", "dvc", "list"):
        out = subprocess.run(
            [sys.executable, "-m", "mtl_pipelines.cli", command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ},
        )
        assert out.returncode == 0 and "usage: mtl" in out.stdout


def test_sam_family_runs_use_the_task_restricted_closure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The training closure answers the step's one-task requests through one head (mtl_core's LossClosure)."""
    from mtl_core import MTLStep
    from mtl_core.step import accepts_tasks

    seen: list[dict] = []
    original = MTLStep.step

    def spy(self: MTLStep, closure, **options):  # type: ignore[no-untyped-def]
        assert accepts_tasks(closure)
        with torch.no_grad():
            seen.append({t: sorted(closure(self.model, tasks=[t])) for t in self.tasks})
        return original(self, closure, **options)

    monkeypatch.setattr(MTLStep, "step", spy)
    one_epoch = {"train": {**TINY["train"], "epochs": 1}, "eval": {**TINY["eval"], "last_k": 1}}  # last_k <= epochs
    config = {**TINY, "method": {"name": "samo+mgda"}, **one_epoch}
    train(config, tmp_path / "samo", progress=False)
    assert seen and all(answer == {t: [t] for t in answer} for answer in seen)
