"""Property kit: every registered aggregator and weighting against the properties its paper states.

Parametrised over ``aggregators.names()`` and ``weightings.names()``: a newly registered method runs through
every property and fails until it has an entry in ``AGGREGATOR_SPECS`` / ``WEIGHTING_SPECS`` saying what its
paper promises. Properties (in the spirit of TorchJD's ``tests/unit/aggregation/_asserts.py``):

- permutation equivariance (over a two-step sequence, so the state is covered),
- positive-scale behaviour: ``d(s G) = s^p d(G)`` with the method's degree ``p`` for ``s`` over 8 orders of
  magnitude, and the behaviour under per-task rescaling of (loss, gradient): invariant, invariant in direction,
  or neither,
- non-conflict where the method promises it (``min_i <g_i, d> >= 0``), CAGrad's conflict-averse bound,
- a zero row, duplicated rows, ``K = 1`` (closed form), rank-deficient and Pareto-stationary Jacobians, row
  norms over 8 orders of magnitude, float32 vs float64 agreement, seeded determinism.

A property a method legitimately does not have is declared once, in ``DECLARED_EXCEPTIONS`` (reason and
citation), and runs as a strict xfail so the declaration cannot go stale. ``KNOWN_DEFECTS`` lists the cases
that fail because of a defect in ``mtl_core`` itself (strict xfails that flip when the fix lands).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from mtl_core import aggregators, weightings

# --- Jacobian families ------------------------------------------------------------------------------------

N = 16  # parameters per task gradient: > K for every family but "wide" (K > n)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def jacobian(family: str, k: int, seed: int = 0) -> torch.Tensor:
    """A float64 ``[k, N]`` Jacobian of the named family (deterministic in ``seed``)."""
    g = _gen(10_000 * seed + 100 * k + len(family))
    base = torch.randn(k, N, generator=g, dtype=torch.float64)
    if family == "random":
        return base
    if family == "conflicting":  # half the tasks pull against the other half
        shared = torch.randn(N, generator=g, dtype=torch.float64)
        signs = torch.tensor([(-1.0) ** i for i in range(k)], dtype=torch.float64)
        return signs[:, None] * shared + 0.3 * base
    if family == "rank_deficient":  # rank 2, rows in a pointed cone: not Pareto-stationary
        cone = torch.rand(k, 2, generator=g, dtype=torch.float64) + 0.1
        basis = torch.randn(2, N, generator=g, dtype=torch.float64)
        basis[1] = basis[1] - (basis[1] @ basis[0]) / (basis[0] @ basis[0]) * basis[0] + 0.3 * basis[0]
        return cone @ basis
    if family == "wild_norms":  # row norms over 8 orders of magnitude
        scales = 10.0 ** torch.linspace(-4, 4, k, dtype=torch.float64)
        return scales[:, None] * base / base.norm(dim=1, keepdim=True)
    if family == "stationary":  # 0 is in the convex hull: g_0 = -(g_1 + ... ) / (k - 1)
        out = base.clone()
        out[0] = -out[1:].mean(0)
        return out
    if family == "wide":  # K > n: rank n, Pareto-stationary almost surely
        return torch.randn(k, 3, generator=g, dtype=torch.float64) @ torch.randn(3, N, generator=g, dtype=torch.float64)
    raise ValueError(family)


def losses_for(k: int) -> torch.Tensor:
    return torch.linspace(0.5, 2.0, k, dtype=torch.float64)


# --- what each method promises ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AggregatorSpec:
    """The properties an aggregator's paper states (functions of the created instance for hyper-parameters).

    scale_degree: ``p`` with ``d(s G, L) = s^p d(G, L)`` for ``s > 0``.
    task_scale: under ``(L_i, g_i) -> (c_i L_i, c_i g_i)``: ``"invariant"`` (same ``d``), ``"direction"``
        (same direction), ``None`` (neither promised).
    non_conflict: ``"min_norm"`` (``<g_i, d> >= ||d||^2``), ``"positive"`` (``<g_i, d> >= 0``),
        ``"two_tasks"`` (``>= 0`` for K = 2 only), ``"conflict_averse"`` (CAGrad's max-min in its ball), ``None``.
    k1_factor: ``c`` with ``d = c g`` for one task (gradient norm, loss, instance).
    zero_row: ``"ignored"`` (same ``d`` as without the task), ``"zero"`` (``d = 0``), ``None``.
    duplicate: ``"unchanged"`` (same ``d`` as without the copy), ``"equal_weights"``, ``None``.
    norm_eps: an additive epsilon on gradient norms (as in the reference code), loosening scale tolerances.
    """

    cite: str
    scale_degree: Callable[[object], float]
    task_scale: Callable[[object], str | None]
    non_conflict: str | None
    k1_factor: Callable[[float, float, object], float]
    zero_row: str | None
    duplicate: str | None
    norm_eps: float = 0.0


def _one(*_: object) -> float:
    return 1.0


def _const(value: object) -> Callable[[object], object]:
    return lambda *_: value


def _fair_degree(alpha: float) -> float:
    # G G^T w = w^(-1/alpha): w(sG) = s^(-2 alpha / (alpha + 1)) w(G), d = w @ G
    return (1.0 - alpha) / (1.0 + alpha)


AGGREGATOR_SPECS: dict[str, AggregatorSpec] = {
    "aligned_mtl": AggregatorSpec(
        "seed 003 eq. (4)-(5): B G has equal singular values; B is invariant to a global scale",
        _const(1.0),
        _const(None),
        None,
        _one,
        "ignored",
        "equal_weights",
    ),
    "cagrad": AggregatorSpec(
        "Liu et al. 2021 eq. (3)-(4): max_{||d - g0|| <= c||g0||} min_i <g_i, d>; Alg. 1 rescale 1 / (1 + c^2)",
        _const(1.0),
        _const(None),
        "conflict_averse",
        lambda gn, loss, a: (1.0 + a.c) / {0: 1.0, 1: 1.0 + a.c**2, 2: 1.0 + a.c}[a.rescale],
        None,
        "equal_weights",
    ),
    "consmtl": AggregatorSpec(
        "seed 004 eq. (5): G G^T a = a^(-1/2), so <g_i, d> = a_i^(-1/2) > 0; a(sG) = s^(-4/3) a(G)",
        _const(-1.0 / 3.0),
        _const(None),
        "positive",
        lambda gn, loss, a: gn ** (-4.0 / 3.0),
        "ignored",
        "equal_weights",
    ),
    "db_mtl": AggregatorSpec(
        "Lin et al. 2023 eq. (4)-(6): log-loss gradients g_i / L_i scaled to the largest tracked norm",
        _const(1.0),
        _const("invariant"),
        None,
        lambda gn, loss, a: (1.0 - a.beta) / loss,
        "ignored",
        None,
        norm_eps=1e-8,
    ),
    "fairgrad": AggregatorSpec(
        "Ban & Ji 2024 eq. (6): G G^T w = w^(-1/alpha), so <g_i, d> = w_i^(-1/alpha) > 0; alpha = 1 is Nash-MTL",
        lambda a: _fair_degree(a.alpha),
        lambda a: "invariant" if a.alpha == 1.0 else None,
        "positive",
        lambda gn, loss, a: gn ** (-2.0 * a.alpha / (a.alpha + 1.0)),
        "ignored",
        "equal_weights",
    ),
    "graddrop": AggregatorSpec(
        "Chen et al. 2020 eq. (1)-(3): the sign purity is scale-free, kept coordinates add up",
        _const(1.0),
        _const(None),
        None,
        _one,
        "ignored",
        None,
        norm_eps=1e-12,
    ),
    "gradnorm": AggregatorSpec(
        "Chen et al. 2018 eq. (1)-(2): d = w @ G with the weights before their update (w = 1 at the first call)",
        _const(1.0),
        _const(None),
        None,
        _one,
        "ignored",
        "equal_weights",
    ),
    "gradvac": AggregatorSpec(
        "Wang et al. 2021 eq. (3)-(5): cosine targets are scale-free, corrections scale with the gradients",
        _const(1.0),
        _const(None),
        None,
        _one,
        "ignored",
        None,
    ),
    "imtl": AggregatorSpec(
        "Liu et al. 2021 (IMTL-G) eq. (8)-(10): equal projections on the unit gradients, sum a = 1 (on a "
        "rank-deficient Jacobian with 3+ directions in a plane that forces d = 0)",
        _const(1.0),
        _const("direction"),
        None,
        _one,
        "ignored",
        "unchanged",
    ),
    "mgda": AggregatorSpec(
        "Sener & Koltun 2018 eq. (3): the min-norm point of conv(g_i); KKT gives <g_i, d> >= ||d||^2",
        _const(1.0),
        _const(None),
        "min_norm",
        _one,
        "zero",
        "unchanged",
    ),
    "moco": AggregatorSpec(
        "Fernando et al. 2023 Alg. 1 with the authors' normalisation of g_i to norm L_i (scale-free in G)",
        lambda a: 0.0 if a.normalize else 1.0,
        _const(None),
        None,
        lambda gn, loss, a: a.beta * (loss / gn if a.normalize else 1.0),
        None,
        None,
        norm_eps=1e-8,
    ),
    "nash_mtl": AggregatorSpec(
        "Navon et al. 2022 eq. (2)-(3): G G^T a = 1/a, so <g_i, d> = 1/a_i > 0, ||d|| = sqrt(K) and d is "
        "invariant to every per-task scale (sec. 3: 'invariant to the scale of the losses'); max_norm caps ||d||",
        _const(0.0),
        _const("invariant"),
        "positive",
        lambda gn, loss, a: min(1.0, a.max_norm or math.inf) / gn,
        "ignored",
        "equal_weights",
    ),
    "pcgrad": AggregatorSpec(
        "Yu et al. 2020 Alg. 1 and Theorem 1 (two tasks: the projected sum conflicts with neither)",
        _const(1.0),
        _const(None),
        "two_tasks",
        _one,
        "ignored",
        None,
    ),
}


@dataclass(frozen=True)
class WeightingSpec:
    """What a loss weighting promises.

    loss_scale: under ``L_i -> c_i L_i`` (and so ``g_i -> c_i g_i``): ``"weights_unchanged"`` (``w(cL) = w(L)``),
        ``"gradient_invariant"`` (``c_i w_i(cL) = w_i(L)``: the weighted gradient is unchanged),
        ``"gradient_direction"`` (``c_i w_i(cL)`` proportional to ``w_i(L)``).
    k1_weight: the weight of a single task with loss ``L``.
    zero_loss: ``"finite"`` (finite non-negative weights) or ``"raises"`` (``ValueError``: the method takes logs).
    """

    cite: str
    loss_scale: str
    k1_weight: Callable[[float], float]
    zero_loss: str


WEIGHTING_SPECS: dict[str, WeightingSpec] = {
    "dwa": WeightingSpec(
        "Liu et al. 2019 (MTAN) eq. (7): weights from loss ratios", "weights_unchanged", _one, "finite"
    ),
    "famo": WeightingSpec(
        "Liu et al. 2023 eq. (5)-(8): gradient of sum_i z_i log L_i / c", "gradient_direction", _one, "finite"
    ),
    "gls": WeightingSpec("Chennupati et al. 2019: gradient of (prod L_i)^(1/K)", "gradient_direction", _one, "raises"),
    "imtl_l": WeightingSpec(
        "Liu et al. 2021 eq. (5): learned e^{s_i}, s = 0 at start", "weights_unchanged", _one, "finite"
    ),
    "ls": WeightingSpec("linear scalarisation: fixed weights", "weights_unchanged", _one, "finite"),
    "rlw": WeightingSpec("Lin et al. 2022: softmax of N(0, I) draws", "weights_unchanged", _one, "finite"),
    "si": WeightingSpec(
        "Navon et al. 2022 baseline: gradient of sum_i log L_i", "gradient_invariant", lambda loss: 1 / loss, "raises"
    ),
    "uw": WeightingSpec(
        "Kendall et al. 2018 eq. (7): learned 1/2 exp(-s_i), s = 0 at start",
        "weights_unchanged",
        lambda loss: 0.5,
        "finite",
    ),
    "uw_o": WeightingSpec(
        "seed 001 eq. (12)-(13): L_t / sg[L_t]", "gradient_invariant", lambda loss: 1 / loss, "raises"
    ),
}

# --- declared exceptions and known defects (the one place) ------------------------------------------------

RANDOM_ORDER = (
    "the task order of the projections is drawn at random (PCGrad Alg. 1 'in random order'; GradVac eq. (5) as "
    "LibMTL's random.shuffle): with K >= 3 a permuted input draws different orders, equivariant only in "
    "distribution"
)

RANDOM_ORDER_ZERO_ROW = (
    "a zero task is skipped by every projection, but its presence changes the random orders drawn (permutations "
    "of K, not K - 1, tasks; PCGrad Alg. 1, GradVac eq. (5)): with 3 or more other tasks the result differs from "
    "the run without it (exactly ignored for K <= 3, tested)"
)
RLW_DRAWS = (
    "RLW draws w ~ softmax(N(0, I)) independently of the losses (Lin et al. 2022 sec. 3; LibMTL RLW.py): with a "
    "fixed seed a permuted or duplicated task gets another draw; the weights are exchangeable only in distribution"
)

#: (method, property) -> (condition on the case id, reason with citation). Runs as a strict xfail.
#: The random-order cases are those of the grid where the drawn orders change the result (a conflicting pair
#: whose projection order matters); ``test_random_order_methods_are_equivariant_in_distribution`` checks the
#: property they do have.
DECLARED_EXCEPTIONS: dict[tuple[str, str], tuple[Callable[[str], bool], str]] = {
    ("pcgrad", "permutation"): (lambda case: case in ("conflicting-4", "wild_norms-5"), RANDOM_ORDER),
    ("gradvac", "permutation"): (lambda case: case in ("random-3", "conflicting-4", "wild_norms-5"), RANDOM_ORDER),
    ("pcgrad", "zero_row"): (lambda case: case in ("random-10", "random-11"), RANDOM_ORDER_ZERO_ROW),
    ("gradvac", "zero_row"): (lambda case: case in ("random-10", "random-11"), RANDOM_ORDER_ZERO_ROW),
    ("rlw", "permutation"): (lambda case: True, RLW_DRAWS),
    ("rlw", "duplicate"): (lambda case: True, RLW_DRAWS),
}

#: (method, property, case id or None for all cases) -> reason. Strict xfails; removed when the fix merges.
#: (issue 13's defects 1, 2, 3 and 5 were fixed on branch core-fix: their entries are gone.)
KNOWN_DEFECTS: dict[tuple[str, str, str | None], str] = {}


def marks(method: str, prop: str, case: str = "") -> list[pytest.MarkDecorator]:
    """The xfail marks of the declared exceptions and known defects for one test case."""
    out = []
    declared = DECLARED_EXCEPTIONS.get((method, prop))
    if declared is not None and declared[0](case):
        out.append(pytest.mark.xfail(strict=True, reason=declared[1]))
    for key in ((method, prop, case), (method, prop, None)):
        if key in KNOWN_DEFECTS:
            out.append(pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[key]))
            break
    return out


def cases(
    prop: str, grid: list[tuple[str, int]], methods: list[str], applies: Callable[[str, int], bool] | None = None
) -> list:
    """Parameters (method, family, K) with their xfail marks; ``applies`` keeps the cases where the method
    promises the property (a method without a spec is always kept, so it fails on the missing spec)."""
    return [
        pytest.param(m, fam, k, id=f"{m}-{fam}-{k}", marks=marks(m, prop, f"{fam}-{k}"))
        for m in methods
        for fam, k in grid
        if applies is None or m not in AGGREGATOR_SPECS or applies(m, k)
    ]


# --- helpers ----------------------------------------------------------------------------------------------


def create(name: str, k: int):
    return aggregators.create(name, num_tasks=k)


def spec(name: str) -> AggregatorSpec:
    assert name in AGGREGATOR_SPECS, f"aggregator {name!r} has no entry in AGGREGATOR_SPECS: state its properties"
    return AGGREGATOR_SPECS[name]


def run_sequence(name: str, grads: list[torch.Tensor], losses: list[torch.Tensor]):
    """A fresh instance applied to a sequence of steps; returns (last direction, instance)."""
    agg = create(name, grads[0].shape[0])
    for g, loss in zip(grads, losses, strict=True):
        d = agg(g, loss)
    return d, agg


def assert_close_direction(actual: torch.Tensor, expected: torch.Tensor, rtol: float, floor: float = 0.0) -> None:
    """``||actual - expected|| <= rtol * max norm + floor``; ``floor`` (a multiple of the inputs' norm) accepts
    two directions that are both zero to the working precision (IMTL-G on a rank-deficient Jacobian: equal
    projections onto three unit vectors of a plane force ``d = 0``)."""
    scale = max(float(expected.norm()), float(actual.norm()))
    err = float((actual.double() - expected.double()).norm())
    assert err <= rtol * scale + floor + 1e-300, f"relative difference {err / max(scale, 1e-300):.3e} > {rtol:.1e}"


def scale_rtol(name: str, *gs: torch.Tensor) -> float:
    """1e-7, loosened by the method's additive epsilon relative to the smallest non-zero row norm (the
    epsilon acts on internally normalised rows, e.g. DB-MTL's (1 - beta) g_i / L_i: hence the factor 1e3)."""
    eps = spec(name).norm_eps
    smallest = min(float(g.norm(dim=1)[g.norm(dim=1) > 0].min()) for g in gs)
    return 1e-7 + 1e3 * eps / smallest


AGG = aggregators.names()
SEQUENCE = [("random", 2), ("random", 3), ("conflicting", 4), ("wild_norms", 5), ("rank_deficient", 4)]


def test_every_registered_method_has_a_spec():
    assert sorted(AGGREGATOR_SPECS) == AGG, "a registered aggregator lacks a spec (or a spec names none)"
    assert sorted(WEIGHTING_SPECS) == weightings.names(), "a registered weighting lacks a spec"
    for method, *_ in [*DECLARED_EXCEPTIONS, *KNOWN_DEFECTS]:
        assert method in AGG or method in weightings.names(), method


# --- aggregator properties --------------------------------------------------------------------------------


@pytest.mark.parametrize("name,family,k", cases("permutation", SEQUENCE, AGG))
def test_permutation_equivariance(name, family, k):
    """Permuting the tasks (rows and losses, at every step) leaves ``d`` unchanged and permutes the weights."""
    steps = [jacobian(family, k, seed) for seed in (0, 1)]
    losses = [losses_for(k), losses_for(k).flip(0)]
    perm = torch.roll(torch.arange(k), 1)
    d, agg = run_sequence(name, steps, losses)
    dp, aggp = run_sequence(name, [g[perm] for g in steps], [loss[perm] for loss in losses])
    assert_close_direction(dp, d, 1e-8, 1e-12 * float(steps[-1].norm()))
    if agg.last_weights is not None:
        torch.testing.assert_close(aggp.last_weights, agg.last_weights[perm], rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("name", ["pcgrad", "gradvac"])
def test_random_order_methods_are_equivariant_in_distribution(name):
    """K = 3: each task has two projection orders, so 8 outcomes; over 64 seeds the set of outcomes of the
    permuted input equals that of the input (the property behind the declared permutation exceptions)."""
    g, losses = jacobian("conflicting", 3), losses_for(3)
    perm = torch.tensor([2, 0, 1])

    def outcomes(x: torch.Tensor, loss: torch.Tensor) -> set[tuple[float, ...]]:
        runs = (aggregators.create(name, num_tasks=3, seed=seed)(x, loss) for seed in range(64))
        return {tuple(np.round(d.numpy(), 9)) for d in runs}

    plain, permuted = outcomes(g, losses), outcomes(g[perm], losses[perm])
    assert len(plain) > 1, "the case must have order-dependent outcomes"
    assert plain == permuted


SCALE_GRID = [("random", 1), ("random", 3), ("conflicting", 4), ("wild_norms", 3)]


@pytest.mark.parametrize(
    "name,family,k,s",
    [
        pytest.param(m, fam, k, s, id=f"{m}-{fam}-{k}-s{s}", marks=marks(m, "global_scale", f"{fam}-{k}-s{s}"))
        for m in AGG
        for fam, k in SCALE_GRID
        for s in (1e-4, 1e4)
    ],
)
def test_global_scale_degree(name, family, k, s):
    """``d(s G) = s^p d(G)`` with the degree ``p`` of the method's equation, for s = 1e-4 and 1e4."""
    g, losses = jacobian(family, k), losses_for(k)
    d, agg = run_sequence(name, [g], [losses])
    ds, _ = run_sequence(name, [s * g], [losses])
    p = spec(name).scale_degree(agg)
    assert_close_direction(ds, s**p * d, scale_rtol(name, g, s * g))


TASK_SCALES = torch.tensor([1e-3, 1.0, 30.0, 0.2, 5.0], dtype=torch.float64)


def promises_task_scale(name: str, k: int) -> bool:
    return AGGREGATOR_SPECS[name].task_scale(create(name, k)) is not None


@pytest.mark.parametrize(
    "name,family,k", cases("task_scale", [("random", 3), ("conflicting", 4)], AGG, promises_task_scale)
)
def test_per_task_loss_scale(name, family, k):
    """Rescaling task ``i``'s loss by ``c_i`` (so its gradient too): the promised invariance, in d or direction."""
    kind = spec(name).task_scale(create(name, k))
    g, losses, c = jacobian(family, k), losses_for(k), TASK_SCALES[:k]
    d, _ = run_sequence(name, [g], [losses])
    dc, _ = run_sequence(name, [c[:, None] * g], [c * losses])
    if kind == "direction":
        dc, d = dc / dc.norm(), d / d.norm()
    assert_close_direction(dc, d, 1e-7)


NC_GRID = [
    ("random", 2),
    ("random", 5),
    ("conflicting", 2),
    ("conflicting", 4),
    ("rank_deficient", 4),
    ("wild_norms", 2),
    ("wild_norms", 5),
]


def mgda_direction(g: torch.Tensor) -> torch.Tensor:
    return create("mgda", g.shape[0])(g)


def promises_non_conflict(name: str, k: int) -> bool:
    kind = AGGREGATOR_SPECS[name].non_conflict
    return kind is not None and (kind != "two_tasks" or k == 2)


@pytest.mark.parametrize("name,family,k", cases("non_conflict", NC_GRID, AGG, promises_non_conflict))
def test_non_conflict_where_promised(name, family, k):
    """``min_i <g_i, d> >= 0`` (relative to ``||g_i|| ||d||``) for the methods that promise it."""
    kind = spec(name).non_conflict
    g = jacobian(family, k)
    d, agg = run_sequence(name, [g], [losses_for(k)])
    inner = g @ d
    tol = 1e-9 * g.norm(dim=1) * d.norm()
    if kind == "conflict_averse":
        check_conflict_averse(g, d, agg)
        return
    if kind == "min_norm":
        assert (inner >= d @ d - 1e-9 * g.norm(dim=1).max() * d.norm()).all(), inner
    assert (inner >= -tol).all(), (inner / (g.norm(dim=1) * d.norm())).tolist()


def check_conflict_averse(g: torch.Tensor, d: torch.Tensor, agg) -> None:
    """CAGrad (eq. (3)): ``d_u = d * rescale`` lies in the ball ``||d_u - g0|| <= c ||g0||`` and its worst
    inner product is at least that of two independent points of the ball: ``g0`` and
    ``g0 + c ||g0|| u / ||u||`` with ``u`` the min-norm (MGDA) direction."""
    divisor = {0: 1.0, 1: 1.0 + agg.c**2, 2: 1.0 + agg.c}[agg.rescale]
    du = d * divisor
    g0 = g.mean(0)
    radius = agg.c * g0.norm()
    assert (du - g0).norm() <= radius * (1 + 1e-9) + 1e-12 * g.norm()
    u = mgda_direction(g)
    candidates = [g0] + ([g0 + radius * u / u.norm()] if u.norm() > 0 else [])
    best = max(float((g @ x).min()) for x in candidates)
    worst = float((g @ du).min())
    assert worst >= best - 1e-9 * float(g.norm(dim=1).max() * du.norm()), (worst, best)


ZERO_GRID = [("random", 2), ("random", 3), ("conflicting", 3), ("wild_norms", 3), ("random", 10), ("random", 11)]


@pytest.mark.parametrize("name,family,k", cases("zero_row", ZERO_GRID, AGG))
def test_a_zero_row(name, family, k):
    """A task with a zero gradient: finite; ignored (same ``d`` as without it), ``d = 0`` (MGDA), or for CAGrad
    the conflict-averse bound (its optimum is 0 in ``min_i <g_i, d>``)."""
    g = jacobian(family, k).clone()
    g[1] = 0.0
    losses = losses_for(k)
    d, agg = run_sequence(name, [g], [losses])
    assert torch.isfinite(d).all()
    kind = spec(name).zero_row
    keep = [i for i in range(k) if i != 1]
    if kind == "ignored":
        d_without, _ = run_sequence(name, [g[keep]], [losses[keep]])
        assert_close_direction(d, d_without, 1e-7)
    elif kind == "zero":
        assert float(d.norm()) <= 1e-12 * float(g.norm())
    if spec(name).non_conflict == "conflict_averse":
        check_conflict_averse(g, d, agg)


@pytest.mark.parametrize("name,family,k", cases("duplicate", [("random", 3), ("conflicting", 3)], AGG))
def test_duplicated_rows(name, family, k):
    """A task given twice: unchanged ``d`` (hull/span methods) or equal weights for the two copies."""
    g, losses = jacobian(family, k), losses_for(k)
    gd, ld = torch.cat([g, g[:1]]), torch.cat([losses, losses[:1]])
    dd, agg = run_sequence(name, [gd], [ld])
    assert torch.isfinite(dd).all()
    kind = spec(name).duplicate
    if kind == "unchanged":
        d, _ = run_sequence(name, [g], [losses])
        assert_close_direction(dd, d, 1e-7)
    elif kind == "equal_weights":
        w = agg.last_weights
        assert abs(float(w[0] - w[-1])) <= 1e-7 * float(w.abs().max())


@pytest.mark.parametrize(
    "name,gn",
    [
        pytest.param(m, gn, id=f"{m}-gn{gn}", marks=marks(m, "one_task", f"gn{gn}"))
        for m in AGG
        for gn in (1e-3, 0.5, 40.0)
    ],
)
def test_one_task(name, gn):
    """``K = 1``: ``d = c g`` with the method's closed-form ``c`` (no other task to balance against)."""
    g = jacobian("random", 1)
    g = gn * g / g.norm()
    loss = torch.tensor([0.7], dtype=torch.float64)
    d, agg = run_sequence(name, [g], [loss])
    expected = spec(name).k1_factor(gn, 0.7, agg) * g[0]
    assert_close_direction(d, expected, 1e-8 + 10 * spec(name).norm_eps / gn)


@pytest.mark.parametrize("name,family,k", cases("finite", [("stationary", 3), ("stationary", 5), ("wide", 6)], AGG))
def test_pareto_stationary_and_wide_jacobians_give_finite_directions(name, family, k):
    """0 in the convex hull, or K > n: every method still returns finite weights and direction; MGDA's is 0."""
    g = jacobian(family, k)
    d, agg = run_sequence(name, [g], [losses_for(k)])
    assert torch.isfinite(d).all()
    if agg.last_weights is not None:
        assert torch.isfinite(agg.last_weights).all()
        torch.testing.assert_close(agg.last_weights.to(g.dtype) @ g, d, rtol=1e-9, atol=1e-9 * float(g.norm()))
    if name == "mgda" and family == "stationary":
        assert float(d.norm()) <= 1e-9 * float(g.norm())


@pytest.mark.parametrize(
    "name,family,k", cases("float32", [("random", 3), ("conflicting", 4), ("rank_deficient", 3)], AGG)
)
def test_float32_agrees_with_float64(name, family, k):
    """The same Jacobian in float32 and float64: directions agree to float32 accuracy (K x K work in float64)."""
    g, losses = jacobian(family, k), losses_for(k)
    d64, _ = run_sequence(name, [g], [losses])
    d32, _ = run_sequence(name, [g.float()], [losses.float()])
    assert d32.dtype == torch.float32
    assert_close_direction(d32.double(), d64, 2e-5, 1e-5 * float(g.norm()))


@pytest.mark.parametrize("name", AGG)
def test_seeded_and_deterministic(name):
    """Two fresh instances (same default seed) give bit-identical sequences of directions."""
    steps = [jacobian("conflicting", 4, seed) for seed in range(3)]
    losses = [losses_for(4) * (1 + 0.1 * i) for i in range(3)]
    a, b = create(name, 4), create(name, 4)
    for g, loss in zip(steps, losses, strict=True):
        assert torch.equal(a(g, loss), b(g, loss))


# --- weighting properties ---------------------------------------------------------------------------------

WGT = weightings.names()


def wspec(name: str) -> WeightingSpec:
    assert name in WEIGHTING_SPECS, f"weighting {name!r} has no entry in WEIGHTING_SPECS: state its properties"
    return WEIGHTING_SPECS[name]


def weights_after(name: str, epochs: list[list[torch.Tensor]]) -> torch.Tensor:
    """A fresh weighting fed epochs of per-step losses (FAMO's update after every step, DWA's epoch roll);
    returns the weights of the last call."""
    w = weightings.create(name, num_tasks=epochs[0][0].shape[0])
    out = None
    for steps in epochs:
        for i, losses in enumerate(steps):
            out = w(losses)
            if w.needs_losses_after_step:
                w.after_step(steps[(i + 1) % len(steps)] * 0.9)
        w.end_epoch()
    return out


def loss_epochs(k: int, seed: int = 0, scale: torch.Tensor | None = None) -> list[list[torch.Tensor]]:
    g = _gen(seed + k)
    base = torch.rand(k, generator=g, dtype=torch.float64) + 0.5
    epochs = [
        [base * (1 + 0.3 * torch.rand(k, generator=g, dtype=torch.float64)) / (e + 1) for _ in range(3)]
        for e in range(3)
    ]
    if scale is not None:
        epochs = [[loss * scale for loss in steps] for steps in epochs]
    return epochs


def wcases(prop: str, ks: list[int]) -> list:
    return [pytest.param(m, k, id=f"{m}-{k}", marks=marks(m, prop, f"k-{k}")) for m in WGT for k in ks]


@pytest.mark.parametrize("name,k", wcases("permutation", [2, 4]))
def test_weighting_permutation_equivariance(name, k):
    epochs = loss_epochs(k)
    perm = torch.roll(torch.arange(k), 1)
    w = weights_after(name, epochs)
    wp = weights_after(name, [[loss[perm] for loss in steps] for steps in epochs])
    torch.testing.assert_close(wp, w[perm], rtol=1e-6, atol=0.0)  # FAMO keeps float32 logits (as its reference)


@pytest.mark.parametrize("name,k", wcases("loss_scale", [3]))
def test_weighting_per_task_loss_scale(name, k):
    """Per-task loss scales ``c_i`` over 6 orders of magnitude: the promised behaviour of the weights."""
    c = torch.tensor([1e-3, 1.0, 1e3], dtype=torch.float64)
    w = weights_after(name, loss_epochs(k))
    wc = weights_after(name, loss_epochs(k, scale=c))
    kind = wspec(name).loss_scale
    if kind == "weights_unchanged":
        torch.testing.assert_close(wc, w, rtol=1e-7, atol=0.0)
    elif kind == "gradient_invariant":
        torch.testing.assert_close(c * wc, w, rtol=1e-7, atol=0.0)
    else:  # FAMO adds 1e-8 to L_i (as its reference): 1e-5 relative for losses ~1e-3
        torch.testing.assert_close((c * wc) / (c * wc).sum(), w / w.sum(), rtol=1e-4, atol=0.0)


@pytest.mark.parametrize("name", WGT)
def test_weighting_one_task(name):
    loss = torch.tensor([0.7], dtype=torch.float64)
    w = weights_after(name, [[loss, loss]])
    torch.testing.assert_close(w, torch.tensor([wspec(name).k1_weight(0.7)], dtype=torch.float64))


@pytest.mark.parametrize("name,k", wcases("zero_loss", [2, 3]))
def test_weighting_a_zero_loss(name, k):
    """A task whose loss is 0 for whole epochs: finite non-negative weights, or a ValueError for log-based
    methods."""
    epochs = loss_epochs(k)
    for steps in epochs:
        for loss in steps:
            loss[0] = 0.0
    if wspec(name).zero_loss == "raises":
        with pytest.raises(ValueError, match="> 0"):
            weights_after(name, epochs)
        return
    w = weights_after(name, epochs)
    assert torch.isfinite(w).all() and (w >= 0).all(), w


@pytest.mark.parametrize("name,k", wcases("duplicate", [3]))
def test_weighting_duplicated_task(name, k):
    epochs = loss_epochs(k)
    dup = [[torch.cat([loss, loss[:1]]) for loss in steps] for steps in epochs]
    w = weights_after(name, dup)
    torch.testing.assert_close(w[0], w[-1], rtol=1e-7, atol=0.0)


@pytest.mark.parametrize("name", WGT)
def test_weighting_losses_over_8_orders_and_float32(name):
    """Losses from 1e-4 to 1e4: finite positive weights, the same in float32 and float64."""
    losses = 10.0 ** torch.linspace(-4, 4, 5, dtype=torch.float64)
    epochs = [[losses * (1 + 0.1 * e + 0.01 * i) for i in range(2)] for e in range(3)]
    w64 = weights_after(name, epochs)
    w32 = weights_after(name, [[loss.float() for loss in steps] for steps in epochs])
    assert torch.isfinite(w64).all() and (w64 > 0).all(), w64
    torch.testing.assert_close(w32.double(), w64, rtol=2e-5, atol=0.0)


# --- the README's defaults table says what hparams() says -------------------------------------------------


def readme_defaults() -> list[tuple[str, str, object]]:
    """(method, hyper-parameter, our default) from the defaults table of the package README."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    section = text.split("### Defaults: ours, the paper's, the reference code's", 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[1].startswith("`"):
            continue  # header, separator, or a row that is not a hyper-parameter (e.g. Nash-MTL's equation)
        names, values = (
            re.findall(r"`([^`]+)`", cells[1]),
            [ast.literal_eval(v) for v in re.findall(r"`([^`]+)`", cells[2])],
        )
        assert len(names) == len(values), line
        for method in re.findall(r"`([^`]+)`", cells[0]):
            rows += [(method, hp, value) for hp, value in zip(names, values, strict=True)]
    return rows


@pytest.mark.parametrize(
    "method,hparam,value",
    [pytest.param(m, hp, v, id=f"{m}-{hp}", marks=marks(m, "readme_default", hp)) for m, hp, v in readme_defaults()],
)
def test_readme_defaults_table_matches_hparams(method, hparam, value):
    registry = aggregators if method in AGG else weightings
    assert registry.hparams(method)[hparam] == value
