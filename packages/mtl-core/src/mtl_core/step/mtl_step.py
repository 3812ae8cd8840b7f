"""The training step: estimator x combiner x optimiser(s) on a shared-encoder / task-heads model."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .. import aggregators, estimators, weightings
from ..aggregators.base import Aggregator
from ..estimators._perturb import flat, grads_of
from ..estimators.base import Estimate, Estimator
from ..gradients import MODES, choose_mode, combine, jacobian, looped_rows, split_by_groups, unflatten_like
from ..weightings.base import Weighting
from .batchnorm import frozen_norm_stats, norm_layers_with_running_stats
from .consmtl import ConsMTLLowerLevel
from .method import Method, parse_method
from .parameters import ParameterGroups, resolve_parameters, resolve_tasks

HEAD_WEIGHTS = ("auto", "unit", "combiner")
STEP_OPTIONS = ("tasks", "hparams", "per_task_optimizers", "max_grad_norm", "head_weights", "jacobian_mode")

#: ``closure(model)`` returns the K task losses of the current batch at the model's current weights: a
#: ``{task: loss}`` mapping, a sequence of K scalars (both keep each task's loss as its own graph root, so
#: per-task backward passes run through that task's head only), or a ``Tensor[K]`` in task order.
#: A closure with a parameter ``tasks=None`` is *task-restricted*: ``closure(model, tasks=names)`` returns the
#: losses of those tasks only (same forms, in task order), computed through their heads only (e.g.
#: ``model(x, tasks=tasks)``). The estimators that need one task's loss at its own perturbed weights (``lsam``,
#: ``fmtl``, ``samo``) then run one head per forward instead of K.
LossClosure = Callable[..., Any]


def accepts_tasks(closure: LossClosure) -> bool:
    """Whether ``closure`` is task-restricted: it has a parameter ``tasks`` with a default (``None``: all)."""
    try:
        parameter = inspect.signature(closure).parameters.get("tasks")
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
    if parameter is None or parameter.kind in (parameter.POSITIONAL_ONLY, parameter.VAR_POSITIONAL):
        return False
    if parameter.default is parameter.empty:
        raise ValueError(
            "the closure's 'tasks' parameter needs a default (tasks=None: all tasks); the step calls "
            "closure(model) for all tasks and closure(model, tasks=names) for a subset"
        )
    return True


OptimizerFactory = Callable[[Any], torch.optim.Optimizer]


@dataclass
class StepResult:
    """What one step reports: the task losses at the weights before the update (detached, ``Tensor[K]``),
    the combination weights ``w`` (``d = w @ G``) when the method defines them (``None`` for plain weightings
    and for aggregators without weights), and, when ``step(closure, rows=True)`` asked for them, ``rows``: the
    ``[K, n]`` exact per-task gradients of the shared parameters at the weights before the update (detached),
    taken from the step's own first forward (gradient diagnostics need no forward of their own).
    """

    losses: Tensor
    weights: Tensor | None
    rows: Tensor | None = None


class MTLStep:
    """One multi-task training step: ``MTLStep(model, "samo+fairgrad", optimizer).step(closure)``.

    ``method`` (see ``mtl_core.step.parse_method``):

    * a weighting (``ls``, ``uw``, ``famo``, ...): one backward of ``weighting.loss(losses)``;
    * ``<estimator>+<combiner>``: the estimator (``exact``, ``features``, ``sam``, ``lsam``, ``fmtl``, ``samo``)
      forms per-task gradients of the shared parameters, the combiner (any aggregator, or any weighting,
      which gives ``d = w @ G``) combines them; the shared parameters get the combined direction;
    * ``consmtl``: exact gradients, ConsMTL's upper-level aggregator and its lower-level head loss.

    ``optimizer`` is a ``torch.optim.Optimizer`` over the model's parameters, or a factory
    ``params -> Optimizer`` (e.g. ``functools.partial(torch.optim.Adam, lr=1e-3)``). Learnable weightings
    (``uw``, ``imtl_l``) add their parameters to the optimiser (a new param group of a given instance).
    ``per_task_optimizers=True`` (needs a factory and a weighting combiner) builds one optimiser per task over
    the shared parameters and that task's head, stepped with that task's gradient only: with Adam every
    parameter's update is then invariant to the scale of each loss (seed 001 A1.3, eq. (21)).

    Hyper-parameters (``hparams={...}`` and/or keyword arguments) are routed by name to the estimator or the
    combiner (``rho``, ``rho_sh``, ``rho_ns``, ``alpha``, ``mu`` to the SAM family; ``c`` to CAGrad; ...);
    a name both accept is qualified with the component: ``"samo.alpha"``, ``"fairgrad.alpha"``.

    Heads (``head_weights``): each head gets the gradient of its own loss, times ``w_i`` with ``"combiner"``
    (the combiner's weights where defined, as the Nash-MTL/FairGrad reference code back-propagates
    ``sum_i w_i L_i``) or unscaled with ``"unit"`` (LibMTL, and the SAM-family reference codes, whose heads
    take their own SAM gradients). ``"auto"``: ``"combiner"`` for ``exact``/``features``, ``"unit"`` for the
    SAM family and ConsMTL. Plain weightings back-propagate ``weighting.loss``: heads get ``w_i``.

    ``max_grad_norm`` clips the model's gradient norm before the update (per task with per-task
    optimisers). BatchNorm running statistics are updated by the step's first forward only (every extra
    forward runs under :func:`frozen_norm_stats`). ``jacobian_mode`` is passed to :func:`mtl_core.jacobian`.
    """

    def __init__(
        self,
        model: nn.Module,
        method: str = "ls",
        optimizer: torch.optim.Optimizer | OptimizerFactory | None = None,
        *,
        tasks: Sequence[str] | None = None,
        hparams: Mapping[str, Any] | None = None,
        per_task_optimizers: bool = False,
        max_grad_norm: float | None = None,
        head_weights: str = "auto",
        jacobian_mode: str = "auto",
        **kwargs: Any,
    ) -> None:
        self.model = model
        self.tasks = resolve_tasks(model, tasks)
        self.groups: ParameterGroups = resolve_parameters(model, self.tasks)
        self.num_tasks = len(self.tasks)
        merged = dict(hparams or {})
        for key, value in kwargs.items():
            if key in merged:
                raise ValueError(f"hyper-parameter {key!r} given both in hparams and as a keyword argument")
            merged[key] = value
        try:
            self.method: Method = parse_method(method, merged)
        except ValueError as err:
            raise ValueError(f"{err} (step options: {list(STEP_OPTIONS)})") from None
        if not isinstance(per_task_optimizers, bool):
            raise ValueError(f"per_task_optimizers must be a bool, got {per_task_optimizers!r}")
        if max_grad_norm is not None and (
            isinstance(max_grad_norm, bool) or not isinstance(max_grad_norm, (int, float)) or not max_grad_norm > 0
        ):
            raise ValueError(f"max_grad_norm must be None or a number > 0, got {max_grad_norm!r}")
        if head_weights not in HEAD_WEIGHTS:
            raise ValueError(f"head_weights must be one of {list(HEAD_WEIGHTS)}, got {head_weights!r}")
        if jacobian_mode not in MODES:
            raise ValueError(f"jacobian_mode must be one of {list(MODES)}, got {jacobian_mode!r}")
        self.per_task_optimizers = per_task_optimizers
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self.jacobian_mode = jacobian_mode

        self.combiner: nn.Module = self._make_combiner(self.num_tasks)
        self.estimator: Estimator | None = self._make_estimator()
        self.head_weights = self._resolve_head_weights(head_weights)
        self._check_per_task()
        device = self.groups.shared[0].device
        if any(True for _ in self.combiner.parameters()):
            self.combiner.to(device)  # learnable weights live with the model
        self.optimizers: list[torch.optim.Optimizer] = self._make_optimizers(optimizer)
        self._norm_layers = norm_layers_with_running_stats(model)
        self.step_count = 0

    # ----------------------------------------------------------------------------------------------- setup
    def _make_combiner(self, num_tasks: int) -> nn.Module:
        m = self.method
        if m.combiner_is_weighting:
            return weightings.create(m.combiner, num_tasks, **m.combiner_hparams)
        return aggregators.create(m.combiner, num_tasks, **m.combiner_hparams)

    def _make_estimator(self) -> Estimator | None:
        m = self.method
        if m.kind == "consmtl":
            estimator: Estimator = ConsMTLLowerLevel(self.num_tasks, **m.lower_hparams)
        elif m.kind == "weighting":
            # one optimiser per task needs each task's own gradient: the exact per-task gradients
            return estimators.create("exact", self.num_tasks) if self.per_task_optimizers else None
        else:
            estimator = estimators.create(m.estimator, self.num_tasks, **m.estimator_hparams)
        estimator.bind(self._make_combiner)
        return estimator

    def _resolve_head_weights(self, rule: str) -> str:
        if self.estimator is None:
            if rule != "auto":
                raise ValueError(
                    f"head_weights={rule!r} needs per-task head gradients; the plain weighting "
                    f"{self.method.text!r} back-propagates weighting.loss (heads get w_i): use "
                    f"'exact+{self.method.text}' to choose"
                )
            return "combiner"  # weighting.loss weights the heads
        if rule == "auto":
            return self.estimator.default_head_weights
        variant = getattr(self.estimator, "variant", "direct")
        if rule == "combiner" and variant != "direct" and not self.method.combiner_is_weighting:
            raise ValueError(
                f"head_weights='combiner' is undefined for fmtl variant {variant!r}: its shared update is not one "
                "weighted combination of the task gradients; use head_weights='unit' or variant='direct'"
            )
        return rule

    def _check_per_task(self) -> None:
        if not self.per_task_optimizers:
            return
        if not self.method.combiner_is_weighting:
            raise ValueError(
                f"per_task_optimizers=True needs each task's own update, which a gradient aggregator "
                f"({self.method.combiner!r}) does not define; use a weighting combiner, e.g. 'exact+ls'"
            )
        if self.estimator is not None and self.estimator.needs_features:
            raise ValueError(
                f"per_task_optimizers=True needs per-task gradients of the shared parameters; the "
                f"{self.method.estimator!r} estimator only forms them w.r.t. the features"
            )

    def _make_optimizers(self, optimizer: Any) -> list[torch.optim.Optimizer]:
        extra = [p for p in self.combiner.parameters() if p.requires_grad]
        if optimizer is None:
            raise ValueError("optimizer is required: a torch.optim.Optimizer or a factory params -> Optimizer")
        if isinstance(optimizer, torch.optim.Optimizer):
            if self.per_task_optimizers:
                raise ValueError(
                    "per_task_optimizers=True needs an optimizer factory (params -> Optimizer), e.g. "
                    "functools.partial(torch.optim.Adam, lr=1e-3), not an Optimizer instance"
                )
            if extra:
                optimizer.add_param_group({"params": extra})
            return [optimizer]
        if not callable(optimizer):
            raise ValueError(f"optimizer must be a torch.optim.Optimizer or a callable factory, got {optimizer!r}")
        built: list[Any]
        if self.per_task_optimizers:
            built = [optimizer([*self.groups.shared, *head]) for head in self.groups.heads]
            if extra:
                built.append(optimizer(extra))
        else:
            params = self.groups.all
            built = [optimizer([{"params": params}, {"params": extra}] if extra else params)]
        for opt in built:
            if not isinstance(opt, torch.optim.Optimizer):
                raise ValueError(f"the optimizer factory must return a torch.optim.Optimizer, got {type(opt).__name__}")
        return built

    # ------------------------------------------------------------------------------------------------ step
    def step(self, closure: LossClosure, *, rows: bool = False) -> StepResult:
        """Run one training step on the batch that ``closure`` evaluates, and update the model.

        ``closure(model)`` must compute the K task losses of one fixed batch at the model's current weights
        (the SAM family calls it again at perturbed weights, FAMO after the update); for the ``features``
        estimator and ConsMTL it must go through ``model.encode`` exactly once (e.g. ``model(x)`` with
        ``forward = decode(encode(x))``). Batches of any type work: the step only ever calls the closure.
        A task-restricted closure ``closure(model, tasks=None)`` (see :data:`LossClosure`) lets the per-task
        passes of ``lsam``/``fmtl``/``samo`` run one head instead of all K.

        ``rows=True`` also returns the exact per-task gradients of the shared parameters at the current weights
        (:attr:`StepResult.rows`), from the first forward's graph (kept for the method's own passes): K extra
        backward passes, no extra forward, so BatchNorm statistics and dropout draws are those of a step
        without them and the update is unchanged.
        """
        if not callable(closure):
            raise ValueError(f"step() takes a loss closure closure(model) -> losses, got {type(closure).__name__}")
        for p in [*self.model.parameters(), *self.combiner.parameters()]:
            p.grad = None
        ctx = _Context(self, closure)
        shared_rows = ctx.jacobian(ctx.losses, ctx.shared, retain_graph=True).detach() if rows else None
        if self.estimator is None:
            self.combiner.loss(ctx.losses).backward()
            weights = None
        else:
            estimate = self.estimator.estimate(ctx)
            if ctx.skipped_max_norm > 0:
                # the aggregator caps ||d|| itself when it computes d (Nash-MTL's max_norm); the skipped step
                # back-propagated w @ G directly, so the cap is applied here
                norm = float(estimate.direction.norm())
                if norm > ctx.skipped_max_norm:
                    factor = ctx.skipped_max_norm / norm
                    estimate.direction = estimate.direction * factor
                    ctx.weights = ctx.weights * factor  # keep d = w @ G, as the aggregator does
                    if estimate.heads_scale is not None and self.head_weights == "combiner":
                        estimate.head_grads = [[g * factor for g in head] for head in estimate.head_grads]
            self._learnable_weighting_grads(ctx)
            weights = ctx.weights
            if self.per_task_optimizers:
                self._apply_per_task(estimate, weights)
            else:
                self._write_grads(estimate, weights)
        if not self.per_task_optimizers:
            if self.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.groups.all, self.max_grad_norm)
            for opt in self.optimizers:
                opt.step()
        self._after_step(closure)
        self.step_count += 1
        return StepResult(ctx.losses.detach(), None if weights is None else weights.detach(), shared_rows)

    def _head_scale(self, weights: Tensor | None, i: int) -> float | Tensor | None:
        if self.head_weights == "unit" or weights is None:
            return None
        return weights[i]

    def _head_grad(self, estimate: Estimate, weights: Tensor | None, i: int) -> list[Tensor]:
        scale = None if estimate.heads_scale is not None else self._head_scale(weights, i)
        grads = estimate.head_grads[i]
        if scale is not None:
            grads = [g * scale.to(g.dtype) for g in grads]
        if estimate.head_extra is not None:
            grads = [g + e for g, e in zip(grads, estimate.head_extra[i])]
        return grads

    def _write_grads(self, estimate: Estimate, weights: Tensor | None) -> None:
        shared = self.groups.shared
        for p, g in zip(shared, unflatten_like(estimate.direction, shared)):
            p.grad = g.to(p.dtype)
        for i, head in enumerate(self.groups.heads):
            for p, g in zip(head, self._head_grad(estimate, weights, i)):
                p.grad = g.to(p.dtype)

    def _apply_per_task(self, estimate: Estimate, weights: Tensor | None) -> None:
        """Step task ``t``'s optimiser with ``w_t g_t`` (shared) and its head gradient, for every task."""
        rows = estimate.rows
        if rows is None:  # the context never offers a shortcut when rows are needed
            raise RuntimeError("per-task optimisers need the per-task gradient rows")
        shared = self.groups.shared
        for t, (head, opt) in enumerate(zip(self.groups.heads, self.optimizers)):
            row = rows[t] if weights is None else combine(weights[t : t + 1], rows[t : t + 1])
            for p, g in zip(shared, unflatten_like(row, shared)):
                p.grad = g.to(p.dtype)
            for p, g in zip(head, self._head_grad(estimate, weights, t)):
                p.grad = g.to(p.dtype)
            if self.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_([*shared, *head], self.max_grad_norm)
            opt.step()
            for p in [*shared, *head]:
                p.grad = None
        for opt in self.optimizers[self.num_tasks :]:  # the learnable weighting's own optimiser
            opt.step()

    def _learnable_weighting_grads(self, ctx: _Context) -> None:
        """Gradient of ``sum_i w_i sg[L_i] + regulariser`` w.r.t. a learnable weighting's parameters (UW)."""
        if not isinstance(self.combiner, Weighting):
            return
        params = [p for p in self.combiner.parameters() if p.requires_grad]
        if not params:
            return
        objective = (ctx.weighting_weights() * ctx.losses.detach()).sum() + self.combiner.regularizer()
        grads = torch.autograd.grad(objective, params, allow_unused=True, materialize_grads=True)
        for p, g in zip(params, grads):
            p.grad = g

    def _after_step(self, closure: LossClosure) -> None:
        combiner = self.combiner
        wants = (isinstance(combiner, Weighting) and combiner.needs_losses_after_step) or (
            isinstance(combiner, Aggregator) and type(combiner).after_step is not Aggregator.after_step
        )
        if not wants:
            return
        # FAMO's update reads the losses of the same batch after the parameter update (one extra forward)
        with torch.no_grad(), frozen_norm_stats(self._norm_layers):
            new_losses = self.losses_from(closure(self.model))
        combiner.after_step(new_losses.detach())

    # ------------------------------------------------------------------------------------------ utilities
    def losses_from(self, output: Any) -> Tensor:
        """The closure's output as a ``Tensor[K]`` in task order; malformed or non-finite losses raise."""
        return self._split_losses(output)[0]

    def _split_losses(self, output: Any, tasks: Sequence[str] | None = None) -> tuple[Tensor, list[Tensor] | None]:
        """``(Tensor[K'], the K' scalar losses as returned or None)`` for ``tasks`` (default: all K tasks).

        See :meth:`_Context.task_losses` for why the scalars are kept.
        """
        tasks = list(self.tasks if tasks is None else tasks)
        k = len(tasks)
        roots = None
        if isinstance(output, Mapping):
            missing = [t for t in tasks if t not in output]
            unknown = [t for t in output if t not in tasks]
            if missing or unknown:
                raise ValueError(
                    f"the closure's losses have tasks missing {missing} / unknown {unknown}; tasks: {tasks}"
                )
            output = [output[t] for t in tasks]
        if isinstance(output, (list, tuple)):
            if len(output) != k or not all(isinstance(v, Tensor) and v.numel() == 1 for v in output):
                raise ValueError(f"the closure must return {k} scalar losses (tasks {tasks}), got {output!r}")
            roots = [v.reshape(()) for v in output]
            output = torch.stack(roots)
        if not isinstance(output, Tensor) or output.shape != (k,):
            shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise ValueError(f"the closure must return a Tensor[{k}] of task losses (tasks {tasks}), got {shape}")
        if not output.is_floating_point():
            raise ValueError(f"task losses must be floating point, got dtype {output.dtype}")
        finite = torch.isfinite(output.detach())
        if not bool(finite.all()):
            bad = [t for t, ok in zip(tasks, finite.tolist()) if not ok]
            raise ValueError(f"non-finite loss for task(s) {bad}: {output.detach().tolist()}")
        return output, roots

    def end_epoch(self) -> None:
        """Forward the end of an epoch to the combiner (DWA) and the estimator's extra combiners."""
        self.combiner.end_epoch()
        if self.estimator is not None:
            self.estimator.end_epoch()

    def state_dict(self) -> dict[str, Any]:
        """Combiner, estimator (extra combiners, RNG) and optimiser states, and the step count."""
        return {
            "method": self.method.text,
            "tasks": list(self.tasks),
            "step_count": self.step_count,
            "combiner": self.combiner.state_dict(),
            "estimator": {} if self.estimator is None else self.estimator.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` of a step with the same method, tasks and optimiser layout."""
        expected = {"method", "tasks", "step_count", "combiner", "estimator", "optimizers"}
        if not isinstance(state, Mapping) or set(state) != expected:
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"not an MTLStep state: keys {got}, expected {sorted(expected)}")
        if state["method"] != self.method.text or list(state["tasks"]) != list(self.tasks):
            raise ValueError(
                f"state of method {state['method']!r} with tasks {state['tasks']} does not fit this step "
                f"({self.method.text!r}, tasks {list(self.tasks)})"
            )
        if len(state["optimizers"]) != len(self.optimizers):
            raise ValueError(f"state has {len(state['optimizers'])} optimiser(s), this step {len(self.optimizers)}")
        self.combiner.load_state_dict(state["combiner"])
        if self.estimator is not None:
            self.estimator.load_state_dict(state["estimator"])
        for opt, opt_state in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(opt_state)
        self.step_count = int(state["step_count"])

    def __repr__(self) -> str:
        return (
            f"MTLStep(method={self.method.text!r}, tasks={list(self.tasks)}, estimator={self.estimator!r}, "
            f"combiner={self.combiner!r}, head_weights={self.head_weights!r}, "
            f"per_task_optimizers={self.per_task_optimizers})"
        )


class _Context:
    """The :class:`~mtl_core.estimators.StepContext` of one step (see there for the contract)."""

    def __init__(self, step: MTLStep, closure: LossClosure) -> None:
        self._step = step
        self._closure = closure
        self.num_tasks = step.num_tasks
        self.shared = step.groups.shared
        self.heads = step.groups.heads
        self.needs_rows = step.per_task_optimizers
        self.weights: Tensor | None = None
        self.skipped_max_norm = 0.0
        self._weighting_weights: Tensor | None = None
        self._fixed_taken = False
        self._roots: dict[int, tuple[Tensor, list[Tensor]]] = {}
        self._restricted = accepts_tasks(closure)
        capture = step.estimator is not None and step.estimator.needs_features
        self.losses, self.z = self._first_forward(capture)
        if not self.losses.requires_grad:
            raise ValueError("the closure's losses do not require grad: is step() running under torch.no_grad()?")

    def _first_forward(self, capture: bool) -> tuple[Tensor, tuple[Tensor, ...] | None]:
        model = self._step.model
        if not capture:
            return self._losses(self._closure(model)), None
        captured: list[Any] = []
        had_own = "encode" in vars(model)
        original = model.encode

        def encode(*args: Any, **kwargs: Any) -> Any:
            z = original(*args, **kwargs)
            captured.append(z)
            return z

        # shadow the method on the instance for the duration of the closure (forward -> self.encode -> here)
        model.encode = encode
        try:
            losses = self._losses(self._closure(model))
        finally:
            if had_own:
                model.encode = original
            else:
                del model.encode
        if len(captured) != 1:
            raise ValueError(
                f"the {self._step.method.text!r} method reads z = model.encode(x): the closure must call "
                f"model.encode exactly once (e.g. through model(x)), but it was called {len(captured)} time(s)"
            )
        z = captured[0]
        parts = (z,) if isinstance(z, Tensor) else tuple(z) if isinstance(z, (list, tuple)) else None
        if parts is None or not all(isinstance(t, Tensor) for t in parts):
            raise ValueError(f"model.encode must return a tensor or a tuple of tensors, got {type(z).__name__}")
        # parts without grad (masks, indices) carry no gradient to the encoder: the shared representation is the rest
        parts = tuple(t for t in parts if t.requires_grad)
        if not parts:
            raise ValueError("model.encode returned no tensor that requires grad: nothing to differentiate w.r.t. z")
        return losses, parts

    def _losses(self, output: Any) -> Tensor:
        losses, roots = self._step._split_losses(output)
        if roots is not None and losses.requires_grad:
            self._roots[id(losses)] = (losses, roots)
        return losses

    def task_losses(self, losses: Tensor) -> list[Tensor]:
        """The K scalar losses behind ``losses``, as separate graph roots when the closure returned them so.

        A backward from ``losses[i]`` starts at ``torch.stack``, whose backward sends zero gradients into every
        task's head; from the closure's own scalar it runs through head ``i`` only. With many or large heads
        that is the difference between K and K^2 head backward passes per Jacobian.
        """
        known = self._roots.get(id(losses))
        if known is not None and known[0] is losses:
            return known[1]
        return list(losses.unbind())

    def evaluate(self, *, grad: bool = True, task: int | None = None) -> Tensor:
        with frozen_norm_stats(self._step._norm_layers), torch.set_grad_enabled(grad):
            if task is None:
                return self._losses(self._closure(self._step.model))
            if not self._restricted:
                return self.task_losses(self._losses(self._closure(self._step.model)))[task]
            name = self._step.tasks[task]
            losses, roots = self._step._split_losses(self._closure(self._step.model, tasks=(name,)), (name,))
            return losses[0] if roots is None else roots[0]

    def jacobian(
        self,
        losses: Tensor | Sequence[Tensor],
        inputs: Sequence[Tensor],
        *,
        retain_graph: bool = False,
        out: Tensor | None = None,
    ) -> Tensor:
        roots = self.task_losses(losses) if isinstance(losses, Tensor) else list(losses)
        return jacobian(roots, list(inputs), mode=self._step.jacobian_mode, retain_graph=retain_graph, out=out)

    def per_task_gradients(
        self, losses: Tensor, inputs: Sequence[Tensor], *, retain_graph: bool = False, out: Tensor | None = None
    ) -> tuple[Tensor, list[list[Tensor]]]:
        """``(jacobian(losses, inputs), head_grads(losses))`` with the heads' gradients taken in the same passes.

        With the looped engine, task ``i``'s backward differentiates w.r.t. ``inputs`` and head ``i`` at once,
        which saves a second pass through every head (what makes the features mode cost about one LS step).
        The batched engine (CUDA) computes the Jacobian in one vmapped pass and the heads in one more.
        On CPU, with separate heads behind non-leaf ``inputs`` (``z``), one backward of ``sum_i L_i`` gives
        all rows and heads (:func:`~mtl_core.task_graphs.captured_rows`).
        ``retain_graph=False`` frees only nodes above ``inputs`` (see :func:`~mtl_core.task_graphs.retain_flags`):
        a backward from ``inputs`` afterwards (the features mode's encoder pass) still works.
        """
        inputs = list(inputs)
        mode = self._step.jacobian_mode
        if mode == "auto":
            mode = choose_mode(inputs[0].device, self.num_tasks)
        if mode != "loop":
            rows = self.jacobian(losses, inputs, retain_graph=True, out=out)
            return rows, self.head_grads(losses, retain_graph=retain_graph)
        # the loop engine with each task's head added to its own pass
        return looped_rows(self.task_losses(losses), inputs, out, retain_graph=retain_graph, heads=self.heads)

    def weighted_gradients(self, losses: Tensor, weights: Tensor, *, retain_graph: bool = False) -> Estimate:
        total = (weights.to(losses.dtype) * losses).sum()
        shared = list(self.shared)
        if self._step.head_weights == "unit" and not bool((weights == 1).all()):
            direction = flat(grads_of(total, shared, retain_graph=True))
            return Estimate(direction, self.head_grads(losses, retain_graph=retain_graph))
        # heads weighted by w: the same backward gives them (one pass through every head, like LS)
        grads = grads_of(total, [*shared, *(p for head in self.heads for p in head)], retain_graph=retain_graph)
        heads = split_by_groups(grads[len(shared) :], self.heads)
        return Estimate(flat(grads[: len(shared)]), heads, heads_scale=weights)

    def head_grads(self, losses: Tensor, *, retain_graph: bool = False) -> list[list[Tensor]]:
        params = [p for head in self.heads for p in head]
        if not params:
            return [[] for _ in self.heads]
        # heads are disjoint, so one backward of sum_i L_i gives every head the gradient of its own loss
        grads = torch.autograd.grad(
            losses.sum(), params, retain_graph=retain_graph, allow_unused=True, materialize_grads=True
        )
        return split_by_groups(grads, self.heads)

    def weighting_weights(self) -> Tensor:
        """The weighting combiner's weights of this step (computed once: DWA and RLW are stateful)."""
        if self._weighting_weights is None:
            self._weighting_weights = self._step.combiner(self.losses.detach())
        return self._weighting_weights

    def fixed_weights(self, *, reusable: bool = True) -> Tensor | None:
        if self._fixed_taken:
            raise RuntimeError("fixed_weights() may be called once per step")
        self._fixed_taken = True
        if self.needs_rows:
            return None
        combiner = self._step.combiner
        if isinstance(combiner, Weighting):
            self.weights = self.weighting_weights().detach()
            return self.weights
        weights = combiner.reusable_weights() if reusable else None
        if weights is None:
            return None
        combiner.skip_step()
        self.skipped_max_norm = float(getattr(combiner, "max_norm", 0.0) or 0.0)
        self.weights = weights.to(self.losses.device)
        return self.weights

    def combine(self, grads: Tensor, combiner: nn.Module | None = None, *, with_losses: bool = True) -> Tensor:
        main = combiner is None or combiner is self._step.combiner
        combiner = self._step.combiner if combiner is None else combiner
        if isinstance(combiner, Weighting):
            if not main:
                raise RuntimeError("a weighting can only combine the step's own task gradients")
            weights = self.weighting_weights().detach()
            direction = combine(weights, grads)
        else:
            direction = combiner(grads, self.losses.detach() if with_losses else None)
            weights = combiner.last_weights
        if main:
            self.weights = weights
        return direction
