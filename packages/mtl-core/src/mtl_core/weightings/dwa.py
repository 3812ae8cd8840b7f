"""DWA: dynamic weight average from the epoch-to-epoch rate of change of each loss."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_positive
from ._registry import WEIGHTINGS
from .base import Weighting


def descent_rates(previous: Tensor, last: Tensor) -> Tensor:
    """``r_k = L_k(t-1) / L_k(t-2)`` (MTAN eq. (7)) for non-negative epoch averages, with its limits where a
    previous average is 0 (the paper and its reference code, lorenmt/mtan ``im2im_pred/utils.py``
    ``multi_task_trainer``, divide as is and get NaN): ``0 -> 0`` is rate 1, the rate of any loss that did not
    change; ``0 -> L > 0`` is ``+inf``, the limit as ``L_k(t-2) -> 0+``."""
    return torch.where(previous > 0, last / previous, torch.where(last > 0, torch.inf, 1.0))


@WEIGHTINGS.register("dwa")
class DynamicWeightAverage(Weighting):
    """Dynamic Weight Average (Liu et al. 2019, MTAN, eq. (7)).

    ``lambda_k(t) = K exp(r_k / T) / sum_i exp(r_i / T)`` with ``r_k = L_k(t-1) / L_k(t-2)`` computed from the
    epoch-average training losses of the two previous epochs; weights are 1 during the first two epochs.
    ``T = 2`` as in MTAN. The epoch averages accumulate over the calls (one per optimisation step) and roll
    over at ``end_epoch()``.

    A zero epoch average (a task solved, or absent from an epoch) takes eq. (7)'s limits (``descent_rates``):
    a loss at 0 in both epochs counts as unchanged (``r_k = 1``); a loss that rose from 0 has ``r_k = +inf``,
    and the ``m`` such tasks share the weight ``K`` (``K / m`` each, the others 0), as a vanishing previous
    average gives. The rate of descent needs non-negative losses: a negative epoch average is a ValueError
    at ``end_epoch()``, naming the task.
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
        rates = descent_rates(self.history[0], self.history[1])
        rising = torch.isinf(rates)
        if rising.any():  # softmax of +inf is NaN: take its limit
            w = self.num_tasks * rising.double() / rising.sum()
        else:
            w = self.num_tasks * torch.softmax(rates / self.temperature, dim=0)
        return w.to(device=losses.device, dtype=losses.dtype)

    def end_epoch(self) -> None:
        if int(self.epoch_count) == 0:
            return
        average = self.epoch_sum / self.epoch_count
        negative = (average < 0).nonzero().flatten().tolist()
        if negative:
            raise ValueError(
                f"dwa: the epoch-average loss of task {negative[0]} is {float(average[negative[0]]):g} < 0: "
                "DWA's rate L_k(t-1) / L_k(t-2) (MTAN eq. (7)) needs non-negative task losses"
            )
        self.history[0] = self.history[1]
        self.history[1] = average
        self.epoch_sum.zero_()
        self.epoch_count.zero_()
        self.epochs_done += 1
