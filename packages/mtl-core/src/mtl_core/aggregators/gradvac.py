"""GradVac: gradient vaccine, aligning pairwise cosine similarities to their running targets."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._checks import check_range
from .._state import Seeded
from ._registry import AGGREGATORS
from .base import WeightedAggregator


@AGGREGATORS.register("gradvac")
class GradVac(Seeded, WeightedAggregator):
    """Gradient Vaccine (Wang et al. 2021, eq. (3)-(5)), on the whole shared-parameter vector.

    For each task ``i`` and the other tasks ``j`` in random order, with ``phi = cos(g_i^GV, g_j)`` and the
    EMA target ``phi_hat_ij``: if ``phi < phi_hat_ij`` add
    ``||g_i^GV|| (phi_hat sqrt(1-phi^2) - phi sqrt(1-phi_hat^2)) / (||g_j|| sqrt(1-phi_hat^2)) g_j``; then
    ``phi_hat_ij <- (1-beta) phi_hat_ij + beta phi``. ``d = sum_i g_i^GV``. ``beta=0.5`` as LibMTL (the paper
    uses 1e-2). Runs on K x K coefficients with the Gramian (every ``g_i^GV`` is in the span of G).
    """

    def __init__(self, num_tasks: int, *, beta: float = 0.5, seed: int = 0) -> None:
        super().__init__(num_tasks)
        self.beta = check_range("beta", beta, 0.0, 1.0)
        self._init_generator(seed)
        self.register_buffer("targets", torch.zeros(num_tasks, num_tasks, dtype=torch.float64))
        self.last_coefficients: np.ndarray | None = None  # g^GV = last_coefficients @ G

    def weights_from_gramian(self, gram: np.ndarray, losses: Tensor | None) -> np.ndarray:
        k = self.num_tasks
        coef = np.eye(k)
        targets = self.targets.cpu().numpy().copy()
        for i in range(k):
            for j in (j for j in torch.randperm(k, generator=self.generator).tolist() if j != i):
                norm_i = np.sqrt(max(coef[i] @ gram @ coef[i], 0.0))
                norm_j = np.sqrt(max(gram[j, j], 0.0))
                if norm_i == 0 or norm_j == 0:
                    continue
                phi = float(np.clip(coef[i] @ gram[:, j] / (norm_i * norm_j), -1.0, 1.0))
                target = targets[i, j]
                if phi < target:
                    coef[i, j] += (
                        norm_i
                        * (target * np.sqrt(1 - phi**2) - phi * np.sqrt(1 - target**2))
                        / (norm_j * np.sqrt(max(1 - target**2, 1e-16)))
                    )
                targets[i, j] = (1 - self.beta) * target + self.beta * phi
        self.targets.copy_(torch.from_numpy(targets))
        self.last_coefficients = coef
        return coef.sum(axis=0)
