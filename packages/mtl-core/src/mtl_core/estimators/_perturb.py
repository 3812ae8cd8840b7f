"""Weight perturbations of the SAM family: the ascent step and its exact undo."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

# The reference implementations (SAM, F-MTL's and SAMO's code) divide by ||g|| + 1e-12: a zero gradient
# gives a zero perturbation instead of NaN.
_NORM_EPS = 1e-12


def flat(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate tensors into one flat vector (a copy)."""
    if not tensors:
        return torch.zeros(0)
    return torch.cat([t.reshape(-1) for t in tensors])


def grads_of(loss: Tensor, params: Sequence[Tensor], *, retain_graph: bool = False) -> list[Tensor]:
    """``d loss / d params`` with zeros for parameters the loss does not depend on."""
    if not params:
        return []
    return list(
        torch.autograd.grad(loss, list(params), retain_graph=retain_graph, allow_unused=True, materialize_grads=True)
    )


def ascent_step(grads: Sequence[Tensor], params: Sequence[Tensor], rho: float, adaptive: bool) -> list[Tensor]:
    """The SAM perturbation ``eps = rho * g / ||g||`` over one parameter set (seed 002 sec. 3.2).

    ``adaptive=True`` gives ASAM's scale-invariant step ``rho * T^2 g / ||T g||`` with ``T = |theta|``
    (Kwon et al. 2021), the default of F-MTL's reference code. ``||eps|| = rho`` (resp. ``||eps / T|| = rho``)
    unless ``g = 0``, where ``eps = 0``.
    """
    if not grads:
        return []
    with torch.no_grad():
        if adaptive:
            scaled = [p.abs() * g for p, g in zip(params, grads)]
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s) for s in scaled]))
            scale = rho / (norm + _NORM_EPS)
            return [p.abs() * s * scale for p, s in zip(params, scaled)]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        scale = rho / (norm + _NORM_EPS)
        return [g * scale for g in grads]


@contextmanager
def perturbed(params: Sequence[Tensor], eps: Sequence[Tensor]) -> Iterator[None]:
    """Move ``params`` to ``params + eps`` in place; on exit restore the saved values bit for bit.

    Restoring by copying the saved tensors (rather than subtracting ``eps``, as the reference codes do) leaves
    the weights exactly as they were, whatever the floating-point rounding of ``theta + eps - eps``.
    """
    params = list(params)
    with torch.no_grad():
        saved = [p.detach().clone() for p in params]
        for p, e in zip(params, eps):
            p.add_(e)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
