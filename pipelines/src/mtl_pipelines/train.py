"""The training run: seeded, resumable, evaluated every epoch.

A run directory holds

- ``config.yaml``: the resolved config (a different config for an existing directory is refused);
- ``checkpoint.pt``: written atomically after every epoch: model, optimizer, lr schedule, method state
  (weighting/aggregator buffers and generators), the global RNG states and the metric history;
- ``metrics.jsonl``: one line per epoch (train losses, validation and test metrics, lr, seconds), rewritten
  atomically from the checkpoint's history so the two never disagree;
- ``diagnostics.jsonl``: gradient cosine / magnitude similarity / condition number every
  ``train.diagnostics_every`` steps (seed 001 Fig. 3, seed 003's condition-number analysis);
- ``final.json``: written last; its presence means the run is complete.

A run killed at any point (SIGKILL included) and started again resumes from the last checkpoint and ends
with exactly the metrics of an uninterrupted run: the batch order of an epoch depends only on
``(seed, epoch)`` and every RNG state is restored. A non-finite loss stops the run with
:class:`NonFiniteLossError`; the last good checkpoint is kept (nothing is written for the bad epoch).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mtl_pipelines import io, methods
from mtl_pipelines.config import ConfigError, config_hash, resolve
from mtl_pipelines.data import Split, batch_size_of, build_split, epoch_generator

__all__ = ["NonFiniteLossError", "RunResult", "evaluate_model", "gradient_diagnostics", "train"]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
DIAGNOSTICS = "diagnostics.jsonl"
FINAL = "final.json"
CONFIG = "config.yaml"
CURVES = "curves.json"


class NonFiniteLossError(FloatingPointError):
    """A task loss became NaN/Inf; the message names epoch, step, task and the last good checkpoint."""


RunResult = dict[str, Any]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (libraries that draw from the legacy global stream)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state()  # noqa: NPY002  (the legacy global stream is what we must restore)
    return {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])


def _optimizer_factory(cfg: Mapping[str, Any]) -> Callable[[list[Any]], torch.optim.Optimizer]:
    name, lr, wd = cfg["name"], cfg["lr"], cfg["weight_decay"]

    def make(params: list[Any]) -> torch.optim.Optimizer:
        if name == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
        if name == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)

    return make


def _schedule(cfg: Mapping[str, Any], optimizer: torch.optim.Optimizer, epochs: int) -> Any:
    if cfg["name"] == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg["milestones"], gamma=cfg["gamma"])
    if cfg["name"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def _model(config: Mapping[str, Any], split: Split) -> nn.Module:
    import mtl_models

    options = dict(config["model"]["options"])
    if "seed" in mtl_models.options(config["model"]["name"]):
        options.setdefault("seed", config["train"]["seed"])
    tasks = {t: split.dataset.tasks[t].output_dim for t in split.tasks}
    return mtl_models.create(config["model"]["name"], tasks=tasks, **options)


@torch.no_grad()
def evaluate_model(model: nn.Module, split: Split, batch_size: int) -> dict[str, dict[str, float]]:
    """Metrics of ``model`` on a whole split, ``{task: {metric: value}}`` (split-level meters of mtl_data)."""
    was_training = model.training
    model.eval()
    meters = {t: split.dataset.tasks[t].meter() for t in split.tasks}
    for x, targets in split.batches(batch_size, shuffle=False):
        predictions = model(x)
        for task, target in targets.items():
            meters[task].update(predictions[task], target)
    model.train(was_training)
    return {task: {k: float(v) for k, v in meter.compute().items()} for task, meter in meters.items()}


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


def _check_finite(losses: Tensor, tasks: list[str], epoch: int, step: int, checkpoint: Path) -> None:
    if bool(torch.isfinite(losses).all()):
        return
    bad = {t: float(v) for t, v in zip(tasks, losses.tolist()) if not math.isfinite(v)}
    last = f"the last good checkpoint is {checkpoint}" if checkpoint.exists() else "no checkpoint was written yet"
    raise NonFiniteLossError(
        f"non-finite loss at epoch {epoch + 1}, step {step + 1}: {bad}; the run stops here and {last}"
    )


def _prepare_dir(config: Mapping[str, Any], run_dir: Path) -> None:
    saved = run_dir / CONFIG
    if saved.exists():
        previous = resolve(io_yaml(saved), str(saved))
        if config_hash(previous) != config_hash(config):
            raise ConfigError(
                f"{run_dir} holds a run of a different config (hash {config_hash(previous)} != "
                f"{config_hash(config)}); use another run directory or delete this one"
            )
    else:
        io.write_yaml(saved, dict(config))


def io_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


def train(
    config: Mapping[str, Any],
    run_dir: str | Path,
    *,
    progress: bool | None = None,
    stop_after_epochs: int | None = None,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Train (or resume) the run of ``config`` in ``run_dir``; returns the content of ``final.json``.

    ``config`` is validated and completed with defaults first (nothing is written on error).
    ``stop_after_epochs`` ends the process early after that many epochs in total (tests of resumption).
    """
    from tqdm.auto import tqdm

    config = resolve(config)
    run_dir = Path(run_dir)
    final_path = run_dir / FINAL
    if final_path.exists():  # a finished run: only check that the directory holds this config
        import json

        _prepare_dir(config, run_dir)
        return json.loads(final_path.read_text())
    tcfg, ecfg = config["train"], config["eval"]
    splits = {
        role: build_split(config["dataset"], config["dataset"]["splits"][role], config["dataset"].get("tasks"))
        for role in ("train", "val", "test")
    }
    _prepare_dir(config, run_dir)

    torch.set_num_threads(tcfg["threads"])
    _seed_everything(tcfg["seed"])
    train_split = splits["train"]
    tasks = train_split.tasks
    specs = {t: train_split.dataset.tasks[t] for t in tasks}
    model = _model(config, train_split)
    step = methods.build(
        config["method"]["name"], config["method"]["options"], model, tasks, _optimizer_factory(config["optimizer"])
    )
    schedulers = [_schedule(config["schedule"], opt, tcfg["epochs"]) for opt in step.optimizers]

    checkpoint = run_dir / CHECKPOINT
    history: list[dict[str, Any]] = []
    diagnostics: list[dict[str, Any]] = []
    start_epoch = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state["config_hash"] != config_hash(config):
            raise ConfigError(f"{checkpoint} belongs to another config; delete it to start over")
        model.load_state_dict(state["model"])
        step.load_state_dict(state["method"])  # combiner, estimator and optimiser states
        for scheduler, saved in zip(schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
        _set_rng_state(state["rng"])
        history, diagnostics = state["history"], state["diagnostics"]
        start_epoch = state["epoch"] + 1
        if log:
            log(f"resuming {run_dir} after epoch {start_epoch}")
    io.write_jsonl(run_dir / METRICS, history)

    all_tasks = list(tasks)

    def close(x: Any, targets: Mapping[str, Tensor], epoch: int, index: int) -> Callable[..., dict[str, Tensor]]:
        # task-restricted (mtl_core.step.LossClosure): the SAM family's per-task passes ask for one task and
        # run one head; {task: loss} keeps each loss its own graph root (per-task backwards cross one head)
        def closure(_model: Any = None, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
            names = all_tasks if tasks is None else list(tasks)
            predictions = model(x) if tasks is None else model(x, tasks=names)
            losses = {t: specs[t].loss(predictions[t], targets[t]) for t in names}
            # checked here, before any method (or optimizer) sees a non-finite value
            _check_finite(torch.stack([v.detach() for v in losses.values()]), names, epoch, index, checkpoint)
            return losses

        return closure

    epochs = tcfg["epochs"]
    global_step = sum(r["steps"] for r in history)
    bar = tqdm(
        range(start_epoch, epochs),
        desc=config.get("name", "train"),
        disable=progress is False,
        initial=start_epoch,
        total=epochs,
        leave=False,
    )
    for epoch in bar:
        began = time.perf_counter()
        model.train()
        loss_sum = torch.zeros(len(tasks), dtype=torch.float64)
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
            closure = close(x, targets, epoch, i)
            every = tcfg["diagnostics_every"]
            if every and global_step % every == 0 and len(tasks) > 1:
                shared = [p for p in model.shared_parameters() if p.requires_grad]
                import mtl_core

                grads = mtl_core.jacobian(list(closure().values()), shared)
                diagnostics.append({"epoch": epoch + 1, "step": global_step + 1, **gradient_diagnostics(grads)})
            losses = step.step(closure).losses
            n = batch_size_of(x)
            loss_sum += losses.double() * n
            seen += n
            steps += 1
            global_step += 1
        step.end_epoch()
        lr = step.optimizers[0].param_groups[0]["lr"]
        for scheduler in schedulers:
            scheduler.step()
        record = {
            "epoch": epoch + 1,
            "steps": steps,
            "lr": lr,
            "train_loss": {t: float(v) for t, v in zip(tasks, (loss_sum / max(seen, 1)).tolist())},
            "val": evaluate_model(model, splits["val"], ecfg["batch_size"]),
            "test": evaluate_model(model, splits["test"], ecfg["batch_size"]),
            "seconds": time.perf_counter() - began,
        }
        history.append(record)
        state = {
            "epoch": epoch,
            "config_hash": config_hash(config),
            "model": model.state_dict(),
            "schedulers": [scheduler.state_dict() for scheduler in schedulers],
            "method": step.state_dict(),
            "rng": _rng_state(),
            "history": history,
            "diagnostics": diagnostics,
        }
        with io.atomic_open(checkpoint, "wb") as f:
            torch.save(state, f)
        io.write_jsonl(run_dir / METRICS, history)
        io.write_json(run_dir / CURVES, curves(history))
        _tensorboard(run_dir, curves([record])[0])
        if diagnostics:
            io.write_jsonl(run_dir / DIAGNOSTICS, diagnostics)
        bar.set_postfix(loss=f"{float(loss_sum.sum() / max(seen, 1)):.4g}")
        if stop_after_epochs is not None and epoch + 1 >= stop_after_epochs and epoch + 1 < epochs:
            return {"stopped_after": epoch + 1}
    bar.close()
    result = summarize(config, history)
    io.write_json(final_path, result)
    return result


def _tensorboard(run_dir: Path, scalars: Mapping[str, float]) -> None:
    """Mirror one epoch's scalars to TensorBoard when it is installed (optional dependency)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is not installed: metrics.jsonl/curves.json are the record
        return
    with SummaryWriter(str(run_dir / "tensorboard")) as writer:
        for key, value in scalars.items():
            if key != "epoch":
                writer.add_scalar(key, value, int(scalars["epoch"]))


def curves(history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Flat per-epoch records (``train_loss/<task>``, ``val/<task>/<metric>``, ``test/...``) for plotting
    (``dvc plots show``)."""
    out = []
    for record in history:
        row: dict[str, float] = {"epoch": record["epoch"], "lr": record["lr"]}
        row.update({f"train_loss/{t}": v for t, v in record["train_loss"].items()})
        for part in ("val", "test"):
            row.update({f"{part}/{t}/{m}": v for t, ms in record[part].items() for m, v in ms.items()})
        out.append(row)
    return out


def summarize(config: Mapping[str, Any], history: list[dict[str, Any]]) -> RunResult:
    """``final.json``: identity of the run, per-epoch count, the test metrics of the last epoch and of the
    mean of the last ``eval.last_k`` epochs, total time. Selection by validation happens in evaluation."""
    k = config["eval"]["last_k"]
    return {
        "config_hash": config_hash(config),
        "dataset": config["dataset"]["name"],
        "model": config["model"]["name"],
        "method": config["method"]["name"],
        "tasks": list(history[-1]["test"]),
        "seed": config["train"]["seed"],
        "epochs": len(history),
        "steps": sum(r["steps"] for r in history),
        "seconds": sum(r["seconds"] for r in history),
        "last": history[-1]["test"],
        "last_k": mean_metrics([r["test"] for r in history[-k:]]),
    }


def mean_metrics(records: list[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Element-wise mean of ``{task: {metric: value}}`` records."""
    if not records:
        raise ValueError("no records to average")
    return {task: {m: float(np.mean([r[task][m] for r in records])) for m in records[0][task]} for task in records[0]}
