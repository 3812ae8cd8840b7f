"""Severity parameter tables of the common corruptions (Hendrycks & Dietterich, ICLR 2019).

The numbers below are the ones of the original generation scripts of hendrycks/robustness, one table per
published benchmark resolution ("profile"):

- ``"imagenet"`` (224x224): ``ImageNet-C/create_c/make_imagenet_c.py`` (identical to the
  ``imagenet_c`` package's ``corruptions.py``; also the tables of bethgelab/imagecorruptions, which
  seed 001 A3 used through "the original code" on NYUv2 and Cityscapes);
- ``"tinyimagenet"`` (64x64): ``ImageNet-C/create_c/make_tinyimagenet_c.py``;
- ``"cifar"`` (32x32): ``ImageNet-C/create_c/make_cifar_c.py``.

Every entry lists the five severities in order; each severity is a scalar or a tuple whose fields are
named in :data:`PARAMETER_FIELDS`. Fields measured in pixels are listed in :data:`PIXEL_FIELDS`: they
are rescaled with the image size (see :mod:`mtl_data.corruptions.api`). Kept as literal tuples on
purpose: a test spot-checks them against the published code.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

#: Side length (pixels) of the images each profile's table was tuned for.
REFERENCE_SIZE: dict[str, int] = {"imagenet": 224, "tinyimagenet": 64, "cifar": 32}

#: Side of the plasma-fractal map of ``fog`` in each script (the map is cropped to the image).
FOG_MAPSIZE: dict[str, int] = {"imagenet": 256, "tinyimagenet": 64, "cifar": 32}

#: Factor by which each script resizes the frost photographs before cropping (cv2.resize fx=fy).
FROST_RESIZE: dict[str, float] = {"imagenet": 1.0, "tinyimagenet": 0.3, "cifar": 0.2}

#: The constant ``IMSIZE`` of ``elastic_transform``; ImageNet-C uses 244 ("should have been 224").
ELASTIC_IMSIZE: dict[str, int] = {"imagenet": 244, "tinyimagenet": 64, "cifar": 32}

_IMAGENET: dict[str, list[Any]] = {
    "gaussian_noise": [0.08, 0.12, 0.18, 0.26, 0.38],
    "shot_noise": [60, 25, 12, 5, 3],
    "impulse_noise": [0.03, 0.06, 0.09, 0.17, 0.27],
    "speckle_noise": [0.15, 0.2, 0.35, 0.45, 0.6],
    "gaussian_blur": [1, 2, 3, 4, 6],
    "glass_blur": [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
    "defocus_blur": [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
    "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
    "zoom_blur": [(1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)],
    "fog": [(1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)],
    "frost": [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)],
    "snow": [
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ],
    "spatter": [
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ],
    "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],
    "brightness": [0.1, 0.2, 0.3, 0.4, 0.5],
    "saturate": [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)],
    "jpeg_compression": [25, 18, 15, 10, 7],
    "pixelate": [0.6, 0.5, 0.4, 0.3, 0.25],
    # (alpha, sigma, affine max shift) as multiples of ELASTIC_IMSIZE
    "elastic_transform": [(2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02)],
}

_TINYIMAGENET: dict[str, list[Any]] = {
    "gaussian_noise": [0.04, 0.08, 0.12, 0.15, 0.18],
    "shot_noise": [250, 100, 50, 30, 15],
    "impulse_noise": [0.01, 0.02, 0.05, 0.08, 0.14],
    "speckle_noise": [0.15, 0.2, 0.25, 0.3, 0.35],
    "gaussian_blur": [0.5, 0.75, 1, 1.25, 1.5],
    "glass_blur": [(0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)],
    "defocus_blur": [(0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)],
    "motion_blur": [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)],
    "zoom_blur": [(1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.01), (1, 1.26, 0.01)],
    "fog": [(0.4, 3), (0.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)],
    "frost": [(1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)],
    "snow": [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.8),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.8),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6),
    ],
    "spatter": [
        (0.62, 0.1, 0.7, 0.7, 0.6, 0),
        (0.65, 0.1, 0.8, 0.7, 0.6, 0),
        (0.65, 0.3, 1, 0.69, 0.6, 0),
        (0.65, 0.1, 0.7, 0.68, 0.6, 1),
        (0.65, 0.1, 0.5, 0.67, 0.6, 1),
    ],
    "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],
    "brightness": [0.1, 0.2, 0.3, 0.4, 0.5],
    "saturate": [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)],
    "jpeg_compression": [65, 58, 50, 40, 25],
    "pixelate": [0.9, 0.8, 0.7, 0.6, 0.5],
    "elastic_transform": [(0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03), (0.16, 0.03, 0.02)],
}

_CIFAR: dict[str, list[Any]] = {
    "gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],
    "shot_noise": [500, 250, 100, 75, 50],
    "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.07],
    "speckle_noise": [0.06, 0.1, 0.12, 0.16, 0.2],
    "gaussian_blur": [0.4, 0.6, 0.7, 0.8, 1],
    "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
    "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
    "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
    "zoom_blur": [(1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.01), (1, 1.26, 0.01)],
    "fog": [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
    "frost": [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
    "snow": [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ],
    "spatter": [
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ],
    "contrast": [0.75, 0.5, 0.4, 0.3, 0.15],
    "brightness": [0.05, 0.1, 0.15, 0.2, 0.3],
    "saturate": [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],
    "jpeg_compression": [80, 65, 58, 50, 40],
    "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],
    "elastic_transform": [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)],
}

#: ``SEVERITY_PARAMETERS[profile][corruption][severity - 1]``, read-only.
SEVERITY_PARAMETERS = MappingProxyType(
    {
        "imagenet": MappingProxyType(_IMAGENET),
        "tinyimagenet": MappingProxyType(_TINYIMAGENET),
        "cifar": MappingProxyType(_CIFAR),
    }
)

#: Meaning of each field of a severity entry (scalars have one field).
PARAMETER_FIELDS: dict[str, tuple[str, ...]] = {
    "gaussian_noise": ("std",),
    "shot_noise": ("photons_per_unit",),
    "impulse_noise": ("amount",),
    "speckle_noise": ("std",),
    "gaussian_blur": ("sigma",),
    "glass_blur": ("sigma", "max_delta", "iterations"),
    "defocus_blur": ("radius", "alias_blur"),
    "motion_blur": ("radius", "sigma"),
    "zoom_blur": ("zoom_start", "zoom_stop", "zoom_step"),
    "fog": ("strength", "wibble_decay"),
    "frost": ("image_weight", "frost_weight"),
    "snow": ("mean", "std", "zoom", "threshold", "blur_radius", "blur_sigma", "image_weight"),
    "spatter": ("mean", "std", "sigma", "threshold", "intensity_or_sigma", "mud"),
    "contrast": ("factor",),
    "brightness": ("value_shift",),
    "saturate": ("saturation_factor", "saturation_shift"),
    "jpeg_compression": ("quality",),
    "pixelate": ("downscale",),
    "elastic_transform": ("alpha", "sigma", "affine_shift"),
}

#: Fields measured in pixels of the reference image, rescaled with the actual image size. For spatter,
#: field 4 is a blur sigma only in the mud branch (field 5 == 1); elsewhere it is an intensity.
PIXEL_FIELDS: dict[str, tuple[str, ...]] = {
    "gaussian_blur": ("sigma",),
    "glass_blur": ("sigma", "max_delta"),
    "defocus_blur": ("radius",),
    "motion_blur": ("radius", "sigma"),
    "snow": ("blur_radius", "blur_sigma"),
    "spatter": ("sigma", "intensity_or_sigma (mud only)"),
    "elastic_transform": ("alpha", "sigma", "affine_shift"),
}

#: The 15 corruptions of the benchmark, then the 4 extra ones ("held-out" set), in the paper's order.
BENCHMARK_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
