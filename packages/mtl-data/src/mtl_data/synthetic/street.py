"""Random streets for the Cityscapes stand-in (:class:`mtl_data.synthetic.scenes.StreetScenes`).

A straight street with road and sidewalks, building blocks, poles with signs and traffic lights,
trees and grass, pedestrians and vehicles, under a sun and sky, seen by a car-mounted camera (46-56
degree field of view), optionally over the ego vehicle's bonnet (void). Labels are the 7 Cityscapes
categories of the MTAN data.

:func:`street_scene_parts` also says what each primitive is (:class:`Part`): its finer Cityscapes class
(:data:`PART_KINDS`: road, sidewalk, building, pole, car, ...) and the object it belongs to (a car's
body, cabin and tyres share one), from which the 3-task stand-in
(:mod:`mtl_data.synthetic.street3`) builds 19-class labels and instance masks. It draws exactly the
same random numbers as :func:`street_scene`, which returns the same scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mtl_data.synthetic.layout import Group, colour_near
from mtl_data.synthetic.raycast import Box, Camera, GroundPlane, Primitive
from mtl_data.synthetic.render import Lighting, Scene

CITYSCAPES_CLASSES: tuple[str, ...] = ("flat", "construction", "object", "nature", "sky", "human", "vehicle")
FLAT, CONSTRUCTION, OBJECT, NATURE, SKY, HUMAN, VEHICLE = range(7)
VOID = -1

#: Finer class of every kind of primitive a street scene has -> its 7-class category (VOID: ego vehicle).
PART_KINDS: dict[str, int] = {
    "road": FLAT,
    "sidewalk": FLAT,
    "building": CONSTRUCTION,
    "wall": CONSTRUCTION,
    "pole": OBJECT,
    "traffic light": OBJECT,
    "traffic sign": OBJECT,
    "vegetation": NATURE,
    "terrain": NATURE,
    "person": HUMAN,
    "car": VEHICLE,
    "bus": VEHICLE,
    "ego vehicle": VOID,
}


@dataclass(frozen=True)
class Part:
    """What one primitive of a street scene is: a key of :data:`PART_KINDS` and the index of its object."""

    kind: str
    instance: int


def _car(g: Group, rng: np.random.Generator) -> None:
    paint = {"color": colour_near(rng, tuple(rng.uniform(0.05, 0.9, 3)), 0.0), "pattern": "plain", "gloss": 0.7}
    glass = {"color": (0.12, 0.14, 0.18), "pattern": "plain", "gloss": 0.9}
    tyre = {"color": (0.05, 0.05, 0.05), "pattern": "plain"}
    w, length = rng.uniform(1.7, 1.95), rng.uniform(3.8, 4.8)
    g.box((0, 0.68, 0), (w, 0.6, length), VEHICLE, paint)
    g.box((0, 1.2, -0.1), (w * 0.88, 0.5, length * 0.5), VEHICLE, glass)
    for sx in (-1, 1):
        for sz in (-1, 1):
            g.box((sx * (w / 2 - 0.12), 0.32, sz * (length / 2 - 0.75)), (0.26, 0.64, 0.64), VEHICLE, tyre)


def _bus(g: Group, rng: np.random.Generator) -> None:
    paint = {
        "color": colour_near(rng, tuple(rng.uniform(0.2, 0.9, 3)), 0.0),
        "pattern": "stripes",
        "axis": 1,
        "period": 1.6,
        "color2": (0.15, 0.17, 0.2),
    }
    g.box((0, 1.75, 0), (2.5, 2.9, rng.uniform(8.0, 12.0)), VEHICLE, paint)


def _pedestrian(g: Group, rng: np.random.Generator) -> None:
    clothes = {"color": colour_near(rng, tuple(rng.uniform(0.05, 0.85, 3)), 0.0), "pattern": "fabric"}
    trousers = {"color": colour_near(rng, (0.2, 0.22, 0.3), 0.1), "pattern": "fabric"}
    skin = {"color": colour_near(rng, (0.75, 0.58, 0.45), 0.15), "pattern": "plain"}
    tall = rng.uniform(0.9, 1.1)
    g.box((0, 0.43 * tall, 0), (0.34, 0.86 * tall, 0.22), HUMAN, trousers)
    g.box((0, 1.17 * tall, 0), (0.44, 0.62 * tall, 0.26), HUMAN, clothes)
    g.sphere((0, 1.6 * tall, 0), 0.11 * tall, HUMAN, skin)


def _tree(g: Group, rng: np.random.Generator) -> None:
    bark = {"color": colour_near(rng, (0.35, 0.25, 0.15), 0.05), "pattern": "fabric"}
    leaves = {"color": colour_near(rng, (0.25, 0.45, 0.18), 0.08), "pattern": "foliage"}
    trunk = rng.uniform(2.0, 3.5)
    g.box((0, trunk / 2, 0), (0.3, trunk, 0.3), NATURE, bark)
    r = rng.uniform(1.3, 2.6)
    g.sphere((0, trunk + r * 0.8, 0), r, NATURE, leaves)
    if rng.random() < 0.5:
        g.sphere((rng.uniform(-0.6, 0.6), trunk + r * 1.5, rng.uniform(-0.6, 0.6)), r * 0.7, NATURE, leaves)


def _pole(g: Group, rng: np.random.Generator) -> list[str]:
    """A pole, maybe with a traffic sign or light; returns the kind of each part added."""
    metal = {"color": colour_near(rng, (0.45, 0.45, 0.47), 0.08), "pattern": "plain", "gloss": 0.3}
    h = rng.uniform(3.0, 6.0)
    g.box((0, h / 2, 0), (0.12, h, 0.12), OBJECT, metal)
    kind = rng.integers(3)
    if kind == 0:  # traffic sign
        sign = {"color": [(0.8, 0.1, 0.1), (0.1, 0.25, 0.7), (0.9, 0.8, 0.1)][rng.integers(3)], "pattern": "plain"}
        g.box((0, min(h, 2.6), -0.08), (0.6, 0.6, 0.04), OBJECT, sign)
        return ["pole", "traffic sign"]
    if kind == 1:  # traffic light
        g.box(
            (0, h - 0.5, -0.15), (0.32, 0.9, 0.25), OBJECT, {"color": (0.1, 0.1, 0.1), "pattern": "plain", "gloss": 0.4}
        )
        return ["pole", "traffic light"]
    return ["pole"]


def street_scene(
    rng: np.random.Generator, height: int, width: int, shadows: bool = True, ego_vehicle: bool = True
) -> Scene:
    """A random street seen from a car (see module docstring)."""
    return street_scene_parts(rng, height, width, shadows, ego_vehicle)[0]


def street_scene_parts(
    rng: np.random.Generator, height: int, width: int, shadows: bool = True, ego_vehicle: bool = True
) -> tuple[Scene, list[Part]]:
    """:func:`street_scene` and, aligned with ``scene.primitives``, what each primitive is (:class:`Part`)."""
    road = rng.uniform(7.0, 13.0)
    side = rng.uniform(2.0, 4.0)
    curb = rng.uniform(0.1, 0.16)
    asphalt = {"color": colour_near(rng, (0.32, 0.32, 0.34), 0.05), "pattern": "asphalt", "lane_x": 0.0}
    paving = {"color": colour_near(rng, (0.62, 0.6, 0.57), 0.08), "pattern": "tiles", "size": 0.4}
    grass = {"color": colour_near(rng, (0.35, 0.5, 0.2), 0.07), "pattern": "foliage"}
    prims: list[Primitive] = []
    parts: list[Part] = []

    def add(new: list[Primitive], kinds: str | list[str]) -> None:  # one object
        kinds = [kinds] * len(new) if isinstance(kinds, str) else kinds
        if len(kinds) != len(new):
            raise AssertionError(f"{len(new)} primitives but {len(kinds)} kinds")
        instance = parts[-1].instance + 1 if parts else 0
        parts.extend(Part(kind, instance) for kind in kinds)
        prims.extend(new)

    add([GroundPlane(FLAT, asphalt, 0.0)], "road")
    length = 220.0
    window_grid = (float(rng.uniform(2.5, 4.0)), float(rng.uniform(2.8, 3.6)))  # one architecture per street
    cam_x = rng.uniform(-road / 4, road / 4)
    for s in (-1, 1):
        inner = road / 2
        add(
            [
                Box(
                    FLAT,
                    paving,
                    (s * (inner + side / 2), curb / 2, length / 2 - 10),
                    (side / 2, curb / 2, length / 2),
                    0.0,
                )
            ],
            "sidewalk",
        )
        x = inner + side
        green = rng.uniform(0.0, 3.0) if rng.random() < 0.5 else 0.0
        if green > 0:
            add(
                [Box(NATURE, grass, (s * (x + green / 2), 0.05, length / 2 - 10), (green / 2, 0.05, length / 2), 0.0)],
                "terrain",
            )
        x += green
        z = -10.0
        while z < length - 20:
            block = rng.uniform(6.0, 22.0)
            if rng.random() < 0.07:  # a gap (cross street / courtyard): open sky, maybe a low wall
                if rng.random() < 0.5:
                    wall = {"color": colour_near(rng, (0.6, 0.55, 0.5), 0.1), "pattern": "bricks"}
                    add(
                        [Box(CONSTRUCTION, wall, (s * (x + 0.15), 0.9, z + block / 2), (0.15, 0.9, block / 2), 0.0)],
                        "wall",
                    )
                z += block
                continue
            depth = rng.uniform(8.0, 15.0)
            tall = rng.uniform(8.0, 30.0)
            facade = {
                "color": colour_near(rng, tuple(rng.uniform(0.35, 0.85, 3)), 0.0),
                "pattern": "facade",
                "spacing": window_grid,
            }
            setback = rng.uniform(0.0, 1.5)
            add(
                [
                    Box(
                        CONSTRUCTION,
                        facade,
                        (s * (x + setback + depth / 2), tall / 2, z + block / 2),
                        (depth / 2, tall / 2, block / 2),
                        0.0,
                    )
                ],
                "building",
            )
            z += block
        for _ in range(rng.integers(2, 7)):  # poles on the curb side of the sidewalk
            g = Group((s * (inner + 0.4), rng.uniform(3.0, 80.0)), 0.0 if s > 0 else math.pi)
            kinds = _pole(g, rng)
            for p in g.parts:
                if isinstance(p, Box):
                    p.center = (p.center[0], p.center[1] + curb, p.center[2])
            add(g.parts, kinds)
        for _ in range(rng.integers(0, 8)):
            g = Group((s * (inner + side * rng.uniform(0.5, 0.9) + green * 0.5), rng.uniform(5.0, 90.0)), 0.0)
            _tree(g, rng)
            add(g.parts, "vegetation")
        for _ in range(rng.integers(0, 5)):
            g = Group(
                (s * (inner + rng.uniform(0.6, side - 0.3)), rng.uniform(3.0, 45.0)),
                rng.choice([0.0, math.pi]) + rng.uniform(-0.5, 0.5),
            )
            _pedestrian(g, rng)
            for p in g.parts:
                p.center = (p.center[0], p.center[1] + curb, p.center[2])  # type: ignore[attr-defined]
            add(g.parts, "person")
    lanes = [-road / 2 + 1.2, -road / 4, road / 4, road / 2 - 1.2]
    for _ in range(rng.integers(0, 8)):
        lane = lanes[rng.integers(len(lanes))]
        z = rng.uniform(7.0, 70.0)
        if abs(lane - cam_x) < 1.5 and z < 12.0:
            continue  # not right in front of the camera
        g = Group(
            (lane + rng.uniform(-0.3, 0.3), z), rng.uniform(-0.08, 0.08) + (math.pi if rng.random() < 0.3 else 0.0)
        )
        bus = rng.random() < 0.1
        (_bus if bus else _car)(g, rng)
        add(g.parts, "bus" if bus else "car")

    cam_y = rng.uniform(1.2, 1.6)
    camera = Camera(
        (cam_x, cam_y, 0.0), rng.uniform(-0.12, 0.12), rng.uniform(-0.1, 0.0), rng.uniform(46.0, 56.0), height, width
    )
    if ego_vehicle:  # the bonnet of our own car, void in Cityscapes
        add(
            [
                Box(
                    VOID,
                    {"color": (0.1, 0.1, 0.12), "pattern": "plain", "gloss": 0.5},
                    (cam_x, (cam_y - 0.5) / 2, 0.4),
                    (0.95, (cam_y - 0.5) / 2, 1.6),
                    0.0,
                )
            ],
            "ego vehicle",
        )
    elevation, azimuth = rng.uniform(0.35, 1.2), rng.uniform(-math.pi, math.pi)
    sun = (math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth))
    light = Lighting(
        ambient=float(rng.uniform(0.3, 0.45)),
        sun_direction=sun,
        sun_intensity=float(rng.uniform(0.7, 1.0)),
        shadows=shadows,
    )
    horizon = colour_near(rng, (0.8, 0.85, 0.92), 0.05)
    zenith = colour_near(rng, (0.35, 0.55, 0.85), 0.08)
    return Scene(prims, camera, light, [], miss_label=SKY, sky=(horizon, zenith)), parts
