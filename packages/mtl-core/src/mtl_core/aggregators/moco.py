"""MoCo: multi-objective gradient correction with tracked gradient estimates."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._checks import check_positive
from ..solvers import project_simplex
from ._registry import AGGREGATORS
from .base import Aggregator


@AGGREGATORS.register("moco")
class MoCo(Aggregator):
    """MoCo (Fernando et al. 2023, Alg. 1): track ``Y`` and the simplex weights ``lambda``.

    ``Y <- Y - beta_t (Y - G)``, ``lambda <- Proj_simplex(lambda - gamma_t (Y Y^T + rho I) lambda)``,
    ``d = Y^T lambda`` with ``beta_t = beta / t^beta_sigma`` and ``gamma_t = gamma / t^gamma_sigma``.
    ``normalize=True`` rescales each task gradient to norm ``L_i`` first, as the authors' code shared with
    LibMTL does (defaults are LibMTL's). The paper's Euclidean projection is used for ``lambda`` (LibMTL
    substitutes a softmax). ``Y`` is a K x n buffer, saved with the state.
    """

    needs_losses = True
    lazy_buffers = ("y",)

    def __init__(
        self,
        num_tasks: int,
        *,
        beta: float = 0.5,
        beta_sigma: float = 0.5,
        gamma: float = 0.1,
        gamma_sigma: float = 0.5,
        rho: float = 0.0,
        normalize: bool = True,
    ) -> None:
        super().__init__(num_tasks)
        self.beta = check_positive("beta", beta)
        self.beta_sigma = check_positive("beta_sigma", beta_sigma, allow_zero=True)
        self.gamma = check_positive("gamma", gamma)
        self.gamma_sigma = check_positive("gamma_sigma", gamma_sigma, allow_zero=True)
        self.rho = check_positive("rho", rho, allow_zero=True)
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be a bool, got {normalize!r}")
        self.normalize = normalize
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("lambd", torch.full((num_tasks,), 1.0 / num_tasks, dtype=torch.float64))
        self.register_buffer("y", torch.zeros(0))

    def aggregate(self, grads: Tensor, losses: Tensor | None) -> Tensor:
        self.step += 1
        t = int(self.step)
        if self.normalize:
            scale = losses.detach().to(grads.dtype) / (grads.norm(dim=1) + 1e-8)
            grads = grads * scale[:, None]
        if self.y.shape != grads.shape:
            self.y = torch.zeros_like(grads)
        self.y.sub_((self.beta / t**self.beta_sigma) * (self.y - grads))
        yy = (self.y.double() @ self.y.double().T).cpu().numpy() + self.rho * np.eye(self.num_tasks)
        lam = self.lambd.cpu().numpy()
        lam = project_simplex(lam - (self.gamma / t**self.gamma_sigma) * (yy @ lam))
        self.lambd.copy_(torch.from_numpy(lam))
        return self.lambd.to(device=grads.device, dtype=grads.dtype) @ self.y
