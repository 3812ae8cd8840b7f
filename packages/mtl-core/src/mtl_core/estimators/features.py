"""The features estimator: per-task gradients w.r.t. the shared representation z (the "-UB" variants)."""

from __future__ import annotations

import torch

from ..gradients import unflatten_like
from ._perturb import flat
from ._registry import ESTIMATORS
from .base import Estimate, Estimator, StepContext


@ESTIMATORS.register("features")
class Features(Estimator):
    """Combine ``d L_i / d z`` (``z = model.encode(x)``) in z-space and back-propagate ``d_z`` through the encoder.

    This is the upper-bound trick of MGDA-UB (Sener & Koltun 2018, sec. 3.3) and Aligned-MTL-UB (seed 003
    sec. 5.2): the combiner sees the K x dim(z) Jacobian of the losses w.r.t. the shared representation, and
    the shared parameters receive ``(d_z)^T dz/dtheta``. Cost: one forward, K backward passes through one
    head each (giving ``d L_i / d z`` and the head's gradient) and one backward through the encoder: the
    backward work of linear scalarisation, plus the combiner's arithmetic on the K x dim(z) matrix. With a
    weighting the step is exactly linear scalarisation's (``w @ J_z`` back-propagated = ``grad sum_i w_i L_i``).
    """

    needs_features = True

    def estimate(self, ctx: StepContext) -> Estimate:
        if ctx.z is None:  # the step captures z for estimators with needs_features
            raise RuntimeError("features estimator called without the shared representation z")
        losses, z = ctx.losses, ctx.z
        weights = ctx.fixed_weights(reusable=False)
        if weights is not None:  # a weighting: w @ J_z back-propagated through the encoder is LS's backward
            return ctx.weighted_gradients(losses, weights)
        # each head's backward stops at z and may free that head (as LS's backward does); the encoder below
        # z is never run by them, so it is still there for the backward of d_z
        z_rows, heads = ctx.per_task_gradients(losses, z, out=self.rows_buffer(z))
        z_direction = ctx.combine(z_rows)
        grads = torch.autograd.grad(
            z,
            list(ctx.shared),
            grad_outputs=unflatten_like(z_direction.to(z[0].dtype), z),
            allow_unused=True,
            materialize_grads=True,
        )
        return Estimate(flat(grads), heads, None)
