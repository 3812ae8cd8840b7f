"""Sharpness: the top Hessian eigenvalues of a loss from Hessian-vector products (seed 002 sec. 4.1, Table 1).

Seed 002 reports ``lambda_max`` and the bulk ratio ``lambda_max / lambda_5`` of the Hessian of the average
task loss w.r.t. the shared parameters (following Yao et al. 2018; its reference code uses
hessian-eigenthings, power iteration with deflation, over the whole data set). Neither method forms the
Hessian: each iteration is one Hessian-vector product (double backward, Pearlmutter 1994).

* ``method="lanczos"`` (default): implicitly restarted Lanczos (ARPACK through
  :func:`scipy.sparse.linalg.eigsh`) on a :class:`scipy.sparse.linalg.LinearOperator`;
* ``method="power"``: power iteration with deflation, as the reference code;
* ``method="dense"``: the full Hessian from ``n`` products, then ``eigvalsh`` (tiny problems, checks).

BatchNorm makes the Hessian depend on the batch composition (seed 002 App. A removes it): evaluate the loss
with the model in ``eval()`` mode or without BatchNorm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import Tensor

METHODS = ("lanczos", "power", "dense")
ORDERS = ("LA", "LM")


def _as_params(params: Tensor | Iterable[Tensor]) -> list[Tensor]:
    out = [params] if isinstance(params, Tensor) else list(params)
    if not out:
        raise ValueError("params is empty: need at least one tensor to differentiate")
    for i, p in enumerate(out):
        if not isinstance(p, Tensor) or not p.requires_grad or not p.is_floating_point():
            raise ValueError(f"params[{i}] must be a floating-point tensor with requires_grad=True")
    return out


def _check_scalar(loss: Any) -> Tensor:
    if not isinstance(loss, Tensor) or loss.numel() != 1 or not loss.requires_grad:
        raise ValueError(f"the loss function must return a scalar tensor that requires grad, got {loss!r}")
    return loss.reshape(())


class HessianVectorProduct:
    """``v -> H v`` for the Hessian ``H`` of a scalar loss w.r.t. ``params`` (flat float64 NumPy in and out).

    With ``batches=None``, ``loss_fn()`` is evaluated once and its gradient graph is kept for every product
    (one extra backward per product). With ``batches``, ``loss_fn(batch)`` is evaluated per batch at every
    product and the products are averaged over the batches (the full-data-set Hessian of seed 002's
    reference; nothing is kept between products). ``calls`` counts the products.
    """

    def __init__(
        self,
        loss_fn: Callable[..., Tensor],
        params: Tensor | Iterable[Tensor],
        *,
        batches: Sequence[Any] | None = None,
    ) -> None:
        self.params = _as_params(params)
        self.numel = sum(p.numel() for p in self.params)
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device
        self.loss_fn = loss_fn
        self.batches = None if batches is None else list(batches)
        if self.batches is not None and not self.batches:
            raise ValueError("batches is empty: pass None to use loss_fn() without a batch")
        self.calls = 0
        self._grads: tuple[Tensor, ...] | None = None
        if self.batches is None:
            self._grads = self._gradient(_check_scalar(loss_fn()))

    def _gradient(self, loss: Tensor) -> tuple[Tensor, ...]:
        return torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True, materialize_grads=True)

    def _split(self, vector: Tensor) -> list[Tensor]:
        return [chunk.view_as(p) for chunk, p in zip(vector.split([p.numel() for p in self.params]), self.params)]

    def _product(self, grads: tuple[Tensor, ...], vector: Tensor, retain: bool) -> Tensor:
        if not any(g.requires_grad for g in grads):  # the loss is linear in params: H = 0
            return torch.zeros_like(vector)
        hv = torch.autograd.grad(
            [g for g in grads if g.requires_grad],
            self.params,
            grad_outputs=[v for g, v in zip(grads, self._split(vector)) if g.requires_grad],
            retain_graph=retain,
            allow_unused=True,
            materialize_grads=True,
        )
        return torch.cat([h.reshape(-1) for h in hv])

    def __call__(self, vector: np.ndarray) -> np.ndarray:
        v = torch.as_tensor(np.asarray(vector, dtype=np.float64).reshape(-1), device=self.device).to(self.dtype)
        self.calls += 1
        if self._grads is not None:
            out = self._product(self._grads, v, retain=True)
        else:
            out = torch.zeros(self.numel, dtype=self.dtype, device=self.device)
            for batch in self.batches:  # type: ignore[union-attr]
                grads = self._gradient(_check_scalar(self.loss_fn(batch)))
                out += self._product(grads, v, retain=False)
            out /= len(self.batches)  # type: ignore[arg-type]
        return out.detach().to(torch.float64).cpu().numpy()

    def operator(self) -> LinearOperator:
        """The Hessian as a symmetric SciPy ``LinearOperator`` (float64)."""
        return LinearOperator((self.numel, self.numel), matvec=self, rmatvec=self, dtype=np.float64)

    def dense(self) -> np.ndarray:
        """The full ``n x n`` Hessian from ``n`` products with the unit vectors, symmetrised."""
        eye = np.eye(self.numel)
        h = np.stack([self(eye[i]) for i in range(self.numel)], axis=1)
        return (h + h.T) / 2


def _order(values: np.ndarray, which: str) -> np.ndarray:
    key = -values if which == "LA" else -np.abs(values)
    return values[np.argsort(key, kind="stable")]


def _power_iteration(
    hvp: HessianVectorProduct, k: int, *, tol: float, max_iter: int, rng: np.random.Generator
) -> np.ndarray:
    """Power iteration with deflation (as hessian-eigenthings): eigenvalues of largest magnitude first."""
    values: list[float] = []
    vectors: list[np.ndarray] = []
    for _ in range(k):
        v = rng.standard_normal(hvp.numel)
        v /= np.linalg.norm(v)
        lam = 0.0
        for it in range(max_iter):
            w = hvp(v)
            for value, u in zip(values, vectors):  # deflate the eigenpairs already found
                w -= value * (u @ v) * u
            new = float(v @ w)
            norm = float(np.linalg.norm(w))
            if norm == 0.0:
                lam = 0.0
                break
            v = w / norm
            if it > 0 and abs(new - lam) <= tol * max(abs(new), np.finfo(np.float64).tiny):
                lam = new
                break
            lam = new
        values.append(lam)
        vectors.append(v)
    return np.asarray(values)


def hessian_eigenvalues(
    loss_fn: Callable[..., Tensor],
    params: Tensor | Iterable[Tensor],
    k: int = 5,
    *,
    batches: Sequence[Any] | None = None,
    method: str = "lanczos",
    which: str = "LA",
    tol: float | None = None,
    max_iter: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The top ``k`` eigenvalues of the Hessian of ``loss_fn`` w.r.t. ``params`` (float64, ordered).

    ``loss_fn()`` returns the scalar loss (or ``loss_fn(batch)`` for each of ``batches``, products averaged).
    ``which="LA"`` orders by value (the largest algebraic eigenvalues, what "top" means in seed 002 Table 1);
    ``"LM"`` by magnitude. Power iteration always converges to the largest magnitudes (its result is then
    ordered by ``which``). ``tol`` is the relative accuracy (default ``10 eps`` of the parameters' dtype for
    Lanczos, ``1e-6`` for power iteration); ``seed`` fixes the start vector, so results are deterministic.
    ARPACK needs ``k < n``: for ``k == n`` Lanczos falls back to the dense Hessian (exact, ``n`` products).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if which not in ORDERS:
        raise ValueError(f"which must be one of {list(ORDERS)}, got {which!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    hvp = HessianVectorProduct(loss_fn, params, batches=batches)
    n = hvp.numel
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k > n:
        raise ValueError(f"k must be an integer in [1, {n}] (the number of parameters), got {k!r}")
    if tol is not None and (not isinstance(tol, (int, float)) or isinstance(tol, bool) or tol < 0):
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1):
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    rng = np.random.default_rng(seed)
    if method == "dense" or (method == "lanczos" and k >= n):
        # ARPACK needs k < n; for such tiny problems the dense Hessian is exact and cheap.
        return _order(np.linalg.eigvalsh(hvp.dense()), which)[:k]
    if method == "power":
        values = _power_iteration(hvp, k, tol=1e-6 if tol is None else tol, max_iter=max_iter or 1000, rng=rng)
        return _order(values, which)
    eps = float(torch.finfo(hvp.dtype).eps)
    values = eigsh(
        hvp.operator(),
        k=k,
        which=which,
        v0=rng.standard_normal(n),
        tol=10 * eps if tol is None else tol,
        maxiter=max_iter,
        return_eigenvectors=False,
    )
    return _order(np.asarray(values), which)


@dataclass(frozen=True)
class Sharpness:
    """Seed 002 Table 1: ``lambda_max`` and the bulk ratio ``lambda_max / lambda_k`` (``k = 5`` there)."""

    eigenvalues: np.ndarray
    lambda_max: float
    #: ``lambda_max / lambda_k``; ``inf`` when ``lambda_k == 0``, negative when ``lambda_k < 0``
    ratio: float


def sharpness(
    loss_fn: Callable[..., Tensor],
    params: Tensor | Iterable[Tensor],
    k: int = 5,
    **kwargs: Any,
) -> Sharpness:
    """``lambda_max`` and ``lambda_max / lambda_k`` of the loss Hessian (seed 002 sec. 4.1, Table 1).

    Keyword arguments go to :func:`hessian_eigenvalues` (``batches``, ``method``, ``tol``, ``seed``...).
    """
    values = hessian_eigenvalues(loss_fn, params, k, **kwargs)
    lam_max, lam_k = float(values[0]), float(values[-1])
    ratio = float("inf") if lam_k == 0 else lam_max / lam_k
    return Sharpness(eigenvalues=values, lambda_max=lam_max, ratio=ratio)
