"""A corrupted copy of a test set, computed once and cached on disk (seed 001 sec. 4.3).

Evaluation on 19 corruptions x 5 severities reads the same corrupted images for every model; computing
them once per (dataset, corruption, severity, seed) and memory-mapping a uint8 ``.npy`` afterwards
makes the robustness study cost one pass of inference per model. uint8 is also what ImageNet-C
distributes (the original scripts save 8-bit images).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mtl_data._io import atomic_writer, write_json_atomic
from mtl_data.base import Batching
from mtl_data.corruptions.api import _check_name_severity, _resolve_profile, apply


def _image_of(sample: Any, index: int) -> torch.Tensor:
    if not (isinstance(sample, (tuple, list)) and len(sample) == 2):
        raise ValueError(f"base dataset item {index} must be an (image, targets) pair, got {type(sample).__name__}")
    image = sample[0]
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise ValueError(
            f"base dataset item {index}: image must be a CxHxW tensor, got "
            f"{type(image).__name__} {tuple(getattr(image, 'shape', ()))}"
        )
    return image


def dataset_fingerprint(base: Dataset, probes: int = 8) -> str:
    """A short hash of the base test set (length and a few evenly spaced images), keying the cache.

    Not a proof of identity, but it changes whenever the base set is regenerated at another seed,
    resolution or size, which are the mistakes a stale cache would hide.
    """
    n = len(base)  # type: ignore[arg-type]
    digest = hashlib.sha1(str(n).encode())
    for i in sorted({round(k) for k in np.linspace(0, n - 1, num=min(probes, n))}):
        image = _image_of(base[i], i)
        digest.update(str(tuple(image.shape)).encode())
        digest.update(np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def _save_atomic(path: Path, array: np.ndarray, metadata: dict[str, Any]) -> None:
    with atomic_writer(path) as handle:
        np.save(handle, array)
    write_json_atomic(path.with_suffix(".json"), metadata)


class CorruptedDataset(Dataset):
    """``base`` with every image replaced by ``apply(image, name, severity, seed=(seed, index))``.

    Targets are passed through unchanged. ``base`` must be deterministic (a test split, no random
    augmentation) and yield ``(image CxHxW float in [0, 1], targets)``. With ``cache_dir`` the
    corrupted images are computed on first use, stored as uint8 ``.npy`` (written atomically, with a
    ``.json`` of what they are) and memory-mapped afterwards; without it they are kept in memory.
    Images come back as float32 ``k / 255``, exactly as a saved ImageNet-C image reads back.
    """

    batching = Batching.SINGLE

    def __init__(
        self,
        base: Dataset,
        name: str,
        severity: int,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        seed: int = 0,
        profile: str = "auto",
        rescale: bool = True,
        cache_key: str | None = None,
    ) -> None:
        _check_name_severity(name, severity)
        if len(base) == 0:  # type: ignore[arg-type]
            raise ValueError("base dataset is empty: nothing to corrupt")
        first = _image_of(base[0], 0)
        _resolve_profile(profile, int(first.shape[-2]), int(first.shape[-1]))  # validates the name
        self.base = base
        self.name = name
        self.severity = int(severity)
        self.seed = int(seed)
        self.profile = profile
        self.rescale = rescale
        self.cache_key = cache_key or dataset_fingerprint(base)
        self.cache_path = (
            Path(cache_dir) / f"{self.cache_key}_{name}_s{self.severity}_seed{self.seed}_{profile}"
            f"{'' if rescale else '_raw'}.npy"
            if cache_dir is not None
            else None
        )
        self._images: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def _compute(self) -> np.ndarray:
        images = []
        for i in range(len(self)):
            image = _image_of(self.base[i], i)
            out = apply(
                image, self.name, self.severity, seed=(self.seed, i), profile=self.profile, rescale=self.rescale
            )
            images.append(np.round(out.numpy() * 255).astype(np.uint8))
        return np.stack(images)

    def _load_cache(self, path: Path) -> np.ndarray:
        try:
            images = np.load(path, mmap_mode="r")
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(
                f"corruption cache {path} is unreadable or truncated ({exc}); delete it to recompute"
            ) from exc
        first = _image_of(self.base[0], 0)
        if images.dtype != np.uint8 or images.shape[0] != len(self) or images.shape[1:] != tuple(first.shape):
            raise ValueError(
                f"corruption cache {path} has shape {images.shape} / dtype {images.dtype}, expected "
                f"({len(self)}, {', '.join(map(str, first.shape))}) uint8; delete it to recompute"
            )
        return images

    def materialize(self) -> np.ndarray:
        """Compute (or load) all corrupted images, uint8 NxCxHxW."""
        if self._images is None:
            if self.cache_path is not None and self.cache_path.exists():
                self._images = self._load_cache(self.cache_path)
            else:
                images = self._compute()
                if self.cache_path is not None:
                    _save_atomic(
                        self.cache_path,
                        images,
                        {
                            "corruption": self.name,
                            "severity": self.severity,
                            "seed": self.seed,
                            "profile": self.profile,
                            "rescale": self.rescale,
                            "base_fingerprint": self.cache_key,
                            "count": len(self),
                        },
                    )
                self._images = images
        return self._images

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        images = self.materialize()
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} corrupted images")
        _, targets = self.base[index]
        image = torch.from_numpy(np.asarray(images[index], dtype=np.float32) / 255.0)
        return image, targets


def corrupted_test_sets(
    base: Dataset,
    cache_dir: str | os.PathLike[str] | None,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    **kwargs: Any,
) -> dict[tuple[str, int], CorruptedDataset]:
    """``{(corruption, severity): CorruptedDataset}`` over a grid (default: 15 benchmark corruptions x 5)."""
    from mtl_data.corruptions.api import names

    chosen = list(corruptions) if corruptions is not None else names(include_extra=False)
    return {(c, s): CorruptedDataset(base, c, s, cache_dir, **kwargs) for c in chosen for s in severities}
