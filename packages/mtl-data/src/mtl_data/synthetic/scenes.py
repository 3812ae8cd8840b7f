"""Procedural ray-cast scene datasets: the NYUv2 stand-in (indoor) and the Cityscapes stand-in (street).

Both render random scenes of boxes, spheres and planes (:mod:`mtl_data.synthetic.raycast`) with
textures, lighting and shadows, and return per-pixel ground truth that is exact by construction: the
class of the object whose surface the pixel's ray hits first, its z-depth and its normal.

:class:`IndoorScenes` (NYUv2 stand-in, tasks ``segmentation`` (13 classes), ``depth``, ``normal``):
a room (floor, ceiling, walls with windows, paintings, a TV) furnished with beds, sofas, tables with
books and objects, chairs and cabinets, seen by a Kinect-like camera (60 degree horizontal field of
view). Classes follow the NYUv2 13-class order of the MTAN data (:data:`NYU_CLASSES`); depth is the
z-depth in metres (as NYUv2); normals are unit vectors in the camera frame (x right, y down,
z forward), facing the camera.

:class:`StreetScenes` (Cityscapes stand-in, tasks ``segmentation`` (7 classes), ``depth``): a straight
street with road and sidewalks, building blocks, poles with signs, trees and grass, pedestrians and
vehicles, under a sun and sky, seen by a car-mounted camera (~50 degree field of view, 1:2 aspect);
optionally the ego-vehicle's bonnet at the bottom (void). Classes are the 7 Cityscapes categories
of the MTAN data (:data:`CITYSCAPES_CLASSES`); like the MTAN Cityscapes depth (which is disparity,
i.e. inverse depth) the depth target is inverse z-depth in 1/m, with 0 (= missing, excluded by the
metric) on sky and void pixels.

Sample layout (data contract): ``(image 3xHxW float32 in [0, 1], {"segmentation": HxW int64
(-1 = ignore), "depth": 1xHxW float32, "normal": 3xHxW float32})``.
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar

import numpy as np
import torch

from mtl_data.base import MTLDataset
from mtl_data.synthetic._base import (
    cached_arrays,
    check_resolution,
    check_size,
    check_split,
    item_seed,
    reject_unknown,
)
from mtl_data.synthetic.raycast import Box, Camera, GroundPlane, Primitive, Room, Sphere, rotation_y
from mtl_data.synthetic.render import Decal, Lighting, Rendering, Scene, render
from mtl_data.synthetic.textures import ValueNoise
from mtl_data.tasks import scene_tasks

#: Bumped whenever generation changes, so that disk caches of older versions are not reused.
GENERATOR_VERSION = 2

NYU_CLASSES: tuple[str, ...] = (
    "bed", "books", "ceiling", "chair", "floor", "furniture", "objects",
    "painting", "sofa", "table", "tv", "wall", "window",
)  # fmt: skip
BED, BOOKS, CEILING, CHAIR, FLOOR, FURNITURE, OBJECTS, PAINTING, SOFA, TABLE, TV, WALL, WINDOW = range(13)

CITYSCAPES_CLASSES: tuple[str, ...] = ("flat", "construction", "object", "nature", "sky", "human", "vehicle")
FLAT, CONSTRUCTION, OBJECT, NATURE, SKY, HUMAN, VEHICLE = range(7)
VOID = -1


# ------------------------------------------------------------------------------------------- helpers
def _colour(rng: np.random.Generator, base: tuple[float, float, float], spread: float = 0.12) -> tuple:
    return tuple(float(v) for v in np.clip(np.asarray(base) + rng.uniform(-spread, spread, 3), 0.03, 0.97))


class _Group:
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


class _Floor:
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


# ---------------------------------------------------------------------------------------- indoor
_FABRICS = [(0.75, 0.3, 0.3), (0.3, 0.4, 0.7), (0.85, 0.8, 0.65), (0.4, 0.6, 0.4), (0.6, 0.45, 0.6)]
_WOODS = [(0.55, 0.38, 0.22), (0.72, 0.55, 0.35), (0.35, 0.22, 0.12), (0.85, 0.78, 0.62)]


def _wall_frame(wall: str, room_lo: np.ndarray, room_hi: np.ndarray) -> tuple[float, tuple[float, float], int]:
    """(yaw making local +z point into the wall, (along-wall range), room face id) of a wall."""
    if wall == "back":
        return 0.0, (room_lo[0], room_hi[0]), 4
    if wall == "left":
        return -math.pi / 2, (room_lo[2], room_hi[2]), 1
    return math.pi / 2, (room_lo[2], room_hi[2]), 0


def _against_wall(wall: str, along: float, depth: float, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """Floor position (x, z) of an object of ``depth`` whose back touches ``wall`` at ``along``."""
    gap = 0.02
    if wall == "back":
        return along, hi[2] - depth / 2 - gap
    if wall == "left":
        return lo[0] + depth / 2 + gap, along
    return hi[0] - depth / 2 - gap, along


def _bed(g: _Group, rng: np.random.Generator, width: float, length: float) -> None:
    frame = {"color": _colour(rng, _WOODS[rng.integers(len(_WOODS))], 0.05), "pattern": "wood"}
    sheet = {"color": _colour(rng, _FABRICS[rng.integers(len(_FABRICS))]), "pattern": "fabric"}
    g.box((0, 0.17, 0), (width, 0.3, length), BED, frame)
    g.box((0, 0.43, -0.03), (width - 0.04, 0.22, length - 0.1), BED, sheet)
    g.box((0, 0.55, length / 2 - 0.04), (width, rng.uniform(0.8, 1.2), 0.07), BED, frame)
    pillow = {"color": _colour(rng, (0.92, 0.92, 0.9), 0.05), "pattern": "fabric"}
    g.box((0, 0.6, length / 2 - 0.3), (width * 0.7, 0.12, 0.35), BED, pillow)


def _sofa(g: _Group, rng: np.random.Generator, width: float, depth: float) -> None:
    cloth = {"color": _colour(rng, _FABRICS[rng.integers(len(_FABRICS))]), "pattern": "fabric"}
    g.box((0, 0.22, 0), (width, 0.42, depth), SOFA, cloth)
    g.box((0, 0.6, depth / 2 - 0.11), (width, 0.5, 0.22), SOFA, cloth)
    arm_height = rng.uniform(0.55, 0.65)
    for side in (-1, 1):
        g.box((side * (width / 2 - 0.1), arm_height / 2, 0), (0.2, arm_height, depth), SOFA, cloth)


def _table(g: _Group, rng: np.random.Generator, width: float, depth: float) -> float:
    wood = {"color": _colour(rng, _WOODS[rng.integers(len(_WOODS))], 0.06), "pattern": "wood", "gloss": 0.15}
    height = rng.uniform(0.7, 0.78)
    g.box((0, height - 0.02, 0), (width, 0.04, depth), TABLE, wood)
    for sx in (-1, 1):
        for sz in (-1, 1):
            g.box(
                (sx * (width / 2 - 0.06), (height - 0.04) / 2, sz * (depth / 2 - 0.06)),
                (0.05, height - 0.04, 0.05),
                TABLE,
                wood,
            )
    return height


def _chair(g: _Group, rng: np.random.Generator) -> None:
    mat = {
        "color": _colour(rng, _WOODS[rng.integers(len(_WOODS))] if rng.random() < 0.6 else (0.2, 0.2, 0.22)),
        "pattern": "plain",
    }
    seat, size = rng.uniform(0.43, 0.48), rng.uniform(0.4, 0.5)
    g.box((0, seat, 0), (size, 0.04, size), CHAIR, mat)
    g.box((0, seat + 0.25, size / 2 - 0.02), (size, 0.45, 0.04), CHAIR, mat)
    for sx in (-1, 1):
        for sz in (-1, 1):
            g.box(
                (sx * (size / 2 - 0.03), (seat - 0.02) / 2, sz * (size / 2 - 0.03)),
                (0.035, seat - 0.02, 0.035),
                CHAIR,
                mat,
            )


def _books(g: _Group, rng: np.random.Generator, top: float, area: tuple[float, float]) -> None:
    x = rng.uniform(-area[0] / 2 + 0.15, area[0] / 2 - 0.15)
    z = rng.uniform(-area[1] / 2 + 0.12, area[1] / 2 - 0.12)
    y = top
    for _ in range(rng.integers(1, 5)):
        thickness = rng.uniform(0.02, 0.05)
        colour = _colour(rng, tuple(rng.uniform(0.15, 0.85, 3)), 0.0)
        mat = {"color": colour, "pattern": "stripes", "axis": 1, "period": thickness * 0.9, "color2": (0.9, 0.88, 0.8)}
        g.box(
            (x + rng.uniform(-0.02, 0.02), y + thickness / 2, z),
            (rng.uniform(0.15, 0.24), thickness, rng.uniform(0.2, 0.3)),
            BOOKS,
            mat,
        )
        y += thickness


def _furniture(g: _Group, rng: np.random.Generator, width: float, depth: float, height: float) -> None:
    wood = {"color": _colour(rng, _WOODS[rng.integers(len(_WOODS))], 0.06), "pattern": "wood"}
    g.box((0, height / 2, 0), (width, height, depth), FURNITURE, wood)
    if rng.random() < 0.5:  # doors / drawers: slightly proud panels
        panel = {"color": _colour(rng, wood["color"], 0.05), "pattern": "plain"}
        rows = max(1, int(height / 0.45))
        for r in range(rows):
            g.box(
                (0, (r + 0.5) * height / rows, -depth / 2 - 0.005),
                (width - 0.06, height / rows - 0.05, 0.01),
                FURNITURE,
                panel,
            )


def indoor_scene(rng: np.random.Generator, height: int, width: int, shadows: bool = True) -> Scene:
    """A random furnished room seen from near one wall (see module docstring)."""
    room_w, room_d, room_h = rng.uniform(3.0, 6.0), rng.uniform(3.5, 7.0), rng.uniform(2.4, 3.0)
    lo, hi = np.array([-room_w / 2, 0.0, 0.0]), np.array([room_w / 2, room_h, room_d])
    wall_mat = {
        "color": _colour(rng, (0.82, 0.8, 0.74), 0.1),
        "pattern": "plain" if rng.random() < 0.6 else "stripes",
        "axis": 0,
        "period": 0.3,
    }
    wall_mat["color2"] = tuple(float(c) * 0.9 for c in wall_mat["color"])
    floor_mat = [
        {"color": _colour(rng, _WOODS[rng.integers(len(_WOODS))], 0.05), "pattern": "wood"},
        {"color": _colour(rng, (0.75, 0.75, 0.72), 0.1), "pattern": "tiles", "size": float(rng.uniform(0.3, 0.6))},
        {"color": _colour(rng, _FABRICS[rng.integers(len(_FABRICS))], 0.1), "pattern": "fabric"},
    ][rng.integers(3)]
    ceiling_mat = {"color": _colour(rng, (0.93, 0.93, 0.92), 0.04), "pattern": "plain"}
    room = Room(
        WALL,
        {"faces": {0: wall_mat, 1: wall_mat, 4: wall_mat, 5: wall_mat, 2: ceiling_mat, 3: floor_mat}},
        tuple(lo),
        tuple(hi),
        {2: CEILING, 3: FLOOR},
    )
    cam_pos = (rng.uniform(-room_w / 4, room_w / 4), rng.uniform(1.0, 1.6), rng.uniform(0.3, 0.8))
    camera = Camera(cam_pos, rng.uniform(-0.5, 0.5), rng.uniform(-0.4, -0.08), rng.uniform(55.0, 65.0), height, width)

    prims: list[Primitive] = [room]
    decals: list[Decal] = []
    floor = _Floor((lo[0] + 0.2, lo[2] + 0.2), (hi[0] - 0.2, hi[2] - 0.2), (cam_pos[0], cam_pos[2], 0.9))
    wall_spans: dict[str, list[tuple[float, float]]] = {"back": [], "left": [], "right": []}

    def place_against_wall(depth: float, span: float, tries: int = 20) -> tuple[str, float, float, float] | None:
        for _ in range(tries):
            wall = ["back", "left", "right"][rng.integers(3)]
            yaw, (a, b), _ = _wall_frame(wall, lo, hi)
            if b - a < span + 0.3:
                continue
            along = rng.uniform(a + span / 2 + 0.1, b - span / 2 - 0.1)
            x, z = _against_wall(wall, along, depth, lo, hi)
            radius = 0.5 * math.hypot(span, depth)
            if floor.fits(x, z, radius * 0.85):
                floor.take(x, z, radius * 0.85)
                return wall, x, z, yaw
        return None

    def place_free(radius: float, tries: int = 20) -> tuple[float, float] | None:
        for _ in range(tries):
            x, z = rng.uniform(lo[0] + radius, hi[0] - radius), rng.uniform(lo[2] + 1.0, hi[2] - radius)
            if floor.fits(x, z, radius):
                floor.take(x, z, radius)
                return x, z
        return None

    if rng.random() < 0.4:
        w, length = rng.uniform(1.0, 1.8), rng.uniform(1.9, 2.1)
        spot = place_against_wall(length, w)
        if spot:
            g = _Group((spot[1], spot[2]), spot[3])
            _bed(g, rng, w, length)
            prims += g.parts
    if rng.random() < 0.5:
        w, d = rng.uniform(1.5, 2.3), rng.uniform(0.8, 0.95)
        spot = place_against_wall(d, w)
        if spot:
            g = _Group((spot[1], spot[2]), spot[3])
            _sofa(g, rng, w, d)
            prims += g.parts
    for _ in range(rng.integers(0, 4)):
        w, d, h = rng.uniform(0.5, 1.6), rng.uniform(0.35, 0.6), rng.uniform(0.5, 2.1)
        spot = place_against_wall(d, w)
        if spot:
            g = _Group((spot[1], spot[2]), spot[3])
            _furniture(g, rng, w, d, h)
            if h < 1.3 and rng.random() < 0.5:
                _books(g, rng, h, (w, d))
            if h < 1.0 and rng.random() < 0.35:  # a TV on a low cabinet
                tv_w = min(w * 0.9, rng.uniform(0.6, 1.1))
                g.box(
                    (0, h + tv_w * 0.3, 0.05),
                    (tv_w, tv_w * 0.56, 0.05),
                    TV,
                    {"color": (0.08, 0.08, 0.1), "pattern": "screen", "gloss": 0.6},
                )
            prims += g.parts
    for _ in range(rng.integers(0, 3) if rng.random() < 0.8 else 0):
        w, d = rng.uniform(0.8, 1.6), rng.uniform(0.6, 1.0)
        spot = place_free(0.5 * math.hypot(w, d) + 0.05)
        if spot:
            g = _Group(spot, rng.uniform(-0.3, 0.3) + (math.pi / 2 if rng.random() < 0.3 else 0.0))
            top = _table(g, rng, w, d)
            if rng.random() < 0.6:
                _books(g, rng, top, (w, d))
            for _ in range(rng.integers(0, 3)):
                r = rng.uniform(0.04, 0.11)
                g.sphere(
                    (rng.uniform(-w / 2 + r, w / 2 - r), top + r, rng.uniform(-d / 2 + r, d / 2 - r)),
                    r,
                    OBJECTS,
                    {"color": _colour(rng, tuple(rng.uniform(0.1, 0.9, 3)), 0.0), "pattern": "plain", "gloss": 0.5},
                )
            prims += g.parts
    for _ in range(rng.integers(0, 5)):
        spot = place_free(0.36)
        if spot:
            g = _Group(spot, rng.uniform(-math.pi, math.pi))
            _chair(g, rng)
            prims += g.parts
    for _ in range(rng.integers(0, 4)):
        if rng.random() < 0.5:
            r = rng.uniform(0.08, 0.3)
            spot = place_free(r + 0.02)
            if spot:
                prims.append(
                    Sphere(
                        OBJECTS,
                        {"color": _colour(rng, tuple(rng.uniform(0.1, 0.9, 3)), 0.0), "pattern": "plain", "gloss": 0.4},
                        (spot[0], r, spot[1]),
                        r,
                    )
                )
        else:
            s = rng.uniform(0.2, 0.5, 3)
            spot = place_free(0.5 * math.hypot(s[0], s[2]) + 0.02)
            if spot:
                pattern = "checker" if rng.random() < 0.5 else "plain"
                g = _Group(spot, rng.uniform(-math.pi, math.pi))
                g.box(
                    (0, s[1] / 2, 0),
                    tuple(s),
                    OBJECTS,
                    {"color": _colour(rng, tuple(rng.uniform(0.1, 0.9, 3)), 0.0), "pattern": pattern, "size": 0.1},
                )
                prims += g.parts

    # wall items: windows (flush decals), paintings and wall TVs (thin boxes)
    def wall_slot(span: float) -> tuple[str, float] | None:
        for _ in range(10):
            wall = ["back", "left", "right"][rng.integers(3)]
            _, (a, b), _ = _wall_frame(wall, lo, hi)
            if b - a < span + 0.4:
                continue
            c = rng.uniform(a + span / 2 + 0.2, b - span / 2 - 0.2)
            if wall == "back" or c - span / 2 > cam_pos[2] - 0.5:
                if all(c + span / 2 < s0 or c - span / 2 > s1 for s0, s1 in wall_spans[wall]):
                    wall_spans[wall].append((c - span / 2 - 0.1, c + span / 2 + 0.1))
                    return wall, c
        return None

    def wall_box(
        wall: str, along: float, y: float, size: tuple[float, float], depth: float, label: int, mat: dict
    ) -> Box:
        yaw, _, _ = _wall_frame(wall, lo, hi)
        x, z = _against_wall(wall, along, depth, lo, hi)
        return Box(label, mat, (x, y, z), (size[0] / 2, size[1] / 2, depth / 2 - 0.001), yaw)

    for _ in range(rng.integers(0, 3)):
        w, h = rng.uniform(0.6, 1.6), rng.uniform(0.8, 1.4)
        slot = wall_slot(w)
        if slot:
            wall, c = slot
            y0 = rng.uniform(0.7, max(0.75, room_h - h - 0.25))
            _, _, face = _wall_frame(wall, lo, hi)
            if wall == "back":
                box_lo, box_hi = (c - w / 2, y0, hi[2] - 0.01), (c + w / 2, y0 + h, hi[2] + 0.01)
            else:
                wx = lo[0] if wall == "left" else hi[0]
                box_lo, box_hi = (wx - 0.01, y0, c - w / 2), (wx + 0.01, y0 + h, c + w / 2)
            decals.append(Decal(face, box_lo, box_hi, WINDOW, {"pattern": "sky_window", "emissive": True}))
    for _ in range(rng.integers(0, 4)):
        w, h = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8)
        slot = wall_slot(w)
        if slot:
            prims.append(
                wall_box(
                    slot[0],
                    slot[1],
                    rng.uniform(1.2, min(1.9, room_h - h / 2 - 0.1)),
                    (w, h),
                    0.03,
                    PAINTING,
                    {"pattern": "canvas"},
                )
            )
    if rng.random() < 0.25:
        w = rng.uniform(0.8, 1.4)
        slot = wall_slot(w)
        if slot:
            prims.append(
                wall_box(
                    slot[0],
                    slot[1],
                    rng.uniform(1.1, 1.6),
                    (w, w * 0.56),
                    0.06,
                    TV,
                    {"color": (0.06, 0.06, 0.08), "pattern": "screen", "gloss": 0.6},
                )
            )

    light = Lighting(
        ambient=float(rng.uniform(0.2, 0.35)),
        point=(float(rng.uniform(lo[0] + 0.5, hi[0] - 0.5)), room_h - 0.25, float(rng.uniform(1.0, room_d - 0.5))),
        point_intensity=float(rng.uniform(0.9, 1.5)),
        shadows=shadows,
    )
    return Scene(prims, camera, light, decals, miss_label=VOID)


# ---------------------------------------------------------------------------------------- street
def _car(g: _Group, rng: np.random.Generator) -> None:
    paint = {"color": _colour(rng, tuple(rng.uniform(0.05, 0.9, 3)), 0.0), "pattern": "plain", "gloss": 0.7}
    glass = {"color": (0.12, 0.14, 0.18), "pattern": "plain", "gloss": 0.9}
    tyre = {"color": (0.05, 0.05, 0.05), "pattern": "plain"}
    w, length = rng.uniform(1.7, 1.95), rng.uniform(3.8, 4.8)
    g.box((0, 0.68, 0), (w, 0.6, length), VEHICLE, paint)
    g.box((0, 1.2, -0.1), (w * 0.88, 0.5, length * 0.5), VEHICLE, glass)
    for sx in (-1, 1):
        for sz in (-1, 1):
            g.box((sx * (w / 2 - 0.12), 0.32, sz * (length / 2 - 0.75)), (0.26, 0.64, 0.64), VEHICLE, tyre)


def _bus(g: _Group, rng: np.random.Generator) -> None:
    paint = {
        "color": _colour(rng, tuple(rng.uniform(0.2, 0.9, 3)), 0.0),
        "pattern": "stripes",
        "axis": 1,
        "period": 1.6,
        "color2": (0.15, 0.17, 0.2),
    }
    g.box((0, 1.75, 0), (2.5, 2.9, rng.uniform(8.0, 12.0)), VEHICLE, paint)


def _pedestrian(g: _Group, rng: np.random.Generator) -> None:
    clothes = {"color": _colour(rng, tuple(rng.uniform(0.05, 0.85, 3)), 0.0), "pattern": "fabric"}
    trousers = {"color": _colour(rng, (0.2, 0.22, 0.3), 0.1), "pattern": "fabric"}
    skin = {"color": _colour(rng, (0.75, 0.58, 0.45), 0.15), "pattern": "plain"}
    tall = rng.uniform(0.9, 1.1)
    g.box((0, 0.43 * tall, 0), (0.34, 0.86 * tall, 0.22), HUMAN, trousers)
    g.box((0, 1.17 * tall, 0), (0.44, 0.62 * tall, 0.26), HUMAN, clothes)
    g.sphere((0, 1.6 * tall, 0), 0.11 * tall, HUMAN, skin)


def _tree(g: _Group, rng: np.random.Generator) -> None:
    bark = {"color": _colour(rng, (0.35, 0.25, 0.15), 0.05), "pattern": "fabric"}
    leaves = {"color": _colour(rng, (0.25, 0.45, 0.18), 0.08), "pattern": "foliage"}
    trunk = rng.uniform(2.0, 3.5)
    g.box((0, trunk / 2, 0), (0.3, trunk, 0.3), NATURE, bark)
    r = rng.uniform(1.3, 2.6)
    g.sphere((0, trunk + r * 0.8, 0), r, NATURE, leaves)
    if rng.random() < 0.5:
        g.sphere((rng.uniform(-0.6, 0.6), trunk + r * 1.5, rng.uniform(-0.6, 0.6)), r * 0.7, NATURE, leaves)


def _pole(g: _Group, rng: np.random.Generator) -> None:
    metal = {"color": _colour(rng, (0.45, 0.45, 0.47), 0.08), "pattern": "plain", "gloss": 0.3}
    h = rng.uniform(3.0, 6.0)
    g.box((0, h / 2, 0), (0.12, h, 0.12), OBJECT, metal)
    kind = rng.integers(3)
    if kind == 0:  # traffic sign
        sign = {"color": [(0.8, 0.1, 0.1), (0.1, 0.25, 0.7), (0.9, 0.8, 0.1)][rng.integers(3)], "pattern": "plain"}
        g.box((0, min(h, 2.6), -0.08), (0.6, 0.6, 0.04), OBJECT, sign)
    elif kind == 1:  # traffic light
        g.box(
            (0, h - 0.5, -0.15), (0.32, 0.9, 0.25), OBJECT, {"color": (0.1, 0.1, 0.1), "pattern": "plain", "gloss": 0.4}
        )


def street_scene(
    rng: np.random.Generator, height: int, width: int, shadows: bool = True, ego_vehicle: bool = True
) -> Scene:
    """A random street seen from a car (see module docstring)."""
    road = rng.uniform(7.0, 13.0)
    side = rng.uniform(2.0, 4.0)
    curb = rng.uniform(0.1, 0.16)
    asphalt = {"color": _colour(rng, (0.32, 0.32, 0.34), 0.05), "pattern": "asphalt", "lane_x": 0.0}
    paving = {"color": _colour(rng, (0.62, 0.6, 0.57), 0.08), "pattern": "tiles", "size": 0.4}
    grass = {"color": _colour(rng, (0.35, 0.5, 0.2), 0.07), "pattern": "foliage"}
    prims: list[Primitive] = [GroundPlane(FLAT, asphalt, 0.0)]
    length = 220.0
    window_grid = (float(rng.uniform(2.5, 4.0)), float(rng.uniform(2.8, 3.6)))  # one architecture per street
    cam_x = rng.uniform(-road / 4, road / 4)
    for s in (-1, 1):
        inner = road / 2
        prims.append(
            Box(
                FLAT, paving, (s * (inner + side / 2), curb / 2, length / 2 - 10), (side / 2, curb / 2, length / 2), 0.0
            )
        )
        x = inner + side
        green = rng.uniform(0.0, 3.0) if rng.random() < 0.5 else 0.0
        if green > 0:
            prims.append(
                Box(NATURE, grass, (s * (x + green / 2), 0.05, length / 2 - 10), (green / 2, 0.05, length / 2), 0.0)
            )
        x += green
        z = -10.0
        while z < length - 20:
            block = rng.uniform(6.0, 22.0)
            if rng.random() < 0.07:  # a gap (cross street / courtyard): open sky, maybe a low wall
                if rng.random() < 0.5:
                    wall = {"color": _colour(rng, (0.6, 0.55, 0.5), 0.1), "pattern": "bricks"}
                    prims.append(
                        Box(CONSTRUCTION, wall, (s * (x + 0.15), 0.9, z + block / 2), (0.15, 0.9, block / 2), 0.0)
                    )
                z += block
                continue
            depth = rng.uniform(8.0, 15.0)
            tall = rng.uniform(8.0, 30.0)
            facade = {
                "color": _colour(rng, tuple(rng.uniform(0.35, 0.85, 3)), 0.0),
                "pattern": "facade",
                "spacing": window_grid,
            }
            setback = rng.uniform(0.0, 1.5)
            prims.append(
                Box(
                    CONSTRUCTION,
                    facade,
                    (s * (x + setback + depth / 2), tall / 2, z + block / 2),
                    (depth / 2, tall / 2, block / 2),
                    0.0,
                )
            )
            z += block
        for _ in range(rng.integers(2, 7)):  # poles on the curb side of the sidewalk
            g = _Group((s * (inner + 0.4), rng.uniform(3.0, 80.0)), 0.0 if s > 0 else math.pi)
            _pole(g, rng)
            for p in g.parts:
                if isinstance(p, Box):
                    p.center = (p.center[0], p.center[1] + curb, p.center[2])
            prims += g.parts
        for _ in range(rng.integers(0, 8)):
            g = _Group((s * (inner + side * rng.uniform(0.5, 0.9) + green * 0.5), rng.uniform(5.0, 90.0)), 0.0)
            _tree(g, rng)
            prims += g.parts
        for _ in range(rng.integers(0, 5)):
            g = _Group(
                (s * (inner + rng.uniform(0.6, side - 0.3)), rng.uniform(3.0, 45.0)),
                rng.choice([0.0, math.pi]) + rng.uniform(-0.5, 0.5),
            )
            _pedestrian(g, rng)
            for p in g.parts:
                p.center = (p.center[0], p.center[1] + curb, p.center[2])  # type: ignore[attr-defined]
            prims += g.parts
    lanes = [-road / 2 + 1.2, -road / 4, road / 4, road / 2 - 1.2]
    for _ in range(rng.integers(0, 8)):
        lane = lanes[rng.integers(len(lanes))]
        z = rng.uniform(7.0, 70.0)
        if abs(lane - cam_x) < 1.5 and z < 12.0:
            continue  # not right in front of the camera
        g = _Group(
            (lane + rng.uniform(-0.3, 0.3), z), rng.uniform(-0.08, 0.08) + (math.pi if rng.random() < 0.3 else 0.0)
        )
        (_bus if rng.random() < 0.1 else _car)(g, rng)
        prims += g.parts

    cam_y = rng.uniform(1.2, 1.6)
    camera = Camera(
        (cam_x, cam_y, 0.0), rng.uniform(-0.12, 0.12), rng.uniform(-0.1, 0.0), rng.uniform(46.0, 56.0), height, width
    )
    if ego_vehicle:  # the bonnet of our own car, void in Cityscapes
        prims.append(
            Box(
                VOID,
                {"color": (0.1, 0.1, 0.12), "pattern": "plain", "gloss": 0.5},
                (cam_x, (cam_y - 0.5) / 2, 0.4),
                (0.95, (cam_y - 0.5) / 2, 1.6),
                0.0,
            )
        )
    elevation, azimuth = rng.uniform(0.35, 1.2), rng.uniform(-math.pi, math.pi)
    sun = (math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth))
    light = Lighting(
        ambient=float(rng.uniform(0.3, 0.45)),
        sun_direction=sun,
        sun_intensity=float(rng.uniform(0.7, 1.0)),
        shadows=shadows,
    )
    horizon = _colour(rng, (0.8, 0.85, 0.92), 0.05)
    zenith = _colour(rng, (0.35, 0.55, 0.85), 0.08)
    return Scene(prims, camera, light, [], miss_label=SKY, sky=(horizon, zenith))


# -------------------------------------------------------------------------------------- datasets
class _SceneDataset(MTLDataset):
    """Renders ``size`` scenes of a split once (or loads them from ``cache_dir``), serves them as tensors."""

    is_standin = True
    name = ""
    description = ""
    default_sizes: ClassVar[dict[str, int]] = {}
    default_resolution: tuple[int, int] = (48, 64)
    num_classes = 0
    normals = False

    def __init__(
        self,
        split: str,
        seed: int = 0,
        size: int | None = None,
        resolution: tuple[int, int] | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        shadows: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(check_split(split), scene_tasks(self.num_classes, normals=self.normals), self.description)
        self.seed = seed
        item_seed(self.name, seed, split, 0)  # validates the seed
        self.size = check_size(size, self.default_sizes[split], self.name)
        self.resolution = check_resolution(resolution or self.default_resolution, self.name)
        self.options = self._check_options(options)
        self.shadows = bool(shadows)
        h, w = self.resolution
        expected = {
            "image": ((self.size, 3, h, w), np.dtype(np.float32)),
            "segmentation": ((self.size, h, w), np.dtype(np.int8)),
            "depth": ((self.size, 1, h, w), np.dtype(np.float32)),
        }
        if self.normals:
            expected["normal"] = ((self.size, 3, h, w), np.dtype(np.float32))
        key = {
            "dataset": self.name,
            "version": GENERATOR_VERSION,
            "split": split,
            "seed": seed,
            "size": self.size,
            "resolution": self.resolution,
            "shadows": self.shadows,
            **self.options,
        }
        self._arrays = cached_arrays(cache_dir, key, expected, self._generate)

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        reject_unknown(self.name, options, ["cache_dir", "shadows"])
        return {}

    def render_item(self, index: int) -> Rendering:
        """Render item ``index`` from scratch (full-precision ground truth and the primitive ids)."""
        rng = np.random.default_rng(item_seed(self.name, self.seed, self.split, index))
        scene = self.scene_from_rng(rng)
        return render(scene, ValueNoise(rng))

    def scene_from_rng(self, rng: np.random.Generator) -> Scene:
        raise NotImplementedError

    def _targets_from(self, r: Rendering) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _generate(self) -> dict[str, np.ndarray]:
        h, w = self.resolution
        out = {
            "image": np.empty((self.size, 3, h, w), np.float32),
            "segmentation": np.empty((self.size, h, w), np.int8),
            "depth": np.empty((self.size, 1, h, w), np.float32),
        }
        if self.normals:
            out["normal"] = np.empty((self.size, 3, h, w), np.float32)
        for i in range(self.size):
            r = self.render_item(i)
            out["image"][i] = r.image
            for task, value in self._targets_from(r).items():
                out[task][i] = value
        return out

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not -self.size <= index < self.size:
            raise IndexError(f"{self.name}: index {index} out of range for {self.size} items")
        a = self._arrays
        targets = {
            "segmentation": torch.from_numpy(a["segmentation"][index].astype(np.int64)),
            "depth": torch.from_numpy(a["depth"][index].copy()),
        }
        if self.normals:
            targets["normal"] = torch.from_numpy(a["normal"][index].copy())
        return torch.from_numpy(a["image"][index].copy()), targets

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, seed={self.seed}, size={self.size}, "
            f"resolution={self.resolution})"
        )


class IndoorScenes(_SceneDataset):
    """NYUv2 stand-in: rendered rooms with exact 13-class segmentation, z-depth (m) and normals.

    Default sizes follow seed 001 A3.1 (636 train, 159 val, 654 test); default resolution 48x64
    (NYUv2 is 288x384, same 3:4 aspect). ``shadows=False`` renders faster (no shadow rays).
    """

    name = "nyuv2_standin"
    description = (
        "STAND-IN for NYUv2 (not real data): procedurally rendered indoor scenes with exact "
        "13-class segmentation, depth and surface normals"
    )
    default_sizes: ClassVar[dict[str, int]] = {"train": 636, "val": 159, "test": 654}
    default_resolution = (48, 64)
    num_classes = 13
    normals = True
    class_names = NYU_CLASSES

    def scene_from_rng(self, rng: np.random.Generator) -> Scene:
        return indoor_scene(rng, *self.resolution, shadows=self.shadows)

    def _targets_from(self, r: Rendering) -> dict[str, np.ndarray]:
        return {"segmentation": r.labels, "depth": r.depth[None], "normal": r.normal}


class StreetScenes(_SceneDataset):
    """Cityscapes stand-in: rendered streets with exact 7-class segmentation and inverse depth (1/m).

    Default sizes follow seed 001 A3.1 (2380 train, 595 val, 500 test); default resolution 32x64
    (Cityscapes is 128x256, same 1:2 aspect). ``ego_vehicle=False`` removes the void bonnet.
    """

    name = "cityscapes_standin"
    description = (
        "STAND-IN for Cityscapes (not real data): procedurally rendered street scenes with exact "
        "7-class segmentation and inverse depth"
    )
    default_sizes: ClassVar[dict[str, int]] = {"train": 2380, "val": 595, "test": 500}
    default_resolution = (32, 64)
    num_classes = 7
    normals = False
    class_names = CITYSCAPES_CLASSES

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        ego = options.pop("ego_vehicle", True)
        reject_unknown(self.name, options, ["cache_dir", "shadows", "ego_vehicle"])
        self.ego_vehicle = bool(ego)
        return {"ego_vehicle": self.ego_vehicle}

    def scene_from_rng(self, rng: np.random.Generator) -> Scene:
        return street_scene(rng, *self.resolution, shadows=self.shadows, ego_vehicle=self.ego_vehicle)

    def _targets_from(self, r: Rendering) -> dict[str, np.ndarray]:
        valid = (r.labels != VOID) & (r.depth > 0)
        inverse = np.where(valid, 1.0 / np.where(valid, r.depth, 1.0), 0.0)
        return {"segmentation": r.labels, "depth": inverse[None]}
