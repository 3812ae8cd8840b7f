"""G-SAM and L-SAM: per-task gradients at weights perturbed by the global or by each task's gradient."""

from __future__ import annotations

from typing import Any

import torch

from .._checks import check_positive
from ..gradients import unflatten_like
from ._perturb import ascent_step, grads_of, perturbed
from ._registry import ESTIMATORS
from .base import Estimate, Estimator, StepContext


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


@ESTIMATORS.register("sam")
class GlobalSAM(Estimator):
    """G-SAM (seed 002 sec. 4.2, "global information"): one perturbation from the average-loss gradient.

    With ``g0 = grad (1/K) sum_i L_i`` at the current weights, the shared parameters move by
    ``rho g0_sh / ||g0_sh||`` and each head by ``rho g0_i / ||g0_i||`` (each part normalised on its own, as
    in the SAMO and F-MTL reference codes); the per-task gradients ``G[i] = grad L_i`` are then taken at that
    single perturbed point (seed 002 sec. 3.2: the SAM gradient drops the second-order term) and combined.
    Heads are updated with their gradients at the perturbed point. ``adaptive`` uses ASAM's step.
    Cost over the exact estimator: one backward and one forward (seed 002 Table 3: ``C_b``). ``rho = 0``
    gives the exact estimator.
    """

    default_head_weights = "unit"

    def __init__(self, num_tasks: int, *, rho: float = 0.001, adaptive: bool = False) -> None:
        super().__init__(num_tasks)
        self.rho = check_positive("rho", rho, allow_zero=True)
        self.adaptive = check_bool("adaptive", adaptive)

    def estimate(self, ctx: StepContext) -> Estimate:
        shared, heads = list(ctx.shared), [list(h) for h in ctx.heads]
        head_params = [p for h in heads for p in h]
        g0 = grads_of(ctx.losses.mean(), shared + head_params)
        eps = ascent_step(g0[: len(shared)], shared, self.rho, self.adaptive)
        start = len(shared)
        for h in heads:
            eps += ascent_step(g0[start : start + len(h)], h, self.rho, self.adaptive)
            start += len(h)
        del g0
        with perturbed(shared + head_params, eps):
            losses = ctx.evaluate()
            weights = ctx.fixed_weights()
            if weights is not None:
                return ctx.weighted_gradients(losses, weights)
            rows, head_grads = ctx.per_task_gradients(losses, shared)
        return Estimate(ctx.combine(rows), head_grads, rows)

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}, rho={self.rho}, adaptive={self.adaptive}"


def local_sam_rows(
    ctx: StepContext,
    shared_grads: torch.Tensor,
    head_grads: list[list[torch.Tensor]],
    rho_shared: float,
    rho_heads: float,
    adaptive: bool,
) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
    """Per-task SAM gradients: task ``i`` at ``theta + eps_i`` with ``eps_i`` from its own gradient.

    ``eps_i`` moves the shared parameters by ``rho_shared g_i / ||g_i||`` (``g_i = shared_grads[i]``) and
    head ``i`` by ``rho_heads h_i / ||h_i||``; one forward and one backward per task (seed 000 Alg. 1 lines
    3-4); each forward runs head ``i`` only when the closure is task-restricted. Returns the ``[K, n]`` shared
    SAM gradients and each head's SAM gradient.
    """
    shared = list(ctx.shared)
    rows = torch.empty_like(shared_grads)
    sam_heads: list[list[torch.Tensor]] = []
    for i, head in enumerate(ctx.heads):
        head = list(head)
        eps = ascent_step(unflatten_like(shared_grads[i], shared), shared, rho_shared, adaptive)
        eps += ascent_step(head_grads[i], head, rho_heads, adaptive)
        with perturbed(shared + head, eps):
            grads = grads_of(ctx.evaluate(task=i), shared + head)
        torch.cat([g.reshape(-1) for g in grads[: len(shared)]], out=rows[i])
        sam_heads.append(grads[len(shared) :])
    return rows, sam_heads


@ESTIMATORS.register("lsam")
class LocalSAM(Estimator):
    """L-SAM (seed 002 sec. 4.2, "local information"): task-specific perturbations from each task's gradient.

    Task ``i``'s gradient is taken at ``theta + rho g_i / ||g_i||`` (shared part and head ``i`` each
    normalised to ``rho``), with ``g_i`` its exact gradient at the current weights; the K SAM gradients are
    combined and each head is updated with its own SAM gradient. Cost over the exact estimator: K backward
    and K forward passes (seed 002 Table 3: ``K C_b``). This is F-MTL's ``direct`` variant with
    ``rho_sh = rho_ns = rho``; ``rho = 0`` gives the exact estimator.
    """

    default_head_weights = "unit"

    def __init__(self, num_tasks: int, *, rho: float = 0.001, adaptive: bool = False) -> None:
        super().__init__(num_tasks)
        self.rho = check_positive("rho", rho, allow_zero=True)
        self.adaptive = check_bool("adaptive", adaptive)

    def estimate(self, ctx: StepContext) -> Estimate:
        grads, heads = ctx.per_task_gradients(ctx.losses, ctx.shared)
        rows, sam_heads = local_sam_rows(ctx, grads, heads, self.rho, self.rho, self.adaptive)
        del grads
        return Estimate(ctx.combine(rows), sam_heads, rows)

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}, rho={self.rho}, adaptive={self.adaptive}"
