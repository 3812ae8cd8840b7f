"""GradDrop: sign-consistency dropout of gradient coordinates."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_range
from .._state import Seeded
from ._registry import AGGREGATORS
from .base import Aggregator


@AGGREGATORS.register("graddrop")
class GradDrop(Seeded, Aggregator):
    """Gradient Sign Dropout (Chen et al. 2020, eq. (1)-(3)).

    Per coordinate, the positive sign purity ``P = (1 + sum_i g_i / sum_i |g_i|) / 2``; with ``U ~ U(0, 1)``
    drawn per coordinate, task ``i`` keeps its coordinate if it is positive and ``P > U`` or negative and
    ``P < U``. ``leak`` in [0, 1] lets a fraction of the dropped gradient through. ``d = sum_i kept_i``.
    Purely coordinate-wise, so it has no weight vector (``last_weights`` stays ``None``).
    """

    def __init__(self, num_tasks: int, *, leak: float = 0.0, seed: int = 0) -> None:
        super().__init__(num_tasks)
        self.leak = check_range("leak", leak, 0.0, 1.0)
        self._init_generator(seed)

    def aggregate(self, grads: Tensor, losses: Tensor | None) -> Tensor:
        purity = 0.5 * (1.0 + grads.sum(0) / (grads.abs().sum(0) + 1e-12))
        u = torch.rand(grads.shape[1], generator=self.generator).to(device=grads.device, dtype=grads.dtype)
        keep = ((purity > u) & (grads > 0)) | ((purity < u) & (grads < 0))
        kept = grads * keep
        if self.leak > 0:
            kept = self.leak * grads + (1.0 - self.leak) * kept
        return kept.sum(0)
