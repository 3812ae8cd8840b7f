"""MGDA: the min-norm point of the convex hull of the task gradients."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from .._checks import check_choice
from ..solvers import min_norm_simplex
from ._registry import AGGREGATORS
from .base import WeightedAggregator

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


@AGGREGATORS.register("mgda")
class MGDA(WeightedAggregator):
    """Multiple-gradient descent (Désidéri 2012; Sener & Koltun 2018, eq. (3)).

    ``d = argmin { ||d|| : d in conv(g_1..g_K) }``, solved exactly in the task space (``solvers.min_norm_simplex``)
    rather than by Frank-Wolfe iterations as in the reference code. ``normalization`` applies Sener & Koltun's
    optional gradient normalisers before the solve (``l2``: ``||g_i||``, ``loss``: ``L_i``, ``loss+``: both),
    and, as their code does, the resulting weights multiply the un-normalised gradients.
    With ``normalization="none"`` (the default, as in Nash-MTL's benchmark code) ``d`` is exactly the min-norm
    point and every task's directional derivative is at least ``||d||^2`` (non-conflicting).
    Applied to features-mode gradients this is MGDA-UB.
    """

    def __init__(self, num_tasks: int, *, normalization: str = "none") -> None:
        super().__init__(num_tasks)
        self.normalization = check_choice("normalization", normalization, NORMALIZATIONS)
        self.needs_losses = normalization in ("loss", "loss+")  # type: ignore[misc]

    def weights_from_gramian(self, gram: np.ndarray, losses: Tensor | None) -> np.ndarray:
        norms = np.ones(self.num_tasks)
        if self.normalization in ("l2", "loss+"):
            norms = norms * np.sqrt(np.clip(np.diag(gram), 0.0, None))
        if self.normalization in ("loss", "loss+"):
            norms = norms * losses.detach().double().cpu().numpy()
        norms = np.where(norms > 0, norms, 1.0)
        return min_norm_simplex(gram / np.outer(norms, norms))
