"""Random furnished rooms for the NYUv2 stand-in (:class:`mtl_data.synthetic.scenes.IndoorScenes`).

A room (floor, ceiling, walls with windows, paintings, a TV) furnished with beds, sofas, tables with
books and objects, chairs and cabinets, seen by a Kinect-like camera (55-65 degree horizontal field of
view) from near the front wall. Labels follow the NYUv2 13-class order of the MTAN data.
"""

from __future__ import annotations

import math

import numpy as np

from mtl_data.synthetic.layout import FloorSpace, Group, colour_near
from mtl_data.synthetic.raycast import Box, Camera, Primitive, Room, Sphere
from mtl_data.synthetic.render import Decal, Lighting, Scene

NYU_CLASSES: tuple[str, ...] = (
    "bed", "books", "ceiling", "chair", "floor", "furniture", "objects",
    "painting", "sofa", "table", "tv", "wall", "window",
)  # fmt: skip
BED, BOOKS, CEILING, CHAIR, FLOOR, FURNITURE, OBJECTS, PAINTING, SOFA, TABLE, TV, WALL, WINDOW = range(13)
VOID = -1


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


def _bed(g: Group, rng: np.random.Generator, width: float, length: float) -> None:
    frame = {"color": colour_near(rng, _WOODS[rng.integers(len(_WOODS))], 0.05), "pattern": "wood"}
    sheet = {"color": colour_near(rng, _FABRICS[rng.integers(len(_FABRICS))]), "pattern": "fabric"}
    g.box((0, 0.17, 0), (width, 0.3, length), BED, frame)
    g.box((0, 0.43, -0.03), (width - 0.04, 0.22, length - 0.1), BED, sheet)
    g.box((0, 0.55, length / 2 - 0.04), (width, rng.uniform(0.8, 1.2), 0.07), BED, frame)
    pillow = {"color": colour_near(rng, (0.92, 0.92, 0.9), 0.05), "pattern": "fabric"}
    g.box((0, 0.6, length / 2 - 0.3), (width * 0.7, 0.12, 0.35), BED, pillow)


def _sofa(g: Group, rng: np.random.Generator, width: float, depth: float) -> None:
    cloth = {"color": colour_near(rng, _FABRICS[rng.integers(len(_FABRICS))]), "pattern": "fabric"}
    g.box((0, 0.22, 0), (width, 0.42, depth), SOFA, cloth)
    g.box((0, 0.6, depth / 2 - 0.11), (width, 0.5, 0.22), SOFA, cloth)
    arm_height = rng.uniform(0.55, 0.65)
    for side in (-1, 1):
        g.box((side * (width / 2 - 0.1), arm_height / 2, 0), (0.2, arm_height, depth), SOFA, cloth)


def _table(g: Group, rng: np.random.Generator, width: float, depth: float) -> float:
    wood = {"color": colour_near(rng, _WOODS[rng.integers(len(_WOODS))], 0.06), "pattern": "wood", "gloss": 0.15}
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


def _chair(g: Group, rng: np.random.Generator) -> None:
    mat = {
        "color": colour_near(rng, _WOODS[rng.integers(len(_WOODS))] if rng.random() < 0.6 else (0.2, 0.2, 0.22)),
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


def _books(g: Group, rng: np.random.Generator, top: float, area: tuple[float, float]) -> None:
    x = rng.uniform(-area[0] / 2 + 0.15, area[0] / 2 - 0.15)
    z = rng.uniform(-area[1] / 2 + 0.12, area[1] / 2 - 0.12)
    y = top
    for _ in range(rng.integers(1, 5)):
        thickness = rng.uniform(0.02, 0.05)
        colour = colour_near(rng, tuple(rng.uniform(0.15, 0.85, 3)), 0.0)
        mat = {"color": colour, "pattern": "stripes", "axis": 1, "period": thickness * 0.9, "color2": (0.9, 0.88, 0.8)}
        g.box(
            (x + rng.uniform(-0.02, 0.02), y + thickness / 2, z),
            (rng.uniform(0.15, 0.24), thickness, rng.uniform(0.2, 0.3)),
            BOOKS,
            mat,
        )
        y += thickness


def _furniture(g: Group, rng: np.random.Generator, width: float, depth: float, height: float) -> None:
    wood = {"color": colour_near(rng, _WOODS[rng.integers(len(_WOODS))], 0.06), "pattern": "wood"}
    g.box((0, height / 2, 0), (width, height, depth), FURNITURE, wood)
    if rng.random() < 0.5:  # doors / drawers: slightly proud panels
        panel = {"color": colour_near(rng, wood["color"], 0.05), "pattern": "plain"}
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
        "color": colour_near(rng, (0.82, 0.8, 0.74), 0.1),
        "pattern": "plain" if rng.random() < 0.6 else "stripes",
        "axis": 0,
        "period": 0.3,
    }
    wall_mat["color2"] = tuple(float(c) * 0.9 for c in wall_mat["color"])
    floor_mat = [
        {"color": colour_near(rng, _WOODS[rng.integers(len(_WOODS))], 0.05), "pattern": "wood"},
        {"color": colour_near(rng, (0.75, 0.75, 0.72), 0.1), "pattern": "tiles", "size": float(rng.uniform(0.3, 0.6))},
        {"color": colour_near(rng, _FABRICS[rng.integers(len(_FABRICS))], 0.1), "pattern": "fabric"},
    ][rng.integers(3)]
    ceiling_mat = {"color": colour_near(rng, (0.93, 0.93, 0.92), 0.04), "pattern": "plain"}
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
    floor = FloorSpace((lo[0] + 0.2, lo[2] + 0.2), (hi[0] - 0.2, hi[2] - 0.2), (cam_pos[0], cam_pos[2], 0.9))
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
            g = Group((spot[1], spot[2]), spot[3])
            _bed(g, rng, w, length)
            prims += g.parts
    if rng.random() < 0.5:
        w, d = rng.uniform(1.5, 2.3), rng.uniform(0.8, 0.95)
        spot = place_against_wall(d, w)
        if spot:
            g = Group((spot[1], spot[2]), spot[3])
            _sofa(g, rng, w, d)
            prims += g.parts
    for _ in range(rng.integers(0, 4)):
        w, d, h = rng.uniform(0.5, 1.6), rng.uniform(0.35, 0.6), rng.uniform(0.5, 2.1)
        spot = place_against_wall(d, w)
        if spot:
            g = Group((spot[1], spot[2]), spot[3])
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
            g = Group(spot, rng.uniform(-0.3, 0.3) + (math.pi / 2 if rng.random() < 0.3 else 0.0))
            top = _table(g, rng, w, d)
            if rng.random() < 0.6:
                _books(g, rng, top, (w, d))
            for _ in range(rng.integers(0, 3)):
                r = rng.uniform(0.04, 0.11)
                g.sphere(
                    (rng.uniform(-w / 2 + r, w / 2 - r), top + r, rng.uniform(-d / 2 + r, d / 2 - r)),
                    r,
                    OBJECTS,
                    {"color": colour_near(rng, tuple(rng.uniform(0.1, 0.9, 3)), 0.0), "pattern": "plain", "gloss": 0.5},
                )
            prims += g.parts
    for _ in range(rng.integers(0, 5)):
        spot = place_free(0.36)
        if spot:
            g = Group(spot, rng.uniform(-math.pi, math.pi))
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
                        {
                            "color": colour_near(rng, tuple(rng.uniform(0.1, 0.9, 3)), 0.0),
                            "pattern": "plain",
                            "gloss": 0.4,
                        },
                        (spot[0], r, spot[1]),
                        r,
                    )
                )
        else:
            s = rng.uniform(0.2, 0.5, 3)
            spot = place_free(0.5 * math.hypot(s[0], s[2]) + 0.02)
            if spot:
                pattern = "checker" if rng.random() < 0.5 else "plain"
                g = Group(spot, rng.uniform(-math.pi, math.pi))
                g.box(
                    (0, s[1] / 2, 0),
                    tuple(s),
                    OBJECTS,
                    {"color": colour_near(rng, tuple(rng.uniform(0.1, 0.9, 3)), 0.0), "pattern": pattern, "size": 0.1},
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
