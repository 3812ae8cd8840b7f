"""Gradient similarity between samples (STL) and between tasks (MTL): seed 001 sec. 4.2, Fig. 3, A3.2, A5.

For one batch, the gradients of the shared parameters are taken per (task, sample) loss. Two populations of
gradient pairs are compared:

* ``"stl"``: the same task, different samples, e.g. ``grad L_t(x_0)`` vs ``grad L_t(x_1)``;
* ``"mtl"``: the same sample, different tasks, e.g. ``grad L_0(x_i)`` vs ``grad L_1(x_i)``.

As in the paper (A3.2), at most eight samples and eight tasks are drawn at random when the batch or the
task set is larger. Each pair gets the cosine similarity (eq. (4)), the magnitude similarity (eq. (5)), the
share of conflicting parameters (opposite signs) and the dot product (Fig. A7). The paper computes them every
five iterations and summarises them per epoch as mean, standard deviation and the 2.5 / 97.5 percentiles:
:class:`GradientSimilarityMonitor` does exactly that; :func:`summarize` is the per-epoch summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..gradients import gramian, jacobian
from .gradient_system import (
    conflicting_parameter_matrix,
    cosine_similarity_matrix,
    magnitude_similarity_matrix,
    upper_triangle,
)

MEASURES = ("cosine", "magnitude", "conflicting_parameters", "dot")
SETTINGS = ("stl", "mtl")
#: the paper's subsample of samples / tasks (seed 001 A3.2)
MAX_ITEMS = 8

PerSampleLoss = Callable[[Mapping[str, Tensor], Any], Mapping[str, Tensor]]


def pairwise_measures(grads: Tensor) -> dict[str, np.ndarray]:
    """Every measure of :data:`MEASURES` for each pair ``i < j`` of rows of ``grads`` (row-major order)."""
    return {
        "cosine": upper_triangle(cosine_similarity_matrix(grads)),
        "magnitude": upper_triangle(magnitude_similarity_matrix(grads)),
        "conflicting_parameters": upper_triangle(conflicting_parameter_matrix(grads)),
        "dot": upper_triangle(gramian(grads)),
    }


@dataclass(frozen=True)
class GradientPairs:
    """Per-pair measures of one batch: ``stl[measure]`` and ``mtl[measure]`` are float64 arrays."""

    stl: dict[str, np.ndarray]
    mtl: dict[str, np.ndarray]
    #: batch indices of the samples used and names of the tasks used
    samples: list[int]
    tasks: list[str]

    def setting(self, name: str) -> dict[str, np.ndarray]:
        if name not in SETTINGS:
            raise ValueError(f"setting must be one of {list(SETTINGS)}, got {name!r}")
        return self.stl if name == "stl" else self.mtl


def _check_model(model: Any) -> None:
    missing = [a for a in ("encode", "decode", "shared_parameters") if not callable(getattr(model, a, None))]
    if missing:
        raise ValueError(
            f"model must follow the mtl_core protocol (encode, decode, shared_parameters, task_parameters); "
            f"{type(model).__name__} lacks {missing}"
        )


def _default_inputs(batch: Any) -> Any:
    # The data contract: a batch is (x, targets); a graph batch (e.g. PyG) is passed whole to encode.
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0]
    return batch


def _subsample(count: int, max_items: int, generator: torch.Generator | None) -> list[int]:
    if count <= max_items:
        return list(range(count))
    return sorted(torch.randperm(count, generator=generator)[:max_items].tolist())


def stl_mtl_gradient_pairs(
    model: nn.Module,
    batch: Any,
    per_sample_loss: PerSampleLoss,
    *,
    max_items: int = MAX_ITEMS,
    generator: torch.Generator | None = None,
    tasks: Sequence[str] | None = None,
    inputs: Callable[[Any], Any] | None = None,
    eval_mode: bool = True,
) -> GradientPairs:
    """Gradient pairs of seed 001 sec. 4.2 on one batch: ``"stl"`` (samples of one task), ``"mtl"`` (tasks
    of one sample), w.r.t. ``model.shared_parameters()`` (those with ``requires_grad``).

    ``per_sample_loss(predictions, batch)`` maps the model's ``{task: prediction}`` to ``{task: Tensor[B]}``
    (the loss of every sample, e.g. the pixel mean per image). ``inputs(batch)`` is what ``model.encode``
    takes (default: ``batch[0]`` for an ``(x, targets)`` pair, else the batch itself, e.g. a PyG batch).
    At most ``max_items`` samples and tasks are drawn with ``generator`` (seed 001 A3.2: eight); ``tasks``
    restricts the candidate tasks. One backward per (task, sample) loss, at most ``max_items**2``. Every
    sample must carry a loss for every task (single-input MTL): for multi-input batches, where each task
    has its own samples, the "same sample, different tasks" pairs do not exist.

    With ``eval_mode`` (default) the forward runs in ``eval()`` and the model's mode is restored afterwards:
    BatchNorm then neither couples the samples of the batch (each gradient is that of its own sample) nor
    updates its running statistics.
    """
    _check_model(model)
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 2:
        raise ValueError(f"max_items must be an integer >= 2, got {max_items!r}")
    params = [p for p in model.shared_parameters() if p.requires_grad]
    if not params:
        raise ValueError("model.shared_parameters() has no parameter with requires_grad=True")
    was_training = model.training
    if eval_mode:
        model.eval()
    try:
        predictions = model.decode(model.encode((inputs or _default_inputs)(batch)))
        losses = per_sample_loss(predictions, batch)
    finally:
        model.train(was_training)
    if not isinstance(losses, Mapping) or not losses:
        raise ValueError(f"per_sample_loss must return a non-empty {{task: Tensor[B]}} mapping, got {losses!r}")
    candidates = list(losses) if tasks is None else list(tasks)
    unknown = [t for t in candidates if t not in losses]
    if unknown:
        raise ValueError(f"tasks {unknown} are not among the per-sample losses {list(losses)}")
    if len(candidates) < 2:
        raise ValueError(f"the MTL setting needs at least two tasks, got {candidates}")
    sizes = {t: tuple(losses[t].shape) for t in candidates}
    first = sizes[candidates[0]]
    if len(first) != 1 or any(s != first for s in sizes.values()):
        raise ValueError(f"per_sample_loss must give one 1-D loss vector of equal length per task, got {sizes}")
    if first[0] < 2:
        raise ValueError(f"the STL setting needs at least two samples, the batch has {first[0]}")

    sample_idx = _subsample(first[0], max_items, generator)
    task_names = [candidates[i] for i in _subsample(len(candidates), max_items, generator)]
    index = torch.tensor(sample_idx, device=losses[task_names[0]].device)
    table = torch.stack([losses[t].index_select(0, index) for t in task_names])  # [T, S]
    grads = jacobian(table.reshape(-1), params).view(len(task_names), len(sample_idx), -1)

    def collect(blocks: list[Tensor]) -> dict[str, np.ndarray]:
        per_block = [pairwise_measures(b) for b in blocks]
        return {m: np.concatenate([p[m] for p in per_block]) for m in MEASURES}

    return GradientPairs(
        stl=collect([grads[t] for t in range(len(task_names))]),
        mtl=collect([grads[:, s] for s in range(len(sample_idx))]),
        samples=sample_idx,
        tasks=task_names,
    )


def summarize(values: np.ndarray | Sequence[float]) -> dict[str, float]:
    """Mean, standard deviation (population, ``ddof=0``) and the 2.5 / 97.5 percentiles (linear interpolation)
    of a set of pair measures, as plotted per epoch in seed 001 Fig. 3 / A6 / A7."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError("cannot summarise an empty set of values")
    if not np.isfinite(arr).all():
        raise ValueError("values contain NaN/Inf")
    low, high = np.percentile(arr, [2.5, 97.5])
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std()),
        "p2.5": float(low),
        "p97.5": float(high),
        "count": float(arr.size),
    }


@dataclass
class GradientSimilarityMonitor:
    """Seed 001's protocol over training: measure every ``every``-th step, summarise per epoch.

    Call :meth:`step` once per training iteration (before or after the update, consistently) and
    :meth:`end_epoch` at the end of each epoch; :attr:`history` holds one summary per epoch,
    ``{setting: {measure: {mean, std, p2.5, p97.5, count}}}``. Draws use a private seeded generator.
    """

    per_sample_loss: PerSampleLoss
    every: int = 5
    max_items: int = MAX_ITEMS
    seed: int = 0
    tasks: Sequence[str] | None = None
    inputs: Callable[[Any], Any] | None = None
    history: list[dict[str, dict[str, dict[str, float]]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"every must be an integer >= 1, got {self.every!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        self._generator = torch.Generator().manual_seed(self.seed)
        self._calls = 0
        self._pending: list[GradientPairs] = []

    def step(self, model: nn.Module, batch: Any) -> GradientPairs | None:
        """Measure on this batch if it is the ``every``-th call (the first call counts), else return None."""
        measure = self._calls % self.every == 0
        self._calls += 1
        if not measure:
            return None
        pairs = stl_mtl_gradient_pairs(
            model,
            batch,
            self.per_sample_loss,
            max_items=self.max_items,
            generator=self._generator,
            tasks=self.tasks,
            inputs=self.inputs,
        )
        self._pending.append(pairs)
        return pairs

    def end_epoch(self) -> dict[str, dict[str, dict[str, float]]]:
        """Summarise the measurements of the epoch, append them to :attr:`history` and start a new epoch."""
        if not self._pending:
            raise ValueError("no measurement in this epoch: call step() at least once before end_epoch()")
        summary = {
            setting: {m: summarize(np.concatenate([p.setting(setting)[m] for p in self._pending])) for m in MEASURES}
            for setting in SETTINGS
        }
        self.history.append(summary)
        self._pending = []
        return summary
