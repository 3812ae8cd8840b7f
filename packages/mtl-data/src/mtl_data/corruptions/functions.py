"""The 19 corruption functions of Hendrycks & Dietterich (ICLR 2019), reimplemented with numpy/scipy/PIL.

Each function follows the corresponding one of hendrycks/robustness ``make_imagenet_c.py`` step by
step (the parameter tables live in :mod:`mtl_data.corruptions.tables`), with three systematic
differences, all documented in the package README:

- inputs and outputs are float images HxWx3 in [0, 1] (the original works on uint8 PIL images and
  returns values in [0, 255]); quantisation to uint8 happens where the original forces it inside the
  algorithm (glass blur, spatter, JPEG) and in the on-disk cache;
- randomness comes from an explicit ``numpy.random.Generator`` (the original uses the global
  ``np.random`` state), so a corrupted image is a deterministic function of its seed;
- parameters measured in pixels are multiplied by ``scale`` = (image size / reference size of the
  table), see :func:`mtl_data.corruptions.api.pixel_scale`; ``scale=1`` is the original.

``frost`` uses a procedural frost texture instead of the six photographs shipped with the original
code (see :mod:`mtl_data.corruptions.frost_texture`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from mtl_data.corruptions import ops
from mtl_data.corruptions.frost_texture import frost_texture
from mtl_data.corruptions.tables import ELASTIC_IMSIZE, FOG_MAPSIZE, FROST_RESIZE

CorruptionFn = Callable[[np.ndarray, Any, np.random.Generator, str, float], np.ndarray]


# ----------------------------------------------------------------------------------------------- noise
def gaussian_noise(x: np.ndarray, c: float, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Additive Gaussian noise of std ``c``."""
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1)


def shot_noise(x: np.ndarray, c: float, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Poisson (photon) noise with ``c`` photons per unit intensity."""
    return np.clip(rng.poisson(x * c) / float(c), 0, 1)


def impulse_noise(x: np.ndarray, c: float, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Salt-and-pepper noise (``skimage.util.random_noise(mode='s&p', amount=c)``, salt:pepper 1:1).

    As in scikit-image, each array element (each channel of each pixel) is replaced independently.
    """
    flipped = rng.random(x.shape) < c
    salted = rng.random(x.shape) < 0.5
    out = x.copy()
    out[flipped & salted] = 1.0
    out[flipped & ~salted] = 0.0
    return out


def speckle_noise(x: np.ndarray, c: float, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Multiplicative Gaussian noise: x + x * N(0, c^2)."""
    return np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1)


# ------------------------------------------------------------------------------------------------ blur
def gaussian_blur(x: np.ndarray, c: float, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Gaussian blur of std ``c`` pixels (skimage ``gaussian``, 'nearest' border)."""
    return np.clip(ops.gaussian(x, sigma=c * scale), 0, 1)


def _glass_permutation(
    height: int, width: int, max_delta: int, iterations: int, rng: np.random.Generator
) -> np.ndarray:
    # The original swaps pixel *values* in a sequential double loop (later swaps see earlier ones), so
    # the result is a permutation of pixel positions. We run the same loop on an index array (plain
    # Python ints: ~30x faster than indexing a numpy image) and apply the permutation once.
    perm = list(range(height * width))
    rows = range(height - max_delta, max_delta, -1)
    cols = range(width - max_delta, max_delta, -1)
    for _ in range(iterations):
        # randint(-d, d) in the original: the upper bound is exclusive, so offsets lie in [-d, d - 1]
        offsets = rng.integers(-max_delta, max_delta, size=(len(rows), len(cols), 2)).tolist()
        for i, h in enumerate(rows):
            row_offsets = offsets[i]
            for j, w in enumerate(cols):
                dx, dy = row_offsets[j]
                a = h * width + w
                b = (h + dy) * width + (w + dx)
                perm[a], perm[b] = perm[b], perm[a]
    return np.asarray(perm, dtype=np.int64)


def glass_blur(x: np.ndarray, c: tuple, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Gaussian blur, uint8 quantisation, local pixel shuffling within ``max_delta``, Gaussian blur."""
    sigma, max_delta, iterations = c
    sigma *= scale
    max_delta = max(1, round(max_delta * scale))
    h, w = x.shape[:2]
    blurred = ops.to_uint8_truncate(ops.gaussian(x, sigma=sigma) * 255)
    perm = _glass_permutation(h, w, max_delta, iterations, rng)
    shuffled = blurred.reshape(h * w, -1)[perm].reshape(blurred.shape)
    return np.clip(ops.gaussian(shuffled / 255.0, sigma=sigma), 0, 1)


def defocus_blur(x: np.ndarray, c: tuple, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Convolution with an anti-aliased disk of radius ``c[0]`` (``cv2.filter2D``, reflect-101).

    The disk is built on the reference grid, then resampled by ``scale`` (see ``ops.resample_kernel``).
    """
    radius, alias_blur = c
    kernel = ops.resample_kernel(ops.disk_kernel(radius, alias_blur), scale)
    return np.clip(ops.filter2d(x, kernel), 0, 1)


def motion_blur(x: np.ndarray, c: tuple, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """ImageMagick motion blur (radius, sigma) at a uniform angle in [-45, 45) degrees."""
    radius, sigma = c
    angle = rng.uniform(-45, 45)
    return np.clip(ops.motion_blur(x, radius * scale, sigma * scale, angle), 0, 1)


def zoom_blur(x: np.ndarray, c: tuple, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Mean of the image and its centre zooms by factors ``np.arange(*c)``."""
    factors = np.arange(*c)
    out = np.zeros_like(x)
    for factor in factors:
        out += ops.clipped_zoom(x, float(factor))
    return np.clip((x + out) / (len(factors) + 1), 0, 1)


# --------------------------------------------------------------------------------------------- weather
def _next_power_of_two(n: int) -> int:
    return 1 << max(1, (n - 1).bit_length())


def fog(x: np.ndarray, c: tuple, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Adds a plasma fractal of strength ``c[0]`` (decay ``c[1]``), then rescales to the image max.

    The fractal map is the reference map size of the profile (256 for 224-pixel ImageNet-C images)
    rescaled like the image, rounded up to a power of two, and cropped to the image.
    """
    strength, decay = c
    h, w = x.shape[:2]
    mapsize = max(_next_power_of_two(max(h, w)), _next_power_of_two(round(FOG_MAPSIZE[profile] * scale)))
    max_val = x.max()
    fractal = ops.plasma_fractal(rng, mapsize, decay)[:h, :w, None]
    return np.clip((x + strength * fractal) * max_val / (max_val + strength), 0, 1)


def frost(x: np.ndarray, c: tuple, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Blend ``c[0] * image + c[1] * frost`` with a procedural frost texture (deviation, see module doc).

    The original draws one of its first five frost photographs, resizes it by the profile's factor and
    crops a random window; we synthesise a window with the colour statistics and crystal size of the
    drawn photograph at the same resize factor and image scale.
    """
    image_weight, frost_weight = c
    style = int(rng.integers(5))
    texture = frost_texture(x.shape[:2], style, FROST_RESIZE[profile] * scale, rng)
    return np.clip(image_weight * x + frost_weight * texture, 0, 1)


def snow(x: np.ndarray, c: tuple, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Snow: thresholded zoomed noise, motion-blurred into streaks, over a whitened image."""
    mean, std, zoom, threshold, blur_radius, blur_sigma, image_weight = c
    layer = rng.normal(size=x.shape[:2], loc=mean, scale=std)
    layer = ops.clipped_zoom(layer[..., None], zoom)[..., 0]
    layer[layer < threshold] = 0
    # the original round-trips the layer through an 8-bit PNG before ImageMagick's motion blur
    layer = np.round(np.clip(layer, 0, 1) * 255) / 255
    angle = rng.uniform(-135, -45)
    layer = ops.motion_blur(layer, blur_radius * scale, blur_sigma * scale, angle)
    layer = (np.round(layer * 255) / 255)[..., None]
    gray = ops.rgb_to_gray(x)[..., None]
    x = image_weight * x + (1 - image_weight) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1)


def spatter(x: np.ndarray, c: tuple, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Water drops (c[5] == 0, pale turquoise with embossed rims) or mud splashes (c[5] == 1)."""
    mean, std, sigma, threshold, intensity_or_sigma, mud = c
    liquid = rng.normal(size=x.shape[:2], loc=mean, scale=std)
    liquid = ops.gaussian(liquid, sigma=sigma * scale)
    liquid[liquid < threshold] = 0
    if mud == 0:
        liquid_u8 = ops.to_uint8_truncate(liquid * 255)
        dist = 255 - np.where(ops.canny(liquid_u8, 50, 150), 255, 0)
        dist = np.minimum(ops.distance_to_zero(dist), np.float32(20.0))  # cv2.threshold THRESH_TRUNC at 20
        dist = ops.to_uint8_truncate(ops.box_blur3(dist).astype(np.float32))  # float32 as in OpenCV
        dist = ops.equalize_hist(dist)
        emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64)
        dist = np.clip(np.round(ops.filter2d(dist, emboss)), 0, 255)  # filter2D into CV_8U saturates
        dist = ops.box_blur3(dist)
        mask = liquid_u8 * dist
        peak = mask.max()
        if peak <= 0:
            return x.copy()
        mask = mask / peak * intensity_or_sigma
        water = np.array([175, 238, 238]) / 255.0  # pale turquoise
        return np.clip(x + mask[..., None] * water, 0, 1)
    mask = ops.gaussian((liquid > threshold).astype(np.float64), sigma=intensity_or_sigma * scale)
    mask[mask < 0.8] = 0
    mud_colour = np.array([63, 42, 20]) / 255.0
    return np.clip(x * (1 - mask[..., None]) + mud_colour * mask[..., None], 0, 1)


# --------------------------------------------------------------------------------------------- digital
def contrast(x: np.ndarray, c: float, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Shrinks every channel toward its spatial mean by the factor ``c``."""
    means = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1)


def brightness(x: np.ndarray, c: float, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Adds ``c`` to the HSV value channel."""
    hsv = ops.rgb_to_hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return np.clip(ops.hsv_to_rgb(hsv), 0, 1)


def saturate(x: np.ndarray, c: tuple, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """HSV saturation ``s * c[0] + c[1]`` (severities 1-2 desaturate, 3-5 oversaturate)."""
    hsv = ops.rgb_to_hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * c[0] + c[1], 0, 1)
    return np.clip(ops.hsv_to_rgb(hsv), 0, 1)


def _to_uint8_image(x: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(np.clip(x, 0, 1) * 255).astype(np.uint8), mode="RGB")


def jpeg_compression(x: np.ndarray, c: int, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """PIL JPEG encode/decode at quality ``c``."""
    buffer = io.BytesIO()
    _to_uint8_image(x).save(buffer, format="JPEG", quality=int(c))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.float64) / 255.0


def pixelate(x: np.ndarray, c: float, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """PIL BOX downscale by ``c`` then BOX upscale back (per channel, in float: no extra rounding)."""
    h, w = x.shape[:2]
    small = (max(1, int(w * c)), max(1, int(h * c)))
    channels = []
    for ch in range(x.shape[2]):
        img = Image.fromarray(x[..., ch].astype(np.float32), mode="F")
        img = img.resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BOX)
        channels.append(np.asarray(img, dtype=np.float64))
    return np.clip(np.stack(channels, axis=-1), 0, 1)


def elastic_transform(x: np.ndarray, c: tuple, rng: np.random.Generator, profile: str, scale: float) -> np.ndarray:
    """Random affine warp of three control points, then a smooth random displacement field.

    ``c`` = (alpha, sigma, affine shift) in multiples of the profile's ``IMSIZE`` (244 for ImageNet-C,
    64 / 32 for Tiny-ImageNet-C / CIFAR-10-C), i.e. in pixels once multiplied by ``IMSIZE * scale``.
    """
    size = ELASTIC_IMSIZE[profile] * scale
    alpha, sigma, shift = (v * size for v in c)
    h, w = x.shape[:2]
    # Control points around the centre in (row, col) order: the original builds them in the same
    # way from shape[:2] and hands them to OpenCV as (x, y), which only coincides for square images.
    centre = np.array([h, w], dtype=np.float64) // 2
    half = min(h, w) // 3
    src = np.array([centre + half, [centre[0] + half, centre[1] - half], centre - half])
    dst = src + rng.uniform(-shift, shift, size=src.shape)
    # cv2.getAffineTransform: the affine map sending src to dst; cv2.warpAffine samples src at A^-1 p.
    forward = np.linalg.solve(np.hstack([src, np.ones((3, 1))]), dst).T  # 2x3
    inverse_linear = np.linalg.inv(forward[:, :2])
    inverse_offset = -inverse_linear @ forward[:, 2]
    warped = np.stack(
        [
            ndimage.affine_transform(x[..., ch], inverse_linear, offset=inverse_offset, order=1, mode=ops.CV2_BORDER)
            for ch in range(x.shape[2])
        ],
        axis=-1,
    )
    dx = ops.gaussian(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    dy = ops.gaussian(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = np.stack([rows + dy, cols + dx])
    out = np.stack(
        [ndimage.map_coordinates(warped[..., ch], coords, order=1, mode="reflect") for ch in range(x.shape[2])],
        axis=-1,
    )
    return np.clip(out, 0, 1)


#: name -> function, in the benchmark's order followed by the 4 extra corruptions.
CORRUPTIONS: dict[str, CorruptionFn] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
    "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur,
    "spatter": spatter,
    "saturate": saturate,
}
