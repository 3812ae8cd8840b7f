"""Shared machinery of the procedural stand-in datasets: splits, seeding, option checks, disk cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

SPLITS: tuple[str, ...] = ("train", "val", "test")
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


def check_split(split: str) -> str:
    if split not in _SPLIT_CODE:
        raise ValueError(f"unknown split {split!r}; valid: {list(SPLITS)}")
    return split


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return arrays
