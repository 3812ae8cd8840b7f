"""FairGrad: alpha-fair resource allocation among task utilities."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from .._checks import check_positive
from ..solvers import positive_fixed_point
from ._registry import AGGREGATORS
from .base import WeightedAggregator


@AGGREGATORS.register("fairgrad")
class FairGrad(WeightedAggregator):
    """FairGrad (Ban & Ji 2024, eq. (6)): ``d = sum_i w_i g_i`` with ``w > 0`` solving ``G G^T w = w^(-1/alpha)``.

    ``alpha`` sets the fairness: 1 gives proportional fairness (the Nash-MTL equation), 2 the minimum
    potential delay (ConsMTL's upper level), large values approach max-min fairness. Solved exactly by Newton's
    method (the reference runs ``scipy.optimize.least_squares`` from the uniform point). The Gramian is not
    normalised, as in the reference. Default ``alpha=2.0``: what the method's authors run (OptMN-Lab/fairgrad
    ``experiments/*/run.sh`` pass ``--alpha=2.0``; OptMN-Lab/SAMO's ``experiments/utils.py`` defaults ``--alpha``
    to 2.0 for FairGrad and SAMO-FairGrad); ``alpha=1`` is Nash-MTL's equation.
    """

    def __init__(self, num_tasks: int, *, alpha: float = 2.0) -> None:
        super().__init__(num_tasks)
        self.alpha = check_positive("alpha", alpha)

    def weights_from_gramian(self, gram: np.ndarray, losses: Tensor | None) -> np.ndarray:
        return positive_fixed_point(gram, 1.0 / self.alpha)
