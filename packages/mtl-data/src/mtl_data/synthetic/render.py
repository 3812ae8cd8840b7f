"""Renders a ray-cast scene into an image and its exact dense ground truth.

Image: Lambertian shading of procedural textures under ambient light, one point light and/or a sun,
with hard shadows (shadow rays through the same primitives), a little specular gloss, then gamma 2.2.
Ground truth, per pixel centre: the label of the first object hit (a decal can relabel part of a room
face, e.g. a window), the z-depth ``t`` of that hit and its unit normal in the camera frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mtl_data.synthetic.raycast import Camera, Primitive, Projection, Room, cast, occluded
from mtl_data.synthetic.textures import ValueNoise, albedo


@dataclass
class Decal:
    """Relabels/re-textures the points of room face ``face`` that lie in the world box [lo, hi]."""

    face: int
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    label: int
    material: dict


@dataclass
class Lighting:
    ambient: float = 0.3
    point: tuple[float, float, float] | None = None
    point_intensity: float = 1.0
    sun_direction: tuple[float, float, float] | None = None  # toward the sun
    sun_intensity: float = 1.0
    shadows: bool = True


@dataclass
class Scene:
    primitives: list[Primitive]
    camera: Camera
    lighting: Lighting
    decals: list[Decal] = field(default_factory=list)
    miss_label: int = -1  # label of rays that hit nothing (sky)
    sky: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None  # horizon, zenith
    miss_depth: float = 0.0


@dataclass
class Rendering:
    """image 3xHxW in [0, 1]; labels HxW int64; depth HxW (z-depth, 0 where nothing was hit);
    normal 3xHxW camera frame (0 where nothing was hit); hit_index HxW (primitive, -1 = miss)."""

    image: np.ndarray
    labels: np.ndarray
    depth: np.ndarray
    normal: np.ndarray
    hit_index: np.ndarray


def render(scene: Scene, noise: ValueNoise) -> Rendering:
    cam = scene.camera
    origins, directions = cam.world_rays()
    axes = tuple(map(tuple, cam.rotation.T))  # camera right, down, forward
    hit = cast(scene.primitives, origins, directions, (Projection(cam.position, axes, True), origins + directions))
    n = len(origins)
    found = np.isfinite(hit.t)
    t = np.where(found, hit.t, 0.0)
    points = origins + t[:, None] * directions

    labels = np.full(n, scene.miss_label, dtype=np.int64)
    colour = np.zeros((n, 3))
    emissive = np.zeros(n, dtype=bool)
    gloss = np.zeros(n)
    # Texture evaluation has a fixed cost per call: evaluate each *kind* of material (pattern and
    # options, colour aside) once over all the points of the primitives that use it, each point in its
    # own primitive's frame and with its own primitive's colour.
    by_kind: dict[object, list[int]] = {}
    for k, prim in enumerate(scene.primitives):
        by_kind.setdefault(_material_kind(prim.material), []).append(k)
    hit_prims = found & (hit.index >= 0)
    for ks in by_kind.values():
        sel = hit_prims & np.isin(hit.index, ks)
        if not sel.any():
            continue
        idx = np.flatnonzero(sel)
        local = np.empty((len(idx), 3))
        point_colour = np.empty((len(idx), 3))
        for k in ks:
            prim = scene.primitives[k]
            mine = hit.index[idx] == k
            if not mine.any():
                continue
            labels[idx[mine]] = prim.label
            if isinstance(prim, Room):
                for face, lab in prim.face_labels.items():
                    labels[idx[mine & (hit.face[idx] == face)]] = lab
            local[mine] = prim.local_point(points[idx[mine]])
            point_colour[mine] = prim.material.get("color", (0.7, 0.7, 0.7))
        material = scene.primitives[ks[0]].material
        if "faces" in material:  # per-face materials of a room (floor, ceiling, walls)
            faces = hit.face[idx]
            for face, mat in material["faces"].items():
                m = faces == face
                if m.any():
                    colour[idx[m]] = albedo(mat, local[m], noise)
        else:
            colour[idx] = albedo(material, local, noise, colours=point_colour)
            emissive[idx] = bool(material.get("emissive", False))
            gloss[idx] = float(material.get("gloss", 0.0))
    for decal in scene.decals:
        room_idx = [k for k, p in enumerate(scene.primitives) if isinstance(p, Room)]
        sel = found & np.isin(hit.index, room_idx) & (hit.face == decal.face)
        sel &= np.all((points >= np.asarray(decal.lo)) & (points <= np.asarray(decal.hi)), axis=1)
        if sel.any():
            labels[sel] = decal.label
            centre = (np.asarray(decal.lo) + np.asarray(decal.hi)) / 2
            colour[sel] = albedo(decal.material, points[sel] - centre, noise)
            emissive[sel] = bool(decal.material.get("emissive", False))
            gloss[sel] = float(decal.material.get("gloss", 0.0))

    # texture colours are display (gamma-encoded) values: shade in linear light, re-encode at the end
    radiance = _shade(scene, points, hit.normal, directions, found, colour**2.2, emissive, gloss)
    if scene.sky is not None:
        horizon, zenith = (np.asarray(c) for c in scene.sky)
        unit = directions / np.linalg.norm(directions, axis=1, keepdims=True)
        up = np.clip(unit[:, 1], 0, 1)[:, None] ** 0.6
        radiance[~found] = ((horizon + (zenith - horizon) * up) ** 2.2)[~found]
    image = np.clip(radiance, 0, 1) ** (1 / 2.2)

    camera_normal = hit.normal @ cam.rotation  # world -> camera: R^T n, as row vectors
    camera_normal[~found] = 0.0
    depth = np.where(found, hit.t, scene.miss_depth)
    h, w = cam.height, cam.width
    return Rendering(
        image=image.reshape(h, w, 3).transpose(2, 0, 1),
        labels=labels.reshape(h, w),
        depth=depth.reshape(h, w),
        normal=camera_normal.reshape(h, w, 3).transpose(2, 0, 1),
        hit_index=np.where(found, hit.index, -1).reshape(h, w),
    )


def _material_kind(material: dict) -> object:
    """What decides a material's texture apart from its colour (hashable), or the dict's identity."""
    if "faces" in material:
        return id(material)
    return tuple(sorted((k, repr(v)) for k, v in material.items() if k != "color"))


def _shade(
    scene: Scene,
    points: np.ndarray,
    normals: np.ndarray,
    directions: np.ndarray,
    found: np.ndarray,
    colour: np.ndarray,
    emissive: np.ndarray,
    gloss: np.ndarray,
) -> np.ndarray:
    light = scene.lighting
    lit = np.full(len(points), light.ambient)
    specular = np.zeros(len(points))
    view = -directions / np.linalg.norm(directions, axis=1, keepdims=True)
    origin_offset = points + 1e-6 * normals  # leave the surface before casting shadow rays
    sources = []
    if light.point is not None:
        to_light = np.asarray(light.point) - points
        dist = np.linalg.norm(to_light, axis=1)
        # shadow rays converge on the light: cull with a central projection from it, looking down
        view_down = Projection(light.point, ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, -1.0, 0.0)), True)
        sources.append(
            (to_light / np.maximum(dist, 1e-9)[:, None], dist, light.point_intensity / (1 + 0.08 * dist**2), view_down)
        )
    if light.sun_direction is not None:
        sun = np.asarray(light.sun_direction, dtype=np.float64)
        sun = sun / np.linalg.norm(sun)
        a = np.cross(sun, [0.0, 0.0, 1.0] if abs(sun[2]) < 0.9 else [1.0, 0.0, 0.0])
        a /= np.linalg.norm(a)
        b = np.cross(sun, a)
        along_sun = Projection((0.0, 0.0, 0.0), (tuple(a), tuple(b), tuple(-sun)), False)  # parallel rays
        sources.append(
            (
                np.broadcast_to(sun, points.shape),
                np.full(len(points), np.inf),
                np.full(len(points), light.sun_intensity),
                along_sun,
            )
        )
    for direction, dist, intensity, projection in sources:
        cosine = np.einsum("ij,ij->i", normals, direction)
        facing = found & (cosine > 0) & ~emissive
        visible = facing.copy()
        if light.shadows and facing.any():
            idx = np.flatnonzero(facing)
            blocked = occluded(
                scene.primitives, origin_offset[idx], direction[idx], dist[idx] - 1e-6, (projection, origin_offset[idx])
            )
            visible[idx[blocked]] = False
        lit += np.where(visible, intensity * np.maximum(cosine, 0), 0.0)
        half = direction + view
        half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-9)
        specular += np.where(visible, gloss * intensity * np.maximum(np.einsum("ij,ij->i", normals, half), 0) ** 40, 0)
    radiance = colour * lit[:, None] + specular[:, None]
    radiance[emissive] = colour[emissive]
    return radiance
