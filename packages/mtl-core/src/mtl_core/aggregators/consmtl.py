"""ConsMTL's upper level: minimise the mean inverse utility ``(1/K) sum_i 1 / <g_i, d>``."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from ..solvers import positive_fixed_point
from ._registry import AGGREGATORS
from .base import WeightedAggregator


@AGGREGATORS.register("consmtl")
class ConsMTL(WeightedAggregator):
    """ConsMTL upper-level aggregation (seed 004, eq. (3)-(5)).

    The KKT conditions of ``min_{||d|| <= eps} (1/K) sum_i 1/<g_i, d>`` give ``d = sum_i a_i g_i`` with
    ``G^T G a = sqrt(1 / a)`` (eq. (5); ``G`` is n x K there, so ``G^T G`` is our ``G G^T``). The paper solves
    it as a constrained non-linear least-squares problem with scipy; the equation is FairGrad's with
    ``alpha = 2``, and it is solved here exactly by the same Newton solver. The lower level (the extra
    ``-lambda <grad_z l_i, d_z>`` loss on the task heads) belongs to the training step.
    """

    def weights_from_gramian(self, gram: np.ndarray, losses: Tensor | None) -> np.ndarray:
        return positive_fixed_point(gram, 0.5)
