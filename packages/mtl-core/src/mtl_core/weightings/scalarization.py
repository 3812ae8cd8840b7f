"""Weightings that are functions of the current losses only: LS, SI, UW-O, GLS, RLW."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_task_weights
from .._state import Seeded
from ._registry import WEIGHTINGS
from .base import Weighting


def _require_positive(name: str, losses: Tensor) -> None:
    if (losses <= 0).any():
        raise ValueError(f"{name} takes log/ratios of losses: they must be > 0, got {losses.tolist()}")


@WEIGHTINGS.register("ls")
class LinearScalarization(Weighting):
    """Linear scalarisation / equal weighting (LS, EW): ``L = sum_i c_i L_i`` with fixed ``c`` (default 1)."""

    def __init__(self, num_tasks: int, *, task_weights: list[float] | None = None) -> None:
        super().__init__(num_tasks)
        tw = check_task_weights("task_weights", task_weights, num_tasks)
        self.register_buffer("task_weights", torch.ones(num_tasks) if tw is None else tw.float())

    def weights(self, losses: Tensor) -> Tensor:
        return self.task_weights.to(device=losses.device, dtype=losses.dtype)


@WEIGHTINGS.register("si")
class ScaleInvariant(Weighting):
    """Scale-invariant loss ``L = sum_i log L_i`` (Navon et al. 2022 baseline): weights ``1 / sg[L_i]``."""

    def weights(self, losses: Tensor) -> Tensor:
        _require_positive(self.name, losses)
        return 1.0 / losses.detach()

    def loss(self, losses: Tensor) -> Tensor:
        _require_positive(self.name, losses)
        return torch.log(losses).sum()


@WEIGHTINGS.register("uw_o")
class OptimalUncertainty(Weighting):
    """Optimal uncertainty weighting UW-O (seed 001 eq. (12)): ``L = sum_t L_t / sg[L_t]``.

    UW's weights at their analytical optimum (``sigma_t^2 = L_t``): the gradient is invariant to any
    positive rescaling of each task loss (seed 001 A1.1, eq. (13)).
    """

    def weights(self, losses: Tensor) -> Tensor:
        _require_positive(self.name, losses)
        return 1.0 / losses.detach()


@WEIGHTINGS.register("gls")
class GeometricLoss(Weighting):
    """Geometric loss strategy (Chennupati et al. 2019): ``L = (prod_i L_i)^(1/K)``.

    Its gradient is ``sum_i L / (K L_i) grad L_i``, i.e. weights ``sg[L] / (K sg[L_i])``.
    """

    def weights(self, losses: Tensor) -> Tensor:
        _require_positive(self.name, losses)
        detached = losses.detach()
        return torch.exp(torch.log(detached).mean()) / (self.num_tasks * detached)

    def loss(self, losses: Tensor) -> Tensor:
        _require_positive(self.name, losses)
        return torch.exp(torch.log(losses).mean())


@WEIGHTINGS.register("rlw")
class RandomLossWeighting(Seeded, Weighting):
    """Random loss weighting (Lin et al. 2022, RLW): ``w = softmax(z)``, ``z ~ N(0, I)`` drawn every step.

    As in LibMTL the weights sum to 1.
    """

    def __init__(self, num_tasks: int, *, seed: int = 0) -> None:
        super().__init__(num_tasks)
        self._init_generator(seed)

    def weights(self, losses: Tensor) -> Tensor:
        z = torch.randn(self.num_tasks, generator=self.generator)
        return torch.softmax(z, dim=0).to(device=losses.device, dtype=losses.dtype)
