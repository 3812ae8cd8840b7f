"""The training run: seeded, resumable, evaluated every epoch, on the run's device.

The run directory, its files, checkpoints and the model are owned by :mod:`mtl_pipelines.run`; this module
is the epoch loop. After every epoch the run layer writes the checkpoint (model, optimisers, lr schedules,
method state, RNG states, metric history: per epoch the mean training loss, the validation metrics and mean
validation loss per task, the test metrics) and the files derived from it (``metrics.jsonl``, ``curves.json``,
``diagnostics.jsonl``: gradient cosine / magnitude similarity / condition number / task-gradient norms and the
step's task losses every ``train.diagnostics_every`` steps, seed 001 Fig. 3, seed 000 Figs. 2-3 and seed 003's
condition-number analysis, from the rows the training step computed on its own forward); ``final.json`` is
written last.

A run killed at any point (SIGKILL included) and started again resumes from the last checkpoint and ends
with exactly the metrics of an uninterrupted run: the batch order of an epoch depends only on
``(seed, epoch)`` and every RNG state is restored. A non-finite loss stops the run with
:class:`NonFiniteLossError`, a non-finite validation/test metric, mean validation or training loss, parameter or buffer
(BatchNorm running statistics) at the end of an epoch with :class:`mtl_pipelines.run.NonFiniteError`
(``mtl`` exits 2 for both); the last good checkpoint is kept (nothing is written for the bad epoch), so
resuming it repeats the failure: change the config (learning rate...) and train with ``--restart``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mtl_pipelines.config import resolve
from mtl_pipelines.data import batch_size_of, build_split, epoch_generator, loader_options
from mtl_pipelines.memory import PeakMemory, run_peak
from mtl_pipelines.representation import RepresentationRows
from mtl_pipelines.run import (
    CHECKPOINT,
    FINAL,
    NonFiniteError,
    Run,
    evaluate_model,
    evaluate_model_with_loss,
    finite_or_null,
    nonfinite_fields,
    nonfinite_tensors,
    place,
    seed_everything,
    set_determinism,
    set_rng_state,
)

__all__ = ["NonFiniteLossError", "RunResult", "gradient_diagnostics", "train"]


class NonFiniteLossError(FloatingPointError):
    """A task loss became NaN/Inf; the message names epoch, step, task and the last good checkpoint."""


RunResult = dict[str, Any]


def gradient_diagnostics(grads: Tensor) -> dict[str, Any]:
    """Pairwise cosine and magnitude similarity of the per-task gradients, the share of conflicting pairs and
    the condition number of the gradient system (seed 001 Fig. 3, seed 000 Fig. 3, seed 003 eq. (2)), from
    :func:`mtl_core.analysis.gradient_system_report`."""
    from mtl_core.analysis import gradient_system_report, upper_triangle

    report = gradient_system_report(grads.detach())
    return {
        "cosine": [float(v) for v in upper_triangle(report.cosine)],
        "magnitude_similarity": [float(v) for v in upper_triangle(report.magnitude)],
        "conflicting_pair_share": float(report.conflicting_pair_share),
        "condition_number": float(report.condition_number_nonzero),
        "rank": int(report.rank),
        "grad_norms": [float(v) for v in grads.detach().double().norm(dim=1)],
    }


def _validation_delta_m(history: Sequence[Mapping[str, Any]], specs: Mapping[str, Any]) -> float:
    """Delta_m (metric-weighted, %) of the last epoch's validation metrics against the first epoch's: what a
    plateau schedule monitors (the reference monitors the validation Delta_m against fixed STL numbers)."""
    from mtl_core.metrics import delta_m

    first, last = history[0]["val"], history[-1]["val"]
    names = [(t, m) for t, ms in first.items() for m, v in ms.items() if v != 0]
    return float(
        delta_m(
            {f"{t}/{m}": last[t][m] for t, m in names},
            {f"{t}/{m}": first[t][m] for t, m in names},
            {f"{t}/{m}": specs[t].higher_is_better[m] for t, m in names},
        )
    )


def _check_finite(losses: Tensor, tasks: list[str], epoch: int, step: int, checkpoint: Path) -> None:
    if bool(torch.isfinite(losses).all()):
        return
    bad = {t: float(v) for t, v in zip(tasks, losses.cpu().tolist()) if not math.isfinite(v)}
    last = f"the last good checkpoint is {checkpoint}" if checkpoint.exists() else "no checkpoint was written yet"
    raise NonFiniteLossError(
        f"non-finite loss at epoch {epoch + 1}, step {step + 1}: {bad}; the run stops here and {last}"
    )


def _check_epoch_finite(record: Mapping[str, Any], model: torch.nn.Module, checkpoint: Path) -> None:
    """Before an epoch's checkpoint: its metrics and the model's parameters and buffers are finite, so the
    last checkpoint on disk is always a good one."""
    metrics = {part: record[part] for part in ("train_loss", "val", "val_loss", "test")}
    bad = nonfinite_fields(metrics) + [f"model.{name}" for name in nonfinite_tensors(model)]
    if bad:
        last = f"the last good checkpoint is {checkpoint}" if checkpoint.exists() else "no checkpoint was written yet"
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        raise NonFiniteError(
            f"non-finite values after epoch {record['epoch']}: {bad[:10]}{more}; the run stops here, nothing of "
            f"this epoch is written and {last}"
        )


def train(
    config: Mapping[str, Any],
    run_dir: str | Path,
    *,
    progress: bool | None = None,
    stop_after_epochs: int | None = None,
    log: Callable[[str], None] | None = None,
    device: str | None = None,
    restart: bool = False,
    trust_checkpoints: bool = False,
) -> RunResult:
    """Train (or resume) the run of ``config`` in ``run_dir``; returns the content of ``final.json``.

    ``config`` is validated and completed with defaults, the device resolved and every existing file of the
    directory checked first (nothing is written on error). ``device`` overrides ``train.device``;
    ``restart`` deletes the run's files first; ``trust_checkpoints`` is the opt-in for checkpoints of the old
    pickled format (:mod:`mtl_pipelines.run`). ``stop_after_epochs`` ends the process early after that many
    epochs in total (tests of resumption).
    """
    from tqdm.auto import tqdm

    run = Run(run_dir, resolve(config), trust_checkpoints=trust_checkpoints)
    config = run.config
    on = run.device(device)
    if restart:
        run.restart()
    saved = run.check()
    if saved is not None and run.path(FINAL).exists():  # a finished run of this config
        return run.read_final()
    tcfg, ecfg = config["train"], config["eval"]
    options = loader_options(tcfg, on)
    splits = {
        role: build_split(config["dataset"], config["dataset"]["splits"][role], config["dataset"].get("tasks"), options)
        for role in ("train", "val", "test")
    }
    run.begin()

    torch.set_num_threads(tcfg["threads"])
    set_determinism(tcfg.get("deterministic", True), on)
    seed_everything(tcfg["seed"])
    train_split = splits["train"]
    tasks = train_split.tasks
    specs = {t: train_split.dataset.tasks[t] for t in tasks}
    trainee = run.build(train_split, on)
    model, step = trainee.model, trainee.step

    checkpoint = run.path(CHECKPOINT)
    history: list[dict[str, Any]] = []
    diagnostics: list[dict[str, Any]] = []
    start_epoch = 0
    if saved is not None:
        trainee.load(saved)
        set_rng_state(saved["rng"], on)
        history, diagnostics = saved["history"], saved["diagnostics"]
        start_epoch = saved["epoch"] + 1
        if log:
            log(f"resuming {run.dir} after epoch {start_epoch} on {on}")
    run.write_history(history, diagnostics, curves(history))

    all_tasks = list(tasks)
    z_rows = RepresentationRows()

    def close(x: Any, targets: Mapping[str, Tensor], epoch: int, index: int) -> Callable[..., dict[str, Tensor]]:
        # task-restricted (mtl_core.step.LossClosure): the SAM family's per-task passes ask for one task and
        # run one head; {task: loss} keeps each loss its own graph root (per-task backwards cross one head)
        def closure(_model: Any = None, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
            names = all_tasks if tasks is None else list(tasks)
            with z_rows.capture(model, full=tasks is None):  # d L_i / d z of a diagnosed step (representation.py)
                predictions = model(x) if tasks is None else model(x, tasks=names)
            losses = {t: specs[t].loss(predictions[t], targets[t]) for t in names}
            # checked here, before any method (or optimizer) sees a non-finite value
            _check_finite(torch.stack([v.detach() for v in losses.values()]), names, epoch, index, checkpoint)
            z_rows.compute(losses)
            return losses

        return closure

    epochs = tcfg["epochs"]
    every = tcfg["diagnostics_every"]
    global_step = sum(r["steps"] for r in history)
    bar = tqdm(
        range(start_epoch, epochs),
        desc=config.get("name", "train"),
        disable=progress is False,
        initial=start_epoch,
        total=epochs,
        leave=False,
    )
    meter = PeakMemory(on)  # peak memory of the training steps (mtl_pipelines.memory)
    for epoch in bar:
        began = time.perf_counter()
        meter.start()
        model.train()
        loss_sum = torch.zeros(len(tasks), dtype=torch.float64, device=on)  # summed on the device: no sync
        seen = 0
        steps = 0
        generator = epoch_generator(tcfg["seed"], epoch)
        for i, (x, targets) in enumerate(
            train_split.batches(
                tcfg["batch_size"], shuffle=True, generator=generator, drop_last=len(train_split) > tcfg["batch_size"]
            )
        ):
            if tcfg["max_steps_per_epoch"] is not None and i >= tcfg["max_steps_per_epoch"]:
                break
            n = batch_size_of(x)
            x, targets = place(x, on), place(targets, on)
            diagnose = bool(every) and global_step % every == 0 and len(tasks) > 1
            z_rows.arm(diagnose)
            result = step.step(close(x, targets, epoch, i), rows=diagnose)
            if diagnose:
                rows = gradient_diagnostics(result.rows)
                losses = [float(v) for v in result.losses.detach().cpu().tolist()]  # seed 000 Fig. 2 plots them
                report = finite_or_null({"epoch": epoch + 1, "step": global_step + 1, **rows, "losses": losses})
                z = gradient_diagnostics(z_rows.rows) if z_rows.rows is not None else None
                report["z"] = finite_or_null(z) if z is not None else None
                diagnostics.append(report)
            loss_sum += result.losses.double() * n
            seen += n
            steps += 1
            global_step += 1
        step.end_epoch()
        peak_memory = meter.stop()
        lr = step.optimizers[0].param_groups[0]["lr"]
        mean_loss = (loss_sum / max(seen, 1)).cpu().tolist()  # one host transfer per epoch
        # the validation loss comes from the pass that scores the validation metrics (eval.selection
        # best_val_loss, seed 001 A3.2); it reads no RNG, so every other number of the run is unchanged
        val, val_loss = evaluate_model_with_loss(model, splits["val"], ecfg["batch_size"], on)
        record = {
            "epoch": epoch + 1,
            "steps": steps,
            "lr": lr,
            "train_loss": dict(zip(tasks, mean_loss)),
            "val": val,
            "val_loss": val_loss,
            "test": evaluate_model(model, splits["test"], ecfg["batch_size"], on),
            "seconds": time.perf_counter() - began,
            "peak_memory": peak_memory,
        }
        _check_epoch_finite(record, model, checkpoint)
        history.append(record)
        for scheduler in trainee.schedulers:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(_validation_delta_m(history, specs))  # a plateau watches the validation Delta_m
            else:
                scheduler.step()
        run.save_checkpoint(epoch, trainee, on, history=history, diagnostics=diagnostics)
        run.write_history(history, diagnostics, curves(history))
        run.tensorboard(curves([record])[0])
        bar.set_postfix(loss=f"{sum(mean_loss):.4g}")
        if stop_after_epochs is not None and epoch + 1 >= stop_after_epochs and epoch + 1 < epochs:
            return {"stopped_after": epoch + 1}
    bar.close()
    result = summarize(config, history)
    run.write_final(result)
    return run.read_final()


def curves(history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Flat per-epoch records (``train_loss/<task>``, ``val/<task>/<metric>``, ``test/...``) for plotting
    (``dvc plots show``)."""
    out = []
    for record in history:
        row: dict[str, float] = {"epoch": record["epoch"], "lr": record["lr"]}
        row.update({f"train_loss/{t}": v for t, v in record["train_loss"].items()})
        row.update({f"val_loss/{t}": v for t, v in record.get("val_loss", {}).items()})  # absent in older runs
        for part in ("val", "test"):
            row.update({f"{part}/{t}/{m}": v for t, ms in record[part].items() for m, v in ms.items()})
        out.append(row)
    return out


def summarize(config: Mapping[str, Any], history: list[dict[str, Any]]) -> RunResult:
    """``final.json``: identity of the run, per-epoch count, the test metrics of the last epoch and of the
    mean of the last ``eval.last_k`` epochs, total time. Selection by validation happens in evaluation."""
    k = config["eval"]["last_k"]
    return {
        "dataset": config["dataset"]["name"],
        "model": config["model"]["name"],
        "method": config["method"]["name"],
        "tasks": list(history[-1]["test"]),
        "seed": config["train"]["seed"],
        "epochs": len(history),
        "steps": sum(r["steps"] for r in history),
        "seconds": sum(r["seconds"] for r in history),
        "peak_memory": run_peak(r.get("peak_memory") for r in history),
        "last": history[-1]["test"],
        "last_k": mean_metrics([r["test"] for r in history[-k:]]),
    }


def mean_metrics(records: list[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Element-wise mean of ``{task: {metric: value}}`` records."""
    if not records:
        raise ValueError("no records to average")
    return {task: {m: float(np.mean([r[task][m] for r in records])) for m in records[0][task]} for task in records[0]}
