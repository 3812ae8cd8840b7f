"""Placement helpers shared by the scene generators: furniture groups, floor space, random colours."""

from __future__ import annotations

import numpy as np

from mtl_data.synthetic.raycast import Box, Primitive, Sphere, rotation_y


def colour_near(rng: np.random.Generator, base: tuple[float, float, float], spread: float = 0.12) -> tuple:
    """A colour near ``base``: every channel moved by up to ``spread``, kept within [0.03, 0.97]."""
    return tuple(float(v) for v in np.clip(np.asarray(base) + rng.uniform(-spread, spread, 3), 0.03, 0.97))


class Group:
    """Parts of one piece of furniture, given in its local frame (x right, y up, z toward its back)."""

    def __init__(self, position: tuple[float, float], yaw: float) -> None:
        self.x, self.z, self.yaw = position[0], position[1], yaw
        self.parts: list[Primitive] = []

    def box(
        self, center: tuple[float, float, float], size: tuple[float, float, float], label: int, material: dict
    ) -> None:
        offset = rotation_y(self.yaw) @ np.asarray(center, dtype=np.float64)
        world = (self.x + offset[0], offset[1], self.z + offset[2])
        self.parts.append(Box(label, material, world, tuple(s / 2 for s in size), self.yaw))

    def sphere(self, center: tuple[float, float, float], radius: float, label: int, material: dict) -> None:
        offset = rotation_y(self.yaw) @ np.asarray(center, dtype=np.float64)
        self.parts.append(Sphere(label, material, (self.x + offset[0], offset[1], self.z + offset[2]), radius))


class FloorSpace:
    """Free floor space: footprints are discs (x, z, radius) that must not overlap."""

    def __init__(self, lo: tuple[float, float], hi: tuple[float, float], keep_out: tuple[float, float, float]):
        self.lo, self.hi = lo, hi
        self.discs: list[tuple[float, float, float]] = [keep_out]

    def fits(self, x: float, z: float, r: float) -> bool:
        if not (self.lo[0] <= x <= self.hi[0] and self.lo[1] <= z <= self.hi[1]):
            return False
        return all((x - a) ** 2 + (z - b) ** 2 >= (r + c) ** 2 for a, b, c in self.discs)

    def take(self, x: float, z: float, r: float) -> None:
        self.discs.append((x, z, r))
