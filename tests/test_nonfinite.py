"""Non-finite values never reach a file (issue 15 item 9): a NaN/Inf validation/test metric, parameter or
buffer (BatchNorm running statistics) stops the run before that epoch's checkpoint (exit 2, the value
named), so the last checkpoint on disk is a good one; every JSON file is strict (no NaN tokens); only
diagnostics write ``null`` plus a ``nonfinite`` field."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from tiny_configs import scenes_config

from mtl_pipelines import cli
from mtl_pipelines import evaluate as evaluate_module
from mtl_pipelines import run as runmod
from mtl_pipelines import train as train_module
from mtl_pipelines.evaluate import evaluate_run
from mtl_pipelines.train import train

CONFIG: dict[str, Any] = scenes_config(
    "nonfinite",
    train={"epochs": 2, "seed": 1, "max_steps_per_epoch": 1},
    eval={"corruptions": {"names": ["gaussian_noise"], "severities": [3]}},
)


def _strict(text: str) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _main(tmp_path: Path, *argv: str) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, err.getvalue()


def test_a_nan_buffer_stops_the_run_before_its_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BatchNorm running statistics turn NaN during epoch 2 (the training losses stay finite: training mode
    normalises with batch statistics): exit 2 naming the buffer; the checkpoint stays epoch 1's, finite."""
    original = runmod.Run.build

    def poisoned(self: runmod.Run, split: Any, device: torch.device) -> runmod.Trainee:
        trainee = original(self, split, device)
        end_epoch = trainee.step.end_epoch
        calls = []

        def end() -> None:
            end_epoch()
            calls.append(1)
            if len(calls) == 2:
                bn = next(m for m in trainee.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
                bn.running_var.fill_(float("nan"))

        trainee.step.end_epoch = end
        return trainee

    monkeypatch.setattr(runmod.Run, "build", poisoned)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    run_dir = tmp_path / "run"
    code, err = _main(tmp_path, "train", str(path), "--run-dir", str(run_dir), "--quiet")
    assert code == 2, err
    assert "running_var" in err and "epoch 2" in err and "last good checkpoint" in err
    assert not (run_dir / runmod.FINAL).exists()
    state = torch.load(run_dir / runmod.CHECKPOINT, weights_only=True)
    assert state["epoch"] == 0  # epoch 1's (0-based): nothing of the bad epoch was written
    assert all(bool(torch.isfinite(t).all()) for t in state["model"].values() if t.is_floating_point())
    history = [_strict(line) for line in (run_dir / runmod.METRICS).read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1]


def test_a_nan_metric_stops_the_run_naming_it_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = train_module.evaluate_model

    def nan_depth(*args: Any, **kwargs: Any) -> dict[str, dict[str, float]]:
        metrics = real(*args, **kwargs)
        first = next(iter(metrics["depth"]))
        metrics["depth"][first] = math.nan
        return metrics

    real_with_loss = train_module.evaluate_model_with_loss

    def nan_depth_with_loss(*args: Any, **kwargs: Any) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        metrics, losses = real_with_loss(*args, **kwargs)
        metrics["depth"][next(iter(metrics["depth"]))] = math.nan
        return metrics, losses

    monkeypatch.setattr(train_module, "evaluate_model", nan_depth)
    monkeypatch.setattr(train_module, "evaluate_model_with_loss", nan_depth_with_loss)
    with pytest.raises(runmod.NonFiniteError, match=r"val/depth/.*test/depth/.*no checkpoint was written yet"):
        train(CONFIG, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / runmod.CHECKPOINT).exists()
    assert not (tmp_path / "run" / runmod.FINAL).exists()
    assert _strict((tmp_path / "run" / runmod.METRICS).read_text() or "null") is None  # empty: no epoch recorded


def test_a_nan_validation_loss_stops_the_run_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The validation loss recorded for best_val_loss selection is checked like the metrics: an Inf loss of
    one task after epoch 1 stops the run naming ``val_loss/<task>``, nothing of the epoch written."""
    real = train_module.evaluate_model_with_loss

    def inf_loss(*args: Any, **kwargs: Any) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        metrics, losses = real(*args, **kwargs)
        return metrics, {**losses, "segmentation": math.inf}

    monkeypatch.setattr(train_module, "evaluate_model_with_loss", inf_loss)
    with pytest.raises(runmod.NonFiniteError, match=r"after epoch 1: \['val_loss/segmentation'\]"):
        train(CONFIG, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / runmod.CHECKPOINT).exists()


def test_a_nan_corrupted_metric_stops_evaluation_and_eval_json_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    train(CONFIG, run_dir, progress=False)
    real = evaluate_module.evaluate_model
    calls = []

    def inf_on_corrupted(*args: Any, **kwargs: Any) -> dict[str, dict[str, float]]:
        metrics = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # the first corrupted test set (the first call is the clean one)
            metrics["segmentation"][next(iter(metrics["segmentation"]))] = math.inf
        return metrics

    monkeypatch.setattr(evaluate_module, "evaluate_model", inf_on_corrupted)
    code, err = _main(tmp_path, "evaluate", str(run_dir), "--quiet")
    assert code == 2
    assert "eval.json: not written" in err and "corrupted/gaussian_noise/3/segmentation/" in err
    assert not (run_dir / runmod.EVAL).exists()
    for name in (runmod.FINAL, runmod.CURVES):
        _strict((run_dir / name).read_text())
    monkeypatch.setattr(evaluate_module, "evaluate_model", real)
    assert math.isfinite(next(iter(evaluate_run(run_dir, progress=False)["test"]["depth"].values())))


def test_diagnostics_write_null_and_name_the_nonfinite_fields(tmp_path: Path) -> None:
    record = {"epoch": 1, "cosine": [0.5, math.nan], "condition_number": math.inf, "rank": 2}
    assert runmod.finite_or_null(record) == {
        "epoch": 1, "cosine": [0.5, None], "condition_number": None, "rank": 2,
        "nonfinite": ["condition_number", "cosine"],
    }  # fmt: skip
    assert runmod.finite_or_null({"cosine": [0.1]}) == {"cosine": [0.1]}
    assert runmod.nonfinite_fields({"a": [1.0, {"b": math.nan}], "c": 2}) == ["a[1]/b"]
    run = runmod.Run(tmp_path / "run", CONFIG)
    (tmp_path / "run").mkdir()
    expected = r"diagnostics.jsonl: not written: non-finite values at \['\[0\]/cosine\[1\]', '\[0\]/condition_number'\]"
    with pytest.raises(runmod.NonFiniteError, match=expected):
        run.write_history([], [record], [])  # checked before metrics.jsonl and curves.json are written
    assert not list((tmp_path / "run").iterdir())
