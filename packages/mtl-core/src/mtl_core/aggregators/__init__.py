"""Gradient aggregators: ``d = create(name, num_tasks, **hparams)(grads, losses)``.

Each maps the per-task gradients ``grads: Tensor[K, n]`` (and the losses) to an update direction.
"""

from __future__ import annotations

from typing import Any

from . import (  # noqa: F401  (importing registers the methods)
    aligned_mtl,
    cagrad,
    consmtl,
    db_mtl,
    fairgrad,
    graddrop,
    gradnorm,
    gradvac,
    imtl,
    mgda,
    moco,
    nash_mtl,
    pcgrad,
)
from ._registry import AGGREGATORS
from .aligned_mtl import AlignedMTL, alignment_matrix
from .base import Aggregator, WeightedAggregator
from .cagrad import CAGrad
from .consmtl import ConsMTL
from .db_mtl import DBMTL
from .fairgrad import FairGrad
from .graddrop import GradDrop
from .gradnorm import GradNorm
from .gradvac import GradVac
from .imtl import IMTLG
from .mgda import MGDA
from .moco import MoCo
from .nash_mtl import NashMTL
from .pcgrad import PCGrad


def names() -> list[str]:
    """Names of the gradient-based methods."""
    return AGGREGATORS.names()


def create(name: str, num_tasks: int, **hparams: Any) -> Aggregator:
    """Instantiate aggregator ``name``; unknown names or hyper-parameters raise ``ValueError``."""
    return AGGREGATORS.create(name, num_tasks, **hparams)


def hparams(name: str) -> dict[str, Any]:
    """The hyper-parameters of aggregator ``name`` with their defaults."""
    return AGGREGATORS.hparams(name)


__all__ = [
    "DBMTL",
    "IMTLG",
    "MGDA",
    "Aggregator",
    "AlignedMTL",
    "CAGrad",
    "ConsMTL",
    "FairGrad",
    "GradDrop",
    "GradNorm",
    "GradVac",
    "MoCo",
    "NashMTL",
    "PCGrad",
    "WeightedAggregator",
    "alignment_matrix",
    "create",
    "hparams",
    "names",
]
