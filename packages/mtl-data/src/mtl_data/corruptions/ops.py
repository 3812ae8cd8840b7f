"""Image operations the original corruption code takes from scikit-image, OpenCV and ImageMagick.

The reference implementation (hendrycks/robustness, ``make_imagenet_c.py``) calls ``skimage``,
``cv2`` and ImageMagick through ``wand``. We re-express each call with numpy/scipy so that the package
needs neither (the maintained port, ``imagecorruptions``, breaks on numpy 2 / scikit-image 0.26). Each
function names the call it replaces and the border convention it keeps. All images are float arrays
HxW or HxWxC; ``rng`` is a :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, signal

# OpenCV's default border BORDER_REFLECT_101 (``dcb|abcd|cba``) is scipy's "mirror";
# scikit-image's "reflect" (``cba|abcd|dcb``) is scipy's "reflect".
CV2_BORDER = "mirror"


def gaussian(image: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """``skimage.filters.gaussian(image, sigma, mode, truncate, channel_axis=-1 for HxWxC)``."""
    sigmas = (sigma, sigma, 0.0) if image.ndim == 3 else (sigma, sigma)
    return ndimage.gaussian_filter(image.astype(np.float64), sigma=sigmas, mode=mode, truncate=truncate)


def _cv2_gaussian_kernel(ksize: int, sigma: float) -> np.ndarray:
    # cv2.getGaussianKernel for sigma > 0: sampled and normalised (no fixed small-kernel table).
    offsets = np.arange(ksize) - (ksize - 1) / 2
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """Anti-aliased disk of ``defocus_blur`` (the ``disk`` helper: cv2.GaussianBlur of a 0/1 disk).

    As in the original, the support is [-8, 8] for radius <= 8 (else [-r, r], here with r rounded up
    so that non-integer rescaled radii keep an integer grid) and the kernel is normalised *before*
    the 3x3 (radius <= 8) or 5x5 Gaussian anti-aliasing, with OpenCV's reflect-101 border.
    """
    if radius <= 8:
        support = np.arange(-8, 8 + 1)
        ksize = 3
    else:
        half = math.ceil(radius)
        support = np.arange(-half, half + 1)
        ksize = 5
    xx, yy = np.meshgrid(support, support)
    aliased = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    aliased /= aliased.sum()
    g = _cv2_gaussian_kernel(ksize, alias_blur)
    out = ndimage.correlate1d(aliased, g, axis=0, mode=CV2_BORDER)
    return ndimage.correlate1d(out, g, axis=1, mode=CV2_BORDER)


def resample_kernel(kernel: np.ndarray, scale: float) -> np.ndarray:
    """A square, centred kernel stretched by ``scale`` (bilinear resampling, renormalised to sum 1).

    Used to carry a kernel defined on the reference pixel grid to an image of another resolution
    continuously: rasterising a disk of radius ``r * scale`` instead would jump between discrete
    shapes (at scale 0.87 a radius-1 disk collapses to its centre pixel and the blur vanishes).
    """
    if scale == 1.0:
        return kernel
    half = (kernel.shape[0] - 1) / 2
    new_half = max(1, math.ceil(half * scale))
    grid = np.arange(-new_half, new_half + 1) / scale + half
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    out = ndimage.map_coordinates(kernel, [rows, cols], order=1, mode="constant", cval=0.0)
    total = out.sum()
    if total <= 0:  # a kernel thinner than one pixel after shrinking: identity
        out = np.zeros_like(out)
        out[new_half, new_half] = 1.0
        return out
    return out / total


def filter2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``cv2.filter2D(image, -1, kernel)`` per channel: correlation, reflect-101 border.

    Large kernels (defocus blur on full-resolution images: 31x31 and more) go through an FFT on the
    reflect-101-padded image, as OpenCV itself does for kernels of 11x11 and larger.
    """
    if image.ndim == 3:
        return np.stack([filter2d(image[..., c], kernel) for c in range(image.shape[2])], axis=-1)
    image = image.astype(np.float64)
    if kernel.shape[0] * kernel.shape[1] < 121:
        return ndimage.correlate(image, kernel, mode=CV2_BORDER)
    ph, pw = kernel.shape[0] // 2, kernel.shape[1] // 2
    if ph >= image.shape[0] or pw >= image.shape[1]:  # numpy cannot reflect-pad beyond one period
        return ndimage.correlate(image, kernel, mode=CV2_BORDER)
    padded = np.pad(image, ((ph, ph), (pw, pw)), mode="reflect")  # numpy "reflect" == reflect-101
    return signal.fftconvolve(padded, kernel[::-1, ::-1], mode="valid")


def box_blur3(image: np.ndarray) -> np.ndarray:
    """``cv2.blur(image, (3, 3))``: 3x3 mean, reflect-101 border."""
    return ndimage.uniform_filter(image.astype(np.float64), size=3, mode=CV2_BORDER)


def motion_blur(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick ``MagickMotionBlurImage(radius, sigma, angle)`` (called through ``wand``).

    ImageMagick's kernel (effect.c, MotionBlurImage): width = 2*ceil(radius)+1 taps,
    weight_i proportional to exp(-i^2 / (2 sigma^2)) for i = 0..width-1, i.e. a one-sided Gaussian
    trail; tap i samples the pixel at offset (ceil(i cos(a) - 0.5), ceil(i sin(a) - 0.5)) in (x, y),
    with the "edge" virtual-pixel policy (clamped coordinates).
    """
    width = 2 * math.ceil(radius) + 1
    taps = np.arange(width)
    weights = np.exp(-(taps**2) / (2.0 * sigma**2))
    weights /= weights.sum()
    rad = np.deg2rad(angle)
    height_px, width_px = image.shape[:2]
    # edge-replicated padding once, then one shifted view per tap
    pad = width
    padding = ((pad, pad), (pad, pad)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image.astype(np.float64), padding, mode="edge")
    out = np.zeros(image.shape, dtype=np.float64)
    for i, w in zip(taps, weights):
        off_x = math.ceil(i * math.cos(rad) - 0.5)
        off_y = math.ceil(i * math.sin(rad) - 0.5)
        out += w * padded[pad + off_y : pad + off_y + height_px, pad + off_x : pad + off_x + width_px]
    return out


def clipped_zoom(image: np.ndarray, zoom_factor: float) -> np.ndarray:
    """Centre crop of 1/zoom of the image, zoomed back (scipy.ndimage.zoom, order 1), centre-trimmed.

    The original ``clipped_zoom`` assumes square images; here each axis is cropped and trimmed on its
    own so that non-square images keep their shape.
    """
    h, w = image.shape[:2]
    ch, cw = math.ceil(h / zoom_factor), math.ceil(w / zoom_factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = image[top : top + ch, left : left + cw]
    factors = (zoom_factor, zoom_factor) + (1,) * (image.ndim - 2)
    zoomed = ndimage.zoom(crop, factors, order=1)
    trim_top, trim_left = (zoomed.shape[0] - h) // 2, (zoomed.shape[1] - w) // 2
    return zoomed[trim_top : trim_top + h, trim_left : trim_left + w]


def plasma_fractal(rng: np.random.Generator, mapsize: int, wibble_decay: float) -> np.ndarray:
    """Diamond-square height map in [0, 1] (the ``plasma_fractal`` of the original, after FLHerne/mapgen).

    Starts from a zero corner with displacement amplitude 100, divides it by ``wibble_decay`` at every
    halving of the step; ``mapsize`` must be a power of two.
    """
    if mapsize < 2 or mapsize & (mapsize - 1):
        raise ValueError(f"plasma_fractal: mapsize must be a power of two >= 2, got {mapsize}")
    grid = np.zeros((mapsize, mapsize), dtype=np.float64)
    step = mapsize
    wibble = 100.0

    def wibbled_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        # squares: centre of each square = mean of its 4 corners (toroidal) + displacement
        corners = grid[0:mapsize:step, 0:mapsize:step]
        total = corners + np.roll(corners, -1, axis=0)
        total += np.roll(total, -1, axis=1)
        grid[half:mapsize:step, half:mapsize:step] = wibbled_mean(total)
        # diamonds: edge midpoints = mean of the 2 adjacent corners and 2 adjacent centres
        centres = grid[half:mapsize:step, half:mapsize:step]
        corners = grid[0:mapsize:step, 0:mapsize:step]
        left_right = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        grid[0:mapsize:step, half:mapsize:step] = wibbled_mean(left_right)
        up_down = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        grid[half:mapsize:step, 0:mapsize:step] = wibbled_mean(up_down)
        step //= 2
        wibble /= wibble_decay
    grid -= grid.min()
    return grid / grid.max()


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """``skimage.color.rgb2hsv`` for HxWx3 floats in [0, 1] (hue 0 and saturation 0 on greys)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(axis=-1)
    delta = value - rgb.min(axis=-1)
    safe_delta = np.where(delta == 0, 1.0, delta)
    saturation = np.where(delta == 0, 0.0, delta / np.where(value == 0, 1.0, value))
    # skimage assigns r, then g, then b: on ties the later channel wins
    hue = np.where(r == value, (g - b) / safe_delta, 0.0)
    hue = np.where(g == value, 2.0 + (b - r) / safe_delta, hue)
    hue = np.where(b == value, 4.0 + (r - g) / safe_delta, hue)
    hue = np.where(delta == 0, 0.0, (hue / 6.0) % 1.0)
    return np.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """``skimage.color.hsv2rgb`` (inverse of :func:`rgb_to_hsv`)."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    sector = np.floor(h * 6.0)
    frac = h * 6.0 - sector
    sector = sector.astype(np.int64) % 6
    p = v * (1 - s)
    q = v * (1 - frac * s)
    t = v * (1 - (1 - frac) * s)
    choices_r = [v, q, p, p, t, v]
    choices_g = [t, v, v, q, p, p]
    choices_b = [p, p, t, v, v, q]
    out = np.empty(hsv.shape, dtype=np.float64)
    out[..., 0] = np.choose(sector, choices_r)
    out[..., 1] = np.choose(sector, choices_g)
    out[..., 2] = np.choose(sector, choices_b)
    return out


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """``cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)`` for floats (ITU-R BT.601 weights)."""
    return rgb @ np.array([0.299, 0.587, 0.114])


def canny(image_u8: np.ndarray, low: float, high: float) -> np.ndarray:
    """``cv2.Canny(image, low, high)`` (3x3 Sobel, L1 gradient norm), boolean edge map.

    Sobel derivatives with replicated border (OpenCV's Canny uses BORDER_REPLICATE), non-maximum
    suppression along the gradient direction
    quantised to 0/45/90/135 degrees (OpenCV's tan(22.5)/tan(67.5) tests, strict '>' towards one
    neighbour and '>=' towards the other), then hysteresis: a candidate (> low) is an edge when its
    8-connected component of candidates contains a strong pixel (> high).
    """
    img = image_u8.astype(np.float64)
    gx = ndimage.sobel(img, axis=1, mode="nearest")
    gy = ndimage.sobel(img, axis=0, mode="nearest")
    mag = np.abs(gx) + np.abs(gy)
    padded = np.pad(mag, 1)  # zero magnitude outside, as OpenCV's NMS buffer
    h, w = mag.shape

    def neighbour(dy: int, dx: int) -> np.ndarray:
        return padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    ax, ay = np.abs(gx), np.abs(gy)
    tan22 = math.tan(math.radians(22.5))
    tan67 = math.tan(math.radians(67.5))
    horizontal = ay < ax * tan22
    vertical = ay > ax * tan67
    diagonal_sign = np.sign(gx) * np.sign(gy)
    keep = np.where(
        horizontal,
        (mag > neighbour(0, -1)) & (mag >= neighbour(0, 1)),
        np.where(
            vertical,
            (mag > neighbour(-1, 0)) & (mag >= neighbour(1, 0)),
            np.where(
                diagonal_sign < 0,
                (mag > neighbour(-1, 1)) & (mag > neighbour(1, -1)),
                (mag > neighbour(-1, -1)) & (mag > neighbour(1, 1)),
            ),
        ),
    )
    candidates = keep & (mag > low)
    labels, count = ndimage.label(candidates, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return np.zeros_like(candidates)
    strong_labels = np.unique(labels[candidates & (mag > high)])
    return np.isin(labels, strong_labels[strong_labels > 0])


def equalize_hist(image_u8: np.ndarray) -> np.ndarray:
    """``cv2.equalizeHist``: uint8 histogram equalisation with OpenCV's look-up-table rule."""
    hist = np.bincount(image_u8.ravel(), minlength=256)
    total = image_u8.size
    first = int(np.flatnonzero(hist)[0])
    if hist[first] == total:
        return np.full_like(image_u8, first)
    scale = 255.0 / (total - hist[first])
    cumulative = np.cumsum(hist) - hist[first]
    lut = np.clip(np.round(cumulative * scale), 0, 255).astype(np.uint8)
    lut[: first + 1] = 0
    return lut[image_u8]


#: OpenCV's chamfer weights of DIST_L2 with a 5x5 mask (1, 1.4, 2.1969: horizontal/vertical, diagonal,
#: knight's move) in the 16-bit fixed point of OpenCV 3/4 (``DIST_SHIFT``; the versions ImageNet-C was
#: made with), so that sums -- and the uint8 truncations downstream in spatter -- match.
_CHAMFER_5X5 = tuple(round(v * 65536) / 65536 for v in (1.0, 1.4, 2.1969))


def distance_to_zero(image: np.ndarray) -> np.ndarray:
    """``cv2.distanceTransform(image, cv2.DIST_L2, 5)``: chamfer distance of every pixel to the nearest zero.

    OpenCV's two-pass 5x5 chamfer transform (weights 1, 1.4, 2.1969 in fixed point; pixels outside the
    image are infinitely far), float32 output, vectorised per row: within a row the left-to-right
    (right-to-left) recurrence ``d[j] = min(c[j], d[j -+ 1] + 1)`` is a running minimum of ``c[k] -+ k``.
    Without any zero pixel the distances are +inf (OpenCV returns a large constant; callers truncate).
    """
    a, b, c = _CHAMFER_5X5
    h, w = image.shape
    far = np.inf
    dist = np.full((h + 4, w + 4), far)  # two rows/columns of margin on every side
    zero = image == 0
    cols = np.arange(w, dtype=np.float64)
    for i in range(h):
        r = i + 2
        up1, up2 = dist[r - 1], dist[r - 2]
        cand = np.minimum.reduce(
            [up2[1 : w + 1] + c, up2[3 : w + 3] + c, up1[0:w] + c, up1[1 : w + 1] + b,
             up1[2 : w + 2] + a, up1[3 : w + 3] + b, up1[4 : w + 4] + c]
        )  # fmt: skip
        cand = np.where(zero[i], 0.0, cand)
        dist[r, 2 : w + 2] = np.minimum.accumulate(cand - a * cols) + a * cols
    for i in range(h - 1, -1, -1):
        r = i + 2
        dn1, dn2 = dist[r + 1], dist[r + 2]
        cand = np.minimum.reduce(
            [dist[r, 2 : w + 2], dn2[3 : w + 3] + c, dn2[1 : w + 1] + c, dn1[4 : w + 4] + c,
             dn1[3 : w + 3] + b, dn1[2 : w + 2] + a, dn1[1 : w + 1] + b, dn1[0:w] + c]
        )  # fmt: skip
        dist[r, 2 : w + 2] = np.minimum.accumulate((cand + a * cols)[::-1])[::-1] - a * cols
    return dist[2 : h + 2, 2 : w + 2].astype(np.float32)  # OpenCV returns float32


def to_uint8_truncate(image: np.ndarray) -> np.ndarray:
    """``np.uint8(x)`` / ``.astype(np.uint8)`` on non-negative floats: truncation toward zero."""
    return np.clip(image, 0, 255).astype(np.uint8)
