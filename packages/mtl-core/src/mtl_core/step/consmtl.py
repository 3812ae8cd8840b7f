"""ConsMTL's lower level: task heads that pull their shared-representation gradients towards d_z (seed 004)."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch
from torch import Tensor

from .._checks import check_positive
from ..estimators._perturb import grads_of
from ..estimators.base import Estimate, Estimator, StepContext
from ..gradients import split_by_groups


def _dot(a: tuple[Tensor, ...], b: tuple[Tensor, ...]) -> Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))  # type: ignore[return-value]


class ConsMTLLowerLevel(Estimator):
    """The estimator of method ``consmtl``: exact upper level plus the lower-level head loss (seed 004 sec. 3).

    Upper level (Alg. 1 lines 4-6): the exact per-task gradients of the shared parameters are combined by the
    ``consmtl`` aggregator (eq. (5)) into ``d = sum_i a_i g_i``. Lower level (lines 8-10): with
    ``delta_i = d l_i / d z`` and ``d_z = sum_i a_i delta_i`` (Prop. 3.1, detached), head ``i`` also minimises
    ``L_i^extra = -lambda_ <delta_i, d_z>`` (eq. (7)-(8)). Which ``z`` that is depends on the model, as in the
    reference code (jianke0604/MTLlib, ``methods/weight_methods.py``, ``ConsMTL``):

    - **shared z** (a tensor, or a tuple of tensors every head may read; QM9 / CelebA in the reference):
      ``delta_i = d l_i / d z`` over all of ``z`` and ``d_z = sum_i a_i delta_i`` is the z-space image of ``d``.
    - **per-task z** (MTAN: ``encode`` returns a tuple of K tensors of equal shapes and task ``i``'s loss reads
      only the ``i``-th; NYUv2 / Cityscapes in the reference, "for nyuv2 and cityscapes"):
      ``delta_i = d l_i / d z_i`` and ``d_z = sum_i a_i delta_i`` element-wise across the tasks' maps, so each
      head aligns its gradient with the other tasks'. (Over the whole tuple, ``delta_i`` would be zero outside
      ``z_i`` and ``<delta_i, d_z> = a_i ||delta_i||^2``: no cross-task alignment at all.)

    The case is read off the gradients of the first forward: per-task iff ``z`` has K parts and no task's
    loss has a non-zero gradient w.r.t. another task's part and the parts have equal shapes. Per-task parts
    of different shapes (a multi-input model, one batch per task) have no element-wise ``d_z``: the shared-z
    form is used, with a ``RuntimeWarning``.

    ``delta_i`` is built with ``create_graph`` and ``L^extra`` differentiated w.r.t. the head parameters only,
    so the second-order pass never runs through the encoder. Both levels use the same forward pass, and their
    updates are applied together, as in the reference code: ``d`` and ``a`` are computed first and fed to the
    lower level. As there, each head gets the plain gradient of its own loss plus ``grad L_i^extra`` clipped to
    ``extra_clip * ||grad_{theta_i} l_i||`` (the paper's advice, sec. 4.5: keep the extra gradient around 0.1 of
    the task gradient; ``extra_clip=None`` disables the clip). ``lambda_ = 0`` gives the upper level alone
    (``exact+consmtl`` with unit head weights). The reference also multiplies ``d`` by K and clips it to norm
    1; here ``d`` is the aggregator's output (use the step's ``max_grad_norm`` for a clip).

    Cost: the same K backward passes as ``exact+consmtl`` (each task's pass through its head builds the
    graph of ``delta_i``; the pass through the encoder starts from ``delta_i``), plus one backward of
    ``L^extra`` through the heads' double-backward graph.
    """

    needs_features = True
    default_head_weights = "unit"

    def __init__(self, num_tasks: int, *, lambda_: float = 1.0, extra_clip: float | None = 0.1) -> None:
        super().__init__(num_tasks)
        self.lambda_ = check_positive("lambda_", lambda_, allow_zero=True)
        self.extra_clip = None if extra_clip is None else check_positive("extra_clip", extra_clip)

    def estimate(self, ctx: StepContext) -> Estimate:
        if ctx.z is None:  # the step captures z for estimators with needs_features
            raise RuntimeError("consmtl called without the shared representation z")
        losses, z = ctx.losses, ctx.z
        # One pass through head i gives delta_i = d l_i / d z (with graph, for the lower level) and the head's
        # own gradient; the upper level's rows then only need the encoder: g_i = (delta_i)^T dz/dtheta_s
        # (eq. (6)), the Jacobian of the pseudo-losses <z, sg[delta_i]>.
        deltas: list[tuple[Tensor, ...]] = []
        reads: list[set[int]] = []
        head_grads: list[list[Tensor]] = []
        for root, head in zip(ctx.task_losses(losses), ctx.heads):
            inputs = [*z, *head]
            grads = torch.autograd.grad(root, inputs, retain_graph=True, create_graph=True, allow_unused=True)
            # part c is read by task i iff d l_i / d z_c is not identically zero (None when the graphs are
            # separate; exact zeros when the losses were stacked into one tensor)
            reads.append({c for c, g in enumerate(grads[: len(z)]) if g is not None and bool(g.detach().any())})
            grads = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]
            deltas.append(tuple(grads[: len(z)]))
            head_grads.append([g.detach() for g in grads[len(z) :]])
        pseudo = [_dot(z, tuple(d.detach() for d in delta)) for delta in deltas]
        rows = ctx.jacobian(pseudo, ctx.shared, retain_graph=True)
        direction = ctx.combine(rows)
        weights = ctx.weights
        if weights is None:  # the consmtl aggregator always defines its weights
            raise RuntimeError("consmtl's upper level returned no weights")
        a = [float(w) for w in weights]
        if _per_task_representation(z, reads):
            own = [(delta[i],) for i, delta in enumerate(deltas)]  # delta_i = d l_i / d z_i
            with torch.no_grad():
                d_z: tuple[Tensor, ...] = (sum(a[i] * own[i][0].detach() for i in range(self.num_tasks)),)
            extra_loss = -self.lambda_ * sum(_dot(delta, d_z) for delta in own)
        else:
            with torch.no_grad():
                d_z = tuple(sum(a[i] * deltas[i][c].detach() for i in range(self.num_tasks)) for c in range(len(z)))
            extra_loss = -self.lambda_ * sum(_dot(delta, d_z) for delta in deltas)
        head_params = [p for head in ctx.heads for p in head]
        extra_flat = (
            grads_of(extra_loss, head_params)
            if isinstance(extra_loss, Tensor) and extra_loss.requires_grad
            else [torch.zeros_like(p) for p in head_params]
        )
        extra: list[list[Tensor]] = []
        for i, g2 in enumerate(split_by_groups(extra_flat, ctx.heads)):
            if self.extra_clip is not None and g2:
                # torch.nn.utils.clip_grad_norm_'s rule, as the reference applies it
                limit = self.extra_clip * _norm(head_grads[i])
                coeff = limit / (_norm(g2) + 1e-6)
                if coeff < 1:
                    g2 = [g * coeff for g in g2]
            extra.append(g2)
        return Estimate(direction, head_grads, rows, head_extra=extra)

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}, lambda_={self.lambda_}, extra_clip={self.extra_clip}"


def _per_task_representation(z: tuple[Tensor, ...], reads: list[set[int]]) -> bool:
    """Whether ``z`` holds one representation per task: K parts, task ``i``'s loss reading no part but ``i``."""
    if len(z) < 2 or len(z) != len(reads) or any(not r <= {i} for i, r in enumerate(reads)):
        return False
    shapes = {tuple(part.shape) for part in z}
    if len(shapes) > 1:
        # e.g. a multi-input model (one batch per task, of its own size): the parts cannot be summed across
        # tasks, so the lower level falls back to the shared-z form, in which each head only aligns with itself
        warnings.warn(
            "consmtl: the model's encode() returns one representation per task but of different shapes "
            f"{[tuple(part.shape) for part in z]}; d_z = sum_i a_i d l_i / d z_i needs equal shapes, so the lower "
            "level uses the shared-z form (no cross-task alignment)",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def _norm(tensors: list[Tensor]) -> float:
    if not tensors:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors])))


def lower_level_hparams() -> dict[str, Any]:
    """The lower level's hyper-parameters with their defaults."""
    sig = inspect.signature(ConsMTLLowerLevel.__init__)
    return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}
