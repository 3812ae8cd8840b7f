"""Method strings of the pipeline and the training step that runs them (:class:`mtl_core.MTLStep`).

A method is ``stl`` (one task, one model: linear scalarisation of a single loss), a loss weighting (``ls``,
``uw``, ``famo``...), ``consmtl``, or ``<estimator>+<combiner>`` (``exact+pcgrad``, ``features+aligned_mtl``,
``samo+fairgrad``, ``sam+ls``...) as in ARCHITECTURE.md. Hyper-parameters are routed by name to the
estimator or the combiner by :func:`mtl_core.step.parse_method` (``rho``, ``alpha``, ``samo.alpha``...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import torch
from torch import nn

__all__ = ["UnknownMethod", "build", "check", "names"]


class UnknownMethod(ValueError):
    """The method string names no method of mtl_core."""


@cache
def names() -> tuple[str, ...]:
    """Every method string the pipeline can train."""
    import mtl_core
    from mtl_core.step import parse_method

    weightings = sorted(mtl_core.weightings.names())
    aggregators = sorted(a for a in mtl_core.aggregators.names() if a != "consmtl")
    candidates = ["stl", *weightings, "consmtl"]
    for estimator in mtl_core.estimators.names():
        candidates += [f"{estimator}+{base}" for base in [*aggregators, *weightings]]
    valid = []
    for method in candidates:
        try:
            parse_method("ls" if method == "stl" else method)
        except ValueError:
            continue
        valid.append(method)
    return tuple(valid)


def check(method: str, options: Mapping[str, Any]) -> None:
    """``UnknownMethod`` for an unknown method string, ``ValueError`` for invalid hyper-parameters."""
    from mtl_core.step import parse_method

    if method not in names():
        raise UnknownMethod(method)
    if method == "stl" and options:
        raise ValueError(f"stl takes no options, got {sorted(options)}")
    parse_method("ls" if method == "stl" else method, dict(options))


def build(
    method: str,
    options: Mapping[str, Any],
    model: nn.Module,
    tasks: Sequence[str],
    optimizer: Callable[[list[Any]], torch.optim.Optimizer],
) -> Any:
    """The :class:`mtl_core.MTLStep` running ``method`` on ``model`` for ``tasks`` with the optimizer factory."""
    from mtl_core import MTLStep

    check(method, options)
    return MTLStep(model, "ls" if method == "stl" else method, optimizer, tasks=list(tasks), hparams=dict(options))
