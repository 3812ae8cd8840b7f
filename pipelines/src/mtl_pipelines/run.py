"""The run layer: the one owner of what a training run is.

A run is a resolved config (:mod:`mtl_pipelines.config`) and a directory. This module names every file of
that directory, computes the config's hash once, places the model, the method and every batch on the run's
device, writes and reads checkpoints, and rebuilds a trained model for evaluation. ``train``, ``evaluate``,
``probes`` and the report go through it; no other module knows a file name or reads a checkpoint.

Files of a run directory (all written atomically, :mod:`mtl_pipelines.io`):

- ``config.yaml``: the resolved config; written once, after every existing file was checked;
- ``checkpoint.pt``: after every epoch: model, optimisers, lr schedules, method state, CPU (and CUDA) RNG
  states, the metric history; tensors are stored on the CPU, so a run trained on a GPU loads anywhere;
- ``metrics.jsonl``, ``diagnostics.jsonl``, ``curves.json``: derived from the checkpoint's history and
  rewritten from it on every resume (so they always belong to the checkpoint beside them);
- ``final.json``: written last; its presence means the run is complete;
- ``eval.json``: written by ``mtl evaluate``.

Consistency: ``config.yaml``, ``checkpoint.pt``, ``final.json`` and ``eval.json`` all carry the config
hash; a directory where one of them belongs to another config, where ``final.json`` exists without its
checkpoint, or where a file is damaged is refused with :class:`RunError` (the file, what is wrong, what to
do) before anything is written.

Non-finite values (NaN/Inf) never reach a file. A run whose validation/test metric, mean validation or training loss,
parameter or buffer (BatchNorm running statistics) is non-finite after an epoch stops with
:class:`NonFiniteError` (``mtl`` exits 2) naming the values, before that epoch's checkpoint is written: the
last checkpoint on disk is the last good one. Every JSON file is written strictly (``allow_nan=False``): a
non-finite metric in ``eval.json`` (e.g. on a corrupted test set) stops evaluation the same way, nothing
written. Only the gradient diagnostics may legitimately be non-finite (e.g. the cosine of a zero gradient):
there the value is written as ``null`` and the record lists the fields in ``"nonfinite"``
(:func:`finite_or_null`).

Checkpoints are untrusted input (they travel through shared DVC caches): they are read with
``torch.load(weights_only=True)``, which refuses any pickled object other than tensors and plain containers;
RNG states are stored as tensors and plain values. Checkpoints written before this format (format 1, with
NumPy/Python RNG states pickled as objects) load only through the explicit opt-in ``--trust-checkpoints``
(or ``MTL_TRUST_CHECKPOINTS=1``), which unpickles them fully (able to run code: only for files you made) and
rewrites them in the safe format at the next epoch.
"""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import random
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
import yaml
from torch import Tensor, nn

from mtl_pipelines import io, methods
from mtl_pipelines.config import ConfigError, config_hash, resolve

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "CURVES",
    "DIAGNOSTICS",
    "EVAL",
    "FINAL",
    "MEASURED_FIELDS",
    "METRICS",
    "TRUST_ENV",
    "DeviceError",
    "NonFiniteError",
    "Run",
    "RunError",
    "Trainee",
    "config_hash",
    "device_for_gpus",
    "evaluate_model",
    "evaluate_model_with_loss",
    "finite_or_null",
    "nonfinite_fields",
    "nonfinite_tensors",
    "place",
    "resolve_device",
    "set_determinism",
]

CONFIG = "config.yaml"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
DIAGNOSTICS = "diagnostics.jsonl"
CURVES = "curves.json"
FINAL = "final.json"
EVAL = "eval.json"
TENSORBOARD = "tensorboard"
#: every file a run writes (``--restart`` removes exactly these, the TensorBoard folder and stale temp files)
RUN_FILES = (CONFIG, CHECKPOINT, METRICS, DIAGNOSTICS, CURVES, FINAL, EVAL)

#: 2: RNG states as tensors / plain values (safe loader); 1 (no ``format`` key): NumPy/Python states pickled
CHECKPOINT_FORMAT = 2
CHECKPOINT_KEYS = {
    "format": int,
    "epoch": int,
    "config_hash": str,
    "model": Mapping,
    "schedulers": list,
    "method": Mapping,
    "rng": Mapping,
    "history": list,
    "diagnostics": list,
}
FINAL_KEYS = ("config_hash", "dataset", "model", "method", "tasks", "epochs", "last", "last_k")
#: Fields of the epoch records and final.json that measure the machine (wall time, peak memory), not the
#: computation: a resumed run equals an uninterrupted one in every other field, bit for bit.
MEASURED_FIELDS = frozenset({"seconds", "peak_memory"})
TRUST_ENV = "MTL_TRUST_CHECKPOINTS"


class RunError(ValueError):
    """A run directory is inconsistent or one of its files is damaged: the message names the file, what is
    wrong and what to do (delete it, resume, ``mtl train --restart``)."""


class DeviceError(ConfigError):
    """The configured device does not exist on this machine (``train.device`` / ``--device``)."""


class NonFiniteError(FloatingPointError):
    """A metric, loss, parameter or buffer of a run is NaN/Inf: the message names each one and what was kept."""


# ------------------------------------------------------------------------------------------- finiteness
def nonfinite_fields(obj: Any, prefix: str = "") -> list[str]:
    """The ``/``-joined key paths of every non-finite float in nested mappings and lists (``val/depth/abs_err``)."""
    if isinstance(obj, float):
        return [] if math.isfinite(obj) else [prefix or "<value>"]
    if isinstance(obj, Mapping):
        return [p for k, v in obj.items() for p in nonfinite_fields(v, f"{prefix}/{k}" if prefix else str(k))]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in nonfinite_fields(v, f"{prefix}[{i}]")]
    return []


def nonfinite_tensors(model: nn.Module) -> list[str]:
    """Names of the floating-point parameters and buffers (BatchNorm running statistics) holding a NaN/Inf.
    One host synchronisation for the whole model."""
    named = [(n, t) for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_floating_point()]
    if not named:
        return []
    finite = torch.stack([torch.isfinite(t.detach()).all() for _, t in named]).cpu().tolist()
    return [name for (name, _), ok in zip(named, finite) if not ok]


def finite_or_null(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with every non-finite float (also inside lists) replaced by ``None`` and, when there was
    one, ``"nonfinite"``: the sorted names of the fields that held them (diagnostics only)."""
    bad: set[str] = set()

    def clean(value: Any, key: str) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            bad.add(key)
            return None
        if isinstance(value, list):
            return [clean(v, key) for v in value]
        return value

    out = {k: clean(v, k) for k, v in record.items()}
    if bad:
        out["nonfinite"] = sorted(bad)
    return out


# ------------------------------------------------------------------------------------------------ device
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve_device(spec: str, field: str = "train.device") -> torch.device:
    """The ``torch.device`` of a device setting: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``
    (the current CUDA device: the first one ``CUDA_VISIBLE_DEVICES`` shows) or ``cuda:N``.

    A CUDA setting on a machine without a visible CUDA device raises :class:`DeviceError` naming ``field``.
    """
    if not isinstance(spec, str) or not DEVICE_PATTERN.fullmatch(spec):
        raise DeviceError(f"{field}: {spec!r} is not a device; valid: auto, cpu, cuda, cuda:N")
    if spec == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
    if not torch.cuda.is_available():
        raise DeviceError(
            f"{field}: {spec!r} asks for a CUDA device, but this machine has none visible{where}; "
            "use 'cpu', or 'auto' (CUDA when available)"
        )
    index = int(spec.split(":")[1]) if ":" in spec else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise DeviceError(
            f"{field}: {spec!r} asks for CUDA device {index}, but only {torch.cuda.device_count()} are visible{where}"
        )
    return torch.device("cuda", index)


def device_for_gpus(gpus: int | str | None) -> str:
    """The ``--device`` of a workflow job that reserved ``gpus`` GPUs (Snakemake's ``resources.gpu``, which the
    Slurm profile submits as ``--gpus``): ``cuda`` when it reserved any, i.e. the first device
    ``CUDA_VISIBLE_DEVICES`` shows, which Slurm (and the NVIDIA container toolkit) set to the allocated GPU;
    a job whose GPU is not visible stops with exit 2 instead of training on the CPU for weeks. ``cpu`` when it
    reserved none, so a job never takes a GPU that the scheduler did not give it."""
    try:
        count = int(gpus or 0)
    except (TypeError, ValueError):
        raise ConfigError(f"gpus: {gpus!r} is not a number of GPUs; valid: an integer >= 0") from None
    if count < 0:
        raise ConfigError(f"gpus: {count} is not a number of GPUs; valid: an integer >= 0")
    return "cuda" if count > 0 else "cpu"


def place(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor on ``device``: tensors, mappings, lists, (named) tuples, and objects with a
    ``.to(device)`` such as PyG ``Batch``/``Data``. Host-to-GPU copies are asynchronous from pinned memory."""
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=obj.is_pinned())
    if isinstance(obj, Mapping):
        return {k: place(v, device) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(place(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(place(v, device) for v in obj)
    to = getattr(obj, "to", None)
    return to(device) if callable(to) else obj


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor moved to the CPU (what a checkpoint stores)."""
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, Mapping):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_cpu(v) for v in obj)
    return obj


# ------------------------------------------------------------------------------------------ determinism
#: ``train.deterministic`` values (not part of the run's identity: they decide how, not what, is computed)
DETERMINISM = (True, False, "strict")
#: cuBLAS needs a fixed workspace for reproducible matrix products (CUDA >= 10.2); set before cuBLAS starts
CUBLAS_WORKSPACE = ":4096:8"


def set_determinism(setting: bool | str, device: torch.device) -> None:
    """Apply ``train.deterministic`` (process-wide torch settings, set by every run before it builds its model).

    - ``true`` (default): cuDNN picks deterministic convolution algorithms (``cudnn.deterministic``, no
      ``cudnn.benchmark`` autotuning), cuBLAS gets a fixed workspace (``CUBLAS_WORKSPACE_CONFIG``, when not set
      already) and ``torch.use_deterministic_algorithms(True, warn_only=True)`` switches every operator that
      has a deterministic CUDA kernel to it. Operators that have none on CUDA (the backward of
      ``interpolate``/bilinear upsampling and ``AdaptiveAvgPool2d``, ``NLLLoss``/cross-entropy forward, see
      ``torch.use_deterministic_algorithms``) warn and stay atomic-add based: the segmentation models can
      differ in the last bits between two CUDA runs of one seed. The cost on a GPU is measured by
      ``scripts/gpu_check.sh`` (``determinism`` in its JSON); on the CPU the settings change nothing
      measurable (pipelines/README.md).
    - ``"strict"``: the same, but an operator without a deterministic kernel raises (to find them).
    - ``false``: the fastest kernels (``cudnn.benchmark`` autotuning); runs of one seed on one GPU differ.
    On the CPU every setting gives the same, bit-reproducible numbers.
    """
    if setting not in DETERMINISM:
        raise ConfigError(f"train.deterministic: {setting!r} is not valid; valid: true, false, 'strict'")
    on = setting is True or setting == "strict"
    if on and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on
    torch.use_deterministic_algorithms(on, warn_only=setting is True)


# --------------------------------------------------------------------------------------------------- RNG
def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's legacy global and torch's (CPU and every CUDA device) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (libraries that draw from the legacy global stream)
    torch.manual_seed(seed)


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every global RNG state as tensors and plain values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }  # fmt: skip


def set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    """Restore :func:`rng_state` (CUDA states only on a CUDA run with as many visible devices)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if device.type == "cuda" and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))  # noqa: NPY002
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss_next"]))


def _upgrade_format_1(state: Mapping[str, Any]) -> dict[str, Any]:
    """A trusted format-1 checkpoint (NumPy/Python RNG states as pickled objects) in the current format."""
    state = dict(state)
    rng = dict(state["rng"])
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    version, internal, gauss_next = rng["python"]
    rng["cuda"] = []
    rng["numpy"] = {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
                    "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}  # fmt: skip
    rng["python"] = {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                     "gauss_next": gauss_next}  # fmt: skip
    state["rng"] = rng
    state["format"] = CHECKPOINT_FORMAT
    return state


# -------------------------------------------------------------------------------------- model and step
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
    if cfg["name"] == "plateau":  # stepped with the validation Delta_m (AvivNavon/nash-mtl, QM9 trainer)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=cfg["gamma"], patience=cfg["patience"], min_lr=cfg["min_lr"]
        )
    if cfg["name"] == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg["milestones"], gamma=cfg["gamma"])
    if cfg["name"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


@dataclass
class Trainee:
    """What training runs: the model and the method's step on the run's device, and the lr schedules."""

    model: nn.Module
    step: Any  # mtl_core.MTLStep
    schedulers: list[Any]

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "method": self.step.state_dict(),
            "schedulers": [s.state_dict() for s in self.schedulers],
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])  # copies into the placed parameters (any device)
        self.step.load_state_dict(state["method"])  # combiner, estimator and optimiser states (moved to params)
        if len(state["schedulers"]) != len(self.schedulers):
            raise ValueError(f"{len(state['schedulers'])} saved lr schedules for {len(self.schedulers)} optimisers")
        for scheduler, saved in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)


def evaluate_model(
    model: nn.Module, split: Any, batch_size: int, device: torch.device | None = None
) -> dict[str, dict[str, float]]:
    """Metrics of ``model`` on a whole split, ``{task: {metric: value}}`` (split-level meters of mtl_data),
    every batch placed on ``device`` (default: where the model's parameters are)."""
    return _evaluate(model, split, batch_size, device, with_loss=False)[0]


def evaluate_model_with_loss(
    model: nn.Module, split: Any, batch_size: int, device: torch.device | None = None
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """The metrics of :func:`evaluate_model` and, from the same forward passes, the mean loss per task
    ``{task: loss}``: each task's training loss (its mtl_data ``TaskSpec.loss``) per batch, averaged over the
    batches weighted by their number of samples, as LibMTL averages its validation losses (LibMTL/loss.py,
    ``AbsLoss._average_loss``; the implementation seed 001 A3.2 names). Summed on ``device`` in float64,
    one host transfer at the end."""
    metrics, losses = _evaluate(model, split, batch_size, device, with_loss=True)
    assert losses is not None
    return metrics, losses


@torch.no_grad()
def _evaluate(
    model: nn.Module, split: Any, batch_size: int, device: torch.device | None, *, with_loss: bool
) -> tuple[dict[str, dict[str, float]], dict[str, float] | None]:
    from mtl_pipelines.data import batch_size_of

    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    specs = {t: split.dataset.tasks[t] for t in split.tasks}
    meters = {t: spec.meter() for t, spec in specs.items()}
    loss_sum = {t: torch.zeros((), dtype=torch.float64, device=device) for t in specs}
    seen = dict.fromkeys(specs, 0)
    for x, targets in split.batches(batch_size, shuffle=False):
        x, targets = place(x, device), place(targets, device)
        predictions = model(x)
        for task, target in targets.items():
            meters[task].update(predictions[task], target)
            if with_loss:
                # a multi-input batch ({task: images}) holds each task's own samples
                n = batch_size_of(x[task] if isinstance(x, dict) and task in x else x)
                loss_sum[task] += specs[task].loss(predictions[task], target).double() * n
                seen[task] += n
    model.train(was_training)
    metrics = {task: {k: float(v) for k, v in meter.compute().items()} for task, meter in meters.items()}
    if not with_loss:
        return metrics, None
    totals = torch.stack([loss_sum[t] for t in specs]).cpu().tolist()  # one host transfer
    return metrics, {t: total / max(seen[t], 1) for t, total in zip(specs, totals)}


# ---------------------------------------------------------------------------------------------- the run
class Run:
    """One run directory and the resolved config it holds (``Run(run_dir, config)`` or :meth:`open`).

    ``resolve_config`` validates and completes a config (raising :class:`ConfigError`): the supervised run config
    here; a run of another kind (the multi-task RL runs of :mod:`mtl_pipelines.rl.training`) subclasses ``Run``
    with its own, and keeps every file name, the consistency checks and the checkpoint format of this class.
    """

    resolve_config: Callable[..., dict[str, Any]] = staticmethod(resolve)

    def __init__(self, run_dir: str | Path, config: Mapping[str, Any], *, trust_checkpoints: bool = False) -> None:
        self.dir = Path(run_dir)
        self.config = self.resolve_config(config)
        self.hash = config_hash(self.config)
        self.trust_checkpoints = trust_checkpoints or os.environ.get(TRUST_ENV, "") == "1"

    @classmethod
    def open(cls, run_dir: str | Path, *, trust_checkpoints: bool = False) -> Run:
        """The run of an existing directory, from its ``config.yaml`` (:class:`RunError` when it has none or a
        damaged one)."""
        run_dir = Path(run_dir)
        _check_is_dir(run_dir)
        path = run_dir / CONFIG
        if not path.is_file():
            raise RunError(f"{run_dir} is not a run directory (no {CONFIG}); train the run first (mtl train)")
        return cls(run_dir, _read_config(path, cls.resolve_config), trust_checkpoints=trust_checkpoints)

    @staticmethod
    def default_dir(config: Mapping[str, Any], stem: str, root: str | Path = "results/runs") -> Path:
        """``<root>/<name>-<hash>``: where ``mtl train config.yaml`` writes when no ``--run-dir`` is given."""
        return Path(root) / f"{config.get('name', stem)}-{config_hash(config)}"

    def path(self, name: str) -> Path:
        """The path of one of the run's files (one of :data:`RUN_FILES`)."""
        if name not in (*RUN_FILES, TENSORBOARD):
            raise ValueError(f"{name!r} is not a file of a run; valid: {', '.join(RUN_FILES)}")
        return self.dir / name

    def device(self, override: str | None = None) -> torch.device:
        """The run's device: ``override`` (``--device``) or ``train.device`` of the config."""
        if override is not None:
            return resolve_device(override, "--device")
        return resolve_device(self.config["train"].get("device", "auto"))

    # ---------------------------------------------------------------------------------- consistency
    def check(self) -> dict[str, Any] | None:
        """Check every existing file of the directory against this run and return the checkpoint's state
        (``None`` when there is none). Raises :class:`RunError` naming the file and what to do; writes nothing."""
        _check_is_dir(self.dir)
        saved = self.dir / CONFIG
        if saved.exists():
            previous = config_hash(_read_config(saved, self.resolve_config))
            if previous != self.hash:
                raise RunError(
                    f"{self.dir} holds a run of a different config (hash {previous} != {self.hash}); use another "
                    "run directory, or `mtl train --restart` to delete that run and train this config"
                )
        state = self.load_checkpoint() if self.path(CHECKPOINT).exists() else None
        if self.path(FINAL).exists():
            self.read_final()
            if state is None:
                raise RunError(
                    f"{self.path(FINAL)} says the run is finished but {self.path(CHECKPOINT)} is missing; restore "
                    "it (dvc pull / dvc checkout) or `mtl train --restart` to train the run again"
                )
        return state

    def begin(self) -> None:
        """Before the first write of a training process: remove temp files a killed write left behind and
        write ``config.yaml`` (after :meth:`check` accepted the directory)."""
        self.remove_stale_temp_files()
        if not self.path(CONFIG).exists():
            self._write(CONFIG, lambda f: f.write(yaml.safe_dump(dict(self.config), sort_keys=False)))

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete ``.<file>.*.tmp`` left by a write that was killed (io.atomic_open's temp names)."""
        removed = []
        if self.dir.is_dir():
            for name in RUN_FILES:
                for stale in self.dir.glob(f".{name}.*.tmp"):
                    stale.unlink(missing_ok=True)
                    removed.append(stale)
        return removed

    def restart(self) -> None:
        """Delete the run's files (and nothing else in the directory): ``mtl train --restart``."""
        _check_is_dir(self.dir)
        self.remove_stale_temp_files()
        for name in RUN_FILES:
            self.path(name).unlink(missing_ok=True)
        shutil.rmtree(self.path(TENSORBOARD), ignore_errors=True)

    # ----------------------------------------------------------------------------------------- building
    def build_model(self, split: Any, device: torch.device) -> nn.Module:
        """The config's model for ``split``'s tasks, initialised on the CPU (the same weights on every device)
        and moved to ``device``."""
        import mtl_models

        options = dict(self.config["model"]["options"])
        if "seed" in mtl_models.options(self.config["model"]["name"]):
            options.setdefault("seed", self.config["train"]["seed"])
        tasks = {t: split.dataset.tasks[t].output_dim for t in split.tasks}
        return mtl_models.create(self.config["model"]["name"], tasks=tasks, **options).to(device)

    def build(self, split: Any, device: torch.device) -> Trainee:
        """Model, method step (optimisers over the placed parameters) and lr schedules on ``device``."""
        model = self.build_model(split, device)
        method = self.config["method"]
        step = methods.build(
            method["name"], method["options"], model, split.tasks, _optimizer_factory(self.config["optimizer"])
        )
        epochs = self.config["train"]["epochs"]
        return Trainee(model, step, [_schedule(self.config["schedule"], opt, epochs) for opt in step.optimizers])

    def trained_model(self, split: Any, device: torch.device, state: Mapping[str, Any] | None = None) -> nn.Module:
        """The trained model (final checkpoint's weights) on ``device``, in eval mode."""
        state = self.load_checkpoint() if state is None else state
        model = self.build_model(split, device)
        model.load_state_dict(state["model"])
        return model.eval()

    # -------------------------------------------------------------------------------------- checkpoints
    def save_checkpoint(self, epoch: int, trainee: Trainee, device: torch.device, **extra: Any) -> None:
        """Write ``checkpoint.pt`` atomically: the trainee's states, RNG states and ``extra`` (history...)."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "config_hash": self.hash,
            **to_cpu(trainee.state()),
            "rng": rng_state(device),
            **extra,
        }
        self._write(CHECKPOINT, lambda f: torch.save(state, f), binary=True)

    def load_checkpoint(self) -> dict[str, Any]:
        """``checkpoint.pt`` read with the safe loader onto the CPU and checked (keys, types, config hash)."""
        path = self.path(CHECKPOINT)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            refused = [line.strip() for line in str(exc).splitlines() if "GLOBAL" in line]
            if not refused:  # not a pickled object the loader refuses: a damaged file
                raise _damaged(path, exc) from None
            if not self.trust_checkpoints:
                raise RunError(
                    f"{path}: refused: it holds pickled objects that the safe loader "
                    f"(torch.load(weights_only=True)) does not accept ({refused[0][:200]}); unpickling them could "
                    "run code. If it is a checkpoint you wrote with an older mtl-pipelines (format 1), load it once "
                    f"with --trust-checkpoints (or {TRUST_ENV}=1): it is rewritten in the safe format at the next "
                    "epoch. Otherwise delete it (`mtl train --restart`)."
                ) from None
            try:
                state = torch.load(path, map_location="cpu", weights_only=False)
            except Exception as inner:  # any failure of a damaged file: reported with its path
                raise _damaged(path, inner) from None
            if isinstance(state, Mapping) and "format" not in state and isinstance(state.get("rng"), Mapping):
                state = _upgrade_format_1(state)
        except FileNotFoundError:
            raise RunError(f"{path} does not exist: train the run first (mtl train)") from None
        except Exception as exc:  # truncated, empty, random bytes: torch raises many types
            raise _damaged(path, exc) from None
        _check_keys(path, state, CHECKPOINT_KEYS, "checkpoint")
        if state["config_hash"] != self.hash:
            raise RunError(
                f"{path} belongs to another config (hash {state['config_hash']} != {self.hash}); use another run "
                "directory, or `mtl train --restart` to delete it and train this config"
            )
        return state

    # ------------------------------------------------------------------------------------ JSON records
    def read_final(self) -> dict[str, Any]:
        """``final.json``, checked: an object with the run's keys and this config's hash."""
        return self._read_record(FINAL, FINAL_KEYS, "train it again with `mtl train --restart`")

    def read_eval(self) -> dict[str, Any]:
        """``eval.json``, checked like :meth:`read_final`."""
        return self._read_record(EVAL, ("config_hash", "test", "val", "epochs"), "evaluate the run again")

    def read_results(self) -> dict[str, Any]:
        """What the report reads: ``{"final", "eval", "diagnostics"}``, every file checked against this run."""
        for name in (FINAL, EVAL):
            if not self.path(name).is_file():
                raise FileNotFoundError(f"{self.path(name)} is missing: train and evaluate run {self.dir.name} first")
        diagnostics = self.path(DIAGNOSTICS)
        return {
            "final": self.read_final(),
            "eval": self.read_eval(),
            "diagnostics": io.read_jsonl(diagnostics) if diagnostics.is_file() else [],
        }

    def write_final(self, result: Mapping[str, Any]) -> None:
        self._write_json(FINAL, {**result, "config_hash": self.hash})

    def write_eval(self, result: Mapping[str, Any]) -> None:
        self._write_json(EVAL, {**result, "config_hash": self.hash})

    def write_history(self, history: Sequence[Any], diagnostics: Sequence[Any], curves: Sequence[Any]) -> None:
        """The files derived from the checkpoint's history: ``metrics.jsonl``, ``curves.json`` and (when
        there are any) ``diagnostics.jsonl``; all three are checked for non-finite values before any is written."""
        for name, records in ((METRICS, history), (CURVES, curves), (DIAGNOSTICS, diagnostics)):
            self._refuse_nonfinite(name, list(records))
        self._write_lines(METRICS, history)
        self._write_json(CURVES, list(curves))
        if diagnostics:
            self._write_lines(DIAGNOSTICS, diagnostics)

    def tensorboard(self, scalars: Mapping[str, float]) -> None:
        """Mirror one epoch's scalars to TensorBoard when it is installed (optional dependency)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is not installed: metrics.jsonl/curves.json are the record
            return
        with SummaryWriter(str(self.path(TENSORBOARD))) as writer:
            for key, value in scalars.items():
                if key != "epoch":
                    writer.add_scalar(key, value, int(scalars["epoch"]))

    # ------------------------------------------------------------------------------------------ helpers
    def _read_record(self, name: str, keys: Sequence[str], remedy: str) -> dict[str, Any]:
        path = self.path(name)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise RunError(f"{path} does not exist: {remedy}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(f"{path}: damaged: not a JSON file ({_first_line(exc)}); delete it and {remedy}") from None
        if not isinstance(data, dict) or any(k not in data for k in keys):
            what = type(data).__name__ if not isinstance(data, dict) else f"no {[k for k in keys if k not in data]}"
            raise RunError(f"{path}: damaged: expected an object with {list(keys)}, got {what}; delete it and {remedy}")
        if data["config_hash"] != self.hash:
            raise RunError(
                f"{path} belongs to another config (hash {data['config_hash']} != {self.hash}); delete it and {remedy}"
            )
        return data

    def _write_lines(self, name: str, records: Sequence[Any]) -> None:
        self._refuse_nonfinite(name, list(records))
        text = "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in records)
        self._write(name, lambda f: f.write(text))

    def _write_json(self, name: str, data: Any) -> None:
        self._refuse_nonfinite(name, data)
        text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
        self._write(name, lambda f: f.write(text))

    def _refuse_nonfinite(self, name: str, data: Any) -> None:
        """Strict JSON: NaN/Inf are not JSON (strict parsers reject the file); nothing is written."""
        bad = nonfinite_fields(data)
        if bad:
            raise NonFiniteError(
                f"{self.path(name)}: not written: non-finite values at {bad[:10]}"
                f"{f' (and {len(bad) - 10} more)' if len(bad) > 10 else ''}; the files already there are unchanged"
            )

    def _write(self, name: str, write: Callable[[IO[Any]], Any], *, binary: bool = False) -> None:
        path = self.path(name)
        try:
            with io.atomic_open(path, "wb" if binary else "w") as f:
                write(f)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            why = "the disk is full (or the quota exceeded)" if full else (exc.strerror or str(exc))
            raise RunError(
                f"{path}: could not be written: {why}; nothing was replaced. "
                f"{'Free space' if full else 'Fix the cause'} and run the same command again: the run resumes "
                "from its last complete checkpoint"
            ) from None


def _check_is_dir(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{run_dir}: the run directory is a file, not a directory; give a directory path (--run-dir)")


def _read_config(path: Path, resolver: Callable[..., dict[str, Any]] = resolve) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
        return resolver(data, str(path))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ConfigError) as exc:
        raise RunError(
            f"{path}: damaged: not the resolved config of a run ({_first_line(exc)}); restore it, or delete the run "
            "directory (`mtl train --restart`) to train again"
        ) from None


def _check_keys(path: Path, state: Any, keys: Mapping[str, type], what: str) -> None:
    if not isinstance(state, Mapping):
        raise RunError(f"{path}: damaged: not a {what} (a {type(state).__name__}); delete it (`mtl train --restart`)")
    missing = [k for k in keys if k not in state]
    wrong = [k for k, t in keys.items() if k in state and not isinstance(state[k], t)]
    if missing or wrong:
        raise RunError(
            f"{path}: damaged: a {what} without {missing} / with mistyped {wrong}; delete it and train again "
            "(`mtl train --restart`)"
        )


def _damaged(path: Path, exc: BaseException) -> RunError:
    size = path.stat().st_size if path.exists() else 0
    return RunError(
        f"{path}: damaged: not a readable checkpoint ({size} bytes; {type(exc).__name__}: {_first_line(exc)}); "
        "restore it (dvc pull / dvc checkout), or delete it to train the run from the start (`mtl train --restart`)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
