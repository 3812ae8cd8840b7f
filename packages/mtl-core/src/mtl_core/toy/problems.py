"""Two-objective toy problems on R^2: CAGrad's (seeds 001, 003) and SAMO's (seed 002 sec. 6.1)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

# Floor of the log-barrier terms of CAGrad's toy (reference constant ``LOWER``).
_LOWER = 5e-6

#: the three starting points of CAGrad's toy script, used by seed 001 (Fig. 1, Tables 1 and A7)
CAGRAD_STARTS: tuple[tuple[float, float], ...] = ((-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0))
#: the five starting points of Aligned-MTL's toy script (seed 003 Fig. 1, App. C)
ALIGNED_MTL_STARTS: tuple[tuple[float, float], ...] = (
    (-8.5, 7.5),
    (0.0, 0.0),
    (9.0, 9.0),
    (-7.5, -0.5),
    (9.0, -1.0),
)
#: SAMO's starting point (seed 002 sec. 6.1, Fig. 1)
SAMO_START: tuple[float, float] = (-6.0, 1.0)
#: SAMO's box constraints: x1 in [-6, 6], x2 in [-3, 3]
SAMO_BOUNDS: tuple[tuple[float, float], tuple[float, float]] = ((-6.0, 6.0), (-3.0, 3.0))


def cagrad_losses(x: Tensor, task_scales: Sequence[float] = (1.0, 1.0)) -> Tensor:
    """CAGrad's two objectives (Liu et al. 2021, reference ``Toy.forward``) at ``x[..., 2]``: ``[..., 2]``.

    Above the x1 axis (``c1 = max(tanh(x2 / 2), 0)``) each objective is a clamped log-barrier
    ``log max(|u_i(x)|, 5e-6) + 6``, below it (``c2 = max(tanh(-x2 / 2), 0)``) a quadratic bowl
    ``((x1 -+ 7)^2 + 0.1 (x2 + 8)^2) / 10 - 20``; ``task_scales`` multiplies them (Aligned-MTL's ``scale``:
    ``(s, 1 - s)``). Written with the reference's operations, so autograd gives the same (sub)gradients.

    The reference scripts (Cranial-XIX/CAGrad ``toy.py``, AvivNavon/nash-mtl ``experiments/toy/problem.py``,
    SamsungLabs/MTL ``code/utils/toy.py``; all ``Toy.forward``) write the maxima as ``torch.clamp(t, lo)``, whose
    derivative at ``t = lo`` is PyTorch's choice: from 0.4.1 (pytorch/pytorch#7049, fixing #7002) until
    pytorch/pytorch#191142 (2026), ``derivatives.yaml`` gave ``clamp`` the subgradient 1 there (``self >= min``),
    in every PyTorch the three scripts ran with (2021-2023); the PyTorch installed here (2.14) gives 0 for a
    scalar bound (the minimum-norm convention of pytorch/pytorch#184572). On the x1 axis (``x2 = 0``, where
    ``c1 = c2 = 0``) that choice is the whole gradient. With 1, ``grad f_i(x1, 0) = (0, (f_i^log - f_i^sq) / 2)``:
    at (0, 0) ``(0, (log 3.5 + 20.46) / 2)`` for both tasks, so every method steps into the bowl below (Nash-MTL's
    figure of the five starts, AvivNavon/nash-mtl ``misc/toy_pareto_2d.png``, drawn in loss space and coloured
    by iteration, has an early-iteration curve leave the start's loss point (0, 0) for the Pareto front in every
    panel). With 0 every task gradient vanishes there and (0, 0) is a fixed point of every method.
    :func:`_clamp_min` keeps the references' 1 whatever the installed PyTorch does; off the boundary it is
    ``torch.clamp`` exactly (value and gradient).
    """
    x1, x2 = x[..., 0], x[..., 1]
    f1 = _clamp_min((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), _LOWER).log() + 6
    f2 = _clamp_min((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), _LOWER).log() + 6
    c1 = _clamp_min(torch.tanh(x2 * 0.5), 0.0)
    f1_sq = ((-x1 + 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    f2_sq = ((-x1 - 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    c2 = _clamp_min(torch.tanh(-x2 * 0.5), 0.0)
    return torch.stack([(f1 * c1 + f1_sq * c2) * task_scales[0], (f2 * c1 + f2_sq * c2) * task_scales[1]], dim=-1)


def _clamp_min(t: Tensor, lo: float) -> Tensor:
    """``max(t, lo)`` with the derivative 1 at ``t = lo``: the subgradient of ``torch.clamp`` from PyTorch 0.4.1 until
    pytorch/pytorch#191142 (see :func:`cagrad_losses`). ``where`` sends the gradient to ``t`` wherever ``t < lo``
    is false, the boundary included; NaN propagates as in ``torch.clamp``.
    """
    return torch.where(t < lo, lo, t)


def samo_losses(x: Tensor) -> Tensor:
    """SAMO's toy (seed 002 sec. 6.1) at ``x[..., 2]``: ``[..., 2]`` with

    ``f1 = 1 - 1 / (1 + (x1^4 + x2^4) / 10)`` (a wide, flat basin at the origin) and
    ``f2 = 1 - exp(-2 (x1 + 4)^2 - 2 x2^2)`` (a narrow, sharp well at (-4, 0)).
    """
    x1, x2 = x[..., 0], x[..., 1]
    f1 = 1 - 1 / (1 + (x1.pow(4) + x2.pow(4)) / 10)
    f2 = 1 - torch.exp(-2 * (x1 + 4).pow(2) - 2 * x2.pow(2))
    return torch.stack([f1, f2], dim=-1)


@dataclass(frozen=True)
class ToyProblem:
    """A K-objective problem on R^2 with its starting points and optional box constraints.

    ``objective(x)`` is the average loss whose minimiser is the "global minimum" of seed 001 Table A7 /
    seed 003 eq. (1); :attr:`global_minimum` finds it numerically (float64, multi-start L-BFGS-B).
    """

    name: str
    losses_fn: Callable[[Tensor], Tensor]
    starts: tuple[tuple[float, float], ...]
    num_tasks: int = 2
    #: ``((lo1, hi1), (lo2, hi2))``: iterates are projected onto the box after every step
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None
    #: the region searched for the global minimum when there are no bounds
    search_box: tuple[tuple[float, float], tuple[float, float]] = ((-10.0, 10.0), (-10.0, 10.0))

    def losses(self, x: Tensor) -> Tensor:
        """The task losses ``[..., K]`` at points ``x[..., 2]``."""
        if not isinstance(x, Tensor) or x.shape[-1:] != (2,) or not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor of shape [..., 2], got {x!r}")
        return self.losses_fn(x)

    def objective(self, x: Tensor) -> Tensor:
        """The average loss ``mean_i f_i(x)``."""
        return self.losses(x).mean(-1)

    def losses_and_jacobian(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Losses ``[S, K]`` and per-task gradients ``[S, K, 2]`` at a batch of points ``x[S, 2]``.

        The points are independent, so one backward does it: the points are repeated once per task
        (``[K * S, 2]``) and block ``k`` back-propagates only ``f_k``: its gradient rows are
        ``grad f_k(x_s)``. On these tiny tensors the cost is the number of autograd calls, not their size.
        """
        k, s = self.num_tasks, x.shape[0]
        xs = x.detach().repeat(k, 1).requires_grad_(True)
        with torch.enable_grad():
            f = self.losses(xs)  # [K * S, K]
            picked = f.view(k, s, k).diagonal(dim1=0, dim2=2)  # [S, K]: block k, task k
            (grad,) = torch.autograd.grad(picked.sum(), xs)
        return f[:s].detach(), grad.view(k, s, 2).transpose(0, 1)

    @cached_property
    def global_minimum(self) -> tuple[np.ndarray, float]:
        """``(x*, objective(x*))`` in float64 over the box (the constraints, or ``search_box``).

        The objective is evaluated on a 401 x 401 grid of the box in one batched call; L-BFGS-B then refines
        the best grid points (the three lowest, so a narrow well next to a plateau is not missed).
        """
        box = self.bounds or self.search_box
        axes = [torch.linspace(lo, hi, 401, dtype=torch.float64) for lo, hi in box]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 2)
        with torch.no_grad():
            values = self.objective(grid)
        candidates = grid[torch.argsort(values)[:3]].numpy()

        def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
            x = torch.tensor(v, dtype=torch.float64, requires_grad=True)
            value = self.objective(x)
            (grad,) = torch.autograd.grad(value, x)
            return float(value.detach()), grad.numpy()

        options = {"ftol": 1e-15, "gtol": 1e-13, "maxiter": 5000}
        best = min(
            (minimize(fun, c, jac=True, method="L-BFGS-B", bounds=box, options=options) for c in candidates),
            key=lambda r: r.fun,
        )
        return np.asarray(best.x), float(best.fun)


def cagrad_toy(
    task_scales: Sequence[float] = (1.0, 1.0), starts: Sequence[Sequence[float]] = CAGRAD_STARTS
) -> ToyProblem:
    """CAGrad's toy (seed 001 Fig. 1 / Table A7 with the defaults; seed 003 with ``ALIGNED_MTL_STARTS``).

    The average loss has its global minimum at ``(0, -8.3551)`` (value -15.0916) for equal scales; the
    Pareto set is the segment ``x1 in [-7, 7]`` near ``x2 = -8.36``.
    """
    scales = tuple(float(s) for s in task_scales)
    if len(scales) != 2 or not all(math.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"task_scales must be two finite positive numbers, got {list(task_scales)}")
    return ToyProblem(
        name=f"cagrad{'' if scales == (1.0, 1.0) else f'-{scales[0]:g}-{scales[1]:g}'}",
        losses_fn=partial(cagrad_losses, task_scales=scales),
        starts=_check_starts(starts),
    )


def samo_toy(starts: Sequence[Sequence[float]] = (SAMO_START,)) -> ToyProblem:
    """SAMO's toy (seed 002 sec. 6.1) with its box ``x1 in [-6, 6]``, ``x2 in [-3, 3]`` and start (-6, 1).

    The Pareto set is the segment from the sharp well of f2 at (-4, 0) to the flat basin of f1 at (0, 0).
    """
    return ToyProblem(name="samo", losses_fn=samo_losses, starts=_check_starts(starts), bounds=SAMO_BOUNDS)


def _check_starts(starts: Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    out = []
    for s in starts:
        pair = tuple(float(v) for v in s)
        if len(pair) != 2 or not all(math.isfinite(v) for v in pair):
            raise ValueError(f"every starting point must be two finite numbers, got {s!r}")
        out.append(pair)
    if not out:
        raise ValueError("starts is empty: give at least one starting point")
    return tuple(out)  # type: ignore[return-value]
