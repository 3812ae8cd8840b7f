"""IMTL-G: the direction with equal projections onto every unit task gradient."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from ._registry import AGGREGATORS
from .base import WeightedAggregator


@AGGREGATORS.register("imtl")
class IMTLG(WeightedAggregator):
    """Impartial MTL, gradient balance (Liu et al. 2021, IMTL-G, eq. (8)-(10)).

    Finds ``d = sum_i a_i g_i`` with ``sum_i a_i = 1`` and ``<d, u_i>`` equal for all unit gradients
    ``u_i = g_i / ||g_i||``. The paper's closed form ``a_{2:K} = g_1 U^T (D U^T)^{-1}`` is the solution of this
    linear system; here it is solved directly on the Gramian (least squares, so rank-deficient systems get
    the minimum-norm solution). Tasks with a zero gradient get weight 0.
    """

    def weights_from_gramian(self, gram: np.ndarray, losses: Tensor | None) -> np.ndarray:
        k = self.num_tasks
        norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
        active = np.flatnonzero(norms > 0)
        weights = np.zeros(k)
        if active.size == 0:
            return weights
        m = gram[np.ix_(active, active)]
        proj = m / norms[active][:, None]  # proj[i] @ a = <d, u_i>
        # rows: <d, u_i> - <d, u_0> = 0 for i >= 1, and sum a = 1
        system = np.vstack([proj[1:] - proj[0], np.ones((1, active.size))])
        rhs = np.zeros(active.size)
        rhs[-1] = 1.0
        weights[active] = np.linalg.lstsq(system, rhs, rcond=None)[0]
        return weights
