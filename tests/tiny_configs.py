"""The smallest real training run, shared by the tests that train one: MTAN at width 1/16 on 32x64
Cityscapes stand-in images, Adam at lr 1e-3, batches of 4 (seconds a run on one CPU core). Each test states
what it varies: the method, the ``train`` / ``eval`` fields, the split sizes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def scenes_config(
    name: str,
    method: str | Mapping[str, Any] = "ls",
    *,
    train: Mapping[str, Any] | None = None,
    eval: Mapping[str, Any] | None = None,
    sizes: Sequence[int] = (8, 4, 4),
    dataset_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A fresh run config (train / val / test ``sizes`` images; ``train`` and ``eval`` fields added to
    ``batch_size: 4``; ``dataset_options`` added to the 32x64 resolution)."""
    return {
        "name": name,
        "dataset": {
            "name": "cityscapes_standin",
            "options": {"resolution": [32, 64], **(dataset_options or {})},
            "split_options": {split: {"size": n} for split, n in zip(("train", "val", "test"), sizes, strict=True)},
        },
        "model": {"name": "mtan", "options": {"width": 0.0625}},
        "method": {"name": method} if isinstance(method, str) else dict(method),
        "optimizer": {"name": "adam", "lr": 1e-3},
        "train": {"batch_size": 4, **(train or {})},
        "eval": {"batch_size": 4, **(eval or {})},
    }
