"""Exact float64 solvers for the K x K problems of the gradient aggregators.

All take the Gramian ``M = G G^T`` (K x K, symmetric PSD) as a NumPy float64 array: K is at most a few
dozen, so these run on the host; only the K x K matrix and K weights cross the device boundary.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, nnls


def _psd_factor(m: np.ndarray) -> np.ndarray:
    """``A`` with ``A^T A = M`` (square root through the eigen-decomposition, clipping round-off < 0)."""
    lam, v = np.linalg.eigh((m + m.T) / 2)
    return np.sqrt(np.clip(lam, 0.0, None))[:, None] * v.T


def min_norm_simplex(m: np.ndarray) -> np.ndarray:
    """Exact minimiser of ``w^T M w`` over the probability simplex (the min-norm point of the convex hull).

    Reduction to non-negative least squares (Lawson-Hanson active set, exact in finite steps): with
    ``A^T A = M``, ``u* = argmin_{u >= 0} ||A u||^2 + (1^T u - 1)^2`` equals ``w* / (1 + ||G^T w*||^2)``
    for the simplex minimiser ``w*`` (write ``u = t w``; the optimum is ``t = 1 / (1 + w^T M w)``), so
    ``w* = u* / 1^T u*``. Used by MGDA (Sener & Koltun 2018, eq. (3); Désidéri 2012).
    """
    k = m.shape[0]
    if k == 1:
        return np.ones(1)
    scale = np.trace(m) / k
    if scale <= 0:  # all gradients are zero: every point of the simplex is optimal
        return np.full(k, 1.0 / k)
    a = np.vstack([_psd_factor(m / scale), np.ones((1, k))])
    b = np.zeros(k + 1)
    b[-1] = 1.0
    u, _ = nnls(a, b, maxiter=50 * k)
    return u / u.sum()


def positive_fixed_point(
    m: np.ndarray,
    power: float,
    *,
    tol: float = 1e-10,
    max_iter: int = 200,
    ridges: tuple[float, ...] = (1e-10, 1e-8, 1e-6),
) -> np.ndarray:
    """Solve ``M w = w^(-power)`` for ``w > 0`` (element-wise power), ``power > 0``.

    This is the stationarity condition of the strictly convex problem
    ``min_{w > 0} 1/2 w^T M w - sum_i F(w_i)`` with ``F'(w) = w^(-power)``, solved by Newton's method with a
    backtracking line search that keeps ``w > 0`` (quadratic convergence; the Hessian
    ``M + power diag(w^(-power-1))`` is positive definite). Covers Nash-MTL (``power = 1``: ``G G^T a = 1/a``,
    Navon et al. 2022 eq. (2)), FairGrad (``power = 1/alpha``: ``G G^T w = w^(-1/alpha)``, Ban & Ji 2024 eq. (6))
    and ConsMTL's upper level (``power = 1/2``: ``G^T G a = sqrt(1/a)``, seed 004 eq. (5)).

    Gradient norms can differ by orders of magnitude, so the problem is solved in Jacobi-scaled variables
    ``w = S v`` with ``S = diag(M_ii^(-1/2))``: ``C v = c * v^(-power)`` with the unit-diagonal ``C = S M S`` and
    ``c_i = s_i^(1-power)``. A singular ``M`` can make the problem unbounded (a non-negative combination of
    gradients that vanishes): if Newton does not converge on ``C``, the smallest of ``ridges`` added to ``C``'s
    unit diagonal that lets it converge is used, which keeps the solution finite.
    """
    k = m.shape[0]
    m = (m + m.T) / 2
    diag = np.diag(m).copy()
    if not (diag > 0).any():
        raise ValueError("all task gradients are zero: the fixed point M w = w^(-p) has no finite solution")
    diag = np.maximum(diag, diag.max() * 1e-30)  # a zero gradient gets a huge (finite) weight
    s = diag**-0.5
    c_mat = s[:, None] * m * s[None, :]
    c = s ** (1.0 - power)
    # exact first; only a system that does not converge (singular C) gets the smallest ridge that works
    for r in (0.0, *ridges):
        v, converged = _newton_fixed_point(c_mat + r * np.eye(k), c, power, tol, max_iter)
        if converged:
            return s * v
    return s * v


def _newton_fixed_point(
    c_mat: np.ndarray, c: np.ndarray, power: float, tol: float, max_iter: int
) -> tuple[np.ndarray, bool]:
    """Newton's method for ``C v = c * v^(-power)``, ``v > 0``; returns ``(v, converged)``."""

    def objective(v: np.ndarray) -> float:
        f = np.log(v) if power == 1.0 else v ** (1.0 - power) / (1.0 - power)
        return 0.5 * v @ c_mat @ v - c @ f

    # start from the best multiple of c^(1/(1+p)) (the solution when C is the identity)
    v = c ** (1.0 / (1.0 + power))
    v = v * ((c * v ** (1.0 - power)).sum() / max(v @ c_mat @ v, 1e-300)) ** (1.0 / (1.0 + power))
    for _ in range(max_iter):
        target = c * v ** (-power)
        residual = c_mat @ v - target
        rel = np.linalg.norm(residual / target)
        if rel <= tol:
            return v, True
        hess = c_mat + np.diag(power * c * v ** (-power - 1.0))
        try:
            step = np.linalg.solve(hess, -residual)
        except np.linalg.LinAlgError:
            return v, False
        # the largest step keeping v > 0; far from the solution, Armijo backtracking on the convex objective
        # (near it, full Newton steps: the objective's decrease falls below float64 round-off there)
        neg = step < 0
        alpha = min(1.0, 0.99 * np.min(-v[neg] / step[neg])) if neg.any() else 1.0
        if rel > 1e-3:
            f0, slope = objective(v), residual @ step
            while alpha > 1e-14 and objective(v + alpha * step) > f0 + 1e-4 * alpha * slope:
                alpha *= 0.5
        v = v + alpha * step
        if not np.isfinite(v).all() or v.max() > 1e150:
            return v, False
    return v, False


def cagrad_weights(m: np.ndarray, c: float) -> np.ndarray:
    """CAGrad's inner problem ``min_{w in simplex} w^T M 1/K + c ||g0|| sqrt(w^T M w)``.

    Liu et al. 2021 (CAGrad) eq. (4)/Alg. 1 dual, with ``g0`` the mean gradient and ``||g0||^2 = 1^T M 1 / K^2``.
    Convex (linear + norm); solved with SLSQP and analytic gradients in float64 from the uniform point.
    """
    k = m.shape[0]
    b = np.full(k, 1.0 / k)
    scale = np.trace(m) / k
    if scale <= 0:
        return b
    m1 = m / scale  # the minimiser is invariant to the scale of M
    mb = m1 @ b
    g0_norm = np.sqrt(max(b @ mb, 0.0))
    cn = c * g0_norm

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        mw = m1 @ w
        q = np.sqrt(max(w @ mw, 1e-20))
        return w @ mb + cn * q, mb + cn * mw / q

    res = minimize(
        fun,
        b,
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * k,
        constraints=({"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)},),
        options={"ftol": 1e-13, "maxiter": 500},
    )
    w = np.clip(res.x, 0.0, None)
    return w / w.sum()


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the probability simplex (Duchi et al. 2008, sort-based)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    idx = np.arange(1, v.size + 1)
    rho = np.nonzero(u - css / idx > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1.0), 0.0)
