"""GradNorm: learn loss weights that equalise weighted gradient norms at rates set by training speed."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_positive
from ..gradients import combine
from ._registry import AGGREGATORS
from .base import Aggregator


@AGGREGATORS.register("gradnorm")
class GradNorm(Aggregator):
    """GradNorm (Chen et al. 2018, eq. (1)-(2)).

    Weights ``w = K softmax(s)`` (sum K, positive, as LibMTL). With ``G_i = w_i ||g_i||``, inverse training
    rates ``r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0))`` (``L(0)``: the losses of the first call) and the
    constant target ``mean(G) r_i^alpha``, ``L_grad = sum_i |G_i - target_i|`` is minimised over ``s`` by one
    gradient step of size ``lr`` per call. The direction uses the weights before the update:
    ``d = sum_i w_i g_i``. The paper takes ``||g_i||`` at the last shared layer; here it is over all rows
    given (pass the last layer's Jacobian for the paper's cheaper variant).
    """

    needs_losses = True

    def __init__(self, num_tasks: int, *, alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__(num_tasks)
        self.alpha = check_positive("alpha", alpha, allow_zero=True)
        self.lr = check_positive("lr", lr)
        self.register_buffer("logits", torch.zeros(num_tasks, dtype=torch.float64))
        self.register_buffer("initial_losses", torch.zeros(num_tasks, dtype=torch.float64))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def weights(self) -> Tensor:
        return self.num_tasks * torch.softmax(self.logits, dim=0)

    def aggregate(self, grads: Tensor, losses: Tensor | None) -> Tensor:
        losses64 = losses.detach().to(device=self.logits.device, dtype=torch.float64)
        if not bool(self.initialised):
            if (losses64 <= 0).any():
                raise ValueError(f"gradnorm needs positive initial losses, got {losses64.tolist()}")
            self.initial_losses.copy_(losses64)
            self.initialised.fill_(True)
        weights = self.weights()
        self.last_weights = weights.to(grads.device)
        direction = combine(self.last_weights, grads)

        norms = grads.norm(dim=1).to(device=self.logits.device, dtype=torch.float64)
        logits = self.logits.clone().requires_grad_(True)
        with torch.enable_grad():
            g_w = self.num_tasks * torch.softmax(logits, dim=0) * norms
            rates = losses64 / self.initial_losses
            target = (g_w.mean() * (rates / rates.mean()) ** self.alpha).detach()
            (grad,) = torch.autograd.grad((g_w - target).abs().sum(), logits)
        self.logits.sub_(self.lr * grad)
        return direction
