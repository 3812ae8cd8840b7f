"""Aligned-MTL: align the principal components of the gradient system (condition number 1)."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from .._checks import check_choice, check_task_weights
from ._registry import AGGREGATORS
from .base import WeightedAggregator

SCALES = ("min", "median", "rmse")


def alignment_matrix(gram: np.ndarray, scale: str = "min") -> np.ndarray:
    """``B`` such that the aligned system ``B G`` has equal non-zero singular values (seed 003 eq. (4)-(5)).

    With ``G G^T = V diag(lambda) V^T`` restricted to its numerical rank r, ``B = s V_r diag(lambda_r^(-1/2)) V_r^T``
    where ``s`` is ``sqrt(lambda_min)`` (``"min"``: the paper's choice, the smallest non-zero singular value,
    sec. 5.1) or one of the reference code's alternatives, which the paper does not mention (SamsungLabs/MTL
    ``code/optim/aligned/solver.py``, ``ProcrustesSolver.apply``): ``"median"`` takes ``torch.median`` of the
    r non-zero eigenvalues, the lower middle one when r is even (not their mean, as ``np.median``), and
    ``"rmse"`` their mean. Then ``(B G)(B G)^T = s^2 V_r V_r^T``: every non-zero singular value of ``B G``
    equals ``s``.
    """
    lam, vec = np.linalg.eigh((gram + gram.T) / 2)
    order = np.argsort(lam)[::-1]
    lam, vec = lam[order], vec[:, order]
    tol = max(lam[0], 0.0) * gram.shape[0] * np.finfo(np.float32).eps  # reference: float32 eps
    rank = int((lam > tol).sum())
    if rank == 0:
        return np.zeros_like(gram)
    lam, vec = lam[:rank], vec[:, :rank]
    # lam is descending: lam[rank // 2] is the middle one for an odd rank, the lower middle one for an even rank
    s = {"min": np.sqrt(lam[-1]), "median": np.sqrt(lam[rank // 2]), "rmse": np.sqrt(lam.mean())}[scale]
    return (vec * (s / np.sqrt(lam))) @ vec.T


@AGGREGATORS.register("aligned_mtl")
class AlignedMTL(WeightedAggregator):
    """Aligned-MTL (seed 003, sec. 5, Alg. 1): ``d = (B G)^T w`` with pre-defined task weights ``w``.

    ``B`` comes from the eigen-decomposition of the K x K Gramian in task space (``alignment_matrix``),
    so the aligned gradient matrix ``B G`` is orthogonal with all singular values equal to the smallest
    non-zero one (condition number 1, eq. (2)). ``task_weights`` default to ones (the reference sums the
    aligned gradients). Applied to features-mode gradients this is Aligned-MTL-UB (sec. 5.2).
    """

    def __init__(self, num_tasks: int, *, scale: str = "min", task_weights: list[float] | None = None) -> None:
        super().__init__(num_tasks)
        self.scale = check_choice("scale", scale, SCALES)
        tw = check_task_weights("task_weights", task_weights, num_tasks)
        self.task_weights = np.ones(num_tasks) if tw is None else tw.numpy()

    def weights_from_gramian(self, gram: np.ndarray, losses: Tensor | None) -> np.ndarray:
        return alignment_matrix(gram, self.scale) @ self.task_weights
