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

from mtl_core import aggregators

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
