"""A small vectorised ray caster: pinhole camera, boxes, spheres, ground plane and room interiors.

Every pixel's ray is intersected analytically with every primitive (numpy, float64), so the nearest
hit gives the exact depth, surface normal and object of that pixel: the ground truth of the procedural
scene datasets is exact by construction, not estimated from the image.

Conventions
-----------
World frame: x right, y up, z forward (metres). Camera frame (OpenCV): x right, y down, z forward.
Ray directions are *not* normalised: in camera coordinates they are ``((u - cx)/f, (v - cy)/f, 1)``,
so the ray parameter ``t`` of a hit is its z-depth (distance along the optical axis, the quantity a
Kinect depth map and NYUv2 store). Normals are unit vectors in the camera frame, pointing toward the
camera side of the surface (``n . d < 0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

EPS = 1e-9
NO_HIT = np.inf


def rotation_y(angle: float) -> np.ndarray:
    """Rotation about the world's vertical axis by ``angle`` radians (x toward z for positive angles)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at ``position`` turned by ``yaw`` (about y) and ``pitch`` (positive: looking up).

    ``hfov`` is the horizontal field of view in degrees; pixels are square; rays pass through pixel
    centres ``(j + 0.5, i + 0.5)``.
    """

    position: tuple[float, float, float]
    yaw: float
    pitch: float
    hfov: float
    height: int
    width: int

    @property
    def focal(self) -> float:
        return self.width / (2.0 * math.tan(math.radians(self.hfov) / 2.0))

    @property
    def rotation(self) -> np.ndarray:
        """Camera-to-world rotation: columns are the camera's x (right), y (down), z (forward) axes."""
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        # pitch about the camera's x axis (up positive), then yaw about world y
        forward = np.array([0.0, sp, cp])
        down = np.array([0.0, -cp, sp])
        right = np.array([1.0, 0.0, 0.0])
        yaw = rotation_y(self.yaw)
        return yaw @ np.stack([right, down, forward], axis=1)

    def camera_rays(self) -> np.ndarray:
        """Directions in the camera frame, (H*W, 3), unit z component."""
        f = self.focal
        v, u = np.meshgrid(np.arange(self.height) + 0.5, np.arange(self.width) + 0.5, indexing="ij")
        x = (u - self.width / 2.0) / f
        y = (v - self.height / 2.0) / f
        return np.stack([x.ravel(), y.ravel(), np.ones(x.size)], axis=1)

    def world_rays(self) -> tuple[np.ndarray, np.ndarray]:
        """(origins, directions) in the world frame, each (H*W, 3)."""
        directions = self.camera_rays() @ self.rotation.T
        origins = np.broadcast_to(np.asarray(self.position, dtype=np.float64), directions.shape)
        return origins, directions


@dataclass
class Hit:
    """Nearest-hit record of a batch of rays: ``t`` (inf where missed), world normals, object index."""

    t: np.ndarray
    normal: np.ndarray
    index: np.ndarray
    face: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Hit:
        return cls(np.full(n, NO_HIT), np.zeros((n, 3)), np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64))


@dataclass
class Primitive:
    """Base of a scene object: a segmentation ``label`` and a ``material`` (dict read by the shader)."""

    label: int
    material: dict = field(default_factory=dict)

    def intersect(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t, world normal, face id) of each ray's first hit with t > EPS; t = inf where missed."""
        raise NotImplementedError

    def local_point(self, points: np.ndarray) -> np.ndarray:
        """Hit points in the object's own frame (texture coordinates)."""
        return points


def _slab(origins: np.ndarray, directions: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, ...]:
    # Kay-Kajiya slab test against the axis-aligned box [-half, half]; zero direction components are
    # nudged so that 0 * inf never produces NaN.
    safe = np.where(np.abs(directions) < 1e-15, 1e-15, directions)
    t1 = (-half - origins) / safe
    t2 = (half - origins) / safe
    t_near = np.minimum(t1, t2)
    t_far = np.maximum(t1, t2)
    return t_near, t_far, safe


@dataclass
class Box(Primitive):
    """Box of half extents ``half`` centred at ``center``, turned by ``yaw`` about the vertical axis."""

    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    half: tuple[float, float, float] = (0.5, 0.5, 0.5)
    yaw: float = 0.0

    def _to_local(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rot = rotation_y(self.yaw)  # local -> world
        local_o = (origins - np.asarray(self.center)) @ rot
        local_d = directions @ rot
        return local_o, local_d, rot

    def intersect(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        local_o, local_d, rot = self._to_local(origins, directions)
        t_near, t_far, safe = _slab(local_o, local_d, np.asarray(self.half))
        entry = t_near.max(axis=1)
        exit_ = t_far.min(axis=1)
        hit = (entry <= exit_) & (entry > EPS)
        axis = t_near.argmax(axis=1)
        rows = np.arange(len(axis))
        local_n = np.zeros_like(local_o)
        local_n[rows, axis] = -np.sign(safe[rows, axis])
        face = axis * 2 + (local_n[rows, axis] > 0)
        return np.where(hit, entry, NO_HIT), local_n @ rot.T, face

    def local_point(self, points: np.ndarray) -> np.ndarray:
        return (points - np.asarray(self.center)) @ rotation_y(self.yaw)


@dataclass
class Sphere(Primitive):
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 0.5

    def intersect(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        center = np.asarray(self.center)
        oc = origins - center
        a = np.einsum("ij,ij->i", directions, directions)
        half_b = np.einsum("ij,ij->i", directions, oc)
        c = np.einsum("ij,ij->i", oc, oc) - self.radius**2
        disc = half_b**2 - a * c
        root = np.sqrt(np.maximum(disc, 0.0))
        t = (-half_b - root) / a
        hit = (disc >= 0) & (t > EPS)
        points = origins + t[:, None] * directions
        normal = (points - center) / self.radius
        return np.where(hit, t, NO_HIT), normal, np.zeros(len(t), dtype=np.int64)

    def local_point(self, points: np.ndarray) -> np.ndarray:
        return points - np.asarray(self.center)


@dataclass
class GroundPlane(Primitive):
    """The horizontal plane y = ``height``, seen from above."""

    height: float = 0.0

    def intersect(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dy = directions[:, 1]
        safe = np.where(np.abs(dy) < 1e-15, -1e-15, dy)
        t = (self.height - origins[:, 1]) / safe
        hit = (dy < 0) & (origins[:, 1] > self.height) & (t > EPS)
        normal = np.zeros_like(origins)
        normal[:, 1] = 1.0
        return np.where(hit, t, NO_HIT), normal, np.zeros(len(t), dtype=np.int64)


#: faces of a room seen from inside, indexed like :class:`Box` faces (axis * 2 + positive-normal)
ROOM_FACES = {0: "wall_x_max", 1: "wall_x_min", 2: "ceiling", 3: "floor", 4: "wall_z_max", 5: "wall_z_min"}


@dataclass
class Room(Primitive):
    """Interior of the axis-aligned box [lo, hi] (camera inside): the far face of every ray.

    ``face_labels[face]`` overrides ``label`` per face (floor, ceiling, walls), faces numbered as in
    :data:`ROOM_FACES`: face 3 is the floor (y = lo, normal +y), face 2 the ceiling.
    """

    lo: tuple[float, float, float] = (-2.0, 0.0, 0.0)
    hi: tuple[float, float, float] = (2.0, 2.5, 4.0)
    face_labels: dict = field(default_factory=dict)

    def intersect(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        centre, half = (lo + hi) / 2, (hi - lo) / 2
        _, t_far, safe = _slab(origins - centre, directions, half)
        exit_ = t_far.min(axis=1)
        axis = t_far.argmin(axis=1)
        rows = np.arange(len(axis))
        normal = np.zeros_like(origins)
        normal[rows, axis] = -np.sign(safe[rows, axis])  # inward
        face = axis * 2 + (normal[rows, axis] > 0)
        inside = np.all((origins > lo) & (origins < hi), axis=1)
        return np.where(inside & (exit_ > EPS), exit_, NO_HIT), normal, face


def _box_slab(
    centre: np.ndarray, half: np.ndarray, cos: np.ndarray, sin: np.ndarray, origins: np.ndarray, directions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Slab test of rays against yawed boxes, broadcasting box arrays against ray arrays.

    ``centre``/``half`` (..., 3) and ``cos``/``sin`` (...) describe boxes; ``origins``/``directions``
    (..., 3) rays; leading shapes broadcast, e.g. (P, 1) boxes x (1, N) rays. Returns the entry and
    exit ``t`` and, per local axis, the near ``t`` and the local direction component (all with the
    broadcast shape). Components are handled one by one: ``min``/``max`` over a trailing axis of
    length 3 is several times slower in numpy than elementwise ``minimum``/``maximum``.
    """
    wx, wy, wz = (origins[..., k] - centre[..., k] for k in range(3))
    # world -> local: the inverse (transpose) of rotation_y(yaw)
    local_o = (cos * wx - sin * wz, wy, sin * wx + cos * wz)
    dx, dy, dz = directions[..., 0], directions[..., 1], directions[..., 2]
    local_d = (cos * dx - sin * dz, dy + 0 * cos, sin * dx + cos * dz)
    nears, dirs = [], []
    entry = exit_ = None
    for k in range(3):
        d = local_d[k]
        safe = np.where(np.abs(d) < 1e-15, 1e-15, d)
        t1 = (-half[..., k] - local_o[k]) / safe
        t2 = (half[..., k] - local_o[k]) / safe
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)
        entry = near if entry is None else np.maximum(entry, near)
        exit_ = far if exit_ is None else np.minimum(exit_, far)
        nears.append(near)
        dirs.append(safe)
    return entry, exit_, nears, dirs


@dataclass(frozen=True)
class Projection:
    """A projection used only to cull (primitive, ray) pairs that cannot intersect.

    Central (rays through / toward ``origin``: camera rays, shadow rays to a point light) or
    orthographic (parallel rays: shadow rays to the sun). ``axes`` rows are the two image axes and the
    viewing axis. A primitive's projected corners bound its projection (it is convex); a ray can only
    hit it if the ray's key point projects inside that bound. Points not in front of a central
    projection cannot be bounded and are never culled.
    """

    origin: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...]
    central: bool

    def keys(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = (points - np.asarray(self.origin)) @ np.asarray(self.axes).T
        if not self.central:
            return v[..., :2], np.ones(v.shape[:-1], dtype=bool)
        valid = v[..., 2] > 1e-6
        depth = np.where(valid, v[..., 2], 1.0)
        return v[..., :2] / depth[..., None], valid


_CORNER_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)


def _corners(prims: list[Primitive]) -> np.ndarray:
    """(P, 8, 3) corners of the boxes, or of the cubes bounding the spheres, of one batch."""
    if type(prims[0]) is Box:
        centre = np.array([b.center for b in prims], dtype=np.float64)  # type: ignore[attr-defined]
        half = np.array([b.half for b in prims], dtype=np.float64)  # type: ignore[attr-defined]
        yaw = np.array([b.yaw for b in prims], dtype=np.float64)[:, None]  # type: ignore[attr-defined]
        local = _CORNER_SIGNS[None] * half[:, None, :]
        c, s = np.cos(yaw), np.sin(yaw)
        rotated = np.stack(
            [c * local[..., 0] + s * local[..., 2], local[..., 1], -s * local[..., 0] + c * local[..., 2]], -1
        )
        return centre[:, None, :] + rotated
    centre = np.array([q.center for q in prims], dtype=np.float64)  # type: ignore[attr-defined]
    radius = np.array([q.radius for q in prims], dtype=np.float64)  # type: ignore[attr-defined]
    return centre[:, None, :] + _CORNER_SIGNS[None] * radius[:, None, None]


def _candidate_pairs(
    prims: list[Primitive], n_rays: int, cull: tuple[Projection, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(primitive positions, ray indices) of the pairs that may intersect."""
    p = len(prims)
    if cull is None:
        return np.repeat(np.arange(p), n_rays), np.tile(np.arange(n_rays), p)
    projection, key_points = cull
    ray_keys, ray_ok = projection.keys(key_points)
    corner_keys, corner_ok = projection.keys(_corners(prims))  # (P, 8, 2), (P, 8)
    lo, hi = corner_keys.min(axis=1), corner_keys.max(axis=1)
    bounded = corner_ok.all(axis=1)
    inside = (
        (ray_keys[None, :, 0] >= lo[:, None, 0])
        & (ray_keys[None, :, 0] <= hi[:, None, 0])
        & (ray_keys[None, :, 1] >= lo[:, None, 1])
        & (ray_keys[None, :, 1] <= hi[:, None, 1])
    )
    inside |= ~bounded[:, None] | ~ray_ok[None, :]
    return np.nonzero(inside)


def _pairs_t(
    prims: list[Primitive], which: np.ndarray, rays: np.ndarray, origins: np.ndarray, directions: np.ndarray
) -> np.ndarray:
    """First-hit ``t`` of each (primitive ``which[m]``, ray ``rays[m]``) pair, all boxes or all spheres."""
    o, d = origins[rays], directions[rays]
    if type(prims[0]) is Box:
        centre = np.array([b.center for b in prims], dtype=np.float64)[which]  # type: ignore[attr-defined]
        half = np.array([b.half for b in prims], dtype=np.float64)[which]  # type: ignore[attr-defined]
        yaw = np.array([b.yaw for b in prims], dtype=np.float64)[which]  # type: ignore[attr-defined]
        entry, exit_, _, _ = _box_slab(centre, half, np.cos(yaw), np.sin(yaw), o, d)
        return np.where((entry <= exit_) & (entry > EPS), entry, NO_HIT)
    centre = np.array([q.center for q in prims], dtype=np.float64)[which]  # type: ignore[attr-defined]
    radius = np.array([q.radius for q in prims], dtype=np.float64)[which]  # type: ignore[attr-defined]
    oc = [o[:, k] - centre[:, k] for k in range(3)]
    a = d[:, 0] ** 2 + d[:, 1] ** 2 + d[:, 2] ** 2
    half_b = d[:, 0] * oc[0] + d[:, 1] * oc[1] + d[:, 2] * oc[2]
    c = oc[0] ** 2 + oc[1] ** 2 + oc[2] ** 2 - radius**2
    disc = half_b**2 - a * c
    t = (-half_b - np.sqrt(np.maximum(disc, 0.0))) / a
    return np.where((disc >= 0) & (t > EPS), t, NO_HIT)


def _batched_groups(primitives: list[Primitive]) -> tuple[list[list[int]], list[int]]:
    boxes = [k for k, q in enumerate(primitives) if type(q) is Box]
    spheres = [k for k, q in enumerate(primitives) if type(q) is Sphere]
    others = [k for k, q in enumerate(primitives) if type(q) not in (Box, Sphere)]
    return [g for g in (boxes, spheres) if g], others


def cast(
    primitives: list[Primitive],
    origins: np.ndarray,
    directions: np.ndarray,
    cull: tuple[Projection, np.ndarray] | None = None,
) -> Hit:
    """Nearest hit of every ray over all primitives.

    Boxes and spheres are intersected in batches over the (primitive, ray) pairs that survive the
    optional projection culling (``cull`` = (projection, key point of each ray)); the winning
    primitive's normal and face are then computed for its rays only. Ties go to the lower index.
    """
    n = len(origins)
    best = Hit.empty(n)
    groups, others = _batched_groups(primitives)
    for ids in groups:
        prims = [primitives[k] for k in ids]
        which, rays = _candidate_pairs(prims, n, cull)
        if len(rays) == 0:
            continue
        t = _pairs_t(prims, which, rays, origins, directions)
        group_t = np.full(n, NO_HIT)
        np.minimum.at(group_t, rays, t)
        winners = np.isfinite(t) & (t == group_t[rays])
        group_index = np.full(n, np.iinfo(np.int64).max)
        np.minimum.at(group_index, rays[winners], np.asarray(ids)[which[winners]])
        closer = group_t < best.t
        best.t = np.where(closer, group_t, best.t)
        best.index = np.where(closer, group_index, best.index)
    for k in others:
        t, normal, face = primitives[k].intersect(origins, directions)
        closer = t < best.t
        best.t = np.where(closer, t, best.t)
        best.index = np.where(closer, k, best.index)
        best.normal = np.where(closer[:, None], normal, best.normal)
        best.face = np.where(closer, face, best.face)
    batched = set(range(len(primitives))) - set(others)
    for k in set(best.index[np.isfinite(best.t)].tolist()) & batched:
        sel = best.index == k
        _, normal, face = primitives[k].intersect(origins[sel], directions[sel])
        best.normal[sel] = normal
        best.face[sel] = face
    return best


def occluded(
    primitives: list[Primitive],
    origins: np.ndarray,
    directions: np.ndarray,
    limit: np.ndarray,
    cull: tuple[Projection, np.ndarray] | None = None,
) -> np.ndarray:
    """True where some primitive is hit at ``t < limit`` (shadow rays)."""
    n = len(origins)
    blocked = np.zeros(n, dtype=bool)
    groups, others = _batched_groups(primitives)
    for ids in groups:
        prims = [primitives[k] for k in ids]
        which, rays = _candidate_pairs(prims, n, cull)
        if len(rays):
            t = _pairs_t(prims, which, rays, origins, directions)
            blocked[rays[t < limit[rays]]] = True
    for k in others:
        todo = ~blocked
        if todo.any():
            t, _, _ = primitives[k].intersect(origins[todo], directions[todo])
            blocked[todo] = t < limit[todo]
    return blocked
