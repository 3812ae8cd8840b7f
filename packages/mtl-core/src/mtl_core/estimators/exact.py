"""The exact estimator: per-task gradients of the shared parameters at the current weights."""

from __future__ import annotations

from ._registry import ESTIMATORS
from .base import Estimate, Estimator, StepContext


@ESTIMATORS.register("exact")
class Exact(Estimator):
    """``G[i] = d L_i / d theta_shared`` at the current weights, combined by the step's combiner.

    Cost: one forward and K backward passes (the Jacobian; each task's pass also yields its head's
    gradient). With a weighting combiner, or an aggregator whose weights are reusable this step
    (Nash-MTL's ``update_weights_every``), ``G`` is never formed: one backward of ``sum_i w_i L_i`` gives the
    same direction ``w @ G`` at the cost of plain linear scalarisation.
    """

    def estimate(self, ctx: StepContext) -> Estimate:
        losses = ctx.losses
        weights = ctx.fixed_weights()
        if weights is not None:
            return ctx.weighted_gradients(losses, weights)
        rows, heads = ctx.per_task_gradients(losses, ctx.shared, out=self.rows_buffer(ctx.shared))
        return Estimate(ctx.combine(rows), heads, rows)
