"""What an estimator is: per-task gradients (and the combined shared direction) for one training step.

An estimator decides *where* and *how* the per-task gradients are taken (exactly at the current weights,
w.r.t. the shared representation, or at sharpness-aware perturbed weights); the combiner (a weighting or
an aggregator) decides how they are combined. The training step (:class:`mtl_core.MTLStep`) hands every
estimator a :class:`StepContext` that re-evaluates the losses at the current weights and combines
gradients, so estimators never touch the model's batch, optimiser or BatchNorm bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from .._checks import check_num_tasks


@dataclass
class Estimate:
    """The result of one estimator call.

    ``direction``: ``Tensor[n]``, the combined update direction of the shared parameters (descent:
    ``p -= lr * d``). ``head_grads[i]``: the *unweighted* gradient of task ``i``'s loss w.r.t. its own head
    (one tensor per head parameter); the step scales it by the head weight it was configured with.
    ``rows``: the ``[K, n]`` per-task gradients the direction was combined from, when they were formed
    (needed for one optimiser per task). ``head_extra[i]``: an extra head gradient added after scaling
    (ConsMTL's lower level). ``heads_scale``: set when ``head_grads`` already carry the step's head weights
    (``StepContext.weighted_gradients``), which were these weights.
    """

    direction: Tensor
    head_grads: list[list[Tensor]]
    rows: Tensor | None = None
    head_extra: list[list[Tensor]] | None = None
    heads_scale: Tensor | None = None


@runtime_checkable
class Combiner(Protocol):
    """A weighting or an aggregator instance as held by the step (``nn.Module`` with ``num_tasks``)."""

    num_tasks: int


@runtime_checkable
class StepContext(Protocol):
    """The step's services for one estimator call (implemented by :class:`mtl_core.step.MTLStep`).

    ``losses`` are the task losses of the step's first forward (with graph, at the unperturbed weights);
    ``z`` is the shared representation of that forward as a tuple of tensors (only captured for
    estimators with ``needs_features``). ``shared`` / ``heads`` are the trainable shared parameters and the
    per-task head parameters in task order. ``needs_rows`` says whether the step needs the per-task rows
    (one optimiser per task), in which case an estimator must not take a linear shortcut. ``weights`` are
    the weights ``w`` (``d = w @ G``) of the step combiner's last combination, when it defines them.
    """

    num_tasks: int
    weights: Tensor | None
    shared: Sequence[Tensor]
    heads: Sequence[Sequence[Tensor]]
    losses: Tensor
    z: tuple[Tensor, ...] | None
    needs_rows: bool

    def evaluate(self, *, grad: bool = True, task: int | None = None) -> Tensor:
        """Re-run the loss closure at the current (possibly perturbed) weights: ``Tensor[K]``, or with ``task``
        the scalar loss of that task only (through its head only when the closure is task-restricted; a
        backward from it never runs through the other heads).

        BatchNorm running statistics are not updated by these passes (see ``frozen_norm_stats``).
        """
        ...

    def jacobian(
        self,
        losses: Tensor | Sequence[Tensor],
        inputs: Sequence[Tensor],
        *,
        retain_graph: bool = False,
        out: Tensor | None = None,
    ) -> Tensor:
        """``[K, n]`` per-task gradients of ``losses`` (a tensor, or K scalar roots) w.r.t. ``inputs``."""
        ...

    def task_losses(self, losses: Tensor) -> list[Tensor]:
        """The K scalar losses behind ``losses`` (separate graph roots when known): backward from these."""
        ...

    def per_task_gradients(
        self, losses: Tensor, inputs: Sequence[Tensor], *, retain_graph: bool = False, out: Tensor | None = None
    ) -> tuple[Tensor, list[list[Tensor]]]:
        """``(jacobian(losses, inputs), head_grads(losses))``, fused into one pass per task where possible.

        ``out``: a contiguous ``[K, n]`` tensor to write the rows into (see :meth:`Estimator.rows_buffer`).
        Without ``retain_graph`` the passes may free the nodes above ``inputs``, never those below them.
        """
        ...

    def weighted_gradients(self, losses: Tensor, weights: Tensor, *, retain_graph: bool = False) -> Estimate:
        """The estimate for known weights: ``d = grad sum_i w_i L_i`` (= ``w @ G``) by one backward, and the
        heads' gradients under the step's head rule, taken in the same pass where the rule allows."""
        ...

    def head_grads(self, losses: Tensor, *, retain_graph: bool = False) -> list[list[Tensor]]:
        """Unweighted ``d losses[i] / d heads[i]`` for every task, by one backward through the heads."""
        ...

    def fixed_weights(self, *, reusable: bool = True) -> Tensor | None:
        """Weights ``w`` known before any gradient (a weighting's, or an aggregator's reusable ones).

        When not ``None`` the direction is ``w @ G`` and may be obtained by one backward of
        ``sum_i w_i L_i``; call at most once per step. ``None`` when the step needs the rows.
        ``reusable=False`` only accepts a weighting's weights (an aggregator that post-processes its
        direction, like Nash-MTL's norm cap, would do so in another space than the caller's).
        """
        ...

    def combine(self, grads: Tensor, combiner: Combiner | None = None, *, with_losses: bool = True) -> Tensor:
        """Combine ``[K', n]`` gradients with the step's combiner (or another instance ``combiner``)."""
        ...


class Estimator(nn.Module):
    """Base class: ``estimate(ctx) -> Estimate`` once per training step.

    ``needs_features``: the step must capture ``z = model.encode(x)`` of the first forward.
    ``default_head_weights``: ``"combiner"`` (heads get ``w_i * grad l_i`` with the combiner's weights, as
    the Nash-MTL/FairGrad/ConsMTL reference codes back-propagate ``sum_i w_i L_i``) or ``"unit"`` (each head
    gets the plain gradient of its own loss, as the SAMO and F-MTL reference codes step the heads with their
    own SAM gradients). State that must survive a checkpoint lives in buffers / extra state.
    """

    name: ClassVar[str] = ""
    needs_features: ClassVar[bool] = False
    default_head_weights: ClassVar[str] = "combiner"

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        self.num_tasks = check_num_tasks(num_tasks)
        self._rows_buffer: Tensor | None = None

    def rows_buffer(self, inputs: Sequence[Tensor]) -> Tensor:
        """A ``[K, n]`` buffer for the rows w.r.t. ``inputs``, kept from one step to the next.

        For an estimator that forms one Jacobian per step and uses it within the step. A fresh K x n buffer
        is a large allocation that the C allocator serves with new pages, which fault in on every step: at
        K = 40 and a 262,144-entry representation (42 MB) that cost ~15 ms per step on the 2-core CI VM,
        against ~2 ms to overwrite a kept one. Not part of ``state_dict``.
        """
        ref, numel = inputs[0], sum(t.numel() for t in inputs)
        buf = self._rows_buffer
        if buf is None or buf.shape != (self.num_tasks, numel) or buf.dtype != ref.dtype or buf.device != ref.device:
            buf = self._rows_buffer = torch.empty(self.num_tasks, numel, dtype=ref.dtype, device=ref.device)
        return buf

    def bind(self, make_combiner: Callable[[int], nn.Module]) -> None:
        """Called once by the step with a factory of fresh combiner instances (same method, same hparams).

        Estimators that aggregate more than one gradient set per step (F-MTL) create their extra combiner
        instances here, so that stateful combiners keep one state per gradient stream.
        """

    def estimate(self, ctx: StepContext) -> Estimate:
        raise NotImplementedError

    def end_epoch(self) -> None:
        """Forwarded by the step at the end of every epoch (to the extra combiners, if any)."""
        for child in self.children():
            hook = getattr(child, "end_epoch", None)
            if callable(hook):
                hook()

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}"
