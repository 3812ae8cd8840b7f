"""Deterministic, platform-independent split helpers (validation hold-outs, stratified splits)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _rank(key: str) -> bytes:
    # A keyed hash instead of an RNG: the order never depends on numpy/torch versions or the platform.
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


def stable_permutation(n: int, key: str) -> list[int]:
    """A pseudo-random permutation of ``range(n)`` determined only by ``key``."""
    return sorted(range(n), key=lambda i: _rank(f"{key}/{i}"))


def holdout(n: int, size: int, key: str) -> tuple[list[int], list[int]]:
    """Split ``range(n)`` into (kept, held out) with ``len(held out) == size``, both sorted.

    Seed 001 A3.1: 159 of the 795 NYUv2 and 595 of the 2975 Cityscapes training images become the
    validation split; which ones is fixed by ``key`` so every study uses the same images.
    """
    if not 0 <= size < n:
        raise ValueError(f"cannot hold out {size} of {n} items")
    held = sorted(stable_permutation(n, key)[:size])
    held_set = set(held)
    return [i for i in range(n) if i not in held_set], held


def stratified_split(labels: Sequence[int], fractions: Sequence[float], key: str) -> list[list[int]]:
    """Split indices per class in the given fractions (e.g. 0.6/0.2/0.2), deterministically from ``key``.

    Within each class the first ``round(f * n_c)`` items of a keyed permutation go to the first part,
    and so on; the last part takes the rest, so every item lands in exactly one part.
    """
    if abs(sum(fractions) - 1.0) > 1e-9 or any(f < 0 for f in fractions):
        raise ValueError(f"fractions must be non-negative and sum to 1, got {list(fractions)}")
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(index)
    parts: list[list[int]] = [[] for _ in fractions]
    for label, members in sorted(by_class.items()):
        order = [members[i] for i in stable_permutation(len(members), f"{key}/class{label}")]
        start = 0
        for p, fraction in enumerate(fractions):
            stop = len(order) if p == len(fractions) - 1 else start + round(fraction * len(order))
            parts[p].extend(order[start:stop])
            start = stop
    return [sorted(part) for part in parts]
