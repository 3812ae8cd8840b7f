"""CAGrad's dual solved exactly (issue 13, defects 2 and 3), checked independently of the solver.

For any ``d`` in the ball ``||d - g0|| <= r`` and any ``w`` in the simplex, weak duality gives
``min_i <g_i, d> <= <g_w, d> <= F(w) = <g0, g_w> + r ||g_w||``. A returned direction is optimal iff some ``w``
closes this gap: the certificate is computed here from the gradients themselves (not from the Gramian the solver
sees), with ``w`` read off the returned weights, ``W = b + r w / ||g_w||``. For K = 2 the dual is one-dimensional
and is also minimised independently by golden-section search.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from jacobians import make

from mtl_core import aggregators, solvers

C = 0.4


def badly_scaled(k: int, seed: int, *, conflicting: bool, orders: float = 6.0, n: int = 32) -> np.ndarray:
    """Gaussian (or half sign-flipped) gradients whose norms span ``orders`` orders of magnitude exactly."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((k, n))
    if conflicting:
        g[::2] *= -1.0
        g += 0.3 * rng.standard_normal((k, n))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    exponents = rng.uniform(-orders / 2, orders / 2, k)
    exponents[:2] = (-orders / 2, orders / 2)  # the extremes are always present
    return g * 10.0 ** rng.permutation(exponents)[:, None]


def cagrad(g: np.ndarray, c: float = C) -> tuple[np.ndarray, np.ndarray]:
    agg = aggregators.create("cagrad", num_tasks=g.shape[0], c=c, rescale=0)
    d = agg(torch.from_numpy(g)).numpy()
    return d, agg.last_weights.numpy()


def dual_value(g: np.ndarray, w: np.ndarray, c: float = C) -> float:
    g0 = g.mean(0)
    gw = w @ g
    return float(g0 @ gw + c * np.linalg.norm(g0) * np.linalg.norm(gw))


def golden_section_dual_two_tasks(g: np.ndarray, c: float = C) -> float:
    """``min_{x in [0, 1]} F((x, 1 - x))`` (convex in x) by golden-section search to the float64 limit."""
    lo, hi = 0.0, 1.0
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if dual_value(g, np.array([x1, 1 - x1]), c) <= dual_value(g, np.array([x2, 1 - x2]), c):
            hi = x2
        else:
            lo = x1
    return min(dual_value(g, np.array([x, 1 - x]), c) for x in (0.0, 1.0, (lo + hi) / 2))


def check_optimal(g: np.ndarray, d: np.ndarray, weights: np.ndarray, extra_duals: tuple[float, ...] = ()) -> None:
    k = g.shape[0]
    g0 = g.mean(0)
    r = C * np.linalg.norm(g0)
    assert np.linalg.norm(d - g0) <= r * (1 + 1e-9)
    primal = float((g @ d).min())
    excess = weights - 1.0 / k
    duals = list(extra_duals)
    if excess.sum() > 0:
        duals.append(dual_value(g, excess / excess.sum()))
    dual = min(duals)
    # round-off of the certificate itself: products of the gradients with d and g_w
    noise = 1e-12 * np.linalg.norm(g, axis=1).max() * (np.linalg.norm(d) + np.linalg.norm(g0))
    assert dual - primal <= 1e-9 * abs(primal) + noise, (primal, dual)


@pytest.mark.parametrize("conflicting", [False, True])
@pytest.mark.parametrize("k", [2, 3, 5, 11])
@pytest.mark.parametrize("seed", range(4))
def test_cagrad_is_optimal_with_norms_over_six_orders_of_magnitude(k, seed, conflicting):
    g = badly_scaled(k, seed, conflicting=conflicting)
    d, weights = cagrad(g)
    check_optimal(g, d, weights)
    if k == 2:  # an independent solve of the dual: the same optimal value
        best = golden_section_dual_two_tasks(g)
        primal = float((g @ d).min())
        assert primal == pytest.approx(best, rel=1e-9, abs=1e-12 * np.abs(g).max() ** 2)


@pytest.mark.parametrize("seed", range(3))
def test_cagrad_is_optimal_with_norms_over_eight_orders_of_magnitude_at_k_40(seed):
    g = badly_scaled(40, seed, conflicting=True, orders=8.0)
    d, weights = cagrad(g)
    check_optimal(g, d, weights)


def test_cagrad_finds_the_conflict_free_direction_when_one_exists():
    # norms 1e3 and 1e-3 at 100 degrees: the ball around g0 contains directions improving both tasks
    angle = math.radians(100)
    g = np.array([[1e3, 0.0], [1e-3 * math.cos(angle), 1e-3 * math.sin(angle)]])
    d, weights = cagrad(g)
    check_optimal(g, d, weights)
    assert (g @ d).min() > 0


@pytest.mark.parametrize("k", range(2, 12))
@pytest.mark.parametrize("family", ["random", "conflicting"])
@pytest.mark.parametrize("zero", ["first", "middle"])
@pytest.mark.parametrize("scale", [1.0, 1e-3])
def test_cagrad_with_a_zero_gradient_task_is_optimal(k, family, zero, scale):
    g = make(family, k).double()  # float32 values, as the aggregator gets them from a model
    row = 0 if zero == "first" else k // 2
    g[row] = 0.0
    g = scale * g.numpy()
    d, weights = cagrad(g)
    assert np.isfinite(d).all()
    # the zero task caps the optimum at 0 (F(e_zero) = 0): the certificate gets that dual point too
    check_optimal(g, d, weights, extra_duals=(dual_value(g, np.eye(k)[row]),))


def test_cagrad_direction_is_scale_equivariant_on_badly_scaled_gradients():
    g = badly_scaled(5, 7, conflicting=True)
    d, _ = cagrad(g)
    d_small, _ = cagrad(1e-3 * g)
    np.testing.assert_allclose(d_small, 1e-3 * d, rtol=1e-8, atol=1e-14 * np.abs(d).max())


def test_norm_eps_is_the_reference_toy_regularisation():
    """Cranial-XIX/CAGrad toy.py's ``cagrad`` (c = 0.5, 1e-4 in and after the norms), by golden section."""
    eps, c = 1e-4, 0.5
    rng = np.random.default_rng(3)
    for scale in (1e-3, 1e-2, 1.0, 10.0):
        g = scale * rng.standard_normal((2, 2))
        g11, g12, g22 = g[0] @ g[0], g[0] @ g[1], g[1] @ g[1]
        coef = c * 0.5 * math.sqrt(g11 + g22 + 2 * g12 + eps)

        def objective(x, g11=g11, g12=g12, g22=g22, coef=coef):
            gw_sq = x**2 * g11 + (1 - x) ** 2 * g22 + 2 * x * (1 - x) * g12
            return coef * math.sqrt(gw_sq + eps) + x * (g11 + g12) / 2 + (1 - x) * (g12 + g22) / 2

        lo, hi = 0.0, 1.0
        ratio = (math.sqrt(5) - 1) / 2
        for _ in range(200):
            x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
            lo, hi = (lo, x2) if objective(x1) <= objective(x2) else (x1, hi)
        x = min((0.0, 1.0, (lo + hi) / 2), key=objective)
        gw = x * g[0] + (1 - x) * g[1]
        expected = (g.mean(0) + coef / (math.sqrt(gw @ gw + eps) + eps) * gw) / (1 + c)
        agg = aggregators.create("cagrad", num_tasks=2, c=c, rescale=2, norm_eps=eps)
        np.testing.assert_allclose(agg(torch.from_numpy(g)).numpy(), expected, rtol=1e-7, atol=1e-12 * scale)


# --- K = 2: the closed form (solvers.cagrad_weights_two_tasks) ---------------------------------------------


def two_task_cases() -> dict[str, np.ndarray]:
    """Adversarial two-task Jacobians: every case of the closed form and its limits."""
    rng = np.random.default_rng(11)
    base = rng.standard_normal((2, 5))
    unit = base[0] / np.linalg.norm(base[0])
    cases = {
        "random": base,
        "conflicting": np.stack([unit, -0.6 * unit + 0.2 * rng.standard_normal(5)]),
        "eight_orders": base / np.linalg.norm(base, axis=1, keepdims=True) * np.array([[1e4], [1e-4]]),
        "eight_orders_conflicting": np.stack([1e-4 * unit, -1e4 * (unit + 0.1 * rng.standard_normal(5))]),
        "nearly_parallel": np.stack([base[0], 1.7 * base[0] + 1e-6 * rng.standard_normal(5)]),
        "parallel": np.stack([base[0], 3.0 * base[0]]),
        "antiparallel": np.stack([base[0], -0.5 * base[0]]),
        "antiparallel_eight_orders": np.stack([1e4 * unit, -1e-4 * unit]),
        "zero_first": np.stack([np.zeros(5), base[1]]),
        "zero_second": np.stack([base[0], np.zeros(5)]),
        "equal": np.stack([base[0], base[0]]),
        "tiny_against_sqrt_eps": 1e-6 * base,  # the toy's norm_eps = 1e-4 dominates these norms
        "small_against_sqrt_eps": 1e-3 * np.stack([unit, -0.9 * unit + 0.3 * rng.standard_normal(5)]),
    }
    return cases


CASES = two_task_cases()


def mp_dual_two_tasks(g: np.ndarray, c: float, norm_eps: float) -> tuple[float, np.ndarray | None]:
    """Independent solve in 40-digit arithmetic from the gradients (not the Gramian): golden-section search of
    the convex dual over ``x in [0, 1]``; returns the optimal dual value and ``d`` (None where ``g_w* = 0``)."""
    mp = pytest.importorskip("mpmath")
    with mp.workdps(40):
        rows = [[mp.mpf(float(v)) for v in row] for row in g]
        eps = mp.mpf(norm_eps)
        g0 = [(a + b) / 2 for a, b in zip(*rows)]

        def dot(u, v):
            return mp.fsum(a * b for a, b in zip(u, v))

        r = c * mp.sqrt(dot(g0, g0) + eps / 4) if norm_eps else c * mp.sqrt(dot(g0, g0))

        def g_w(x):
            return [x * a + (1 - x) * b for a, b in zip(*rows)]

        def dual(x):
            v = g_w(x)
            return dot(g0, v) + r * mp.sqrt(dot(v, v) + eps)

        lo, hi, ratio = mp.mpf(0), mp.mpf(1), (mp.sqrt(5) - 1) / 2
        for _ in range(200):  # the bracket shrinks to 0.618^200 ~ 1e-42
            x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
            lo, hi = (lo, x2) if dual(x1) <= dual(x2) else (x1, hi)
        x = min((mp.mpf(0), mp.mpf(1), (lo + hi) / 2), key=dual)
        v = g_w(x)
        norm = mp.sqrt(dot(v, v))
        if norm_eps == 0 and norm <= mp.mpf(10) ** -25 * mp.sqrt(dot(g0, g0) + dot(rows[0], rows[0])):
            return float(dual(x)), None
        step = r / (mp.sqrt(dot(v, v) + eps) + eps) if norm_eps else r / norm
        return float(dual(x)), np.array([float(a + step * b) for a, b in zip(g0, v)])


@pytest.mark.parametrize("norm_eps", [0.0, 1e-4])
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_task_closed_form_matches_a_40_digit_independent_solve(case, norm_eps):
    g = CASES[case]
    c = 0.5 if norm_eps else C  # the toy's c with its norm_eps
    d = solvers.cagrad_weights(g @ g.T, c, norm_eps=norm_eps) @ g
    best, expected = mp_dual_two_tasks(g, c, norm_eps)
    if expected is not None:
        np.testing.assert_allclose(d, expected, rtol=0, atol=1e-13 * np.linalg.norm(expected))
    else:  # g_w* = 0: the optimum is min_i <g_i, d> = 0, reached by every d of the ball that conflicts with no task
        g0 = g.mean(0)
        assert np.linalg.norm(d - g0) <= c * np.linalg.norm(g0) * (1 + 1e-12)
        assert (g @ d).min() >= best - 1e-12 * np.abs(g).max() ** 2


def many_task_cases(k: int) -> dict[str, np.ndarray]:
    """K-task Jacobians (8 coordinates, so the Gramian is positive definite) at the scales that matter for
    ``norm_eps = 1e-4``: far above, around and far below ``sqrt(eps)``, and norms over four orders of magnitude.
    Nearly zero-sum gradients (their mean shrunk to a tenth) keep the dual's optimum inside the simplex when they
    are small against ``sqrt(eps)`` (random ones put it on a vertex there, where no digit can be lost)."""
    rng = np.random.default_rng(100 + k)
    base = rng.standard_normal((k, 8))
    nearly_zero_sum = base - 0.9 * base.mean(0)
    return {
        "random": base,
        "conflicting": badly_scaled(k, 200 + k, conflicting=True, orders=0.0, n=8),
        "four_orders_conflicting": badly_scaled(k, 300 + k, conflicting=True, orders=4.0, n=8),
        "nearly_zero_sum": nearly_zero_sum,
        "small_against_sqrt_eps": 1e-3 * nearly_zero_sum,
        "tiny_against_sqrt_eps": 1e-6 * nearly_zero_sum,  # the toy's norm_eps = 1e-4 dominates these norms
    }


def mp_dual_by_faces(g: np.ndarray, c: float, norm_eps: float) -> np.ndarray:
    """CAGrad's direction for any K, solved independently in 40-digit arithmetic from the gradients (not the
    Gramian the solver gets): ``F(w) = <g0, g_w> + r sqrt(||g_w||^2 + eps)`` is strictly convex on every face of
    the simplex when the gradients are linearly independent (Cauchy-Schwarz: ``x^T M x s^2 > (x^T M w)^2`` for
    ``x`` with ``sum x = 0``), so on each face damped Newton (on its KKT system, from the face's centre) finds the
    minimiser of its affine hull where one exists (where ``F`` is unbounded below there, Newton runs off or its
    Hessian vanishes: such a face holds no optimum); the optimum is the one face whose minimiser is positive and
    no cheaper outside (``dF/dw_i >= lambda`` for every task off the face: the KKT conditions, sufficient for a
    convex problem)."""
    from itertools import combinations

    mp = pytest.importorskip("mpmath")
    with mp.workdps(40):
        k = len(g)
        rows = [[mp.mpf(float(v)) for v in row] for row in g]
        eps = mp.mpf(norm_eps)

        def dot(u, v):
            return mp.fsum(x * y for x, y in zip(u, v))

        g0 = [mp.fsum(col) / k for col in zip(*rows)]
        m = [[dot(gi, gj) for gj in rows] for gi in rows]
        a = [dot(gi, g0) for gi in rows]
        r = c * mp.sqrt(dot(g0, g0) + eps / k**2)  # c ||sum_i g_i (augmented)|| / K

        def norm(w):  # the augmented ||g_w||
            return mp.sqrt(mp.fsum(w[i] * m[i][j] * w[j] for i in range(k) for j in range(k)) + eps)

        def value(w):
            return dot(a, w) + r * norm(w)

        tiny = mp.mpf(10) ** -32
        for size in range(1, k + 1):
            for face in combinations(range(k), size):
                w = [mp.mpf(1) / size if i in face else mp.mpf(0) for i in range(k)]
                converged = False
                for _ in range(200):
                    s = norm(w)
                    mw = [dot(m[i], w) for i in range(k)]
                    grad = [a[i] + r * mw[i] / s for i in range(k)]
                    kkt = mp.matrix(size + 1, size + 1)
                    rhs = mp.matrix(size + 1, 1)
                    for p, i in enumerate(face):
                        for q, j in enumerate(face):
                            kkt[p, q] = r * (m[i][j] / s - mw[i] * mw[j] / s**3)
                        kkt[p, size] = kkt[size, p] = 1
                        rhs[p] = -grad[i]
                    try:
                        step = mp.lu_solve(kkt, rhs)
                    except ZeroDivisionError:  # the Hessian vanished: F is asymptotically linear on this face
                        break
                    dw = [mp.mpf(0)] * k
                    for p, i in enumerate(face):
                        dw[i] = step[p]
                    if max(abs(v) for v in dw) < tiny:
                        converged = True
                        break
                    # Armijo backtracking far from the minimiser; near it full steps (quadratic convergence), whose
                    # decrease of F falls below the 40 digits
                    t, slope, far = mp.mpf(1), dot(grad, dw), max(abs(v) for v in dw) > 1e-12
                    while far and t > tiny and value([x + t * y for x, y in zip(w, dw)]) > value(w) + t * slope / 4:
                        t /= 2
                    w = [x + t * y for x, y in zip(w, dw)]
                    if max(abs(v) for v in w) > 1e6:  # running off: unbounded below on this face
                        break
                if not converged:
                    continue
                lam = mp.fsum(grad[i] for i in face) / size
                scale = mp.fsum(abs(v) for v in grad)
                if min(w[i] for i in face) > 0 and all(grad[i] >= lam - tiny * scale for i in range(k)):
                    gw = [mp.fsum(w[i] * rows[i][j] for i in range(k)) for j in range(len(g0))]
                    step_length = r / (norm(w) + eps) if norm_eps else r / norm(w)
                    return np.array([float(x + step_length * y) for x, y in zip(g0, gw)])
        raise AssertionError("no face satisfies the KKT conditions")


@pytest.mark.parametrize("norm_eps", [0.0, 1e-4])
@pytest.mark.parametrize("case", sorted(many_task_cases(3)))
@pytest.mark.parametrize("k", [3, 5])
def test_general_solver_matches_a_40_digit_independent_solve(k, case, norm_eps):
    """The exact reduction for K >= 3 (NNLS + root-find) with and without the toy's ``norm_eps``: the general path
    used to solve ``M + eps 1 1^T``, losing ``eps``'s digits against themselves when the gradients are small
    against ``sqrt(eps)`` (measured: up to 1.3e-5 relative off this solve; now 3e-15)."""
    g = many_task_cases(k)[case]
    c = 0.5 if norm_eps else C  # the toy's c with its norm_eps
    d = solvers.cagrad_weights(g @ g.T, c, norm_eps=norm_eps) @ g
    expected = mp_dual_by_faces(g, c, norm_eps)
    np.testing.assert_allclose(d, expected, rtol=0, atol=1e-13 * np.linalg.norm(expected))


@pytest.mark.parametrize("norm_eps", [0.0, 1e-4])
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_task_closed_form_matches_the_general_solver(case, norm_eps):
    g = CASES[case]
    m = g @ g.T
    d = solvers.cagrad_weights_two_tasks(m, C, norm_eps=norm_eps) @ g
    d_general = solvers._cagrad_weights_general(m, C, norm_eps=norm_eps) @ g
    # with norm_eps too: the general solver keeps eps out of the Gramian it solves, as the closed form does (it
    # used to solve M + eps, 2.5e-7 relative off the 40-digit solve where the gradients are small against sqrt(eps))
    np.testing.assert_allclose(d, d_general, rtol=0, atol=1e-10 * np.linalg.norm(d_general))


@pytest.mark.parametrize("seed", range(3))
def test_two_task_closed_form_is_optimal_on_random_badly_scaled_pairs(seed):
    rng = np.random.default_rng(seed)
    for _ in range(50):
        g = rng.standard_normal((2, 3)) * 10.0 ** rng.uniform(-4, 4, (2, 1))
        d, weights = cagrad(g)
        check_optimal(g, d, weights)


def test_a_stack_of_gramians_is_solved_bitwise_as_one_by_one():
    rng = np.random.default_rng(5)
    g = rng.standard_normal((40, 2, 3)) * 10.0 ** rng.uniform(-4, 4, (40, 2, 1))
    g[3, 1] = 0.0  # a zero row (the row-wise fallback)
    g[4, 1] = -2.0 * g[4, 0]  # antiparallel
    g[5] = 0.0  # g0 = 0
    grams = g @ g.transpose(0, 2, 1)
    for norm_eps in (0.0, 1e-4):
        stacked = solvers.cagrad_weights_two_tasks(grams, C, norm_eps=norm_eps)
        assert stacked.shape == (40, 2)
        for i in range(40):
            np.testing.assert_array_equal(stacked[i], solvers.cagrad_weights(grams[i], C, norm_eps=norm_eps))
        agg = aggregators.create("cagrad", num_tasks=2, c=C, norm_eps=norm_eps)
        np.testing.assert_array_equal(agg.weights_from_gramians(grams), stacked / (1 + C**2))
    with pytest.raises(ValueError, match=r"\[\.\.\., 2, 2\]"):
        solvers.cagrad_weights_two_tasks(np.eye(3), C)


def test_two_tasks_take_the_closed_form_without_any_iterative_solve(monkeypatch):
    """The speed-up, timing-free: K = 2 runs no NNLS at all (the general path runs 15-33 per call)."""
    calls = {"nnls": 0, "closed_form": 0}
    real_nnls, real_closed_form = solvers.nnls, solvers.cagrad_weights_two_tasks

    def counting_nnls(*args, **kwargs):
        calls["nnls"] += 1
        return real_nnls(*args, **kwargs)

    def counting_closed_form(*args, **kwargs):
        calls["closed_form"] += 1
        return real_closed_form(*args, **kwargs)

    monkeypatch.setattr(solvers, "nnls", counting_nnls)
    monkeypatch.setattr(solvers, "cagrad_weights_two_tasks", counting_closed_form)
    for case in ("random", "conflicting", "eight_orders", "parallel"):
        cagrad(CASES[case])
    assert calls == {"nnls": 0, "closed_form": 4}
    solvers._cagrad_weights_general(CASES["random"] @ CASES["random"].T, C)  # the counter does count
    assert calls["nnls"] >= 10
    calls["nnls"] = 0
    cagrad(CASES["zero_second"])  # g_w* = 0: one NNLS for the direction closest to g0, no dual iterations
    assert calls["nnls"] == 1
