"""The model protocol of the training step and its parameter groups (shared vs task-specific)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn


@runtime_checkable
class MultiTaskModel(Protocol):
    """What the step needs from a model (structural: no base class to inherit).

    ``encode(x) -> z`` (a tensor or a tuple of tensors; ``x`` may be anything: a tensor, a dict of tensors,
    a PyG batch), ``decode(z) -> {task: prediction}``, ``shared_parameters()`` and ``task_parameters(task)``.
    ``encode`` is only called through the user's loss closure; the step needs it for the features estimators
    and ConsMTL, which read ``z``.
    """

    def encode(self, x: Any) -> Any: ...

    def decode(self, z: Any) -> Any: ...

    def shared_parameters(self) -> Any: ...

    def task_parameters(self, task: str) -> Any: ...


@dataclass(frozen=True)
class ParameterGroups:
    """Trainable shared parameters and, per task (in task order), that task's head parameters."""

    tasks: tuple[str, ...]
    shared: tuple[Tensor, ...]
    heads: tuple[tuple[Tensor, ...], ...]

    @property
    def head_params(self) -> list[Tensor]:
        return [p for head in self.heads for p in head]

    @property
    def all(self) -> list[Tensor]:
        return [*self.shared, *self.head_params]


def resolve_tasks(model: Any, tasks: Sequence[str] | None) -> tuple[str, ...]:
    """The task names in a fixed order: ``tasks`` if given, else ``model.tasks`` (a mapping or a sequence)."""
    if tasks is None:
        tasks = getattr(model, "tasks", None)
        if tasks is None:
            raise ValueError("the model has no `tasks` attribute: pass tasks=[...] (the task names in loss order)")
    if isinstance(tasks, Mapping):
        tasks = list(tasks)
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise ValueError(f"tasks must be a sequence of task names, got {tasks!r}")
    tasks = tuple(tasks)
    if not tasks or not all(isinstance(t, str) for t in tasks) or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be distinct, non-empty task names, got {list(tasks)!r}")
    return tasks


def resolve_parameters(model: nn.Module, tasks: tuple[str, ...]) -> ParameterGroups:
    """Check the protocol and split the trainable parameters into shared and per-task groups.

    Every trainable parameter of ``model`` must be in exactly one group: a parameter in two groups would get
    two gradients, one in none would silently never train.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    missing = [
        m for m in ("encode", "decode", "shared_parameters", "task_parameters") if not callable(getattr(model, m, None))
    ]
    if missing:
        raise ValueError(f"model {type(model).__name__} lacks the protocol method(s) {missing} (see MultiTaskModel)")
    shared = _unique(p for p in model.shared_parameters() if p.requires_grad)
    if not shared:
        raise ValueError("model.shared_parameters() yields no trainable parameter")
    heads = []
    for task in tasks:
        try:
            params = model.task_parameters(task)
        except (KeyError, ValueError, IndexError) as err:
            raise ValueError(f"model.task_parameters({task!r}) failed ({err!r}); tasks given: {list(tasks)}") from err
        heads.append(_unique(p for p in params if p.requires_grad))
    owner: dict[int, str] = {}
    for label, group in [("shared", shared), *((f"task {t!r}", h) for t, h in zip(tasks, heads))]:
        for p in group:
            if id(p) in owner and owner[id(p)] != label:
                raise ValueError(f"a parameter of shape {tuple(p.shape)} is in both {owner[id(p)]} and {label}")
            owner[id(p)] = label
    uncovered = [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in owner]
    if uncovered:
        raise ValueError(
            f"trainable parameters {uncovered} are neither in shared_parameters() nor in any task_parameters(task) "
            f"for tasks {list(tasks)}: freeze them (requires_grad=False) or assign them to a group"
        )
    return ParameterGroups(tasks, shared, tuple(heads))


def _unique(params: Any) -> tuple[Tensor, ...]:
    seen: dict[int, Tensor] = {}
    for p in params:
        seen.setdefault(id(p), p)
    return tuple(seen.values())
