"""Families of per-task gradient matrices used by the property tests (random and adversarial)."""

from __future__ import annotations

import torch

KS = (1, 2, 3, 11, 40)
FAMILIES = ("random", "conflicting", "collinear", "rank_deficient", "zero_row", "wild_norms")


def make(family: str, k: int, n: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 1000 * k + FAMILIES.index(family))
    base = torch.randn(k, n, generator=g, dtype=torch.float64)
    if family == "random":
        out = base
    elif family == "conflicting":  # half the tasks pull against the other half
        shared = torch.randn(n, generator=g, dtype=torch.float64)
        signs = torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(k)], dtype=torch.float64)
        out = signs[:, None] * shared + 0.3 * base
    elif family == "collinear":  # nearly parallel gradients
        shared = torch.randn(n, generator=g, dtype=torch.float64)
        out = shared + 1e-3 * base
    elif family == "rank_deficient":  # rank <= max(1, k // 2)
        r = max(1, k // 2)
        out = torch.randn(k, r, generator=g, dtype=torch.float64) @ torch.randn(r, n, generator=g, dtype=torch.float64)
    elif family == "zero_row":
        out = base.clone()
        out[0] = 0.0
    elif family == "wild_norms":
        scales = 10.0 ** torch.linspace(-3, 3, k, dtype=torch.float64)
        out = scales[:, None] * base
    else:
        raise ValueError(family)
    return out.float()


def cases():
    return [(f, k) for f in FAMILIES for k in KS if not (f == "zero_row" and k == 1)]
