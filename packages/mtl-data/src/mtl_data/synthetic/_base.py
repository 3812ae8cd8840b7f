"""Shared machinery of the procedural stand-in datasets: seeding, option checks, disk cache."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mtl_data._io import atomic_writer
from mtl_data.base import SPLITS, check_split

__all__ = [
    "SPLITS",
    "SizedStandin",
    "cached_arrays",
    "check_resolution",
    "check_size",
    "check_split",
    "item_seed",
    "reject_unknown",
]

_SPLIT_CODE = {split: code for code, split in enumerate(SPLITS)}


class SizedStandin:
    """``len``, the index check and ``repr`` of a procedural stand-in holding ``size`` items rendered for a
    ``split``, ``seed`` and ``resolution``; listed before ``MTLDataset`` in the bases."""

    name: str
    size: int
    split: str
    seed: int
    resolution: tuple[int, int]

    def __len__(self) -> int:
        return self.size

    def check_index(self, index: int) -> None:
        if not -self.size <= index < self.size:
            raise IndexError(f"{self.name}: index {index} out of range for {self.size} items")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, seed={self.seed}, size={self.size}, "
            f"resolution={self.resolution})"
        )


def check_size(size: int | None, default: int, what: str) -> int:
    if size is None:
        return default
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"{what}: size must be a positive integer or None, got {size!r}")
    return int(size)


def check_resolution(resolution: Any, what: str, minimum: int = 8) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in resolution)
        ok = (h, w) == tuple(resolution)
    except (TypeError, ValueError):
        ok = False
    if not ok or h < minimum or w < minimum:
        raise ValueError(f"{what}: resolution must be (height, width) integers >= {minimum}, got {resolution!r}")
    return h, w


def reject_unknown(what: str, unknown: Mapping[str, Any], valid: list[str]) -> None:
    if unknown:
        raise ValueError(f"{what}: unknown option(s) {sorted(unknown)}; valid options: {valid}")


def item_seed(dataset: str, seed: int, split: str, index: int) -> np.random.SeedSequence:
    """Seed of one item: independent streams per (dataset, seed, split, index).

    Different splits never share a stream, which is what makes their content disjoint (and the test
    split of one seed unrelated to the training split of any other seed).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{dataset}: seed must be a non-negative integer, got {seed!r}")
    tag = int.from_bytes(hashlib.sha1(dataset.encode()).digest()[:4], "little")
    return np.random.SeedSequence([tag, int(seed), _SPLIT_CODE[split], int(index)])


def cached_arrays(
    cache_dir: str | os.PathLike[str] | None,
    key: Mapping[str, Any],
    expected: Mapping[str, tuple[tuple[int, ...], np.dtype]],
    generate: Callable[[], dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """``generate()``, or its result stored under ``cache_dir`` for this ``key`` (an ``.npz``).

    The file name is a hash of ``key`` (dataset, generator version, split, seed, size, options); a
    file of the wrong shapes, or unreadable, raises a ``ValueError`` naming it. Written atomically.
    """
    if cache_dir is None:
        return generate()
    digest = hashlib.sha1(json.dumps(dict(key), sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{key['dataset']}_{key['split']}_{digest}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError(f"stand-in cache {path} is unreadable or truncated ({exc}); delete it") from exc
        for name, (shape, dtype) in expected.items():
            got = arrays.get(name)
            if got is None or got.shape != shape or got.dtype != dtype:
                raise ValueError(
                    f"stand-in cache {path}: array {name!r} is "
                    f"{None if got is None else (got.shape, got.dtype)}, expected {(shape, dtype)}; delete it"
                )
        return arrays
    arrays = generate()
    with atomic_writer(path) as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return arrays
