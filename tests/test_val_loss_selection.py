"""Selection on the validation loss (seed 001 A3.2: the STL models' "training was stopped early based on the
validation loss"): every epoch record holds the mean validation loss per task, ``eval.selection:
best_val_loss`` picks the epoch of lowest summed validation loss, the STL lr choice per task uses it, and a run
without recorded validation losses is refused (exit 2, naming the run and "retrain").

Tiny stand-in data (MTAN at width 1/16 on 32x64 images), a few seconds per training run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_configs import scenes_config

from mtl_pipelines import cli, grid
from mtl_pipelines import config as cfg
from mtl_pipelines.data import build_split, loader_options
from mtl_pipelines.evaluate import best_stl_candidate, best_stl_val, evaluate_run, select
from mtl_pipelines.report.results import best_stl_runs
from mtl_pipelines.run import CHECKPOINT, METRICS, Run, RunError
from mtl_pipelines.train import train

# 6 validation images in batches of 4: a full and a partial batch, so the batch weighting matters
TINY: dict[str, Any] = scenes_config(
    "valloss", train={"epochs": 3, "seed": 5}, eval={"selection": "best_val_loss"}, sizes=(8, 6, 4)
)


def _stl(lr: float, task: str = "depth") -> dict[str, Any]:
    return {
        **TINY,
        "name": f"stl-{task}-{lr:g}",
        "method": {"name": "stl"},
        "dataset": {**TINY["dataset"], "tasks": [task]},
        "optimizer": {"name": "adam", "lr": lr},
    }


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]


@pytest.fixture(scope="module")
def mtl_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "mtl"
    train(TINY, run_dir, progress=False)
    return run_dir


def _hand_losses(model: torch.nn.Module, x: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict[str, float]:
    """The training losses of the Cityscapes stand-in written out by hand in float64: cross-entropy over the
    labelled pixels (label -1 ignored) and L1 over the pixels of known depth (depth 0 unknown)."""
    with torch.no_grad():
        out = model(x)
    logits = out["segmentation"].double()
    labels = targets["segmentation"].long()
    keep = labels != -1
    log_p = logits - logits.logsumexp(dim=1, keepdim=True)
    picked = log_p.gather(1, labels.clamp(min=0).unsqueeze(1)).squeeze(1)
    depth, truth = out["depth"].double(), targets["depth"].double()
    known = truth != 0
    return {
        "segmentation": float(-picked[keep].sum() / keep.sum()),
        "depth": float((depth - truth).abs()[known].sum() / known.sum()),
    }


def test_the_recorded_validation_loss_equals_an_independent_computation(mtl_run: Path) -> None:
    """The last epoch's ``val_loss`` is each task's loss per validation batch (batches of eval.batch_size in
    the split's order: 4 + 2 images), averaged with the batches' sizes as weights (LibMTL's average). On this
    run the plain mean of the two batch losses differs by 1e-2 (depth) and the loss over all pixels at once by
    4e-6 (segmentation) relative; the recorded value agrees to 1e-7."""
    records = _records(mtl_run)
    assert all(set(r["val_loss"]) == {"segmentation", "depth"} for r in records)
    assert records[0]["val_loss"] != records[-1]["val_loss"]
    run = Run.open(mtl_run)
    state = run.check()
    assert state is not None and state["history"][-1]["val_loss"] == records[-1]["val_loss"]
    val = build_split(run.config["dataset"], "val", None, loader_options(run.config["train"], torch.device("cpu")))
    model = run.trained_model(val, torch.device("cpu"), state)
    (x, targets), *more = list(val.batches(len(val), shuffle=False))  # every image at once, in order
    assert not more and x.shape[0] == 6
    chunks = [slice(0, 4), slice(4, 6)]
    per_batch = [_hand_losses(model, x[c], {t: v[c] for t, v in targets.items()}) for c in chunks]
    for task in ("segmentation", "depth"):
        expected = (4 * per_batch[0][task] + 2 * per_batch[1][task]) / 6
        assert records[-1]["val_loss"][task] == pytest.approx(expected, rel=1e-6)


def _history(losses: list[dict[str, float]]) -> list[dict[str, Any]]:
    # validation metrics that point the other way: best_val would pick the last epoch
    return [
        {"epoch": i + 1, "val": {"a": {"err": 10.0 - i}}, "val_loss": loss, "test": {"a": {"err": float(i)}}}
        for i, loss in enumerate(losses)
    ]


def test_best_val_loss_picks_the_epoch_of_lowest_summed_validation_loss() -> None:
    """Epoch 2 has the lowest sum (3.5) though neither task alone is lowest there; ties go to the first."""
    config = {"eval": {"selection": "best_val_loss"}}
    history = _history([{"a": 1.0, "b": 3.0}, {"a": 2.0, "b": 1.5}, {"a": 0.5, "b": 3.4}, {"a": 3.0, "b": 0.6}])
    test, epochs = select(history, config, {})
    assert epochs == [2] and test == {"a": {"err": 1.0}}
    tied = _history([{"a": 2.0}, {"a": 1.0}, {"a": 1.0}])
    assert select(tied, config, {})[1] == [2]
    single = _history([{"a": 0.3}, {"a": 0.2}, {"a": 0.25}])  # an STL run: its one task
    assert select(single, config, {})[1] == [2]


def test_best_val_loss_refuses_a_history_without_validation_losses() -> None:
    history = _history([{"a": 1.0}, {"a": 0.5}])
    del history[1]["val_loss"]
    with pytest.raises(RunError, match=r"results/runs/old, epoch 2, records no validation loss.*retrain"):
        select(history, {"eval": {"selection": "best_val_loss"}}, {}, source="results/runs/old")


def _evaluated(val_acc: float, loss: float | None, selection: str = "best_val_loss") -> dict[str, Any]:
    out: dict[str, Any] = {"test": {"a": {"acc": val_acc}}, "val": {"a": {"acc": val_acc}}, "selection": selection}
    if loss is not None:
        out["val_loss"] = {"a": loss}
    return out


def test_the_stl_candidate_of_lowest_validation_loss_is_the_baseline() -> None:
    """Seed 001 A3.2: per task, the STL lr of lowest validation loss; validation metrics that disagree do not
    decide; runs selected on their metrics keep the metric criterion; mixed or old runs are refused."""
    hib = {"a/acc": True}
    by_loss = {"lr=0.01": _evaluated(0.9, 0.40), "lr=0.001": _evaluated(0.5, 0.30), "lr=1e-4": _evaluated(0.7, 0.35)}
    assert best_stl_candidate(by_loss, hib) == "lr=0.001"
    by_metric = {k: {**v, "selection": "best_val"} for k, v in by_loss.items()}
    assert best_stl_candidate(by_metric, hib) == "lr=0.01"
    with pytest.raises(RunError, match="select differently"):
        best_stl_candidate({**by_loss, "lr=5e-5": _evaluated(0.8, 0.1, "best_val")}, hib)
    with pytest.raises(RunError, match=r"STL run lr=5e-5: eval.json records no validation loss.*retrain"):
        best_stl_candidate({**by_loss, "lr=5e-5": _evaluated(0.8, None)}, hib)


def _spec(run_id: str, lr: float, seed: int = 0) -> grid.RunSpec:
    return grid.RunSpec(
        run_id, {"optimizer": {"lr": lr}}, "b", "m", "stl", "STL", "a", f"stl adam lr={lr:g}", seed, stl_group="g"
    )


def test_the_report_keeps_the_stl_lr_of_lowest_validation_loss_per_task_and_seed() -> None:
    runs = [_spec("s0-hi", 0.01), _spec("s0-lo", 0.001), _spec("s1-hi", 0.01, 1), _spec("s1-lo", 0.001, 1)]
    results = {
        "s0-hi": {"eval": _evaluated(0.9, 0.4)},
        "s0-lo": {"eval": _evaluated(0.5, 0.3)},
        "s1-hi": {"eval": _evaluated(0.5, 0.2)},
        "s1-lo": {"eval": _evaluated(0.9, 0.3)},
    }
    assert [r.run_id for r in best_stl_runs(runs, results, {"a/acc": True})] == ["s0-lo", "s1-hi"]


@pytest.fixture(scope="module")
def stl_grid(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    root = tmp_path_factory.mktemp("stl")
    out = {}
    for lr in (3e-2, 1e-3):
        out[lr] = root / f"lr{lr:g}"
        train(_stl(lr), out[lr], progress=False)
        evaluate_run(out[lr], progress=False)
    return out


def test_an_stl_run_selects_its_epoch_and_its_lr_on_the_validation_loss(stl_grid: dict[float, Path]) -> None:
    """Trained end to end: each STL run reports the test metrics of its epoch of lowest validation loss and
    ``eval.json`` carries that loss; of the lr grid, the baseline is the run of lowest validation loss."""
    losses = {}
    for run_dir in stl_grid.values():
        records = _records(run_dir)
        evaluated = json.loads((run_dir / "eval.json").read_text())
        best = min(records, key=lambda r: r["val_loss"]["depth"])
        assert evaluated["epochs"] == [best["epoch"]] and evaluated["test"] == best["test"]
        assert evaluated["val_loss"] == best["val_loss"] and evaluated["selection"] == "best_val_loss"
        losses[run_dir] = best["val_loss"]["depth"]
    assert len(set(losses.values())) == 2
    winner = min(losses, key=losses.__getitem__)
    specs = build_split(TINY["dataset"], "test", None).dataset.tasks
    assert best_stl_val(list(stl_grid.values()), specs) == json.loads((winner / "eval.json").read_text())["val"]


def test_evaluating_an_old_run_on_its_validation_loss_exits_2_naming_it(
    stl_grid: dict[float, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A history recorded before runs kept the validation loss (simulated: removed from the checkpoint of a
    copy of a trained run) cannot be selected on it: ``mtl evaluate`` exits 2 naming the run and saying to
    retrain, and writes nothing."""
    run_dir = tmp_path / "old"
    shutil.copytree(stl_grid[1e-3], run_dir)
    (run_dir / "eval.json").unlink()
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    for record in state["history"]:
        del record["val_loss"]
    torch.save(state, run_dir / CHECKPOINT)
    assert cli.main(["evaluate", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{run_dir}, epoch 1, records no validation loss" in err and "retrain" in err
    assert not (run_dir / "eval.json").exists()


def test_best_val_loss_on_the_test_split_is_refused() -> None:
    config = {**TINY, "dataset": {**TINY["dataset"], "splits": {"val": "test"}}}
    with pytest.raises(cfg.ConfigError, match=r"splits.val: 'test' is refused with eval.selection best_val_loss"):
        cfg.resolve(config)
