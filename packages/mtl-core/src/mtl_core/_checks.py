"""Input validation shared by combiners: every bad value raises ``ValueError`` naming it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


def check_num_tasks(num_tasks: Any) -> int:
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
        raise ValueError(f"num_tasks must be an integer >= 1, got {num_tasks!r}")
    return num_tasks


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = value == value and value != float("inf") and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def check_range(
    name: str, value: Any, low: float, high: float, *, closed_low: bool = True, closed_high: bool = True
) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (low <= value if closed_low else low < value) and (value <= high if closed_high else value < high)
    if not ok:
        lo, hi = ("[" if closed_low else "("), ("]" if closed_high else ")")
        raise ValueError(f"{name} must be in {lo}{low}, {high}{hi}, got {value!r}")
    return float(value)


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_task_weights(name: str, value: Any, num_tasks: int) -> Tensor | None:
    """Optional pre-defined task weights: ``None`` or a length-K sequence of finite non-negative numbers."""
    if value is None:
        return None
    w = torch.as_tensor(value, dtype=torch.float64).flatten()
    if w.numel() != num_tasks or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"{name} must be {num_tasks} finite non-negative numbers with a positive sum, got {value!r}")
    return w


def check_losses(losses: Any, num_tasks: int, *, required: bool = True) -> Tensor | None:
    if losses is None:
        if required:
            raise ValueError("this method needs the task losses: call it as agg(grads, losses)")
        return None
    if not isinstance(losses, Tensor):
        losses = torch.as_tensor(losses)
    if losses.dim() != 1 or losses.shape[0] != num_tasks:
        raise ValueError(f"losses must be a 1-D tensor of {num_tasks} task losses, got shape {tuple(losses.shape)}")
    if not torch.isfinite(losses).all():
        bad = [i for i, ok in enumerate(torch.isfinite(losses).tolist()) if not ok]
        raise ValueError(f"losses contain NaN/Inf at task index(es) {bad}: {losses.tolist()}")
    return losses


def check_grads(grads: Any, num_tasks: int) -> Tensor:
    if not isinstance(grads, Tensor):
        raise ValueError(f"grads must be a torch.Tensor of shape [K, n], got {type(grads).__name__}")
    if grads.dim() != 2 or grads.shape[0] != num_tasks:
        raise ValueError(f"grads must have shape [{num_tasks}, n] (one row per task), got {tuple(grads.shape)}")
    if not grads.is_floating_point():
        raise ValueError(f"grads must be a floating-point tensor, got dtype {grads.dtype}")
    # A NaN/Inf entry makes its row sum non-finite: one reduction instead of a K x n boolean pass; the exact
    # per-entry check runs only when a sum is non-finite (which a float32 overflow alone can also cause).
    if not bool(torch.isfinite(grads.sum(dim=1)).all()):
        finite = torch.isfinite(grads).all(dim=1)
        if not finite.all():
            bad = [i for i, ok in enumerate(finite.tolist()) if not ok]
            raise ValueError(f"grads contain NaN/Inf in the row(s) of task index(es) {bad}")
    return grads
