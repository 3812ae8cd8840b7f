"""F-MTL: task-based flat regions, with the loss / flat gradient decomposition (seed 000 Alg. 1)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._checks import check_choice, check_positive
from ..weightings.base import Weighting
from ._registry import ESTIMATORS
from .base import Estimate, Estimator, StepContext
from .sam import check_bool, local_sam_rows

VARIANTS = ("decomposed", "direct", "second-aggre", "each-aggre")


@ESTIMATORS.register("fmtl")
class FlatMTL(Estimator):
    """F-MTL (seed 000 sec. 3.4, Alg. 1) and the aggregation variants of its ablations.

    For every task ``i``: the exact gradients ``g_sh^{i,loss}``, ``g_ns^i`` (line 2); the perturbation
    ``eps_sh^i = rho_sh g_sh^i / ||g_sh^i||``, ``eps_ns^i = rho_ns g_ns^i / ||g_ns^i||`` (line 3); the SAM
    gradient at ``(theta_sh + eps_sh^i, theta_ns^i + eps_ns^i)`` (line 4, eq. (14)-(15)); the flat part
    ``g_sh^{i,flat} = g_sh^{i,SAM} - g_sh^{i,loss}`` (line 5). The shared direction (``variant``):

    * ``"decomposed"`` (Alg. 1 lines 7-8): ``agg(g^loss) + agg(g^flat)``, the two sets aggregated separately
      (by two combiner instances, so that stateful aggregators keep one state per set);
    * ``"direct"`` (Table 5): ``agg(g^SAM)``, the per-task SAM gradients aggregated directly;
    * ``"second-aggre"`` (Table 6): ``agg_2(agg(g^loss), agg(g^flat))``, a second aggregation of the two;
    * ``"each-aggre"`` (Table 6): ``agg(agg_2(g_i^loss, g_i^flat) for each i)``: per task first, then across
      tasks (K + 1 aggregations).

    Each head ``i`` is updated with its SAM gradient (eq. (14)). ``adaptive`` uses ASAM's step (the reference
    code's default). With a weighting combiner ``decomposed`` and ``direct`` coincide (``w @ g^SAM``) and the
    two-level variants are undefined. Cost over the exact estimator: K forward and K backward passes (seed 002
    Table 3: ``K C_b``). ``rho_sh = rho_ns = 0`` gives the exact estimator (for every variant and combiner: the
    flat sub-problem, zero there, is dropped). Default radii: SAM's 0.05 (Foret et al. 2021); the paper's text
    gives no value (FS-MTL's ``multi-mnist/run.sh`` runs ASAM with ``rho = 2``, one radius over the shared part
    and head ``i`` together; its NYUv2/Cityscapes ``train.py`` normalise the two parts separately, as Alg. 1).

    The two aggregations are the combiner's own (a Nash-MTL cap applies to each). Alg. 1 keeps the flat part
    small with rho only for combiners whose direction scales with the gradients (LS, MGDA, PCGrad, CAGrad,
    IMTL): Nash-MTL's has norm sqrt(K) whatever their scale, so ``agg(g^flat)`` weighs as much as
    ``agg(g^loss)`` at any rho > 0, and FairGrad's scales as ``c^((1 - alpha)/(1 + alpha))`` (``c^(-1/3)`` at
    alpha = 2) with the gradients' scale ``c``, so the smaller flat set gets the larger aggregate (measured on
    Multi-MNIST: mtl-core README, "F-MTL with scale-free combiners").
    """

    default_head_weights = "unit"

    def __init__(
        self,
        num_tasks: int,
        *,
        rho_sh: float = 0.05,
        rho_ns: float = 0.05,
        variant: str = "decomposed",
        adaptive: bool = False,
    ) -> None:
        super().__init__(num_tasks)
        self.rho_sh = check_positive("rho_sh", rho_sh, allow_zero=True)
        self.rho_ns = check_positive("rho_ns", rho_ns, allow_zero=True)
        self.variant = check_choice("variant", variant, VARIANTS)
        self.adaptive = check_bool("adaptive", adaptive)
        self.linear = False
        self.flat_combiner: nn.Module | None = None
        self.second_combiner: nn.Module | None = None
        self.pair_combiners: nn.ModuleList | None = None

    def bind(self, make_combiner: Callable[[int], nn.Module]) -> None:
        self.linear = isinstance(make_combiner(self.num_tasks), Weighting)
        if self.linear:
            if self.variant in ("second-aggre", "each-aggre"):
                raise ValueError(
                    f"fmtl variant {self.variant!r} aggregates the loss and flat gradients of a task with each "
                    "other, which needs a gradient aggregator; a weighting combiner supports the variants "
                    "['decomposed', 'direct'] (both equal w @ g^SAM)"
                )
            return
        if self.variant in ("decomposed", "second-aggre"):
            self.flat_combiner = make_combiner(self.num_tasks)
        if self.variant == "second-aggre":
            self.second_combiner = _lossless(make_combiner(2), self.variant)
        if self.variant == "each-aggre":
            self.pair_combiners = nn.ModuleList(
                _lossless(make_combiner(2), self.variant) for _ in range(self.num_tasks)
            )

    def estimate(self, ctx: StepContext) -> Estimate:
        loss_rows, heads = ctx.per_task_gradients(ctx.losses, ctx.shared)
        if self.rho_sh == 0 and self.rho_ns == 0:
            # eq. (13) without its flatness terms: g^SAM = g^loss and the flat set is zero. It has no aggregate
            # for the combiners that normalise (Nash-MTL, FairGrad: G G^T w = w^(-p) has no finite solution at
            # G = 0) and a degenerate one in the two-level variants (MGDA's min-norm point of {d, 0} is 0), so
            # the flat sub-problem is dropped: the step is the base method's.
            return Estimate(ctx.combine(loss_rows), heads, loss_rows)
        sam_rows, sam_heads = local_sam_rows(ctx, loss_rows, heads, self.rho_sh, self.rho_ns, self.adaptive)
        if self.linear or self.variant == "direct":
            return Estimate(ctx.combine(sam_rows), sam_heads, sam_rows)
        flat_rows = sam_rows - loss_rows
        if self.variant == "decomposed":
            direction = ctx.combine(loss_rows) + ctx.combine(flat_rows, self.flat_combiner)
        elif self.variant == "second-aggre":
            pair = torch.stack([ctx.combine(loss_rows), ctx.combine(flat_rows, self.flat_combiner)])
            direction = ctx.combine(pair, self.second_combiner, with_losses=False)
        else:  # each-aggre
            per_task = torch.stack(
                [
                    ctx.combine(torch.stack([loss_rows[i], flat_rows[i]]), combiner, with_losses=False)
                    for i, combiner in enumerate(self.pair_combiners)
                ]
            )
            direction = ctx.combine(per_task)
        return Estimate(direction, sam_heads, sam_rows)

    def extra_repr(self) -> str:
        return (
            f"num_tasks={self.num_tasks}, rho_sh={self.rho_sh}, rho_ns={self.rho_ns}, variant={self.variant!r}, "
            f"adaptive={self.adaptive}"
        )


def _lossless(combiner: nn.Module, variant: str) -> nn.Module:
    # the two gradients aggregated here (loss part, flat part) are not tasks: there are no losses to pass
    if getattr(combiner, "needs_losses", False):
        raise ValueError(
            f"fmtl variant {variant!r} aggregates (loss, flat) gradient pairs that have no task losses, but "
            f"{getattr(combiner, 'name', type(combiner).__name__)!r} needs losses; use variant 'decomposed' or 'direct'"
        )
    return combiner
