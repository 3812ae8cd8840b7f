"""The training step: ``MTLStep(model, method, optimizer, **hparams).step(closure)``.

Composes an estimator (``mtl_core.estimators``) with a combiner (a weighting or an aggregator) and the
optimiser(s); also ConsMTL's lower level, the BatchNorm handling of extra forwards and method parsing.
"""

from __future__ import annotations

from .batchnorm import frozen_norm_stats
from .consmtl import ConsMTLLowerLevel
from .method import Method, method_hparams, parse_method
from .mtl_step import HEAD_WEIGHTS, LossClosure, MTLStep, StepResult, accepts_tasks
from .parameters import MultiTaskModel, ParameterGroups

__all__ = [
    "HEAD_WEIGHTS",
    "ConsMTLLowerLevel",
    "LossClosure",
    "MTLStep",
    "Method",
    "MultiTaskModel",
    "ParameterGroups",
    "StepResult",
    "accepts_tasks",
    "frozen_norm_stats",
    "method_hparams",
    "parse_method",
]
