"""Nash-MTL: the Nash bargaining solution ``G G^T a = 1/a``."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._checks import check_positive, check_positive_int
from ..gradients import combine
from ..solvers import positive_fixed_point
from ._registry import AGGREGATORS
from .base import WeightedAggregator


@AGGREGATORS.register("nash_mtl")
class NashMTL(WeightedAggregator):
    """Nash-MTL (Navon et al. 2022, eq. (2)-(3)): ``d = sum_i a_i g_i`` with ``a > 0`` solving ``G G^T a = 1/a``.

    The fixed point is solved exactly by Newton's method (``solvers.positive_fixed_point``) instead of the
    reference's sequence of convex-concave cvxpy problems stopped after ``optim_niter`` steps. The equation is
    the paper's, unnormalised: then ``a^T G G^T a = sum_i a_i / a_i = K``, so ``||d|| = sqrt(K)`` whatever the
    gradients' scale (``a`` scales like ``1 / scale``). The reference code (AvivNavon/nash-mtl,
    ``methods/weight_methods.py``, ``NashMTL``) divides ``G G^T`` by its Frobenius norm ``N`` only to condition
    its cvxpy problem, whose constraint ``-log(alpha_i N) - log((G G^T / N) alpha)_i <= 0`` restores the scale:
    it solves the same equation. Here the conditioning is internal to the solver (unit-diagonal Jacobi scaling).
    ``max_norm > 0`` caps ``||d||`` (the reference clips the shared gradient to norm 1.0).
    ``update_weights_every = m`` recomputes ``a`` every m-th step and reuses it in between; a training step
    can then skip the Jacobian (``reusable_weights``).
    """

    def __init__(
        self,
        num_tasks: int,
        *,
        max_norm: float = 1.0,
        update_weights_every: int = 1,
    ) -> None:
        super().__init__(num_tasks)
        self.max_norm = check_positive("max_norm", max_norm, allow_zero=True)
        self.update_weights_every = check_positive_int("update_weights_every", update_weights_every)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("alpha", torch.ones(num_tasks, dtype=torch.float64))

    def solve(self, gram: np.ndarray) -> np.ndarray:
        """The Nash bargaining weights: ``a > 0`` with ``G G^T a = 1 / a``."""
        return positive_fixed_point(gram, 1.0)

    def reusable_weights(self) -> Tensor | None:
        if int(self.step) % self.update_weights_every == 0:
            return None
        return self.alpha.clone()

    def skip_step(self) -> None:
        if self.reusable_weights() is None:
            raise RuntimeError("nash_mtl: this step must recompute the weights")
        self.step += 1

    def aggregate(self, grads: Tensor, losses: Tensor | None) -> Tensor:
        if int(self.step) % self.update_weights_every == 0:
            direction = super().aggregate(grads, losses)
        else:
            self.last_weights = self.alpha.to(grads.device)
            direction = combine(self.last_weights, grads)
        self.step += 1
        norm = direction.norm()
        if self.max_norm > 0 and norm > self.max_norm:
            # the clip is part of the method: keep last_weights consistent with the returned direction
            factor = self.max_norm / norm.item()
            direction = direction * factor
            self.last_weights = self.last_weights * factor
        return direction

    def weights_from_gramian(self, gram: np.ndarray, losses: Tensor | None) -> np.ndarray:
        alpha = self.solve(gram)
        self.alpha.copy_(torch.from_numpy(alpha))
        return alpha
