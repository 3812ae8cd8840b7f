"""Learned loss scales: UW (homoscedastic uncertainty) and IMTL-L."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._registry import WEIGHTINGS
from .base import Weighting


@WEIGHTINGS.register("uw")
class UncertaintyWeighting(Weighting):
    """Uncertainty weighting (Kendall et al. 2018, eq. (7)): ``L = sum_i 1/2 (exp(-s_i) L_i + s_i)``.

    ``s_i = log sigma_i^2`` are learnable (initialised at 0) and trained by back-propagating ``loss`` with
    the model's optimiser; their optimum is ``sigma_i^2 = L_i`` (UW-O, seed 001 eq. (11)-(12)).
    """

    def __init__(self, num_tasks: int) -> None:
        super().__init__(num_tasks)
        self.log_vars = nn.Parameter(torch.zeros(num_tasks))

    def weights(self, losses: Tensor) -> Tensor:
        return 0.5 * torch.exp(-self.log_vars).to(device=losses.device, dtype=losses.dtype)

    def regularizer(self) -> Tensor:
        return 0.5 * self.log_vars.sum()  # a 0-d tensor: broadcasts onto the losses' device


@WEIGHTINGS.register("imtl_l")
class IMTLL(Weighting):
    """IMTL-L, the loss-balance part of IMTL (Liu et al. 2021, eq. (5)): ``L = sum_i (e^{s_i} L_i - s_i)``.

    Learnable ``s`` (initialised at 0), trained by back-propagating ``loss``; at the optimum every scaled
    loss ``e^{s_i} L_i`` equals 1.
    """

    def __init__(self, num_tasks: int) -> None:
        super().__init__(num_tasks)
        self.log_scales = nn.Parameter(torch.zeros(num_tasks))

    def weights(self, losses: Tensor) -> Tensor:
        return torch.exp(self.log_scales).to(device=losses.device, dtype=losses.dtype)

    def regularizer(self) -> Tensor:
        return -self.log_scales.sum()
