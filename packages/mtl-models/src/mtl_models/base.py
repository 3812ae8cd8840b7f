"""The structure every architecture of this package shares: one shared encoder, one head per task.

A model maps an input ``x`` to a shared representation ``z = encode(x)`` and then to one prediction
per task, ``decode(z) = {task: prediction}``. All shared parameters live in ``model.encoder`` and all
task-specific parameters in ``model.heads[task]``, so that ``shared_parameters()`` and
``task_parameters(task)`` partition ``model.parameters()`` exactly (gradient-based MTL methods take
per-task gradients w.r.t. the shared parameters, or w.r.t. ``z`` for the "features" estimators).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

#: A shared representation: one tensor, or a tuple of tensors (several shared maps, or one per task).
Representation = torch.Tensor | tuple[torch.Tensor, ...]


def validate_tasks(tasks: Any) -> dict[str, int]:
    """Check a ``{task: output_dim}`` mapping and return it as a plain dict (insertion order kept)."""
    if not isinstance(tasks, Mapping) or len(tasks) == 0:
        raise ValueError(f"tasks must be a non-empty mapping {{task_name: output_dim}}, got {tasks!r}")
    checked: dict[str, int] = {}
    for name, dim in tasks.items():
        # "." is forbidden because task names become nn.ModuleDict keys (parameter names).
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"task names must be non-empty strings without '.', got {name!r}")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"output dimension of task {name!r} must be a positive int, got {dim!r}")
        checked[name] = dim
    return checked


def validate_width(width: Any) -> float:
    """Check the width multiplier (1.0 = the reference architecture)."""
    if isinstance(width, bool) or not isinstance(width, int | float) or not math.isfinite(width) or width <= 0:
        raise ValueError(f"width must be a positive finite number (1.0 = reference size), got {width!r}")
    return float(width)


def validate_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def validate_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"invalid {name} {value!r}; valid choices: {', '.join(map(repr, choices))}")
    return value


def scaled(channels: int, width: float) -> int:
    """Number of channels of a layer of reference size ``channels`` at width multiplier ``width``."""
    return max(1, round(channels * width))


@contextmanager
def seeded(seed: Any) -> Iterator[None]:
    """Run parameter initialisation under ``torch.manual_seed(seed)`` without touching the caller's RNG."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def unit_vector_task_set(tasks: Mapping[str, int], unit_vector_tasks: Iterable[str] | None) -> frozenset[str]:
    """Tasks whose prediction is L2-normalised over channels (surface normals, as in MTAN's code).

    ``None`` means "the task named ``normal`` if present" (the contract's name for NYUv2 normals).
    """
    if unit_vector_tasks is None:
        chosen = {"normal"} & set(tasks)
    else:
        if isinstance(unit_vector_tasks, str):
            raise ValueError(f"unit_vector_tasks must be a collection of task names, got {unit_vector_tasks!r}")
        chosen = set(unit_vector_tasks)
        unknown = sorted(chosen - set(tasks))
        if unknown:
            raise ValueError(f"unit_vector_tasks {unknown} are not tasks of this model; tasks: {list(tasks)}")
    for name in chosen:
        if tasks[name] < 2:
            raise ValueError(f"unit-vector task {name!r} needs an output dimension >= 2, got {tasks[name]}")
    return frozenset(chosen)


class MultiTaskModel(nn.Module, ABC):
    """Base class: ``encode(x) -> z``, ``decode(z) -> {task: prediction}``, ``forward = decode ∘ encode``.

    Subclasses put every shared parameter under ``self.encoder`` and the parameters of task ``t`` under
    ``self.heads[t]``; nothing else may own parameters (checked by the package's tests).
    """

    encoder: nn.Module
    heads: nn.ModuleDict

    def __init__(self, tasks: Mapping[str, int]) -> None:
        super().__init__()
        self.tasks: dict[str, int] = validate_tasks(tasks)

    @property
    def task_names(self) -> tuple[str, ...]:
        """Task names in the order of ``tasks`` (the order of tuple representations)."""
        return tuple(self.tasks)

    @abstractmethod
    def encode(self, x: Any) -> Representation:
        """Shared representation of a batch."""

    @abstractmethod
    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Per-task predictions from the shared representation, for every task or only ``tasks``.

        Only the requested heads run: a training step that needs one task's loss (the SAM family's per-task
        perturbed passes) pays for one head, not K.
        """

    def forward(self, x: Any, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x), tasks)

    def selected_tasks(self, tasks: Sequence[str] | None) -> tuple[str, ...]:
        """The tasks to decode: all of them (``None``) or the requested ones, in the model's task order."""
        if tasks is None:
            return self.task_names
        if isinstance(tasks, str) or not isinstance(tasks, Iterable):
            raise ValueError(f"tasks must be None or a collection of task names, got {tasks!r}")
        wanted = set(tasks)
        unknown = sorted(wanted - set(self.tasks), key=str)
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; tasks of this model: {list(self.tasks)}")
        return tuple(t for t in self.task_names if t in wanted)

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters shared by all tasks (those of ``self.encoder``)."""
        return list(self.encoder.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """Parameters used by ``task`` only (those of its head)."""
        self._check_task(task)
        return list(self.heads[task].parameters())

    def _check_task(self, task: str) -> None:
        if task not in self.tasks:
            raise ValueError(f"unknown task {task!r}; tasks of this model: {list(self.tasks)}")

    def _per_task(self, z: Representation) -> tuple[torch.Tensor, ...]:
        """Check that ``z`` is a tuple holding one tensor per task, in task order (all tasks, whatever is decoded)."""
        if not isinstance(z, tuple | list) or len(z) != len(self.tasks):
            got = f"a {type(z).__name__} of length {len(z)}" if isinstance(z, tuple | list) else type(z).__name__
            raise ValueError(
                f"{type(self).__name__}.decode expects a tuple of {len(self.tasks)} tensors "
                f"(one per task, in order {list(self.tasks)}), got {got}"
            )
        return tuple(z)


def check_spatial_multiple(model: str, x: torch.Tensor, multiple: int, channels: int) -> None:
    """Dense models need image sides divisible by their total down-sampling factor."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{model} expects images of shape (B, {channels}, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(f"{model} needs image height and width divisible by {multiple}, got {h}x{w}")


def scalar_outputs(logits: torch.Tensor, out_dim: int) -> torch.Tensor:
    """Heads with one output return shape (B,) (binary attribute logit, regression target)."""
    return logits.squeeze(-1) if out_dim == 1 else logits
