"""Base classes of the gradient aggregators: ``d = agg(grads, losses)``."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_grads, check_losses, check_num_tasks
from .._state import LazyBuffers
from .._threads import single_threaded_host_blas
from ..gradients import combine, gramian


class Aggregator(LazyBuffers, nn.Module):
    """Maps the per-task gradients ``grads: Tensor[K, n]`` (and losses ``Tensor[K]``) to one direction.

    The returned ``Tensor[n]`` is a descent direction: parameters are updated as ``p -= lr * d``.
    ``last_weights`` holds ``w`` (float64) with ``d = w @ grads`` when the method defines one (else ``None``).
    State that must survive a checkpoint lives in buffers / extra state, so ``state_dict`` round-trips.
    """

    name: ClassVar[str] = ""
    #: whether ``forward`` reads the losses (then they are required)
    needs_losses: ClassVar[bool] = False
    #: whether the direction is ``w @ grads`` with ``w`` computed from the Gramian ``G G^T`` alone
    gramian_based: ClassVar[bool] = False

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        self.num_tasks = check_num_tasks(num_tasks)
        self.last_weights: Tensor | None = None

    def forward(self, grads: Tensor, losses: Tensor | None = None) -> Tensor:
        grads = check_grads(grads, self.num_tasks)
        losses = check_losses(losses, self.num_tasks, required=self.needs_losses)
        with single_threaded_host_blas():  # the K x K host solves must not wake a second thread pool
            direction = self.aggregate(grads, losses)
        if not torch.isfinite(direction).all():
            raise FloatingPointError(f"{self.name}: the aggregated direction is not finite")
        return direction

    def aggregate(self, grads: Tensor, losses: Tensor | None) -> Tensor:
        raise NotImplementedError

    def reusable_weights(self) -> Tensor | None:
        """Weights valid for the coming step without new gradients, else ``None``.

        A training step may then skip the Jacobian and back-propagate ``sum_i w_i L_i`` instead (Nash-MTL's
        ``update_weights_every``); it must call ``skip_step()`` so the method counts the step.
        """
        return None

    def skip_step(self) -> None:
        raise RuntimeError(f"{self.name} has no reusable weights to skip a step with")

    def after_step(self, losses: Tensor) -> None:
        """Hook called by the training step with the new losses after the parameter update."""

    def end_epoch(self) -> None:
        """Hook called by the training loop at the end of every epoch."""

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}"


class WeightedAggregator(Aggregator):
    """An aggregator whose direction is ``w @ grads`` with ``w`` from the float64 Gramian ``G G^T``.

    Subclasses implement :meth:`weights_from_gramian`. Such methods can run on the Gramian alone, so a
    training step that can compute ``G G^T`` without materialising ``G`` may use ``weights_from_gramian``
    and finish with one backward of ``sum_i w_i L_i``.
    """

    gramian_based: ClassVar[bool] = True

    def weights_from_gramian(self, gram: np.ndarray, losses: Tensor | None) -> np.ndarray:
        raise NotImplementedError

    def aggregate(self, grads: Tensor, losses: Tensor | None) -> Tensor:
        gram = gramian(grads).cpu().numpy()
        w = np.asarray(self.weights_from_gramian(gram, losses), dtype=np.float64)
        if w.shape != (self.num_tasks,) or not np.isfinite(w).all():
            raise FloatingPointError(f"{self.name}: solver returned invalid weights {w}")
        self.last_weights = torch.from_numpy(w).to(grads.device)
        return combine(self.last_weights, grads)
