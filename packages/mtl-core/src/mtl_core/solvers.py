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
    ridge: float = 1e-10,
    init: np.ndarray | None = None,
) -> np.ndarray:
    """Solve ``M w = w^(-power)`` for ``w > 0`` (element-wise power), ``power > 0``.

    This is the stationarity condition of the strictly convex problem
    ``min_{w > 0} 1/2 w^T M w - sum_i F(w_i)`` with ``F'(w) = w^(-power)``, solved by Newton's method with a
    backtracking line search that keeps ``w > 0`` (quadratic convergence, Hessian ``M + power diag(w^(-power-1))``
    is positive definite). Covers Nash-MTL (``power = 1``: ``G G^T a = 1/a``, Navon et al. 2022 eq. (2)),
    FairGrad (``power = 1/alpha``: ``G G^T w = w^(-1/alpha)``, Ban & Ji 2024 eq. (6)) and ConsMTL's upper
    level (``power = 1/2``: ``G^T G a = sqrt(1/a)``, seed 004 eq. (5)).

    A singular ``M`` can make the problem unbounded (a non-negative combination of gradients that is zero);
    a ridge of ``ridge * trace(M) / K`` on the diagonal makes the solution unique and finite.
    """
    k = m.shape[0]
    m = (m + m.T) / 2
    scale = np.trace(m) / k
    if scale <= 0:
        raise ValueError("all task gradients are zero: the fixed point M w = w^(-p) has no finite solution")
    # Scale-free problem: with M = s * M1, w = s^(-1/(1+p)) * w1 where M1 w1 = w1^(-p).
    m1 = m / scale + ridge * np.eye(k)
    w = np.ones(k) if init is None else np.clip(np.asarray(init, dtype=np.float64), 1e-12, None)
    if init is None:  # best multiple of 1: t^(1+p) * (1^T M1 1) = K
        w *= (k / max(m1.sum(), 1e-300)) ** (1.0 / (1.0 + power))

    def objective(x: np.ndarray) -> float:
        f = np.log(x).sum() if power == 1.0 else (x ** (1.0 - power)).sum() / (1.0 - power)
        return 0.5 * x @ m1 @ x - f

    for _ in range(max_iter):
        residual = m1 @ w - w ** (-power)
        if np.linalg.norm(residual) <= tol * np.linalg.norm(w ** (-power)):
            break
        hess = m1 + np.diag(power * w ** (-power - 1.0))
        step = np.linalg.solve(hess, -residual)
        # largest step keeping w > 0, then Armijo backtracking on the convex objective
        neg = step < 0
        t = min(1.0, 0.99 * np.min(-w[neg] / step[neg])) if neg.any() else 1.0
        f0, slope = objective(w), residual @ step
        while t > 1e-14 and objective(w + t * step) > f0 + 1e-4 * t * slope:
            t *= 0.5
        w = w + t * step
    return w * scale ** (-1.0 / (1.0 + power))


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
