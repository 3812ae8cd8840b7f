"""Exact float64 solvers for the K x K problems of the gradient aggregators.

All take the Gramian ``M = G G^T`` (K x K, symmetric PSD) as a NumPy float64 array: K is at most a few
dozen, so these run on the host; only the K x K matrix and K weights cross the device boundary.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, nnls


def _psd_factor(m: np.ndarray) -> np.ndarray:
    """``A`` with ``A^T A = M`` (square root through the eigen-decomposition, clipping round-off < 0)."""
    lam, v = np.linalg.eigh((m + m.T) / 2)
    return np.sqrt(np.clip(lam, 0.0, None))[:, None] * v.T


def min_norm_simplex(m: np.ndarray) -> np.ndarray:
    """Exact minimiser of ``w^T M w`` over the probability simplex (the min-norm point of the convex hull).

    Reduction to non-negative least squares (Lawson-Hanson active set, exact in finite steps). The points are
    first scaled to unit norm (``w_i = s_i v_i``, ``s_i = 1 / ||g_i||``, ``C = S M S`` with unit diagonal), so
    norms over many orders of magnitude keep their relative precision; with ``A^T A = C`` and
    ``kappa = min_i ||g_i||``, ``u* = argmin_{u >= 0} ||A u||^2 + (kappa s^T u - 1)^2`` is a positive multiple
    of the minimiser ``v*`` of ``v^T C v`` on ``{v >= 0, s^T v = 1}`` (write ``u = t v``: the optimum over ``t``
    is ``t = kappa / (kappa^2 + v^T C v)``), so ``w* = S u* / 1^T S u*``. Used by MGDA (Sener & Koltun
    2018, eq. (3); Désidéri 2012) and by CAGrad's dual (:func:`cagrad_weights`). A zero point is the min-norm
    point itself.
    """
    k = m.shape[0]
    if k == 1:
        return np.ones(1)
    m = (m + m.T) / 2
    norms = np.sqrt(np.clip(np.diag(m), 0.0, None))
    if norms.max() <= 0:  # all gradients are zero: every point of the simplex is optimal
        return np.full(k, 1.0 / k)
    if (norms == 0).any():  # a zero gradient is a point of norm 0 of the hull
        return np.eye(k)[int(np.argmin(norms))]
    s = 1.0 / norms
    unit = m * s[:, None] * s[None, :]
    np.fill_diagonal(unit, 1.0)
    a = np.vstack([_psd_factor(unit), (norms.min() * s)[None, :]])  # every column has norm in [1, sqrt(2)]
    b = np.zeros(k + 1)
    b[-1] = 1.0
    u, _ = nnls(a, b, maxiter=50 * k)
    w = s * u
    return w / w.sum()


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


#: ``||g_w||`` computed from ``w^T M w`` is round-off below ``1e-7 sum_i w_i ||g_i||`` (relative 1e-14 in ``w^T M w``);
#: CAGrad's dual counts ``g_w*`` as zero below this fraction of the smallest non-zero gradient norm, too
_GW_NOISE = 1e-7


def cagrad_weights(m: np.ndarray, c: float, *, norm_eps: float = 0.0) -> np.ndarray:
    """CAGrad's direction ``d = W @ G`` (Liu et al. 2021, eq. (3)-(4), Alg. 1), as the weights ``W``, exactly.

    ``d = argmax_{||d - g0|| <= r} min_i <g_i, d>`` with ``g0 = G^T b`` (``b = 1/K``) and ``r = c ||g0||``. Its
    dual is ``min_{w in simplex} F(w) = <g0, g_w> + r ||g_w||`` (``g_w = G^T w``) and, when ``g_w* != 0``,
    ``d = g0 + r g_w* / ||g_w*||``, i.e. ``W = b + r w* / ||g_w*||``.

    Exact reduction (no iterative QP solver with a tolerance): ``r ||x|| = min_{tau > 0} r ||x||^2 / (2 tau) +
    r tau / 2``, so the dual is jointly convex in ``(w, tau)`` and for fixed ``tau = r beta`` its ``w``-problem
    ``min_w ||g_w||^2 + 2 beta <g0, g_w>`` is the min-norm point of the hull of ``g_i + beta g0`` (exact NNLS,
    :func:`min_norm_simplex`). The optimal ``beta*`` solves ``||g_w(beta)|| = r beta``; by the convexity in
    ``tau``, ``||g_w(beta)|| / (r beta)`` is non-increasing: its root is bracketed by scanning ``beta`` down by
    factors of 10 from ``2 max_i ||g_i|| / r`` (where ``||g_w|| <= max_i ||g_i||`` makes it negative) and found by
    Brent's method to relative 1e-14 (each evaluation exact). If the scan reaches the round-off level of
    ``||g_w||`` first (``_GW_NOISE`` times ``sum_i w_i ||g_i||`` or the smallest non-zero ``||g_i||``: relative
    thresholds, not ``> 0``), ``g_w* = 0`` (e.g. a task with a zero gradient): the dual's ``w*`` gives no
    direction, the optimum is ``min_i <g_i, d> = 0`` and every ``d`` of the ball with ``min_i <g_i, d> >= 0`` is a
    solution; the one closest to ``g0`` is ``W = b + r mu`` with ``mu = argmin_{mu >= 0} ||G^T (b / r + mu)||``
    (NNLS; the reference code, Cranial-XIX/CAGrad, instead adds 1e-4 to the norms and returns ``g0``, which
    conflicts with a task whenever some ``<g_i, g0> < 0``). Returns ``b`` when ``c = 0`` or ``g0 = 0``. All in
    float64 with unit-norm scaled gradients.

    ``norm_eps > 0`` reproduces the regularised CAGrad of the reference toy script (Cranial-XIX/CAGrad ``toy.py``,
    ``cagrad``; seed 001 Tables 1 / A7 ran it): ``||g0||`` becomes ``sqrt(||sum_i g_i||^2 + eps) / K``, the dual's
    ``||g_w||`` becomes ``sqrt(||g_w||^2 + eps)`` (the norm of ``g_w`` augmented by a constant ``sqrt(eps)``
    coordinate: the same exact reduction applies, with ``eps`` entering only its root equation, see
    :func:`_cagrad_dual`) and ``W = b + R w / (sqrt(||g_w||^2 + eps)
    + eps)`` with ``R = c sqrt(||sum_i g_i||^2 + eps) / K``. Near a minimum, where the gradients are small against
    ``sqrt(eps)``, this step is no longer CAGrad's: the correction keeps a length of about ``c sqrt(eps) / K``.

    K = 2 takes the closed form of :func:`cagrad_weights_two_tasks` (no iterative solve at all).
    """
    if m.shape[0] == 2:
        return cagrad_weights_two_tasks(m, c, norm_eps=norm_eps)
    return _cagrad_weights_general(m, c, norm_eps=norm_eps)


def _cagrad_weights_general(m: np.ndarray, c: float, *, norm_eps: float = 0.0) -> np.ndarray:
    """:func:`cagrad_weights` for any K by the exact reduction to min-norm problems (NNLS) and a root-find."""
    k = m.shape[0]
    b = np.full(k, 1.0 / k)
    m = (m + m.T) / 2
    if norm_eps > 0:
        radius = c * np.sqrt(max(float(b @ m @ b), 0.0) * k**2 + norm_eps) / k
        if radius <= 0:
            return b
        w = _cagrad_dual(m, radius, norm_eps)  # never None: the augmented ||g_w|| >= sqrt(eps) > 0
        return b + radius / (np.sqrt(max(float(w @ m @ w), 0.0) + norm_eps) + norm_eps) * w
    g0_sq = float(b @ m @ b)
    if c <= 0 or g0_sq <= 0:
        return b
    r = c * np.sqrt(g0_sq)
    w = _cagrad_dual(m, r)
    gw_norm = 0.0 if w is None else np.sqrt(max(float(w @ m @ w), 0.0))
    if gw_norm <= 0:
        norms = np.sqrt(np.clip(np.diag(m), 0.0, None))
        return b + r * _min_norm_nonconflicting(m, norms, b / r)
    return b + r * w / gw_norm


def cagrad_weights_two_tasks(grams: np.ndarray, c: float, *, norm_eps: float = 0.0) -> np.ndarray:
    """:func:`cagrad_weights` for K = 2 in closed form, for one Gramian ``[2, 2]`` or a stack ``[..., 2, 2]``.

    The dual of CAGrad (Liu et al. 2021, eq. (4): ``min_{w in simplex} <g_w, g0> + sqrt(phi) ||g_w||`` with
    ``sqrt(phi) = r = c ||g0||``) has one variable for two tasks: ``w = (x, 1 - x)``, ``g_w = g2 + x u`` with
    ``u = g1 - g2``. With ``A = ||u||^2``, ``B = <g2, u>``, ``D = ||g1||^2 ||g2||^2 - <g1, g2>^2`` (the Gram
    determinant, ``= A ||g2||^2 - B^2``) and ``y = A x + B``: ``||g_w||^2 = (y^2 + D) / A``, so
    ``F(x) = const + a x + r sqrt(A) sqrt(y^2 + D) / A`` with ``a = <g0, u> = (||g1||^2 - ||g2||^2) / 2``.
    ``F`` is convex and ``F'(x) = a + r sqrt(A) y / sqrt(y^2 + D)``, monotone in ``y`` with range
    ``a +- r sqrt(A)``. With ``t = -a / r``: if ``|t| < sqrt(A)`` its zero is ``y* = t sqrt(D / (A - t^2))``
    and ``x* = clip((y* - B) / A, 0, 1)`` (a convex function of one variable: clipping the unconstrained
    minimiser gives the constrained one); if ``t >= sqrt(A)`` ``F`` decreases on [0, 1] (``x* = 1``), if
    ``t <= -sqrt(A)`` it increases (``x* = 0``). The cases of the general solver are limits of this one:
    parallel or antiparallel gradients (``D = 0``: ``y* = 0``, ``x* = clip(-B / A)``, where ``g_w*`` vanishes when
    ``-B / A`` lies in [0, 1]), a zero gradient (``D = 0``, ``g_w* = 0`` at its vertex) and equal gradients
    (``A = 0``: ``F`` is constant, ``x* = 1/2``). Computed in float64 on the Gramian divided by its largest
    diagonal entry (``x*`` does not change under ``G -> lambda G``), so norms over many orders of magnitude
    neither overflow nor lose their ratio. A vanishing ``g_w*`` (below the round-off level of
    :func:`cagrad_weights`), ``c = 0``, ``g0 = 0`` and ``norm_eps`` are handled exactly as there: ``norm_eps``
    adds a constant ``sqrt(eps)`` coordinate to the gradients (``M + eps 1 1^T``, which leaves ``A``, ``B`` and
    ``a`` as they are and adds ``A eps`` to ``D``).

    The same elementwise float64 operations run for one Gramian and for a stack, so a stack's rows are bitwise
    the rows of one-by-one calls (the toy runner solves all its starts in one call).
    """
    m = np.asarray(grams, dtype=np.float64)
    if m.shape[-2:] != (2, 2):
        raise ValueError(f"grams must have shape [..., 2, 2], got {list(m.shape)}")
    lead = m.shape[:-2]
    m = m.reshape(-1, 2, 2)
    m11, m22 = m[..., 0, 0], m[..., 1, 1]
    m12 = (m[..., 0, 1] + m[..., 1, 0]) / 2
    g0_sq = np.maximum((m11 + m22 + 2.0 * m12) / 4.0, 0.0)  # ||g0||^2, g0 = (g1 + g2) / 2
    if norm_eps > 0:
        r = c * np.sqrt(4.0 * g0_sq + norm_eps) / 2.0
        x, _, _ = _cagrad_dual_two_tasks(m11, m12, m22, r, norm_eps)
        gw_sq = np.maximum(x * x * m11 + 2.0 * x * (1.0 - x) * m12 + (1.0 - x) * (1.0 - x) * m22, 0.0)
        step = r / (np.sqrt(gw_sq + norm_eps) + norm_eps)
        vanishing = np.zeros(np.shape(x), dtype=bool)  # the augmented ||g_w|| >= sqrt(eps) > 0
    else:
        r = c * np.sqrt(g0_sq)
        x, scaled_step, vanishing = _cagrad_dual_two_tasks(m11, m12, m22, r, 0.0)
        step = scaled_step
    trivial = ~(r > 0)  # c = 0 or g0 = 0: the mean gradient
    step = np.where(trivial | vanishing, 0.0, step)
    weights = 0.5 + step[..., None] * np.stack([x, 1.0 - x], axis=-1)
    weights = np.where(trivial[..., None], 0.5, weights)
    # g_w* = 0 (e.g. a zero or an antiparallel gradient): the optimal direction closest to g0 (rare: row by row)
    for i in np.flatnonzero(vanishing & ~trivial):
        m_row = (m[i] + m[i].T) / 2
        norms = np.sqrt(np.clip(np.diag(m_row), 0.0, None))
        weights[i] = 0.5 + r[i] * _min_norm_nonconflicting(m_row, norms, np.full(2, 0.5) / r[i])
    return weights.reshape(*lead, 2)


def _cagrad_dual_two_tasks(
    m11: np.ndarray, m12: np.ndarray, m22: np.ndarray, r: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x*`` of the two-task dual (:func:`cagrad_weights_two_tasks`), ``r / ||g_w*||`` and whether ``g_w*`` vanishes.

    ``eps`` is ``norm_eps``: the gradients augmented by a ``sqrt(eps)`` coordinate. ``A``, ``B`` and ``a`` do not
    see it, so they are formed from the plain entries (forming them from ``M + eps`` would cancel ``eps``'s digits
    against themselves when the gradients are small against ``sqrt(eps)``). Elementwise over arrays of Gramian
    entries; rows with ``r = 0`` or a zero Gramian give unspecified values (the caller replaces them).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = np.maximum(m11, m22) + eps
        scale = np.where(scale > 0, scale, 1.0)
        n11, n12, n22, e = m11 / scale, m12 / scale, m22 / scale, eps / scale
        rr = r / np.sqrt(scale)
        a = np.maximum(n11 + n22 - 2.0 * n12, 0.0)  # ||g1 - g2||^2
        b = n12 - n22  # <g2, g1 - g2>
        # the Gram determinant of the augmented gradients: ||g1||^2 ||g2||^2 - <g1, g2>^2 + eps ||g1 - g2||^2
        det = np.maximum(n11 * n22 - n12 * n12, 0.0) + e * a
        sqrt_a = np.sqrt(a)
        t = (n22 - n11) / (2.0 * rr)  # -<g0, g1 - g2> / r
        abs_t = np.abs(t)
        y = t * np.sqrt(det / ((sqrt_a - abs_t) * (sqrt_a + abs_t)))  # the zero of F' (where |t| < sqrt(A))
        x = np.where(abs_t < sqrt_a, np.clip((y - b) / a, 0.0, 1.0), np.where(t > 0, 1.0, 0.0))
        x = np.where(a > 0, x, 0.5)
        n11, n12, n22 = n11 + e, n12 + e, n22 + e  # the augmented gradients' Gramian, for ||g_w||
        gw_norm = np.sqrt(np.maximum(x * x * n11 + 2.0 * x * (1.0 - x) * n12 + (1.0 - x) * (1.0 - x) * n22, 0.0))
        # the round-off level of ||g_w|| from the Gramian, as in the general solver (_cagrad_dual)
        norm1, norm2 = np.sqrt(np.maximum(n11, 0.0)), np.sqrt(np.maximum(n22, 0.0))
        smallest = np.where((norm1 > 0) & (norm2 > 0), np.minimum(norm1, norm2), np.maximum(norm1, norm2))
        vanishing = gw_norm <= _GW_NOISE * np.maximum(x * norm1 + (1.0 - x) * norm2, smallest)
        return x, rr / gw_norm, vanishing


def _cagrad_dual(m: np.ndarray, r: float, eps: float = 0.0) -> np.ndarray | None:
    """``w* = argmin_{w in simplex} <g0, g_w> + r sqrt(||g_w||^2 + eps)`` (``g0 = G^T 1 / K``), or None where
    ``g_w* = 0`` (only possible for ``eps = 0``).

    See :func:`cagrad_weights` for the reduction: ``w(beta)`` is the min-norm point of the hull of
    ``g_i + beta g0`` and ``beta*`` the root of ``sqrt(||g_w(beta)||^2 + eps) = r beta``. ``eps`` (``norm_eps``)
    is the squared constant coordinate of the augmented gradients. It enters the root equation only: the
    augmented hull's Gramian is the plain one plus ``eps (1 + beta)^2 1 1^T``, a constant on the simplex
    (``w^T 1 1^T w = 1``), so it has the plain one's min-norm point. Solving the plain Gramian keeps every digit of
    gradients small against ``sqrt(eps)``, which ``M + eps`` would cancel against ``eps``'s own (the K = 2 closed
    form keeps ``eps`` out of ``A`` and ``B`` for the same reason).
    """
    k = m.shape[0]
    b = np.full(k, 1.0 / k)
    a = m @ b  # <g_i, g0>
    g0_sq = float(b @ a)
    norms = np.sqrt(np.clip(np.diag(m), 0.0, None))

    def dual_point(beta: float) -> tuple[np.ndarray, float, float]:
        """``w(beta)``, the augmented ``||g_w(beta)||`` and its round-off level (none with ``eps``: the norm is at
        least ``sqrt(eps)``, which the round-off of ``||g_w||^2`` does not reach relatively)."""
        w = min_norm_simplex(m + beta * (a[:, None] + a[None, :]) + beta**2 * g0_sq)
        gw_sq = max(float(w @ m @ w), 0.0)
        if eps > 0:
            return w, np.sqrt(gw_sq + eps), 0.0
        return w, np.sqrt(gw_sq), _GW_NOISE * float(w @ norms)

    def excess(beta: float) -> float:
        _, gw_norm, noise = dual_point(beta)
        return (gw_norm if gw_norm > noise else 0.0) / (r * beta) - 1.0

    upper = 2.0 * np.sqrt(norms.max() ** 2 + eps) / r  # ||g_w|| <= max_i ||g_i|| (augmented)
    resolution = 0.0 if eps > 0 else _GW_NOISE * norms[norms > 0].min()
    lower = upper
    while True:
        lower /= 10.0
        _, gw_norm, noise = dual_point(lower)
        if gw_norm > noise and gw_norm > r * lower:
            break  # the root lies in [lower, 10 lower]
        if r * lower <= max(noise, resolution):  # below round-off: g_w* = 0
            return None
        upper = lower
    return dual_point(brentq(excess, lower, upper, xtol=1e-300, rtol=1e-14, maxiter=500))[0]


def _min_norm_nonconflicting(m: np.ndarray, norms: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``mu = argmin_{mu >= 0} ||G^T (offset + mu)||`` (NNLS in unit-norm scaled variables; zero rows get 0).

    Its KKT conditions are ``<g_i, G^T (offset + mu)> >= 0`` with equality where ``mu_i > 0``: the min-norm
    ``u = G^T mu`` with ``<g_i, G^T offset + u> >= 0`` for every task.
    """
    live = norms > 0
    s = 1.0 / norms[live]
    unit = m[np.ix_(live, live)] * s[:, None] * s[None, :]
    np.fill_diagonal(unit, 1.0)
    factor = _psd_factor(unit)
    nu, _ = nnls(factor, -factor @ (norms[live] * offset[live]), maxiter=50 * int(live.sum()))
    mu = np.zeros_like(offset)
    mu[live] = s * nu
    return mu


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the probability simplex (Duchi et al. 2008, sort-based)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    idx = np.arange(1, v.size + 1)
    rho = np.nonzero(u - css / idx > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1.0), 0.0)
