"""PCGrad: project each gradient onto the normal plane of the gradients it conflicts with."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._checks import check_choice
from .._state import Seeded
from ._registry import AGGREGATORS
from .base import WeightedAggregator


@AGGREGATORS.register("pcgrad")
class PCGrad(Seeded, WeightedAggregator):
    """Gradient surgery (Yu et al. 2020, Alg. 1).

    For each task ``i`` and the other tasks ``j`` in a random order: if ``<g_i^PC, g_j> < 0`` then
    ``g_i^PC -= <g_i^PC, g_j> / ||g_j||^2 g_j``; the direction is ``sum_i g_i^PC`` (``reduction="sum"``, as the
    paper; ``"mean"`` divides by K). Every ``g_i^PC`` stays in the span of the task gradients, so the
    projections run on K x K coefficients with the Gramian (O(K^3)) instead of on n-vectors (O(K^2 n)):
    ``g_i^PC = C_i @ G``, ``d = (1^T C) @ G``. ``last_orders[i]`` is the order used for task ``i``.
    """

    def __init__(self, num_tasks: int, *, reduction: str = "sum", seed: int = 0) -> None:
        super().__init__(num_tasks)
        self.reduction = check_choice("reduction", reduction, ("sum", "mean"))
        self._init_generator(seed)
        self.last_orders: list[list[int]] = []
        self.last_coefficients: np.ndarray | None = None

    def weights_from_gramian(self, gram: np.ndarray, losses: Tensor | None) -> np.ndarray:
        k = self.num_tasks
        coef = np.eye(k)
        self.last_orders = []
        for i in range(k):
            others = [j for j in torch.randperm(k, generator=self.generator).tolist() if j != i]
            self.last_orders.append(others)
            for j in others:
                dot = coef[i] @ gram[:, j]
                if dot < 0 and gram[j, j] > 0:
                    coef[i, j] -= dot / gram[j, j]
        self.last_coefficients = coef
        weights = coef.sum(axis=0)
        return weights / k if self.reduction == "mean" else weights
