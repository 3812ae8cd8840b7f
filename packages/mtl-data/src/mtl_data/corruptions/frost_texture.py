"""Procedural frost texture for the ``frost`` corruption (documented deviation from the original).

The original ``frost`` blends the image with a random crop of one of five frost photographs
(``frost1.png`` ... ``frost5.jpg``; ``frost6.jpg`` ships with the code but ``randint(5)`` never picks
it). Those photographs are not redistributable with this package and cannot be downloaded offline, so
we synthesise a texture per photograph ("style") that matches what the blend depends on:

- the per-channel mean and standard deviation of the photograph (measured on the full images, RGB,
  0-255) -- these set the brightness/tint the corruption adds, i.e. most of its effect;
- the crystal size: the half-width of the photograph's intensity autocorrelation (in photograph
  pixels), multiplied by the resize factor of the profile (1 for ImageNet-C, 0.3 Tiny-ImageNet-C,
  0.2 CIFAR-10-C) and by the image scale.

The texture itself is a bundle of thin bright "needles" (random orientations and lengths of a few
crystal sizes, with side branches for the fern-like styles) over a smooth mottled background,
standardised and mapped to the style's colour statistics. It looks like frost and has the right first
and second moments; it is not the photographs, so frost numbers are comparable across our runs but
not bit-comparable with published ImageNet-C frost results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class FrostStyle:
    """Statistics of one original frost photograph (measured once, stored as constants)."""

    source: str
    mean_rgb: tuple[float, float, float]
    std_rgb: tuple[float, float, float]
    crystal_px: float  # autocorrelation half-width of the intensity, in photograph pixels
    needle_weight: float  # share of needles vs smooth background in the texture
    branching: bool


FROST_STYLES: tuple[FrostStyle, ...] = (
    FrostStyle("frost1.png", (77.7, 149.1, 165.7), (26.9, 16.5, 15.3), 29.0, 0.35, False),
    FrostStyle("frost2.png", (200.8, 205.4, 214.5), (21.4, 22.1, 22.6), 13.0, 0.8, False),
    FrostStyle("frost3.png", (200.8, 205.4, 214.5), (21.4, 22.1, 22.6), 13.0, 0.8, False),
    FrostStyle("frost4.jpg", (137.6, 152.8, 165.2), (28.5, 28.5, 29.9), 5.0, 0.7, True),
    FrostStyle("frost5.jpg", (112.4, 123.4, 134.8), (44.4, 43.3, 41.7), 10.0, 0.75, True),
)


def _needles(shape: tuple[int, int], crystal: float, branching: bool, rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    margin = 4 * crystal
    area = (h + 2 * margin) * (w + 2 * margin)
    mean_length = 3.0 * crystal
    count = max(4, int(1.5 * area / (mean_length * max(crystal, 1.0))))
    starts = rng.uniform([-margin, -margin], [h + margin, w + margin], size=(count, 2))
    angles = rng.uniform(0, np.pi, size=count)
    lengths = rng.uniform(0.3, 1.7, size=count) * mean_length
    brightness = rng.uniform(0.5, 1.0, size=count)
    segments = [(starts, angles, lengths, brightness)]
    if branching:
        # side branches leave each needle at +-60 degrees from points along it, shorter and dimmer
        k = 3
        along = rng.uniform(0.2, 0.9, size=(count, k)) * lengths[:, None]
        base = starts[:, None, :] + along[..., None] * np.stack([np.sin(angles), np.cos(angles)], -1)[:, None]
        side = rng.choice([-1.0, 1.0], size=(count, k)) * (np.pi / 3)
        segments.append(
            (
                base.reshape(-1, 2),
                (angles[:, None] + side).reshape(-1),
                (0.35 * lengths[:, None] * rng.uniform(0.5, 1.0, size=(count, k))).reshape(-1),
                (0.7 * brightness[:, None] * np.ones((1, k))).reshape(-1),
            )
        )
    canvas = np.zeros(shape, dtype=np.float64)
    for origin, angle, length, weight in segments:
        steps = int(np.ceil(length.max() / 0.5)) + 1
        t = np.linspace(0.0, 1.0, steps)[None, :] * length[:, None]
        rows = origin[:, 0:1] + t * np.sin(angle)[:, None]
        cols = origin[:, 1:2] + t * np.cos(angle)[:, None]
        r, c = np.round(rows).astype(np.int64), np.round(cols).astype(np.int64)
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w) & (t <= length[:, None])
        values = np.broadcast_to(weight[:, None], r.shape)
        np.add.at(canvas, (r[inside], c[inside]), values[inside])
    # thin strokes: sub-pixel anti-aliasing blur; saturate where many crystals overlap
    canvas = ndimage.gaussian_filter(canvas, sigma=0.6, mode="wrap")
    return np.tanh(canvas)


def frost_texture(shape: tuple[int, int], style: int, pixel_factor: float, rng: np.random.Generator) -> np.ndarray:
    """An HxWx3 frost texture in [0, 1] with the statistics of ``FROST_STYLES[style]``.

    ``pixel_factor`` is the size of one photograph pixel in image pixels (profile resize factor times
    image scale); crystals are never thinner than ~1 image pixel.
    """
    if not 0 <= style < len(FROST_STYLES):
        raise ValueError(f"frost style must be in [0, {len(FROST_STYLES) - 1}], got {style}")
    if not pixel_factor > 0:
        raise ValueError(f"frost pixel_factor must be > 0, got {pixel_factor}")
    spec = FROST_STYLES[style]
    crystal = max(1.0, spec.crystal_px * pixel_factor)
    background = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=crystal, mode="wrap")
    background = (background - background.mean()) / (background.std() + 1e-12)
    needles = _needles(shape, crystal, spec.branching, rng)
    needles = (needles - needles.mean()) / (needles.std() + 1e-12)
    texture = spec.needle_weight * needles + (1 - spec.needle_weight) * background
    texture = (texture - texture.mean()) / (texture.std() + 1e-12)
    rgb = np.asarray(spec.mean_rgb)[None, None, :] + np.asarray(spec.std_rgb)[None, None, :] * texture[..., None]
    return np.clip(rgb / 255.0, 0, 1)
