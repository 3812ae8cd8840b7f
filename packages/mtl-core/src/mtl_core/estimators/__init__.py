"""Per-task gradient estimators: ``exact``, ``features`` and the sharpness-aware ``sam``, ``lsam``, ``fmtl``, ``samo``.

An estimator produces the per-task gradients a combiner (weighting or aggregator) combines; a method is an
estimator x a combiner, e.g. ``samo+fairgrad``. They are driven by :class:`mtl_core.MTLStep`.
"""

from __future__ import annotations

from typing import Any

from . import exact, features, fmtl, sam, samo  # noqa: F401  (importing registers the estimators)
from ._registry import ESTIMATORS
from .base import Estimate, Estimator, StepContext
from .exact import Exact
from .features import Features
from .fmtl import FlatMTL
from .sam import GlobalSAM, LocalSAM
from .samo import SAMO, normalize_local, spsa_gradient


def names() -> list[str]:
    """Names of the estimators."""
    return ESTIMATORS.names()


def create(name: str, num_tasks: int, **hparams: Any) -> Estimator:
    """Instantiate estimator ``name``; unknown names or hyper-parameters raise ``ValueError``."""
    return ESTIMATORS.create(name, num_tasks, **hparams)


def hparams(name: str) -> dict[str, Any]:
    """The hyper-parameters of estimator ``name`` with their defaults."""
    return ESTIMATORS.hparams(name)


__all__ = [
    "SAMO",
    "Estimate",
    "Estimator",
    "Exact",
    "Features",
    "FlatMTL",
    "GlobalSAM",
    "LocalSAM",
    "StepContext",
    "create",
    "hparams",
    "names",
    "normalize_local",
    "spsa_gradient",
]
