"""Diagnostics of a gradient system: any ``K x n`` matrix whose rows are per-task (or per-sample) gradients.

All measures are computed in float64. Pairwise measures come from the Gramian ``G G^T`` (one pass over the
columns, chunked so a float32 matrix is never copied whole to float64), so they cost ``O(K^2 n)`` like a
single Jacobian product and work for any ``n``.

* :func:`cosine_similarity_matrix`: ``S_cos`` of seed 001 eq. (4); ``< 0`` marks a conflict (Yu et al. 2020).
* :func:`magnitude_similarity_matrix`: ``S_mag`` of seed 001 eq. (5) (Yu et al. 2020, Def. 2).
* :func:`conflicting_parameter_matrix`: share of coordinates whose signs are opposite (seed 001 sec. 4.2).
* :func:`condition_number`: ``kappa(G) = sigma_max / sigma_min`` (seed 003 eq. (2)).
* :func:`conflicting_pair_share`: share of task pairs with ``<g_i, g_j> < 0`` (seed 000 Fig. 3).
* :func:`pareto_stationarity`: norm of the min-norm point of the convex hull (0 at Pareto-stationary points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..gradients import column_chunks, gramian
from ..solvers import min_norm_simplex


def check_gradient_matrix(grads: object, *, min_rows: int = 1, name: str = "grads") -> Tensor:
    """Validate a ``[K, n]`` floating-point, finite matrix with at least ``min_rows`` rows."""
    if not isinstance(grads, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [K, n], got {type(grads).__name__}")
    if grads.dim() != 2 or grads.shape[0] < min_rows or grads.shape[1] < 1:
        raise ValueError(
            f"{name} must be a 2-D tensor [K, n] with K >= {min_rows} rows and n >= 1 columns, "
            f"got shape {tuple(grads.shape)}"
        )
    if not grads.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {grads.dtype}")
    finite = torch.isfinite(grads).all(dim=1)
    if not finite.all():
        bad = [i for i, ok in enumerate(finite.tolist()) if not ok]
        raise ValueError(f"{name} contains NaN/Inf in row(s) {bad}")
    return grads


def _norms(gram: Tensor) -> Tensor:
    return torch.sqrt(torch.clamp(torch.diagonal(gram), min=0.0))


def cosine_similarity_matrix(grads: Tensor) -> Tensor:
    """``C[i, j] = <g_i, g_j> / (||g_i|| ||g_j||)``: float64 ``[K, K]``, symmetric, unit diagonal.

    Seed 001 eq. (4). As ``torch.nn.functional.cosine_similarity``, a pair involving a zero gradient has
    similarity 0 (neither aligned nor conflicting), so a zero row also has 0 on the diagonal.
    """
    gram = gramian(check_gradient_matrix(grads))
    norms = _norms(gram)
    denom = norms[:, None] * norms[None, :]
    cos = torch.where(denom > 0, gram / torch.where(denom > 0, denom, 1.0), 0.0)
    cos = (cos + cos.T) / 2  # exact symmetry despite the float64 accumulation order
    idx = torch.nonzero(norms > 0).squeeze(1)
    cos[idx, idx] = 1.0
    return cos.clamp(-1.0, 1.0)


def magnitude_similarity_matrix(grads: Tensor) -> Tensor:
    """``S_mag[i, j] = 2 ||g_i|| ||g_j|| / (||g_i||^2 + ||g_j||^2)`` (seed 001 eq. (5)): float64 ``[K, K]``.

    1 for equal norms, towards 0 for very different ones; independent of the directions. Two zero gradients
    have equal magnitude and get 1 (the limit along ``||g_i|| = ||g_j||``).
    """
    norms = _norms(gramian(check_gradient_matrix(grads)))
    sq = norms[:, None] ** 2 + norms[None, :] ** 2
    return torch.where(sq > 0, 2 * norms[:, None] * norms[None, :] / torch.where(sq > 0, sq, 1.0), 1.0)


def conflicting_parameter_matrix(grads: Tensor) -> Tensor:
    """``P[i, j]`` = share of the ``n`` coordinates where ``g_i`` and ``g_j`` have opposite signs (float64).

    The "ratio of conflicting gradient parameters" of seed 001 sec. 4.2 / Fig. 3. Coordinates where either
    gradient is exactly zero do not conflict; the denominator is all ``n`` coordinates. Counted with two
    indicator products per column chunk (exact integers in float64 up to 2^53 coordinates).
    """
    grads = check_gradient_matrix(grads)
    k, n = grads.shape
    counts = torch.zeros(k, k, dtype=torch.float64, device=grads.device)
    for chunk in column_chunks(grads):  # bounded float64 temporaries
        pos = (chunk > 0).to(torch.float64)
        neg = (chunk < 0).to(torch.float64)
        counts.addmm_(pos, neg.T).addmm_(neg, pos.T)
    return counts / n


def singular_values(grads: Tensor) -> Tensor:
    """The ``K`` singular values of ``G`` in decreasing order (float64), from the eigenvalues of ``G G^T``.

    For ``K > n`` the trailing ``K - n`` values are 0. Going through the Gramian keeps the cost at
    ``O(K^2 n)`` without a float64 copy of ``G``; values below ``sqrt(eps_64) sigma_max`` are round-off.
    """
    gram = gramian(check_gradient_matrix(grads))
    lam = torch.linalg.eigvalsh((gram + gram.T) / 2).flip(0)
    return torch.sqrt(torch.clamp(lam, min=0.0))


def _rank_tolerance(grads: Tensor, rtol: float | None) -> float:
    if rtol is None:
        # Round-off of the input (K eps of its dtype) or of the Gramian route (sqrt(eps_64)), the larger.
        return max(grads.shape[0] * torch.finfo(grads.dtype).eps, math.sqrt(np.finfo(np.float64).eps))
    if not isinstance(rtol, (int, float)) or isinstance(rtol, bool) or not (0.0 <= rtol < 1.0):
        raise ValueError(f"rtol must be a number in [0, 1), got {rtol!r}")
    return float(rtol)


def numerical_rank(grads: Tensor, *, rtol: float | None = None) -> int:
    """Number of singular values above ``rtol * sigma_max`` (see :func:`condition_number` for ``rtol``)."""
    sv = singular_values(grads)
    tol = _rank_tolerance(grads, rtol) * float(sv[0])
    return int((sv > tol).sum()) if float(sv[0]) > 0 else 0


def condition_number(grads: Tensor, *, rtol: float | None = None) -> float:
    """``kappa(G) = sigma_max(G) / sigma_min(G)`` of the ``K x n`` gradient matrix (seed 003 eq. (2)).

    1 for orthogonal rows of equal norm (the optimum Aligned-MTL enforces, seed 003 eq. (3)); larger values
    mean dominating and/or conflicting gradients. Rank-deficient systems (linearly dependent gradients, a
    zero gradient, ``K > n``, or an all-zero matrix) are ill-posed in the sense of seed 003 sec. 4.1 and
    return ``math.inf``: a singular value counts as zero when it is at most ``rtol * sigma_max``. The default
    ``rtol`` is ``max(K eps(dtype), sqrt(eps_64))``, the round-off of the input and of the Gramian route;
    condition numbers above ``1 / rtol`` (about 6.7e7 in float64) are therefore reported as ``inf``. Use
    :func:`gradient_system_report` for the rank and the condition number over the non-zero singular values.
    """
    sv = singular_values(grads)
    tol = _rank_tolerance(grads, rtol) * float(sv[0])
    if float(sv[0]) <= 0 or float(sv[-1]) <= tol:
        return math.inf
    return float(sv[0] / sv[-1])


def conflicting_pair_share(grads: Tensor) -> float:
    """Share of the ``K(K-1)/2`` gradient pairs with ``<g_i, g_j> < 0`` (seed 000 Fig. 3).

    For two tasks this is 1 when the mini-batch has a gradient conflict and 0 otherwise, so its mean over the
    mini-batches of an epoch is the "proportion of conflict" plotted in seed 000 Fig. 3.
    """
    grads = check_gradient_matrix(grads, min_rows=2)
    gram = gramian(grads)
    k = gram.shape[0]
    iu = torch.triu_indices(k, k, offset=1, device=gram.device)
    return float((gram[iu[0], iu[1]] < 0).to(torch.float64).mean())


def pareto_stationarity(grads: Tensor) -> float:
    """``min_{w in simplex} ||w^T G||``: 0 exactly at Pareto-stationary points (Désidéri 2012).

    The norm of MGDA's min-norm direction: no direction decreases every task at first order when it is 0.
    Divide by the largest gradient norm for a scale-free measure.
    """
    gram = gramian(check_gradient_matrix(grads)).cpu().numpy()
    w = min_norm_simplex(gram)
    return float(math.sqrt(max(float(w @ gram @ w), 0.0)))


def upper_triangle(matrix: Tensor) -> np.ndarray:
    """The entries ``matrix[i, j]`` with ``i < j`` (row-major order) as a float64 NumPy array."""
    k = matrix.shape[0]
    iu = torch.triu_indices(k, k, offset=1, device=matrix.device)
    return matrix[iu[0], iu[1]].detach().to(torch.float64).cpu().numpy()


@dataclass(frozen=True)
class GradientSystemReport:
    """Every diagnostic of one gradient matrix (float64 tensors on the input's device)."""

    cosine: Tensor
    magnitude: Tensor
    conflicting_parameters: Tensor
    singular_values: Tensor
    rank: int
    #: ``sigma_max / sigma_min``; ``inf`` for a rank-deficient system (seed 003 eq. (2))
    condition_number: float
    #: ``sigma_max`` over the smallest singular value above the rank tolerance (finite unless all zero)
    condition_number_nonzero: float
    conflicting_pair_share: float
    pareto_stationarity: float


def gradient_system_report(grads: Tensor, *, rtol: float | None = None) -> GradientSystemReport:
    """All diagnostics of :mod:`mtl_core.analysis.gradient_system` for one ``K x n`` matrix (``K >= 2``)."""
    grads = check_gradient_matrix(grads, min_rows=2)
    sv = singular_values(grads)
    tol = _rank_tolerance(grads, rtol) * float(sv[0])
    rank = int((sv > tol).sum()) if float(sv[0]) > 0 else 0
    kappa = math.inf if rank < grads.shape[0] else float(sv[0] / sv[-1])
    kappa_nonzero = float(sv[0] / sv[rank - 1]) if rank > 0 else math.inf
    return GradientSystemReport(
        cosine=cosine_similarity_matrix(grads),
        magnitude=magnitude_similarity_matrix(grads),
        conflicting_parameters=conflicting_parameter_matrix(grads),
        singular_values=sv,
        rank=rank,
        condition_number=kappa,
        condition_number_nonzero=kappa_nonzero,
        conflicting_pair_share=conflicting_pair_share(grads),
        pareto_stationarity=pareto_stationarity(grads),
    )
