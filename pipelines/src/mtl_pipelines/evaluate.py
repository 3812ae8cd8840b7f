"""Evaluation of a finished run: the reported clean test numbers (per the run's selection protocol) and the
metrics on corrupted copies of the test split (seed 001 sec. 4.3), written to ``eval.json``.

Selection (``eval.selection``): ``last`` epoch; ``last_k`` mean of the last k epochs (seeds 000/002/004:
last 10 of 200); ``best_val``: the epoch of lowest validation Delta_m against the STL runs' validation
metrics (seed 001 A3.2: "early stopping wrt. Delta_m-metric on the validation set"; a run without STL runs
selects on Delta_m against its own first epoch); ``best_val_loss``: the epoch of lowest validation loss, the
sum over the run's tasks of each task's mean validation loss (seed 001 A3.2, the STL models: "The training
was stopped early based on the validation loss."). Where a task has several STL runs (seed 001: one per lr of
a grid), the baseline is the best of them on validation (:func:`best_stl_candidate`). Corrupted copies are
evaluated with the final checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mtl_pipelines.run import EVAL, FINAL, Run, RunError, evaluate_model, set_determinism
from mtl_pipelines.train import mean_metrics

__all__ = ["best_stl_candidate", "best_stl_val", "evaluate_run", "flat", "select", "val_loss"]


def flat(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """``{task: {metric: v}}`` -> ``{"task/metric": v}``."""
    return {f"{t}/{m}": v for t, ms in metrics.items() for m, v in ms.items()}


def _direction(dataset_tasks: Mapping[str, Any], names: Sequence[str]) -> dict[str, bool]:
    out = {}
    for name in names:
        task, metric = name.split("/", 1)
        out[name] = dataset_tasks[task].higher_is_better[metric]
    return out


def val_loss(record: Mapping[str, Any], source: str) -> float:
    """The validation loss that ``best_val_loss`` minimises: the plain (unweighted) sum over the record's
    tasks of each task's mean validation loss (``record["val_loss"]``, :func:`mtl_pipelines.run.
    evaluate_model_with_loss`); for an STL run the loss of its one task. ``record`` is an epoch record of the
    history or an ``eval.json``. A record without it (a run trained before the validation loss was recorded)
    raises :class:`RunError` naming ``source``: such a run cannot be selected on its validation loss."""
    losses = record.get("val_loss")
    if not isinstance(losses, Mapping) or not losses:
        raise RunError(
            f"{source} records no validation loss (val_loss): it was trained before runs recorded it, so "
            "eval.selection best_val_loss cannot select on it; retrain the run (mtl train --restart)"
        )
    return float(sum(losses.values()))


def select(
    history: list[dict[str, Any]],
    config: Mapping[str, Any],
    task_specs: Mapping[str, Any],
    stl_val: Mapping[str, Mapping[str, float]] | None = None,
    *,
    source: str = "the run",
) -> tuple[dict[str, dict[str, float]], list[int]]:
    """Test metrics reported for a run and the (1-based) epochs they come from (``eval.selection``, see the
    module docstring; ties go to the earliest epoch). ``source`` names the run in errors."""
    from mtl_core.metrics import delta_m

    selection = config["eval"]["selection"]
    if selection == "last":
        return history[-1]["test"], [history[-1]["epoch"]]
    if selection == "last_k":
        chosen = history[-config["eval"]["last_k"] :]
        return mean_metrics([r["test"] for r in chosen]), [r["epoch"] for r in chosen]
    if selection == "best_val_loss":
        losses = [val_loss(r, f"{source}, epoch {r['epoch']},") for r in history]
        best = history[min(range(len(history)), key=lambda i: (losses[i], i))]
        return best["test"], [best["epoch"]]
    reference = flat(stl_val) if stl_val else flat(history[0]["val"])
    names = [n for n in flat(history[0]["val"]) if n in reference]
    hib = _direction(task_specs, names)

    def score(record: Mapping[str, Any]) -> float:
        values = flat(record["val"])
        baseline = {n: reference[n] for n in names if reference[n] != 0}
        return delta_m({n: values[n] for n in baseline}, baseline, hib)

    best = min(history, key=score)
    return best["test"], [best["epoch"]]


def best_stl_candidate(candidates: Mapping[str, Mapping[str, Any]], hib: Mapping[str, bool]) -> str:
    """The key of the best of several STL runs of one task (their ``eval.json`` by run): seed 001 A3.2 trains
    one Adam STL per lr of a grid and the best on validation is the baseline. Runs selected on their
    validation loss (``best_val_loss``) are compared on it (:func:`val_loss`: the lowest wins); otherwise on
    their validation metrics, the lowest Delta_m against the first candidate (for a one-metric task this
    orders the candidates as the metric does). Ties go to the first. The one criterion of the evaluation
    (:func:`best_stl_val`) and the report (:func:`mtl_pipelines.report.results.best_stl_runs`)."""
    from mtl_core.metrics import delta_m

    keys = list(candidates)
    if not keys:
        raise ValueError("no STL candidates to choose from")
    if len(keys) == 1:  # nothing to compare
        return keys[0]
    by_loss = [k for k in keys if candidates[k].get("selection") == "best_val_loss"]
    if by_loss and len(by_loss) != len(keys):
        others = [k for k in keys if k not in by_loss]
        raise RunError(
            f"STL runs of one task select differently: {by_loss} on the validation loss, {others} on validation "
            "metrics; they cannot be compared: train them under one protocol"
        )
    if by_loss:
        scores = [val_loss(candidates[k], f"STL run {k}: eval.json") for k in keys]
    else:
        vals = [flat(candidates[k]["val"]) for k in keys]
        reference = vals[0]
        names = [n for n in reference if reference[n] != 0 and all(n in v for v in vals)]
        if not names:
            return keys[0]
        base = {n: reference[n] for n in names}
        scores = [float(delta_m({n: v[n] for n in names}, base, {n: hib[n] for n in names})) for v in vals]
    return keys[min(range(len(keys)), key=lambda i: (scores[i], i))]


def best_stl_val(stl_runs: Sequence[str | Path], task_specs: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Validation metrics of the STL baseline, per task: the run's own where a task has one STL run, else
    the best candidate's (:func:`best_stl_candidate`)."""
    groups: dict[tuple[str, ...], dict[str, Mapping[str, Any]]] = {}
    for stl in stl_runs:
        stl_run = Run.open(stl)
        if not stl_run.path(EVAL).is_file():
            raise RunError(f"STL run {stl} has no {EVAL}; evaluate it first (mtl evaluate {stl})")
        evaluated = stl_run.read_eval()
        groups.setdefault(tuple(sorted(evaluated["val"])), {})[str(stl)] = evaluated
    out: dict[str, dict[str, float]] = {}
    for group in groups.values():
        names = sorted({n for e in group.values() for n in flat(e["val"])})
        out.update(group[best_stl_candidate(group, _direction(task_specs, names))]["val"])
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
    clean, epochs = select(history, config, test.dataset.tasks, stl_val or None, source=str(run.dir))
    by_epoch = {r["epoch"]: r for r in history}
    chosen = [by_epoch[e] for e in epochs]
    result: dict[str, Any] = {
        "test": clean,
        "val": mean_metrics([r["val"] for r in chosen]),
        "epochs": epochs,
        "selection": config["eval"]["selection"],
        "corrupted": {},
    }
    if all("val_loss" in r for r in chosen):  # runs trained before the validation loss was recorded have none
        losses = [r["val_loss"] for r in chosen]
        result["val_loss"] = {t: sum(v[t] for v in losses) / len(losses) for t in losses[0]}
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
