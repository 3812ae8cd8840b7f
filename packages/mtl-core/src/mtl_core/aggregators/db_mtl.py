"""DB-MTL: dual balancing of loss scales (log losses) and gradient magnitudes."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_positive, check_range
from ._registry import AGGREGATORS
from .base import Aggregator


@AGGREGATORS.register("db_mtl")
class DBMTL(Aggregator):
    """Dual-Balancing MTL (Lin et al. 2023, eq. (4)-(6)).

    Loss-scale balancing: gradients of ``log L_i`` (``g_i / L_i``). Gradient-magnitude balancing: an EMA
    ``y_i <- g_i + beta_t (y_i - g_i)`` with ``beta_t = beta / t^beta_sigma``, then
    ``d = sum_i (max_j ||y_j|| / ||y_i||) y_i``: every task's tracked gradient is scaled to the largest norm.
    Defaults are the reference code's: median-research-group/LibMTL (the library of DB-MTL's first author),
    ``LibMTL/config.py`` ``--DB_beta 0.9``, ``--DB_beta_sigma 0`` read by ``LibMTL/weighting/DB_MTL.py``, so
    ``beta_t = beta`` at every step (a plain EMA); ``beta_sigma > 0`` decays it as MoCo's schedules do.
    """

    needs_losses = True
    lazy_buffers = ("buffer",)

    def __init__(self, num_tasks: int, *, beta: float = 0.9, beta_sigma: float = 0.0) -> None:
        super().__init__(num_tasks)
        self.beta = check_range("beta", beta, 0.0, 1.0)
        self.beta_sigma = check_positive("beta_sigma", beta_sigma, allow_zero=True)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("buffer", torch.zeros(0))

    def aggregate(self, grads: Tensor, losses: Tensor | None) -> Tensor:
        if (losses <= 0).any():
            raise ValueError(f"db_mtl takes log(L_i): losses must be > 0, got {losses.tolist()}")
        self.step += 1
        log_grads = grads / losses.detach().to(grads.dtype)[:, None]
        if self.buffer.shape != grads.shape:
            self.buffer = torch.zeros_like(grads)
        beta_t = self.beta / int(self.step) ** self.beta_sigma
        self.buffer.copy_(log_grads + beta_t * (self.buffer - log_grads))
        norms = self.buffer.norm(dim=1)
        scale = norms.max() / (norms + 1e-8)
        return scale @ self.buffer
