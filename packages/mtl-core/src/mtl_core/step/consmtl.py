"""ConsMTL's lower level: task heads that pull their shared-representation gradients towards d_z (seed 004)."""

from __future__ import annotations

import inspect
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
    ``delta_i = d l_i / d z`` (``z = model.encode(x)``) and ``d_z = sum_i a_i delta_i`` (Prop. 3.1, detached),
    head ``i`` also minimises ``L_i^extra = -lambda_ <delta_i, d_z>`` (eq. (7)-(8)); ``delta_i`` is built
    with ``create_graph`` and ``L^extra`` differentiated w.r.t. the head parameters only, so the second-order
    pass never runs through the encoder. Both levels use the same forward pass, and their updates are applied
    together, as in the reference code (jianke0604/MTLlib): ``d`` and ``a`` are computed first and fed to the
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
        head_grads: list[list[Tensor]] = []
        for root, head in zip(ctx.task_losses(losses), ctx.heads):
            grads = torch.autograd.grad(
                root, [*z, *head], retain_graph=True, create_graph=True, allow_unused=True, materialize_grads=True
            )
            deltas.append(tuple(grads[: len(z)]))
            head_grads.append([g.detach() for g in grads[len(z) :]])
        pseudo = [_dot(z, tuple(d.detach() for d in delta)) for delta in deltas]
        rows = ctx.jacobian(pseudo, ctx.shared, retain_graph=True)
        direction = ctx.combine(rows)
        weights = ctx.weights
        if weights is None:  # the consmtl aggregator always defines its weights
            raise RuntimeError("consmtl's upper level returned no weights")
        with torch.no_grad():
            d_z = tuple(
                sum(float(weights[i]) * deltas[i][c].detach() for i in range(self.num_tasks)) for c in range(len(z))
            )
        extra_loss = -self.lambda_ * sum(_dot(delta, d_z) for delta in deltas)
        head_params = [p for head in ctx.heads for p in head]
        extra_flat = (
            grads_of(extra_loss, head_params)
            if extra_loss.requires_grad
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


def _norm(tensors: list[Tensor]) -> float:
    if not tensors:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors])))


def lower_level_hparams() -> dict[str, Any]:
    """The lower level's hyper-parameters with their defaults."""
    sig = inspect.signature(ConsMTLLowerLevel.__init__)
    return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}
