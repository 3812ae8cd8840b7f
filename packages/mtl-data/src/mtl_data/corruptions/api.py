"""Public entry points: :func:`names`, :func:`apply`, and how parameters follow the image size.

Choosing the parameters for an image of size HxW (the original tables are tuned for square images of
224, 64 or 32 pixels):

1. effective size ``L = sqrt(H * W)``;
2. profile (which published table): ``"auto"`` takes the reference size nearest to ``L`` on a log
   scale -- ImageNet-C (224) above ~120 px, Tiny-ImageNet-C (64) between ~45 and ~120 px, CIFAR-10-C
   (32) below -- so full-resolution NYUv2 (288x384) and Cityscapes (128x256) use the ImageNet-C
   table as seed 001 did, and the small stand-ins the tables Hendrycks re-tuned for small images;
3. pixel-size parameters (blur sigmas and radii, glass-blur displacement, snow streaks, elastic
   displacement, fog map size, frost crystal size) are multiplied by ``scale = L / reference``, as the
   Tiny-ImageNet-C script does by writing elastic parameters as multiples of ``IMSIZE``. Intensity
   parameters (noise levels, contrast, JPEG quality, thresholds) are not rescaled. ``rescale=False``
   keeps them in raw pixels, which is what ``imagecorruptions`` does on non-224 images.

At exactly the reference size (e.g. 224x224 with "imagenet") ``scale == 1`` and the parameters are the
original ones.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mtl_data.corruptions.functions import CORRUPTIONS
from mtl_data.corruptions.tables import (
    BENCHMARK_CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    REFERENCE_SIZE,
    SEVERITY_PARAMETERS,
)

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
PROFILES: tuple[str, ...] = ("auto", *REFERENCE_SIZE)


def names(include_extra: bool = True) -> list[str]:
    """Corruption names: the 15 of the benchmark, then (by default) the 4 extra ones."""
    return list(BENCHMARK_CORRUPTIONS) + (list(EXTRA_CORRUPTIONS) if include_extra else [])


def select_profile(height: int, width: int) -> str:
    """The published table whose reference size is nearest to ``sqrt(H*W)`` on a log scale.

    Ties go to the larger reference: 32x64 (the Cityscapes stand-in) lies exactly between CIFAR (32)
    and Tiny-ImageNet (64) and gets the Tiny-ImageNet-C table.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    size = math.sqrt(height * width)
    by_size = sorted(REFERENCE_SIZE, key=lambda p: -REFERENCE_SIZE[p])
    return min(by_size, key=lambda p: round(abs(math.log(size / REFERENCE_SIZE[p])), 9))


def pixel_scale(height: int, width: int, profile: str) -> float:
    """Factor applied to pixel-size parameters: ``sqrt(H*W) / reference size of the profile``."""
    return math.sqrt(height * width) / REFERENCE_SIZE[profile]


def _check_name_severity(name: str, severity: int) -> None:
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid: {names()}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")


def _resolve_profile(profile: str, height: int, width: int) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown corruption profile {profile!r}; valid: {list(PROFILES)}")
    return select_profile(height, width) if profile == "auto" else profile


def parameters(name: str, severity: int, profile: str) -> Any:
    """The original table entry of ``name`` at ``severity`` for a (non-auto) ``profile``."""
    _check_name_severity(name, severity)
    if profile not in REFERENCE_SIZE:
        raise ValueError(f"parameters() needs a concrete profile, one of {list(REFERENCE_SIZE)}; got {profile!r}")
    return SEVERITY_PARAMETERS[profile][name][severity - 1]


def corruption_rng(seed: int | Sequence[int], name: str, severity: int) -> np.random.Generator:
    """The generator used for (seed, corruption, severity); ``seed`` may be a tuple such as (seed, index)."""
    entropy = [int(s) for s in (seed if isinstance(seed, Sequence) else (seed,))]
    if any(s < 0 for s in entropy):
        raise ValueError(f"seed entries must be non-negative integers, got {seed!r}")
    # crc32 instead of hash(): stable across processes (PYTHONHASHSEED) and Python versions
    return np.random.default_rng(np.random.SeedSequence([*entropy, zlib.crc32(name.encode()), severity]))


def _to_hwc(image: np.ndarray | torch.Tensor) -> tuple[np.ndarray, bool, int]:
    is_tensor = isinstance(image, torch.Tensor)
    array = image.detach().cpu().numpy() if is_tensor else np.asarray(image)
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ValueError(f"image must be CxHxW with C in (1, 3), got shape {tuple(array.shape)}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"image must be a float array in [0, 1], got dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError("image contains NaN or infinite values")
    lo, hi = float(array.min()), float(array.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(
            f"image values must lie in [0, 1] (corrupt before normalising), got range [{lo:.4g}, {hi:.4g}]"
        )
    channels = array.shape[0]
    hwc = np.clip(np.transpose(array, (1, 2, 0)).astype(np.float64), 0, 1)
    if channels == 1:
        hwc = np.repeat(hwc, 3, axis=2)
    return hwc, is_tensor, channels


def apply(
    image: np.ndarray | torch.Tensor,
    name: str,
    severity: int,
    seed: int | Sequence[int] = 0,
    *,
    profile: str = "auto",
    rescale: bool = True,
) -> np.ndarray | torch.Tensor:
    """Corrupt one image (Hendrycks & Dietterich 2019; tables of hendrycks/robustness).

    ``image``: float CxHxW in [0, 1] (numpy or torch; C = 3, or 1 for grey images, which are
    corrupted as RGB and converted back with BT.601 luma). Returns the same type, float32, same shape,
    in [0, 1]. Deterministic in (``seed``, ``name``, ``severity``): pass ``seed=(base_seed, index)``
    to get one independent corruption per image of a dataset. See the module docstring for
    ``profile`` and ``rescale``.
    """
    _check_name_severity(name, severity)
    hwc, is_tensor, channels = _to_hwc(image)
    height, width = hwc.shape[:2]
    chosen = _resolve_profile(profile, height, width)
    scale = pixel_scale(height, width, chosen) if rescale else 1.0
    params = SEVERITY_PARAMETERS[chosen][name][int(severity) - 1]
    rng = corruption_rng(seed, name, int(severity))
    out = CORRUPTIONS[name](hwc, params, rng, chosen, scale)
    out = np.clip(out, 0, 1)
    if channels == 1:
        out = (out @ np.array([0.299, 0.587, 0.114]))[..., None]
    chw = np.ascontiguousarray(np.transpose(out, (2, 0, 1)), dtype=np.float32)
    return torch.from_numpy(chw) if is_tensor else chw
