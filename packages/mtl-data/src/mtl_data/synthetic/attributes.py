"""CelebA stand-in: shape images with 40 correlated binary attributes (:class:`MultiAttributes`).

Each image shows a *main* object (the largest shape), up to two smaller secondary objects, a
background and decorations; every attribute is a visible property of the image (shape, colour,
size, count, position, texture, background, global quality). Like CelebA's 40 face attributes, the
attributes are correlated -- through three hidden factors and through logical structure -- so that
multi-task learning has related and unrelated tasks to share or conflict over.

Hidden factors (drawn first, never returned):

- ``night`` (p = 0.4): dark backgrounds, stars, bright and glowing main objects, vignetting, fewer
  warm backgrounds and drop shadows (the way "Male" drives many CelebA attributes);
- ``busy`` (p = 0.35): secondary objects, textured backgrounds, textured objects, frames, captions,
  crosses and noise become more frequent;
- ``geometric`` (p = 0.5): squares and triangles (vs circles and stars), outlines and rotations more
  frequent, hollow shapes less frequent.

Logical structure: the four ``main_*`` shape attributes are one-hot; ``main_red/green/blue`` are
hue families of one of six hues (yellow, cyan, magenta set none); ``main_striped`` and
``main_dotted`` exclude each other; circles are never ``main_rotated``; ``has_third`` implies
``has_second``; the ``second_*`` and ``objects_overlap`` attributes are 0 without a second object;
``bg_gradient``, ``bg_checkered`` and ``bg_noisy_texture`` exclude each other. The probabilities are
in :data:`ATTRIBUTE_RULES`; the empirical correlation matrix is ``MultiAttributes.correlation()``.

To keep every attribute decidable from the pixels, continuous properties are drawn with a margin
around their threshold (e.g. the main object fits in a disc of radius <= 0.22 S when small and
>= 0.28 S when large, S = image side), every object lies entirely inside the image, the main object is
the largest one and is drawn on top, and the second object is larger than the third.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import ndimage

from mtl_data.base import Batching, MTLDataset
from mtl_data.synthetic._base import (
    SizedStandin,
    cached_arrays,
    check_resolution,
    check_size,
    check_split,
    item_seed,
    reject_unknown,
)
from mtl_data.tasks import binary_attribute_tasks

GENERATOR_VERSION = 1

ATTRIBUTES: tuple[str, ...] = (
    "main_circle", "main_square", "main_triangle", "main_star",
    "main_large", "main_elongated", "main_red", "main_green", "main_blue",
    "main_bright", "main_pale", "main_striped", "main_dotted", "main_outlined", "main_hollow",
    "main_left", "main_top", "main_centered", "main_rotated", "main_shadow", "main_glow",
    "has_second", "has_third", "second_same_shape", "second_same_colour", "objects_overlap", "second_small",
    "bg_dark", "bg_warm", "bg_gradient", "bg_checkered", "bg_noisy_texture",
    "has_stars", "has_horizon", "has_frame", "has_caption_bar", "has_cross",
    "vignette", "blurry", "noisy",
)  # fmt: skip

#: How each attribute is drawn (probabilities given the hidden factors), for the documentation.
ATTRIBUTE_RULES: dict[str, str] = {
    "main_circle/square/triangle/star": "one-hot; geometric: .15/.40/.35/.10, else .45/.10/.10/.35",
    "main_large": "p .40 (circumradius 0.28-0.34 S vs 0.12-0.22 S)",
    "main_elongated": "geometric .35, else .20 (squeezed across its long axis by 1.6-2.0)",
    "main_red/green/blue": "hue one of 6 (red, yellow, green, cyan, blue, magenta), uniform",
    "main_bright": "night .75, day .45 (value 0.8-1 vs 0.35-0.55)",
    "main_pale": "p .30 (saturation 0.3-0.45 vs 0.75-1)",
    "main_striped/main_dotted": "exclusive; busy .35/.35, else .15/.15",
    "main_outlined": "geometric .55, else .20",
    "main_hollow": "geometric .15, else .35",
    "main_left/main_top": "centre x / y in the left / top half (margin 0.03 S)",
    "main_centered": "p .30: |dx|, |dy| <= 0.08 S from the image centre, else max(|dx|, |dy|) >= 0.12 S",
    "main_rotated": "non-circles only; geometric .50, else .20",
    "main_shadow": "night .10, day .45",
    "main_glow": "night .50, day .10",
    "has_second": "busy .85, else .35",
    "has_third": "given a second object: busy .50, else .10",
    "second_same_shape": "given a second object: .50",
    "second_same_colour": "given a second object: .60 if same shape else .25",
    "objects_overlap": "given a second object: .35 (15-70% of it hidden), if it fits (see place())",
    "second_small": "given a second object: .50 (radius 0.3-0.45 x main vs 0.6-0.8 x main), if it fits",
    "bg_dark": "night .90, day .10",
    "bg_warm": "night .15, day .50",
    "bg_gradient/checkered/noisy_texture": "exclusive; busy .20/.30/.30, else .30/.10/.10",
    "has_stars": "night .70, day .05",
    "has_horizon": "night .30, day .50",
    "has_frame": "busy .40, else .15",
    "has_caption_bar": "busy .35, else .10",
    "has_cross": "busy .30, else .05",
    "vignette": "night .50, day .15",
    "blurry": "p .15, independent",
    "noisy": "busy .35, else .10",
}

_HUES = np.array([0.0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])  # red, yellow, green, cyan, blue, magenta
_SHAPES = ("circle", "square", "triangle", "star")


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - math.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float32)


@dataclass
class _Shape:
    """A shape fitting exactly in the disc of radius ``radius`` around (cx, cy) (pixels)."""

    kind: str
    cx: float
    cy: float
    radius: float  # circumradius: the farthest point of the shape is this far from the centre
    aspect: float  # elongation: the shape is squeezed by this factor across its long axis
    angle: float
    colour: np.ndarray
    hue: int


def _polygon_sdf(px: np.ndarray, py: np.ndarray, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, negative inside) to a closed polygon (vertices vx, vy), even-odd rule."""
    dist = np.full(px.shape, np.inf, dtype=np.float32)
    inside = np.zeros(px.shape, dtype=bool)
    n = len(vx)
    for i in range(n):
        ax, ay, bx, by = vx[i], vy[i], vx[(i + 1) % n], vy[(i + 1) % n]
        ex, ey = bx - ax, by - ay
        wx, wy = px - ax, py - ay
        t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0, 1)
        dist = np.minimum(dist, (wx - ex * t) ** 2 + (wy - ey * t) ** 2)
        crosses = ((py >= ay) != (py >= by)) & (px < ax + (py - ay) * ex / (ey if ey != 0 else 1e-12))
        inside ^= crosses
    return np.where(inside, -1.0, 1.0) * np.sqrt(dist)


def _unit_vertices(kind: str) -> np.ndarray:
    """Vertices (k, 2) of the polygon with circumradius 1, a vertex or edge up."""
    if kind == "square":
        return np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)]) / math.sqrt(2)
    if kind == "triangle":
        return np.array([(math.cos(a), math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)])
    radii = [1.0 if k % 2 == 0 else 0.45 for k in range(10)]  # 5-point star
    return np.array([(r * math.cos(-math.pi / 2 + k * math.pi / 5), r * math.sin(-math.pi / 2 + k * math.pi / 5))
                     for k, r in enumerate(radii)])  # fmt: skip


def _shape_sdf(shape: _Shape, height: int, width: int, margin: float, scale: float = 1.0) -> np.ndarray:
    """Signed distance (pixels) to ``shape`` shrunk by ``scale`` about its centre, HxW.

    Evaluated only in the shape's bounding square grown by ``margin``; +inf elsewhere (every user of
    the distance -- coverage, outline, halo, clearance -- looks at most ``margin`` pixels out).
    """
    out = np.full((height, width), np.inf, dtype=np.float32)
    r = shape.radius * scale
    reach = r + margin + 1
    x0, x1 = max(0, int(shape.cx - reach)), min(width, math.ceil(shape.cx + reach))
    y0, y1 = max(0, int(shape.cy - reach)), min(height, math.ceil(shape.cy + reach))
    if x0 >= x1 or y0 >= y1:
        return out
    py, px = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    c, s = math.cos(shape.angle), math.sin(shape.angle)
    if shape.kind == "circle":
        # ellipse with semi-axes r and r / aspect: distance of the unit-circle embedding, rescaled
        # (exact for circles, close to the true distance for the mild elongations used here)
        dx, dy = px - shape.cx, py - shape.cy
        u, v = (c * dx + s * dy) / r, (-s * dx + c * dy) / (r / shape.aspect)
        out[y0:y1, x0:x1] = (np.sqrt(u * u + v * v) - 1) * r / shape.aspect
        return out
    local = _unit_vertices(shape.kind) * np.array([1.0, 1.0 / shape.aspect])
    local = local / np.linalg.norm(local, axis=1).max() * r  # keep the circumradius
    vx = (shape.cx + c * local[:, 0] - s * local[:, 1]).astype(np.float32)
    vy = (shape.cy + s * local[:, 0] + c * local[:, 1]).astype(np.float32)
    out[y0:y1, x0:x1] = _polygon_sdf(px, py, vx, vy)
    return out


def _coverage(sdf: np.ndarray) -> np.ndarray:
    return np.clip(0.5 - sdf, 0.0, 1.0)  # one-pixel anti-aliased edge


@dataclass
class AttributeRendering:
    image: np.ndarray  # HxWx3 float32 in [0, 1]
    attributes: np.ndarray  # (40,) uint8
    main_mask: np.ndarray  # where the main object is drawn (coverage > 0.5)
    second_mask: np.ndarray
    third_mask: np.ndarray


def render_attributes(rng: np.random.Generator, height: int, width: int) -> AttributeRendering:
    """Draw the hidden factors, the 40 attributes and the image (see module docstring)."""
    S = math.sqrt(height * width)
    px_unit = S / 64.0  # sizes below are given for a 64-pixel image
    a: dict[str, bool] = dict.fromkeys(ATTRIBUTES, False)
    night, busy, geometric = rng.random() < 0.4, rng.random() < 0.35, rng.random() < 0.5

    def flip(p: float) -> bool:
        return bool(rng.random() < p)

    # ----------------------------------------------------------------------------- main object
    shape_p = [0.15, 0.40, 0.35, 0.10] if geometric else [0.45, 0.10, 0.10, 0.35]
    kind = _SHAPES[rng.choice(4, p=shape_p)]
    a[f"main_{kind}"] = True
    a["main_large"] = flip(0.40)
    radius = (rng.uniform(0.28, 0.34) if a["main_large"] else rng.uniform(0.12, 0.22)) * S
    a["main_elongated"] = flip(0.35 if geometric else 0.20)
    aspect = rng.uniform(1.6, 2.0) if a["main_elongated"] else 1.0
    a["main_rotated"] = kind != "circle" and flip(0.50 if geometric else 0.20)
    symmetric = {"circle": 2 * math.pi, "square": math.pi / 2, "triangle": 2 * math.pi / 3, "star": 2 * math.pi / 5}
    # rotations stay well away from the shape's symmetry angles (rectangles and ellipses: pi; the
    # range below is inside (0, pi/2) for squares, so it also avoids pi for rectangles)
    angle = rng.uniform(0.25, 0.75) * symmetric[kind] if a["main_rotated"] else 0.0
    hue = int(rng.integers(6))
    a["main_red"], a["main_green"], a["main_blue"] = hue == 0, hue == 2, hue == 4
    a["main_bright"] = flip(0.75 if night else 0.45)
    a["main_pale"] = flip(0.30)
    value = rng.uniform(0.8, 1.0) if a["main_bright"] else rng.uniform(0.35, 0.55)
    sat = rng.uniform(0.3, 0.45) if a["main_pale"] else rng.uniform(0.75, 1.0)
    colour = _hsv(float(_HUES[hue] + rng.uniform(-0.03, 0.03)) % 1.0, sat, value)
    texture = rng.choice(3, p=[0.3, 0.35, 0.35] if busy else [0.7, 0.15, 0.15])
    a["main_striped"], a["main_dotted"] = texture == 1, texture == 2
    a["main_outlined"] = flip(0.55 if geometric else 0.20)
    a["main_hollow"] = flip(0.15 if geometric else 0.35)
    a["main_shadow"] = flip(0.10 if night else 0.45)
    a["main_glow"] = flip(0.50 if night else 0.10)
    # position: the whole shape inside the image; centred: |dx|, |dy| <= 0.08 S, else max(|dx|, |dy|)
    # >= 0.12 S; never within 0.03 S of a mid-line (so that left/top are unambiguous)
    room_x, room_y = width / 2 - radius - px_unit, height / 2 - radius - px_unit
    a["main_centered"] = flip(0.30)
    off = np.zeros(2)
    for _ in range(1000):
        if a["main_centered"]:
            off = rng.uniform(-0.08, 0.08, 2) * S
        else:
            off = np.array([rng.uniform(-room_x, room_x), rng.uniform(-room_y, room_y)])
            if np.abs(off).max() < 0.12 * S:
                continue
        if np.abs(off).min() >= 0.03 * S:
            break
    cx, cy = width / 2 + off[0], height / 2 + off[1]
    a["main_left"], a["main_top"] = bool(cx < width / 2), bool(cy < height / 2)
    main = _Shape(kind, cx, cy, radius, aspect, angle, colour, hue)

    # ------------------------------------------------------------------------ secondary objects
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    margin = 8 * px_unit
    main_sdf = _shape_sdf(main, height, width, margin)
    a["has_second"] = flip(0.85 if busy else 0.35)
    a["has_third"] = a["has_second"] and flip(0.50 if busy else 0.10)

    def place(kind2: str, r2: float, hue2: int, overlap: bool, others: list[_Shape]) -> _Shape | None:
        # overlapping: a visible shared area of 15-70% of the new shape; not overlapping: the enclosing
        # discs of the new shape and of every shape already drawn are 2 pixels apart at least
        for _ in range(60):
            if overlap:
                theta, dist = rng.uniform(0, 2 * math.pi), rng.uniform(0.55, 1.0) * (radius + r2)
                x2, y2 = cx + dist * math.cos(theta), cy + dist * math.sin(theta)
            else:
                x2, y2 = (
                    rng.uniform(r2 + px_unit, width - r2 - px_unit),
                    rng.uniform(r2 + px_unit, height - r2 - px_unit),
                )
            if not (r2 <= x2 <= width - r2 and r2 <= y2 <= height - r2):
                continue
            clear = [math.hypot(x2 - o.cx, y2 - o.cy) >= o.radius + r2 + 2 * px_unit for o in others]
            if not all(clear[1:]) or (not overlap and not clear[0]):
                continue
            shade = _hsv(
                float(_HUES[hue2] + rng.uniform(-0.03, 0.03)) % 1.0, rng.uniform(0.6, 1.0), rng.uniform(0.5, 1.0)
            )
            cand = _Shape(
                kind2, x2, y2, r2, 1.0, rng.uniform(0, 2 * math.pi) if kind2 != "circle" else 0.0, shade, hue2
            )
            if overlap:
                cov = _shape_sdf(cand, height, width, 0.0) < -0.5
                shared = (cov & (main_sdf < 0)).sum() / max(cov.sum(), 1)
                if not 0.15 <= shared <= 0.7:
                    continue
            return cand
        return None

    secondaries: list[_Shape] = []
    if a["has_second"]:
        a["second_same_shape"] = flip(0.5)
        a["second_same_colour"] = flip(0.60 if a["second_same_shape"] else 0.25)
        kind2 = kind if a["second_same_shape"] else _SHAPES[rng.choice([k for k in range(4) if _SHAPES[k] != kind])]
        hue2 = hue if a["second_same_colour"] else int(rng.choice([h for h in range(6) if h != hue]))
        overlap, small = flip(0.35), flip(0.5)
        # if the drawn (overlap, size) does not fit next to the main object, the nearest combination
        # that does is used (e.g. a large second object beside a large centred one must overlap it)
        for ov, sm in ((overlap, small), (overlap, not small), (not overlap, small), (not overlap, not small)):
            r2 = radius * (rng.uniform(0.3, 0.45) if sm else rng.uniform(0.6, 0.8))
            second = place(kind2, r2, hue2, ov, [main])
            if second is not None:
                secondaries.append(second)
                a["objects_overlap"], a["second_small"] = ov, sm
                break
    if secondaries and a["has_third"]:
        r3 = secondaries[0].radius * rng.uniform(0.5, 0.75)
        third = place(_SHAPES[rng.integers(4)], r3, int(rng.integers(6)), False, [main, secondaries[0]])
        if third is not None:
            secondaries.append(third)
    a["has_second"] = len(secondaries) >= 1
    a["has_third"] = len(secondaries) == 2

    # ------------------------------------------------------------------------------ background
    a["bg_dark"] = flip(0.90 if night else 0.10)
    a["bg_warm"] = flip(0.15 if night else 0.50)
    bg_pattern = rng.choice(4, p=[0.2, 0.2, 0.3, 0.3] if busy else [0.5, 0.3, 0.1, 0.1])
    a["bg_gradient"], a["bg_checkered"], a["bg_noisy_texture"] = bg_pattern == 1, bg_pattern == 2, bg_pattern == 3
    bg_hue = rng.uniform(-0.05, 0.15) % 1.0 if a["bg_warm"] else rng.uniform(0.45, 0.7)
    bg_value = rng.uniform(0.08, 0.22) if a["bg_dark"] else rng.uniform(0.72, 0.92)
    bg = _hsv(bg_hue, rng.uniform(0.25, 0.5), bg_value)
    img = np.broadcast_to(bg, (height, width, 3)).astype(np.float32).copy()
    if a["bg_gradient"]:
        img *= (0.75 + 0.5 * yy[..., None] / height) if not a["bg_dark"] else (1.5 - 1.0 * yy[..., None] / height)
    elif a["bg_checkered"]:
        cell = 8 * px_unit
        img *= np.where(((xx // cell + yy // cell) % 2)[..., None] > 0, 0.8, 1.15)
    elif a["bg_noisy_texture"]:
        coarse = rng.random((height // 4 + 2, width // 4 + 2)).astype(np.float32)
        noise = ndimage.zoom(coarse, 4, order=1)[:height, :width]
        img *= 0.7 + 0.6 * noise[..., None]
    img = np.clip(img, 0, 1)

    a["has_horizon"] = flip(0.30 if night else 0.50)
    if a["has_horizon"]:
        ground = _hsv(rng.choice([0.1, 0.3, 0.08]), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.5))
        img[yy >= height * rng.uniform(0.72, 0.8)] = ground
    a["has_stars"] = flip(0.70 if night else 0.05)
    if a["has_stars"]:
        n = rng.integers(10, 25)
        sx, sy = rng.integers(0, width, n), rng.integers(0, height, n)
        img[sy, sx] = np.array([1.0, 1.0, 0.85], dtype=np.float32)

    # ----------------------------------------------------------------------------- draw objects
    if a["main_glow"]:
        halo = np.clip(1 - np.maximum(main_sdf, 0) / (6 * px_unit), 0, 1)[..., None] * 0.75
        img = img * (1 - halo) + np.array([1.0, 1.0, 0.8], dtype=np.float32) * halo
    if a["main_shadow"]:
        shift = 3 * px_unit
        shadow = _coverage(
            _shape_sdf(_Shape(kind, cx + shift, cy + shift, radius, aspect, angle, colour, hue), height, width, margin)
        )
        img *= 1 - 0.6 * shadow[..., None]
    masks = []
    for sec in secondaries:
        cov = _coverage(_shape_sdf(sec, height, width, margin))[..., None]
        img = img * (1 - cov) + sec.colour * cov
        masks.append(cov[..., 0] > 0.5)
    main_cov = _coverage(main_sdf)
    if a["main_hollow"]:
        main_cov = main_cov * (1 - _coverage(_shape_sdf(main, height, width, margin, scale=0.5)))
    fill = np.broadcast_to(colour, (height, width, 3)).astype(np.float32)
    if a["main_striped"]:
        period = 6 * px_unit
        band = ((xx + yy) / period) % 1.0 < 0.5
        fill = fill * np.where(band[..., None], 0.55, 1.0)
    elif a["main_dotted"]:
        period = 5 * px_unit
        du, dv = (xx % period) - period / 2, (yy % period) - period / 2
        dots = du * du + dv * dv < (1.3 * px_unit) ** 2
        fill = np.where(dots[..., None], 1 - 0.75 * (1 - fill) if value < 0.7 else fill * 0.45, fill)
    img = img * (1 - main_cov[..., None]) + fill * main_cov[..., None]
    if a["main_outlined"]:
        ring = np.clip(1.0 - np.abs(main_sdf) / (1.2 * px_unit), 0, 1)[..., None]
        img = img * (1 - ring) + np.float32(0.05) * ring
        main_cov = np.maximum(main_cov, ring[..., 0])
    main_mask = main_cov > 0.5
    second_mask = masks[0] & ~main_mask if masks else np.zeros_like(main_mask)
    third_mask = masks[1] & ~main_mask if len(masks) > 1 else np.zeros_like(main_mask)

    # ---------------------------------------------------------------------------- decorations
    a["has_caption_bar"] = flip(0.35 if busy else 0.10)
    if a["has_caption_bar"]:
        bar = max(2, round(7 * px_unit))
        img[-bar:] = 0.08
        ticks = ((xx[-bar:] // (3 * px_unit)) % 3 == 0) & (np.abs(yy[-bar:] - (height - bar / 2)) < bar / 4)
        img[-bar:][ticks] = 0.9
    # the frame is drawn last so that it stays a clean border
    a["has_frame"] = flip(0.40 if busy else 0.15)
    if a["has_frame"]:
        t = max(1, round(3 * px_unit))
        frame_colour = np.array([0.95, 0.9, 0.2] if a["bg_dark"] else [0.15, 0.1, 0.35], dtype=np.float32)
        img[:t], img[-t:], img[:, :t], img[:, -t:] = frame_colour, frame_colour, frame_colour, frame_colour
    a["has_cross"] = flip(0.30 if busy else 0.05)
    if a["has_cross"]:
        size = 9 * px_unit
        ox, oy = width - size - 5 * px_unit, 5 * px_unit
        u, v = xx - ox, yy - oy
        inside = (u >= 0) & (u <= size) & (v >= 0) & (v <= size)
        line = inside & ((np.abs(u - v) < 1.0 * px_unit) | (np.abs(u + v - size) < 1.0 * px_unit))
        img[line] = np.array([0.9, 0.1, 0.1] if not a["main_red"] else [0.1, 0.1, 0.9], dtype=np.float32)
    a["vignette"] = flip(0.50 if night else 0.15)
    if a["vignette"]:
        r2 = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2) / ((width / 2) ** 2 + (height / 2) ** 2)
        img *= (1 - 0.75 * r2)[..., None]
    a["blurry"] = flip(0.15)
    if a["blurry"]:
        img = ndimage.gaussian_filter(img, sigma=(1.2 * px_unit, 1.2 * px_unit, 0), mode="nearest")
    a["noisy"] = flip(0.35 if busy else 0.10)
    if a["noisy"]:
        img = img + rng.normal(0, 0.08, img.shape).astype(np.float32)
    attributes = np.array([a[k] for k in ATTRIBUTES], dtype=np.uint8)
    return AttributeRendering(np.clip(img, 0, 1).astype(np.float32), attributes, main_mask, second_mask, third_mask)


class MultiAttributes(SizedStandin, MTLDataset):
    """CelebA stand-in: ``(image 3xHxW float32 in [0, 1], {attribute: float32 0/1 scalar})``.

    Default sizes 10000 / 2000 / 2000 (CelebA's 162770 / 19867 / 19962 scaled down ~16x for CPU
    runs; pass ``size`` for more); default resolution 64x64 as in the CelebA protocol of the seeds.
    Images are stored as 8 bits (CelebA ships JPEGs).
    """

    batching = Batching.SINGLE

    is_standin = True
    name = "celeba_standin"
    description = (
        "STAND-IN for CelebA (not real data): procedurally drawn shape images with 40 correlated binary attributes"
    )
    default_sizes: ClassVar[dict[str, int]] = {"train": 10000, "val": 2000, "test": 2000}
    attribute_names = ATTRIBUTES

    def __init__(
        self,
        split: str,
        seed: int = 0,
        size: int | None = None,
        resolution: tuple[int, int] = (64, 64),
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        reject_unknown(self.name, options, ["cache_dir"])
        super().__init__(check_split(split), binary_attribute_tasks(ATTRIBUTES), self.description)
        self.seed = seed
        item_seed(self.name, seed, split, 0)
        self.size = check_size(size, self.default_sizes[split], self.name)
        self.resolution = check_resolution(resolution, self.name, minimum=16)
        h, w = self.resolution
        expected = {
            "image": ((self.size, 3, h, w), np.dtype(np.uint8)),
            "attributes": ((self.size, len(ATTRIBUTES)), np.dtype(np.uint8)),
        }
        key = {"dataset": self.name, "version": GENERATOR_VERSION, "split": split, "seed": seed,
               "size": self.size, "resolution": self.resolution}  # fmt: skip
        arrays = cached_arrays(cache_dir, key, expected, self._generate)
        self._images = arrays["image"]
        self._attributes = torch.from_numpy(arrays["attributes"].astype(np.float32))

    def render_item(self, index: int) -> AttributeRendering:
        """Item ``index`` rendered from scratch, with the masks of the objects (for inspection/tests)."""
        rng = np.random.default_rng(item_seed(self.name, self.seed, self.split, index))
        return render_attributes(rng, *self.resolution)

    def _generate(self) -> dict[str, np.ndarray]:
        h, w = self.resolution
        images = np.empty((self.size, 3, h, w), np.uint8)
        attributes = np.empty((self.size, len(ATTRIBUTES)), np.uint8)
        for i in range(self.size):
            r = self.render_item(i)
            images[i] = np.round(r.image.transpose(2, 0, 1) * 255).astype(np.uint8)
            attributes[i] = r.attributes
        return {"image": images, "attributes": attributes}

    @property
    def attributes(self) -> torch.Tensor:
        """(N, 40) float32 0/1 matrix of all attributes of the split."""
        return self._attributes

    def correlation(self) -> np.ndarray:
        """Empirical 40x40 Pearson correlation of the attributes on this split (NaN-free)."""
        x = self._attributes.numpy().astype(np.float64)
        x = x - x.mean(axis=0)
        std = np.sqrt((x**2).mean(axis=0))
        std[std == 0] = 1.0
        return (x.T @ x) / len(x) / np.outer(std, std)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.check_index(index)
        image = torch.from_numpy(self._images[index].astype(np.float32) / 255.0)
        row = self._attributes[index]
        return image, {name: row[k] for k, name in enumerate(ATTRIBUTES)}
