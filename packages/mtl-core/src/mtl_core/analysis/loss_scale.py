"""The loss-scale invariance probe of seed 001 App. A2 (Figures A1, A2; derivations in A1.1-A1.3).

Two regression heads on a shared trunk measure the same quantity "in different units": in the scaled setting
one task loss is multiplied by 10 and the other by 0.1. Training the same model from the same initialisation
on the same data with and without the scaling shows which parts of the update are invariant:

==================  ===============================  ==============================================
optimizer/weighting frozen backbone (heads only)     free backbone
==================  ===============================  ==============================================
SGD + momentum, EW  not invariant (updates scale)    not invariant
Adam, EW            heads invariant (eq. (21))       backbone not invariant (eq. (22)-(23)); heads
                                                     only at the first step
SGD + momentum,     invariant (eq. (13))             invariant everywhere
UW-O
one Adam per task   = Adam                           invariant everywhere (A1.3)
==================  ===============================  ==============================================

:func:`loss_scale_probe` runs one setting and returns, per step, the losses and, per parameter group
(``"backbone"`` and one group per task), the norm of the gradient the optimizer receives and the norm of the
parameter update; :func:`compare_loss_scales` runs the unscaled and the scaled setting and
:func:`invariance_gap` measures how far apart their update (or gradient) norms are.

The model is the small MLP of A2: a shared trunk of two layers of 20 units with LeakyReLU and two heads of
two layers; inputs are scalars drawn uniformly, targets are scalings of the input, losses are L1. The paper
does not give the input range, the target scale, the data size, the batch size or the learning rates: the
defaults below are ours (``x ~ U(0, 1)``, ``y = 2 x`` for both tasks, 512 samples, batches of 32, SGD lr 0.01
with momentum 0.9, Adam lr 1e-3). Its list of runs writes the scaling as ``10 L_1`` and ``0.01 L_2`` while its
text and figure captions say 10 and 0.1; the default follows the text (10, 0.1). Everything runs in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from ..weightings import create as create_weighting

OPTIMIZERS = ("sgd", "adam", "adam_per_task")
WEIGHTINGS = ("ew", "uw_o")
TASKS = ("t1", "t2")
GROUPS = ("backbone", *TASKS)


class ScaleProbeMLP(nn.Module):
    """Seed 001 A2's network: trunk ``1 -> 20 -> 20`` (LeakyReLU), per task a head ``20 -> 20 -> 1``.

    Follows the mtl_core model protocol: ``encode``, ``decode``, ``shared_parameters()``,
    ``task_parameters(task)``.
    """

    def __init__(self, tasks: Sequence[str] = TASKS, hidden: int = 20) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.trunk = nn.Sequential(nn.Linear(1, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU())
        self.heads = nn.ModuleDict(
            {t: nn.Sequential(nn.Linear(hidden, hidden), nn.LeakyReLU(), nn.Linear(hidden, 1)) for t in self.tasks}
        )

    def encode(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def decode(self, z: Tensor) -> dict[str, Tensor]:
        return {t: head(z).squeeze(-1) for t, head in self.heads.items()}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        if task not in self.heads:
            raise ValueError(f"unknown task {task!r}; valid tasks: {list(self.tasks)}")
        return list(self.heads[task].parameters())


def scale_probe_data(
    num_samples: int = 512, *, target_scales: Sequence[float] = (2.0, 2.0), seed: int = 0
) -> tuple[Tensor, dict[str, Tensor]]:
    """Scalar inputs ``x ~ U(0, 1)`` (float64, ``[N, 1]``) and targets ``{t: scale_t * x}`` (``[N]``)."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}")
    if len(target_scales) != len(TASKS):
        raise ValueError(f"target_scales needs {len(TASKS)} values, got {list(target_scales)}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(num_samples, 1, generator=gen, dtype=torch.float64)
    return x, {t: float(s) * x[:, 0] for t, s in zip(TASKS, target_scales)}


@dataclass(frozen=True)
class LossScaleTrace:
    """Per-step record of one probe run (``T`` steps, float64 arrays)."""

    optimizer: str
    weighting: str
    loss_scales: tuple[float, float]
    freeze_backbone: bool
    #: unscaled L1 losses ``[T, 2]`` and the scaled ones ``alpha_t L_t`` the objective is built from
    losses: np.ndarray
    scaled_losses: np.ndarray
    #: ``{group: [T]}``: norm of the gradient given to the optimizer, norm of the parameter update
    grad_norms: dict[str, np.ndarray] = field(default_factory=dict)
    update_norms: dict[str, np.ndarray] = field(default_factory=dict)
    #: with ``shadow_scales``: the same norms for the setting scaled by ``shadow_scales``, taken in lockstep from
    #: this run's state at each step (its own optimizer state, fed its own gradients along this trajectory)
    shadow_scales: tuple[float, float] | None = None
    shadow_grad_norms: dict[str, np.ndarray] = field(default_factory=dict)
    shadow_update_norms: dict[str, np.ndarray] = field(default_factory=dict)


def _check_scales(loss_scales: Sequence[float]) -> tuple[float, float]:
    scales = tuple(float(s) for s in loss_scales)
    if len(scales) != len(TASKS) or not all(np.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"loss_scales must be {len(TASKS)} finite positive numbers, got {list(loss_scales)}")
    return scales  # type: ignore[return-value]


def loss_scale_probe(
    *,
    optimizer: str = "sgd",
    weighting: str = "ew",
    loss_scales: Sequence[float] = (1.0, 1.0),
    freeze_backbone: bool = False,
    epochs: int = 100,
    num_samples: int = 512,
    batch_size: int = 32,
    lr: float | None = None,
    momentum: float = 0.9,
    adam_eps: float = 1e-8,
    seed: int = 0,
    shadow_scales: Sequence[float] | None = None,
) -> LossScaleTrace:
    """Train :class:`ScaleProbeMLP` on the scaled losses ``alpha_t L_t``, recording every step (seed 001 A2).

    ``optimizer``: ``"sgd"`` (SGD + momentum, default lr 0.01), ``"adam"`` (one Adam, default lr 1e-3) or
    ``"adam_per_task"`` (one Adam per task over the trunk and that task's head, each fed only its task's
    gradient; the trunk update is the sum of the per-task updates, seed 001 A1.3). ``weighting``: ``"ew"``
    (objective ``sum_t alpha_t L_t``) or ``"uw_o"`` (``sum_t alpha_t L_t / sg[alpha_t L_t]``, seed 001
    eq. (12), :class:`mtl_core.weightings.OptimalUncertainty`). ``freeze_backbone`` trains the heads only.
    ``adam_eps`` is Adam's epsilon: the only term that breaks Adam's invariance (A2: "a slight divergence"),
    most visible on coordinates with tiny gradients; set it to e.g. 1e-16 to see the exact invariance. The
    same ``seed`` gives the same initialisation, data and batch order whatever the other arguments.

    ``shadow_scales``: also record, at every step, the gradient and the update the setting scaled by
    ``shadow_scales`` would make from this run's current parameters (a shadow copy of the optimizers keeps that
    setting's own momentum / moments, fed its gradients at this run's points). This compares the two settings
    at the same state, which is what the invariances state; two separate runs drift apart from their
    round-off differences alone (:func:`lockstep_invariance_gap`).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {list(WEIGHTINGS)}, got {weighting!r}")
    scales = _check_scales(loss_scales)
    shadow = _check_scales(shadow_scales) if shadow_scales is not None else None
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if lr is None:
        lr = 0.01 if optimizer == "sgd" else 1e-3
    for name, value in (("lr", lr), ("adam_eps", adam_eps)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if not isinstance(momentum, (int, float)) or isinstance(momentum, bool) or not 0 <= momentum < 1:
        raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}")

    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the global RNG stream
        torch.manual_seed(seed)
        model = ScaleProbeMLP().double()
    x, targets = scale_probe_data(num_samples, seed=seed)
    order_gen = torch.Generator().manual_seed(seed + 1)
    backbone = model.shared_parameters()
    for p in backbone:
        p.requires_grad_(not freeze_backbone)
    groups = {"backbone": [] if freeze_backbone else backbone, **{t: model.task_parameters(t) for t in TASKS}}
    trainable = [p for ps in groups.values() for p in ps]
    weights = create_weighting("uw_o" if weighting == "uw_o" else "ls", len(TASKS))

    def make(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        if optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=momentum)
        return torch.optim.Adam(params, lr=lr, eps=adam_eps)

    def make_all(param_groups: dict[str, list]) -> dict[str, torch.optim.Optimizer]:
        if optimizer == "adam_per_task":
            return {t: make(param_groups["backbone"] + param_groups[t]) for t in TASKS}
        return {"all": make([p for ps in param_groups.values() for p in ps])}

    optimizers = make_all(groups)
    alpha = torch.tensor(scales, dtype=torch.float64)
    # the shadow: a copy of every trainable parameter, reset to this run's values before each step
    copies = {p: torch.zeros_like(p, requires_grad=False) for p in trainable} if shadow else {}
    shadow_optimizers = make_all({g: [copies[p] for p in ps] for g, ps in groups.items()}) if shadow else {}
    alpha_shadow = torch.tensor(shadow, dtype=torch.float64) if shadow else None

    def gradients(losses: Tensor, scale: Tensor, keep_graph: bool) -> tuple[dict[str, tuple], dict]:
        """Per optimizer its gradients (``{name: grads of its params}``) and the summed gradient per parameter
        of the objective built from ``scale * losses``."""
        scaled = scale * losses
        w = weights(scaled).detach()  # EW: ones; UW-O: 1 / sg[alpha_t L_t]
        if optimizer == "adam_per_task":
            # Each task's gradient goes to its own Adam only (A1.3), so it is taken separately.
            per_task = {
                t: torch.autograd.grad(
                    w[i] * scaled[i], groups["backbone"] + groups[t], retain_graph=keep_graph or i == 0
                )
                for i, t in enumerate(TASKS)
            }
            total = {p: torch.zeros_like(p) for p in trainable}
            for t, grads in per_task.items():
                for p, g in zip(groups["backbone"] + groups[t], grads):
                    total[p] += g
            return per_task, total
        grads = torch.autograd.grad((w * scaled).sum(), trainable, retain_graph=keep_graph)
        return {"all": grads}, dict(zip(trainable, grads))

    def step(opts: dict[str, torch.optim.Optimizer], per_optimizer: dict[str, tuple], params: dict) -> None:
        for name, opt in opts.items():
            owned = groups["backbone"] + groups[name] if name in TASKS else trainable
            for p, g in zip(owned, per_optimizer[name]):
                params[p].grad = g
            opt.step()  # Adam's update does not depend on the current value: per-task updates add up

    rec_losses, rec_scaled = [], []
    rec_grad: dict[str, list[float]] = {g: [] for g in GROUPS}
    rec_update: dict[str, list[float]] = {g: [] for g in GROUPS}
    rec_shadow_grad: dict[str, list[float]] = {g: [] for g in GROUPS}
    rec_shadow_update: dict[str, list[float]] = {g: [] for g in GROUPS}
    identity = {p: p for p in trainable}
    for _ in range(epochs):
        perm = torch.randperm(num_samples, generator=order_gen)
        for start in range(0, num_samples, batch_size):
            idx = perm[start : start + batch_size]
            preds = model(x[idx])
            losses = torch.stack([(preds[t] - targets[t][idx]).abs().mean() for t in TASKS])
            scaled = alpha * losses
            per_optimizer, total = gradients(losses, alpha, keep_graph=shadow is not None)
            before = {p: p.detach().clone() for p in trainable}
            if shadow is not None:
                shadow_per_optimizer, shadow_total = gradients(losses, alpha_shadow, keep_graph=False)
                with torch.no_grad():
                    for p in trainable:
                        copies[p].copy_(before[p])
                step(shadow_optimizers, shadow_per_optimizer, copies)
                for g in GROUPS:
                    params = groups[g]
                    rec_shadow_grad[g].append(_norm([shadow_total[p] for p in params]))
                    rec_shadow_update[g].append(_norm([copies[p] - before[p] for p in params]))
            step(optimizers, per_optimizer, identity)
            for g in GROUPS:
                params = groups[g]
                rec_grad[g].append(_norm([total[p] for p in params]))
                rec_update[g].append(_norm([p.detach() - before[p] for p in params]))
            rec_losses.append(losses.detach().numpy())
            rec_scaled.append(scaled.detach().numpy())
    return LossScaleTrace(
        optimizer=optimizer,
        weighting=weighting,
        loss_scales=scales,
        freeze_backbone=freeze_backbone,
        losses=np.stack(rec_losses),
        scaled_losses=np.stack(rec_scaled),
        grad_norms={g: np.asarray(v) for g, v in rec_grad.items()},
        update_norms={g: np.asarray(v) for g, v in rec_update.items()},
        shadow_scales=shadow,
        shadow_grad_norms={g: np.asarray(v) for g, v in rec_shadow_grad.items()} if shadow else {},
        shadow_update_norms={g: np.asarray(v) for g, v in rec_shadow_update.items()} if shadow else {},
    )


def _norm(tensors: list[Tensor]) -> float:
    if not tensors:
        return 0.0
    return float(torch.sqrt(sum((t.double() ** 2).sum() for t in tensors)))


def compare_loss_scales(
    *, scales: Sequence[float] = (10.0, 0.1), **kwargs: object
) -> tuple[LossScaleTrace, LossScaleTrace]:
    """The unscaled run (scales 1, 1) and the scaled run (``scales``) of one setting, same seed and data."""
    if "loss_scales" in kwargs:
        raise ValueError("pass the scaled setting as scales=..., not loss_scales")
    return loss_scale_probe(loss_scales=(1.0, 1.0), **kwargs), loss_scale_probe(loss_scales=scales, **kwargs)


def invariance_gap(
    a: LossScaleTrace, b: LossScaleTrace, *, quantity: str = "update_norms", steps: int | None = None
) -> dict[str, float]:
    """``max_t |a_t - b_t| / max(|a_t|, |b_t|)`` per parameter group over the first ``steps`` steps (all by
    default) of two separate runs: 0 for an invariant group, of order 1 when the loss scaling changes the
    quantity. Groups that are zero in both runs (a frozen backbone) get 0. Two runs of an invariant setting
    stay together only until their round-off differences have grown (SGD + UW-O: 1e-4 after ~80 steps, order 1
    after ~100): beyond a few epochs use :func:`lockstep_invariance_gap`."""
    if quantity not in ("update_norms", "grad_norms"):
        raise ValueError(f"quantity must be 'update_norms' or 'grad_norms', got {quantity!r}")
    return _relative_gaps(getattr(a, quantity), getattr(b, quantity), steps)


def lockstep_invariance_gap(
    *, scales: Sequence[float] = (10.0, 0.1), quantity: str = "update_norms", **kwargs: object
) -> dict[str, float]:
    """The gap of :func:`invariance_gap` with both settings taken from the same state at every step: one
    unscaled run whose shadow is the setting scaled by ``scales`` (``loss_scale_probe(shadow_scales=...)``).
    This is what the invariances of seed 001 state (the update from a given state and history does not depend
    on the loss scales: eqs. (13), (21), A1.3): round-off cannot accumulate along two trajectories, while a
    scale-dependent optimizer state (momentum, Adam's shared moments) shows as it builds up."""
    if quantity not in ("update_norms", "grad_norms"):
        raise ValueError(f"quantity must be 'update_norms' or 'grad_norms', got {quantity!r}")
    if "loss_scales" in kwargs or "shadow_scales" in kwargs:
        raise ValueError("pass the scaled setting as scales=...")
    trace = loss_scale_probe(loss_scales=(1.0, 1.0), shadow_scales=scales, **kwargs)  # type: ignore[arg-type]
    return _relative_gaps(getattr(trace, quantity), getattr(trace, f"shadow_{quantity}"), None)


def _relative_gaps(da: dict[str, np.ndarray], db: dict[str, np.ndarray], steps: int | None) -> dict[str, float]:
    out = {}
    for g in GROUPS:
        x, y = da[g][:steps], db[g][:steps]
        if x.shape != y.shape:
            raise ValueError(f"the two traces have different lengths for {g!r}: {x.shape} vs {y.shape}")
        denom = np.maximum(np.abs(x), np.abs(y))
        rel = np.where(denom > 0, np.abs(x - y) / np.where(denom > 0, denom, 1.0), 0.0)
        out[g] = float(rel.max()) if rel.size else 0.0
    return out
