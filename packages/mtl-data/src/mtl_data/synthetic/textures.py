"""Procedural solid textures for the rendered scenes: value noise and a few material patterns.

Textures are functions of the hit point in the object's own frame (solid textures: no UV mapping),
vectorised over all hit points of a primitive. They only change the image, never the ground truth.
"""

from __future__ import annotations

import numpy as np


class ValueNoise:
    """Smooth 3-D value noise in [0, 1]: random values on the integer lattice, smoothstep-interpolated.

    The lattice values are a 4096-entry table drawn from ``rng``, indexed by a spatial hash of the
    lattice point (the large-prime XOR hash of Teschner et al. 2003; one integer expression instead of
    Perlin's three chained table look-ups), so every scene has its own noise and the texture is a pure
    function of position.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.values = rng.random(4096)

    def _lattice(self, ix: np.ndarray, iy: np.ndarray, iz: np.ndarray) -> np.ndarray:
        return self.values[((ix * 73856093) ^ (iy * 19349663) ^ (iz * 83492791)) & 4095]

    def __call__(self, points: np.ndarray, frequency: float = 1.0) -> np.ndarray:
        q = points * frequency
        base = np.floor(q)
        f = q - base
        w = f * f * (3 - 2 * f)
        i = base.astype(np.int64)
        out = np.zeros(len(points))
        for dx in (0, 1):
            wx = w[:, 0] if dx else 1 - w[:, 0]
            for dy in (0, 1):
                wy = w[:, 1] if dy else 1 - w[:, 1]
                for dz in (0, 1):
                    wz = w[:, 2] if dz else 1 - w[:, 2]
                    out += wx * wy * wz * self._lattice(i[:, 0] + dx, i[:, 1] + dy, i[:, 2] + dz)
        return out

    def fractal(self, points: np.ndarray, frequency: float = 1.0, octaves: int = 3) -> np.ndarray:
        """Sum of ``octaves`` noise layers of doubling frequency and halving weight, in [0, 1]."""
        total, norm, amplitude = np.zeros(len(points)), 0.0, 1.0
        for k in range(octaves):
            total += amplitude * self(points + 17.0 * k, frequency * 2**k)
            norm += amplitude
            amplitude /= 2
        return total / norm


def albedo(material: dict, local: np.ndarray, noise: ValueNoise, colours: np.ndarray | None = None) -> np.ndarray:
    """RGB reflectance in [0, 1] of hit points (local coordinates, metres) for a material dict.

    ``colours`` (n, 3), if given, replaces ``material["color"]`` point by point (several primitives
    sharing one texture kind with different colours are evaluated in one call).

    ``material``: ``{"color": (r, g, b), "pattern": name, ...pattern options}``. Patterns: ``plain``
    (slight mottling), ``wood`` (grain along local x), ``tiles`` (floor tiles with grout), ``stripes``
    (bands along an axis), ``checker``, ``fabric`` (fine noise), ``bricks``, ``facade`` (building
    windows on a grid), ``asphalt``, ``foliage``, ``screen`` (dark glossy gradient), ``canvas``
    (colourful blobs of a painting), ``sky_window`` (bright blue-white gradient of a window).
    """
    n = len(local)
    if colours is None:
        colours = np.broadcast_to(np.asarray(material.get("color", (0.7, 0.7, 0.7)), dtype=np.float64), (n, 3))
    color = colours
    pattern = material.get("pattern", "plain")
    x, y, z = local[:, 0], local[:, 1], local[:, 2]
    if pattern == "plain":
        shade = 0.92 + 0.16 * noise(local, 2.0)
    elif pattern == "wood":
        grain = np.sin(40.0 * (z + 0.15 * noise(local, 1.5)) + 6.0 * noise(local, 4.0))
        shade = 0.8 + 0.2 * grain
    elif pattern == "tiles":
        size = material.get("size", 0.5)
        u, v = x / size, z / size
        grout = (np.abs(u - np.round(u)) < 0.04) | (np.abs(v - np.round(v)) < 0.04)
        checker = (np.floor(u) + np.floor(v)) % 2
        shade = np.where(grout, 0.55, 0.9 + 0.1 * checker) * (0.95 + 0.1 * noise(local, 3.0))
    elif pattern == "stripes":
        axis = material.get("axis", 1)
        period = material.get("period", 0.2)
        band = (np.floor(local[:, axis] / (period / 2)) % 2).astype(np.float64)
        second = np.asarray(material.get("color2", color * 0.55))
        return np.clip(np.where(band[:, None] > 0, color, second) * (0.93 + 0.14 * noise(local, 3.0))[:, None], 0, 1)
    elif pattern == "checker":
        size = material.get("size", 0.25)
        checker = (np.floor(x / size) + np.floor(y / size) + np.floor(z / size)) % 2
        shade = 0.75 + 0.25 * checker
    elif pattern == "fabric":
        shade = 0.85 + 0.3 * noise(local, 25.0) * noise(local, 3.0)
    elif pattern == "bricks":
        row_h, brick_w = 0.08, 0.22
        row = np.floor(y / row_h)
        offset = (row % 2) * brick_w / 2
        mortar = (np.abs(y / row_h - np.round(y / row_h)) < 0.08) | (
            np.abs((x + z + offset) / brick_w - np.round((x + z + offset) / brick_w)) < 0.04
        )
        shade = np.where(mortar, 1.3, 0.85 + 0.2 * noise(local, 6.0))
    elif pattern == "facade":
        spacing = np.asarray(material.get("spacing", (3.0, 3.2)))  # horizontal, vertical (m)
        h_coord = x + z  # local faces are axis-aligned: one of x, z is constant on a face
        u = (h_coord / spacing[0]) % 1.0
        v = (y / spacing[1]) % 1.0
        window = (u > 0.25) & (u < 0.75) & (v > 0.3) & (v < 0.8) & (y > 2.5)
        glass = np.asarray(material.get("glass", (0.25, 0.3, 0.38)))
        base = color * (0.9 + 0.15 * noise(local, 1.0))[:, None]
        return np.clip(np.where(window[:, None], glass, base), 0, 1)
    elif pattern == "asphalt":
        shade = 0.8 + 0.35 * noise(local, 12.0) * noise(local, 1.0)
        lane = material.get("lane_x")
        if lane is not None:
            dash = (np.abs(x - lane) < 0.08) & ((z % 6.0) < 3.0)
            return np.clip(np.where(dash[:, None], np.array([0.85, 0.85, 0.8]), color * shade[:, None]), 0, 1)
    elif pattern == "foliage":
        shade = 0.6 + 0.6 * noise(local, 8.0) * noise(local, 2.0)
    elif pattern == "screen":
        shade = 0.6 + 0.8 * np.clip(0.5 + 0.6 * (y - x), 0, 1) * 0.3
    elif pattern == "canvas":
        hue = np.stack([noise(local + 3.1, 4.0), noise(local + 7.7, 4.0), noise(local + 1.3, 4.0)], axis=1)
        return np.clip(0.15 + 0.85 * hue, 0, 1)
    elif pattern == "sky_window":
        t = np.clip(0.5 + 0.8 * y, 0, 1)
        top, bottom = np.array([0.75, 0.88, 1.0]), np.array([0.95, 0.97, 1.0])
        return np.clip(bottom + (top - bottom) * t[:, None], 0, 1)
    else:
        raise ValueError(f"unknown texture pattern {pattern!r}")
    return np.clip(color * shade[:, None], 0, 1)
