"""mtl_core: multi-task optimisation building blocks.

Per-task gradients (:func:`jacobian`), loss weightings (:mod:`mtl_core.weightings`), gradient aggregators
(:mod:`mtl_core.aggregators`) and summary metrics (:mod:`mtl_core.metrics`). Depends on torch, numpy, scipy.
"""

from __future__ import annotations

from . import aggregators, analysis, estimators, metrics, solvers, step, toy, weightings
from .gradients import choose_mode, combine, gramian, jacobian, unflatten_like
from .step import MTLStep, StepResult

__version__ = "0.1.0"

__all__ = [
    "MTLStep",
    "StepResult",
    "aggregators",
    "analysis",
    "choose_mode",
    "combine",
    "estimators",
    "gramian",
    "jacobian",
    "metrics",
    "solvers",
    "step",
    "toy",
    "unflatten_like",
    "weightings",
]
