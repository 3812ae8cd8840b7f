"""CAGrad: conflict-averse gradient descent."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from .._checks import check_choice, check_positive
from ..solvers import cagrad_weights, cagrad_weights_two_tasks
from ._registry import AGGREGATORS
from .base import WeightedAggregator


@AGGREGATORS.register("cagrad")
class CAGrad(WeightedAggregator):
    """Conflict-Averse Gradient descent (Liu et al. 2021, eq. (3)-(4), Alg. 1).

    ``d = argmax_{||d - g0|| <= c ||g0||} min_i <g_i, d>`` with ``g0`` the mean gradient; by duality
    ``d = g0 + c ||g0|| / ||g_w|| g_w`` where ``w`` minimises ``<g_w, g0> + c ||g0|| ||g_w||`` over the simplex.
    The dual is solved exactly (``solvers.cagrad_weights``: an exact reduction to min-norm problems, float64,
    unit-norm scaled, so gradient norms over many orders of magnitude do not degrade it; for K = 2 in closed
    form, ``solvers.cagrad_weights_two_tasks``). Where the dual's
    ``g_w`` vanishes (e.g. a task with a zero gradient; judged relative to round-off, not ``> 0``), the optimum
    is ``min_i <g_i, d> = 0`` and ``d`` is the solution closest to ``g0`` (the reference code adds 1e-4 to the
    norms and returns ``g0``).
    ``rescale=1`` divides by ``1 + c^2`` (reference default), ``0`` keeps it, ``2`` divides by ``1 + c``.
    ``c=0`` gives the mean gradient. Default ``c=0.4`` (the value used for NYUv2/Cityscapes).
    ``norm_eps > 0`` is the reference toy script's regularisation (Cranial-XIX/CAGrad ``toy.py`` adds ``1e-4``
    inside and after its norms; seed 001 Table A7 ran that script): not CAGrad's equation near a minimum, it only
    exists to reproduce those toy numbers (``mtl_core.toy.TABLE_A7_METHODS``); 0 (default) is exact CAGrad.
    """

    def __init__(self, num_tasks: int, *, c: float = 0.4, rescale: int = 1, norm_eps: float = 0.0) -> None:
        super().__init__(num_tasks)
        self.c = check_positive("c", c, allow_zero=True)
        self.rescale = check_choice("rescale", rescale, (0, 1, 2))
        self.norm_eps = check_positive("norm_eps", norm_eps, allow_zero=True)

    @property
    def _divisor(self) -> float:
        return {0: 1.0, 1: 1.0 + self.c**2, 2: 1.0 + self.c}[self.rescale]

    def weights_from_gramian(self, gram: np.ndarray, losses: Tensor | None) -> np.ndarray:
        return cagrad_weights(gram, self.c, norm_eps=self.norm_eps) / self._divisor

    def weights_from_gramians(self, grams: np.ndarray, losses: Tensor | None = None) -> np.ndarray:
        """:meth:`weights_from_gramian` of each Gramian of a stack ``[S, K, K]``: ``[S, K]``.

        CAGrad is stateless, so the rows are independent; K = 2 solves the whole stack in one vectorised call
        of the closed form (``solvers.cagrad_weights_two_tasks``), bitwise equal to one call per row. The toy
        runner (``mtl_core.toy``) uses it to solve all its starts and learning rates at once.
        """
        grams = np.asarray(grams, dtype=np.float64)
        if grams.ndim != 3 or grams.shape[1:] != (self.num_tasks, self.num_tasks):
            raise ValueError(f"grams must have shape [S, {self.num_tasks}, {self.num_tasks}], got {list(grams.shape)}")
        if self.num_tasks == 2:
            return cagrad_weights_two_tasks(grams, self.c, norm_eps=self.norm_eps) / self._divisor
        return np.stack([self.weights_from_gramian(gram, None) for gram in grams]).reshape(-1, self.num_tasks)
