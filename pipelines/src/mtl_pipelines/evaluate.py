"""Evaluation of a finished run: the reported clean test numbers (per the run's selection protocol) and the
metrics on corrupted copies of the test split (seed 001 sec. 4.3), written to ``eval.json``.

Selection (``eval.selection``): ``last`` epoch; ``last_k`` mean of the last k epochs (seeds 000/002/004:
last 10 of 200); ``best_val``: the epoch of lowest validation Delta_m against the STL runs' validation
metrics (seed 001 A3.2 early stopping); an STL run itself selects on Delta_m against its first epoch
(any fixed reference orders its epochs the way the seed's criterion does for one task up to the metric
weights). Corrupted copies are evaluated with the final checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mtl_pipelines.run import EVAL, FINAL, Run, RunError, evaluate_model, set_determinism
from mtl_pipelines.train import mean_metrics

__all__ = ["evaluate_run", "flat", "select"]


def flat(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """``{task: {metric: v}}`` -> ``{"task/metric": v}``."""
    return {f"{t}/{m}": v for t, ms in metrics.items() for m, v in ms.items()}


def _direction(dataset_tasks: Mapping[str, Any], names: Sequence[str]) -> dict[str, bool]:
    out = {}
    for name in names:
        task, metric = name.split("/", 1)
        out[name] = dataset_tasks[task].higher_is_better[metric]
    return out


def select(
    history: list[dict[str, Any]],
    config: Mapping[str, Any],
    task_specs: Mapping[str, Any],
    stl_val: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[dict[str, dict[str, float]], list[int]]:
    """Test metrics reported for a run and the (1-based) epochs they come from."""
    from mtl_core.metrics import delta_m

    selection = config["eval"]["selection"]
    if selection == "last":
        return history[-1]["test"], [history[-1]["epoch"]]
    if selection == "last_k":
        chosen = history[-config["eval"]["last_k"] :]
        return mean_metrics([r["test"] for r in chosen]), [r["epoch"] for r in chosen]
    reference = flat(stl_val) if stl_val else flat(history[0]["val"])
    names = [n for n in flat(history[0]["val"]) if n in reference]
    hib = _direction(task_specs, names)

    def score(record: Mapping[str, Any]) -> float:
        values = flat(record["val"])
        baseline = {n: reference[n] for n in names if reference[n] != 0}
        return delta_m({n: values[n] for n in baseline}, baseline, hib)

    best = min(history, key=score)
    return best["test"], [best["epoch"]]


def best_stl_val(stl_runs: Sequence[str | Path], task_specs: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Validation metrics of the STL baseline, per task. Where a task has several STL runs (seed 001 A3.2: one
    Adam STL per lr of a grid), the one with the best selected validation metrics is kept (lowest Delta_m
    against the first candidate, which orders the candidates as each metric does for one-metric tasks)."""
    from mtl_core.metrics import delta_m

    candidates: dict[tuple[str, ...], list[dict[str, dict[str, float]]]] = {}
    for stl in stl_runs:
        stl_run = Run.open(stl)
        if not stl_run.path(EVAL).is_file():
            raise RunError(f"STL run {stl} has no {EVAL}; evaluate it first (mtl evaluate {stl})")
        val = stl_run.read_eval()["val"]
        candidates.setdefault(tuple(sorted(val)), []).append(val)
    out: dict[str, dict[str, float]] = {}
    for group in candidates.values():
        reference = flat(group[0])
        names = [n for n in reference if reference[n] != 0]
        hib = _direction(task_specs, names)
        out.update(min(group, key=lambda v: delta_m({n: flat(v)[n] for n in names}, reference, hib)))
    return out


def evaluate_run(
    run_dir: str | Path,
    *,
    stl_runs: Sequence[str | Path] = (),
    progress: bool | None = None,
    device: str | None = None,
    trust_checkpoints: bool = False,
) -> dict[str, Any]:
    """Write ``<run_dir>/eval.json`` (clean selected test metrics + corrupted test metrics) and return it.

    The run directory is checked first (config, final.json and checkpoint of one config); the history comes
    from the checkpoint and the model is evaluated on ``device`` (default ``auto``: CUDA when available; the
    device the run was trained on does not matter).
    """
    from tqdm.auto import tqdm

    from mtl_pipelines.data import build_split, loader_options

    run = Run.open(run_dir, trust_checkpoints=trust_checkpoints)
    if not run.path(FINAL).is_file():
        raise RunError(f"{run.dir} is not a finished run (no {FINAL}); train it first (mtl train)")
    state = run.check()
    assert state is not None  # check() refuses a final.json without its checkpoint
    config = run.config
    on = run.device(device if device is not None else "auto")
    history = state["history"]
    options = loader_options(config["train"], on)
    test = build_split(config["dataset"], config["dataset"]["splits"]["test"], config["dataset"].get("tasks"), options)
    stl_val = best_stl_val(stl_runs, test.dataset.tasks)
    clean, epochs = select(history, config, test.dataset.tasks, stl_val or None)
    by_epoch = {r["epoch"]: r for r in history}
    val = mean_metrics([by_epoch[e]["val"] for e in epochs])
    result: dict[str, Any] = {
        "test": clean,
        "val": val,
        "epochs": epochs,
        "selection": config["eval"]["selection"],
        "corrupted": {},
    }
    names = config["eval"]["corruptions"]["names"]
    severities = config["eval"]["corruptions"]["severities"]
    if names and severities:
        from mtl_data.corruptions import CorruptedDataset
        from mtl_pipelines.data import Split

        torch.set_num_threads(config["train"]["threads"])
        set_determinism(config["train"].get("deterministic", True), on)
        model = run.trained_model(test, on, state)
        cache = run.dir.parent.parent / "corrupted"
        batch_size = config["eval"]["batch_size"]
        result["corrupted_clean"] = evaluate_model(model, test, batch_size, on)
        grid = [(n, s) for n in names for s in severities]
        for name, severity in tqdm(grid, desc="corruptions", disable=progress is False, leave=False):
            # corruptions are applied to the images where the data is (CPU, cached); the batches then go to `on`
            corrupted = CorruptedDataset(test.dataset, name, severity, cache_dir=cache)
            corrupted.tasks = test.dataset.tasks  # type: ignore[attr-defined]
            split = Split(corrupted, test.tasks, options)
            metrics = evaluate_model(model, split, batch_size, on)
            result["corrupted"].setdefault(name, {})[str(severity)] = metrics
    run.write_eval(result)
    return run.read_eval()
