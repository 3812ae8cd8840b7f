"""Loss weightings: ``weights = create(name, num_tasks, **hparams)(losses)``."""

from __future__ import annotations

from typing import Any

from . import dwa, famo, scalarization, uncertainty  # noqa: F401  (importing registers the methods)
from ._registry import WEIGHTINGS
from .base import Weighting
from .dwa import DynamicWeightAverage
from .famo import FAMO
from .scalarization import (
    GeometricLoss,
    LinearScalarization,
    OptimalUncertainty,
    RandomLossWeighting,
    ScaleInvariant,
)
from .uncertainty import IMTLL, UncertaintyWeighting


def names() -> list[str]:
    """Names of the loss-based methods."""
    return WEIGHTINGS.names()


def create(name: str, num_tasks: int, **hparams: Any) -> Weighting:
    """Instantiate weighting ``name``; unknown names or hyper-parameters raise ``ValueError``."""
    return WEIGHTINGS.create(name, num_tasks, **hparams)


def hparams(name: str) -> dict[str, Any]:
    """The hyper-parameters of weighting ``name`` with their defaults."""
    return WEIGHTINGS.hparams(name)


__all__ = [
    "FAMO",
    "IMTLL",
    "DynamicWeightAverage",
    "GeometricLoss",
    "LinearScalarization",
    "OptimalUncertainty",
    "RandomLossWeighting",
    "ScaleInvariant",
    "UncertaintyWeighting",
    "Weighting",
    "create",
    "hparams",
    "names",
]
