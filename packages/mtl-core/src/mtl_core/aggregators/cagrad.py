"""CAGrad: conflict-averse gradient descent."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from .._checks import check_choice, check_positive
from ..solvers import cagrad_weights
from ._registry import AGGREGATORS
from .base import WeightedAggregator


@AGGREGATORS.register("cagrad")
class CAGrad(WeightedAggregator):
    """Conflict-Averse Gradient descent (Liu et al. 2021, eq. (3)-(4), Alg. 1).

    ``d = argmax_{||d - g0|| <= c ||g0||} min_i <g_i, d>`` with ``g0`` the mean gradient; by duality
    ``d = g0 + c ||g0|| / ||g_w|| g_w`` where ``w`` minimises ``<g_w, g0> + c ||g0|| ||g_w||`` over the simplex.
    ``rescale=1`` divides by ``1 + c^2`` (reference default), ``0`` keeps it, ``2`` divides by ``1 + c``.
    ``c=0`` gives the mean gradient. Default ``c=0.4`` (the value used for NYUv2/Cityscapes).
    """

    def __init__(self, num_tasks: int, *, c: float = 0.4, rescale: int = 1) -> None:
        super().__init__(num_tasks)
        self.c = check_positive("c", c, allow_zero=True)
        self.rescale = check_choice("rescale", rescale, (0, 1, 2))

    def weights_from_gramian(self, gram: np.ndarray, losses: Tensor | None) -> np.ndarray:
        k = self.num_tasks
        weights = np.full(k, 1.0 / k)
        if self.c > 0:
            w = cagrad_weights(gram, self.c)
            g0_norm = np.sqrt(max(weights @ gram @ weights, 0.0))
            gw_norm = np.sqrt(max(w @ gram @ w, 0.0))
            if gw_norm > 0:
                weights = weights + self.c * g0_norm / gw_norm * w
        divisor = {0: 1.0, 1: 1.0 + self.c**2, 2: 1.0 + self.c}[self.rescale]
        return weights / divisor
