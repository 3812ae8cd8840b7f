"""Method strings of the pipeline and the training step that runs them.

A method is ``stl`` (one task, one model), a loss weighting (``ls``, ``uw``, ``famo``...), ``consmtl``, or
``<estimator>+<combiner>`` (``exact+pcgrad``, ``features+aligned_mtl``, ``samo+fairgrad``, ``sam+ls``...)
as in ARCHITECTURE.md. The step itself is :class:`mtl_core.MTLStep` when that package provides it;
:class:`_GradientStep` covers ``stl``, the weightings and ``exact+<aggregator>`` with the public
building blocks of ``mtl_core`` (``jacobian``, ``aggregators``, ``weightings``) until then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["UnknownMethod", "build", "check", "names"]

#: SAM-family estimators (perturbed weights) accept a weighting or ``stl`` as base besides aggregators.
_SAM_FAMILY = ("sam", "lsam", "fmtl", "samo")


class UnknownMethod(ValueError):
    """The method string names no method of mtl_core."""


def _core() -> Any:
    import mtl_core

    return mtl_core


def _estimators() -> list[str]:
    core = _core()
    estimators = getattr(core, "estimators", None)
    if estimators is not None and hasattr(estimators, "names"):
        return list(estimators.names())
    return ["exact"]


def names() -> list[str]:
    """Every method string the pipeline can train (sorted within each family)."""
    core = _core()
    weightings = sorted(core.weightings.names())
    aggregators = sorted(core.aggregators.names())
    out = ["stl", *weightings]
    if "consmtl" not in weightings and hasattr(core, "MTLStep"):
        out.append("consmtl")
    for estimator in _estimators():
        bases = aggregators if estimator not in _SAM_FAMILY else [*aggregators, *weightings, "stl"]
        out += [f"{estimator}+{base}" for base in bases]
    return list(dict.fromkeys(out))


def _split(method: str) -> tuple[str | None, str]:
    estimator, plus, base = method.partition("+")
    return (estimator, base) if plus else (None, method)


def check(method: str, options: Mapping[str, Any]) -> None:
    """``UnknownMethod`` for an unknown method string, ``ValueError`` for invalid hyper-parameters."""
    if method not in names():
        raise UnknownMethod(method)
    core = _core()
    if hasattr(core, "MTLStep") and hasattr(core.MTLStep, "check"):
        core.MTLStep.check(method, **dict(options))
        return
    _, base = _split(method)
    if base in core.aggregators.names():
        valid = core.aggregators.hparams(base)
    elif base in core.weightings.names():
        valid = core.weightings.hparams(base)
    else:
        valid = {}
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for method {method!r}; valid options: {sorted(valid)}")


class _GradientStep(nn.Module):
    """One optimisation step of ``stl``, a weighting, or ``exact+<aggregator>`` (ARCHITECTURE.md data flow).

    Weightings back-propagate ``w.loss(losses)``; aggregators take the per-task Jacobian of the shared
    parameters (:func:`mtl_core.jacobian`), combine it into the shared update direction, and give each head
    the gradient of its own loss (heads receive only their task's gradient, as in every aggregator paper).
    Method state (weighting/aggregator buffers, RNG) is this module's ``state_dict``.
    """

    def __init__(self, method: str, options: Mapping[str, Any], model: nn.Module, tasks: Sequence[str]) -> None:
        super().__init__()
        core = _core()
        estimator, base = _split(method)
        self.method = method
        self.tasks = list(tasks)
        self.model = [model]  # not a submodule: the model's state is saved on its own
        k = len(self.tasks)
        self.weighting: nn.Module | None = None
        self.aggregator: nn.Module | None = None
        if estimator is None and base == "stl":
            self.weighting = core.weightings.create("ls", num_tasks=1)
        elif estimator is None:
            self.weighting = core.weightings.create(base, num_tasks=k, **options)
        elif estimator == "exact" and base in core.aggregators.names():
            self.aggregator = core.aggregators.create(base, num_tasks=k, **options)
        else:
            raise ValueError(
                f"method {method!r} needs mtl_core.MTLStep (estimators other than 'exact'); this mtl_core "
                f"provides only {_estimators()}"
            )

    def extra_parameters(self) -> list[nn.Parameter]:
        """Learnable parameters of the method (UW's log-variances...) to optimise with the model."""
        return list(self.weighting.parameters()) if self.weighting is not None else []

    def forward(self, closure: Callable[[], Tensor]) -> Tensor:
        model = self.model[0]
        losses = closure()
        if self.weighting is not None:
            self.weighting.loss(losses).backward()
        else:
            shared = [p for p in model.shared_parameters() if p.requires_grad]
            grads = _core().jacobian(losses, shared, retain_graph=True)
            direction = self.aggregator(grads, losses.detach())
            for p, g in zip(shared, _core().unflatten_like(direction, shared)):
                p.grad = g.detach().clone()
            heads = [p for t in self.tasks for p in model.task_parameters(t) if p.requires_grad]
            head_grads = torch.autograd.grad(losses.sum(), heads, allow_unused=True)
            for p, g in zip(heads, head_grads):
                p.grad = None if g is None else g.detach()
        return losses.detach()

    def after_step(self, losses: Tensor) -> None:
        (self.weighting or self.aggregator).after_step(losses)  # type: ignore[union-attr]

    @property
    def needs_losses_after_step(self) -> bool:
        return bool(getattr(self.weighting or self.aggregator, "needs_losses_after_step", False))

    def end_epoch(self) -> None:
        (self.weighting or self.aggregator).end_epoch()  # type: ignore[union-attr]

    @property
    def last_weights(self) -> Tensor | None:
        return getattr(self.aggregator, "last_weights", None)


def build(method: str, options: Mapping[str, Any], model: nn.Module, tasks: Sequence[str]) -> nn.Module:
    """The step module running ``method`` on ``model`` for ``tasks`` (see module docstring)."""
    check(method, options)
    return _GradientStep(method, options, model, tasks)
