"""DWA: dynamic weight average from the epoch-to-epoch rate of change of each loss."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_positive
from ._registry import WEIGHTINGS
from .base import Weighting


@WEIGHTINGS.register("dwa")
class DynamicWeightAverage(Weighting):
    """Dynamic Weight Average (Liu et al. 2019, MTAN, eq. (7)).

    ``lambda_k(t) = K exp(r_k / T) / sum_i exp(r_i / T)`` with ``r_k = L_k(t-1) / L_k(t-2)`` computed from the
    epoch-average training losses of the two previous epochs; weights are 1 during the first two epochs.
    ``T = 2`` as in MTAN. The epoch averages accumulate over the calls (one per optimisation step) and roll
    over at ``end_epoch()``.
    """

    def __init__(self, num_tasks: int, *, temperature: float = 2.0) -> None:
        super().__init__(num_tasks)
        self.temperature = check_positive("temperature", temperature)
        self.register_buffer("epoch_sum", torch.zeros(num_tasks, dtype=torch.float64))
        self.register_buffer("epoch_count", torch.zeros((), dtype=torch.long))
        self.register_buffer("history", torch.zeros(2, num_tasks, dtype=torch.float64))  # [t-2, t-1]
        self.register_buffer("epochs_done", torch.zeros((), dtype=torch.long))

    def weights(self, losses: Tensor) -> Tensor:
        self.epoch_sum += losses.detach().double().to(self.epoch_sum.device)
        self.epoch_count += 1
        if int(self.epochs_done) < 2:
            return torch.ones_like(losses)
        rates = self.history[1] / self.history[0]
        w = self.num_tasks * torch.softmax(rates / self.temperature, dim=0)
        return w.to(device=losses.device, dtype=losses.dtype)

    def end_epoch(self) -> None:
        if int(self.epoch_count) == 0:
            return
        self.history[0] = self.history[1]
        self.history[1] = self.epoch_sum / self.epoch_count
        self.epoch_sum.zero_()
        self.epoch_count.zero_()
        self.epochs_done += 1
