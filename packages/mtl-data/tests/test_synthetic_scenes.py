"""Tests of the ray-cast scene stand-ins: exact ground truth, layout, determinism, splits, speed."""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mtl_data.synthetic import scenes as S
from mtl_data.synthetic.raycast import Box, Camera, GroundPlane, Room, Sphere, cast
from mtl_data.synthetic.render import Lighting, Scene, render
from mtl_data.synthetic.textures import ValueNoise
from mtl_data.tasks import DepthTask, NormalTask, SegmentationTask


def _camera_rays(cam: Camera) -> np.ndarray:
    """Independent pixel-ray construction (camera frame, unit z)."""
    f = cam.width / (2 * math.tan(math.radians(cam.hfov) / 2))
    v, u = np.mgrid[0 : cam.height, 0 : cam.width] + 0.5
    return np.stack([(u - cam.width / 2) / f, (v - cam.height / 2) / f, np.ones_like(u)], axis=-1)


def _render(prims: list, cam: Camera, **kwargs: object) -> object:
    scene = Scene(prims, cam, Lighting(point=(0.0, 2.3, 3.0)), **kwargs)  # type: ignore[arg-type]
    return render(scene, ValueNoise(np.random.default_rng(0)))


# --------------------------------------------------------------------------- exact ground truth
def test_floor_depth_and_normal_are_analytic() -> None:
    pitch = -0.3
    cam = Camera((0.2, 1.4, 0.5), 0.0, pitch, 60.0, 24, 32)
    room = Room(S.WALL, {}, (-3.0, 0.0, 0.0), (3.0, 2.6, 6.0), {2: S.CEILING, 3: S.FLOOR})
    r = _render([room], cam)
    d = _camera_rays(cam)
    # world vertical component of a camera ray: y_cam * (-cos p) + z_cam * sin p
    dy_world = -d[..., 1] * math.cos(pitch) + math.sin(pitch)
    floor = r.labels == S.FLOOR
    assert floor.sum() > 50
    np.testing.assert_allclose(r.depth[floor], (-1.4 / dy_world)[floor], rtol=1e-12)
    # floor normal = world up in the camera frame (x right, y down, z forward)
    up_cam = np.array([0.0, -math.cos(pitch), math.sin(pitch)])
    np.testing.assert_allclose(r.normal[:, floor].T, np.broadcast_to(up_cam, (floor.sum(), 3)), atol=1e-12)
    ceiling = r.labels == S.CEILING
    np.testing.assert_allclose(r.depth[ceiling], ((2.6 - 1.4) / dy_world)[ceiling], rtol=1e-12)


def test_sphere_depth_normal_and_label_are_analytic() -> None:
    cam = Camera((0.0, 1.0, 0.0), 0.0, 0.0, 50.0, 20, 20)
    centre, radius = np.array([0.3, 1.2, 4.0]), 0.8
    prims = [Room(S.WALL, {}, (-5, 0, -1), (5, 4, 10), {}), Sphere(S.OBJECTS, {}, tuple(centre), radius)]
    r = _render(prims, cam)
    d = _camera_rays(cam)
    # camera at (0, 1, 0) with no rotation: world ray = (x, -y, z) of the camera ray
    dw = d * np.array([1.0, -1.0, 1.0])
    oc = np.array([0.0, 1.0, 0.0]) - centre
    a = (dw**2).sum(-1)
    b = (dw * oc).sum(-1)
    disc = b**2 - a * ((oc**2).sum() - radius**2)
    hit = disc >= 0
    assert (r.labels == S.OBJECTS).sum() == hit.sum() > 20
    np.testing.assert_array_equal(r.labels == S.OBJECTS, hit)
    t = (-b - np.sqrt(np.where(hit, disc, 0))) / a
    np.testing.assert_allclose(r.depth[hit], t[hit], rtol=1e-12)
    points = np.array([0.0, 1.0, 0.0]) + t[..., None] * dw
    n_world = (points - centre) / radius
    np.testing.assert_allclose(r.normal[:, hit].T, (n_world * np.array([1.0, -1.0, 1.0]))[hit], atol=1e-12)


def test_box_faces_and_ground_plane() -> None:
    pitch = -0.3
    cam = Camera((0.0, 2.5, 0.0), 0.0, pitch, 60.0, 24, 32)
    box = Box(S.FURNITURE, {}, (0.0, 0.5, 4.0), (0.5, 0.5, 0.5), 0.0)  # front face z = 3.5, top y = 1
    r = _render([GroundPlane(0, {}, 0.0), box], cam)
    d = _camera_rays(cam)
    # world components of a camera ray: down = (0, -cos p, sin p), forward = (0, sin p, cos p)
    z_world = d[..., 1] * math.sin(pitch) + math.cos(pitch)
    y_world = -d[..., 1] * math.cos(pitch) + math.sin(pitch)
    on_box = r.labels == S.FURNITURE
    front = on_box & np.isclose(r.depth * z_world, 3.5, rtol=0, atol=1e-12)
    top = on_box & np.isclose(2.5 + r.depth * y_world, 1.0, rtol=0, atol=1e-12)
    assert front.sum() > 10 and top.sum() > 0 and (front | top).sum() == on_box.sum()
    n = r.normal.transpose(1, 2, 0)
    np.testing.assert_allclose(n[front], np.broadcast_to([0, -math.sin(pitch), -math.cos(pitch)], n[front].shape))
    np.testing.assert_allclose(n[top], np.broadcast_to([0, -math.cos(pitch), math.sin(pitch)], n[top].shape))
    ground = r.labels == 0
    assert ground.any() and (r.hit_index[ground] == 0).all()
    np.testing.assert_allclose(r.depth[ground], (-2.5 / y_world)[ground], rtol=1e-12)


def _scene_of(ds: S._SceneDataset, index: int) -> Scene:
    return ds.scene_from_rng(np.random.default_rng(S.item_seed(ds.name, ds.seed, ds.split, index)))


@pytest.fixture(scope="module")
def indoor_items() -> list:
    ds = S.IndoorScenes("test", seed=3, size=6)
    return [(ds, _scene_of(ds, i), ds.render_item(i)) for i in range(6)]


def test_labels_are_the_hit_objects_classes(indoor_items: list) -> None:
    for _, scene, r in indoor_items:
        for k, prim in enumerate(scene.primitives):
            mine = r.hit_index == k
            if mine.any() and not isinstance(prim, Room):
                assert (r.labels[mine] == prim.label).all()
        on_room = r.hit_index == 0
        assert set(np.unique(r.labels[on_room])) <= {S.WALL, S.FLOOR, S.CEILING, S.WINDOW}
        # floor faces up, ceiling down, walls and windows are vertical (camera -> world: R n)
        world_n = np.einsum("ij,jhw->ihw", scene.camera.rotation, r.normal)
        assert np.allclose(world_n[1][r.labels == S.FLOOR], 1.0)
        assert np.allclose(world_n[1][r.labels == S.CEILING], -1.0)
        assert np.allclose(world_n[1][(r.labels == S.WALL) | (r.labels == S.WINDOW)], 0.0, atol=1e-12)


def test_normals_are_unit_face_the_camera_and_match_depth_gradients(indoor_items: list) -> None:
    for ds, scene, r in indoor_items:
        h, w = ds.resolution
        np.testing.assert_allclose(np.linalg.norm(r.normal, axis=0), 1.0, atol=1e-12)
        rays = _camera_rays(scene.camera)
        n = r.normal.transpose(1, 2, 0)
        assert ((rays * n).sum(-1) < 0).all()  # facing the camera
        # back-projected points P = z * ray; on a plane, the cross product of the central differences
        # of P is parallel to the normal
        points = rays * r.depth[..., None]
        dx = points[1:-1, 2:] - points[1:-1, :-2]
        dy = points[2:, 1:-1] - points[:-2, 1:-1]
        n_est = np.cross(dx, dy)
        n_est /= np.linalg.norm(n_est, axis=-1, keepdims=True)
        centre = n[1:-1, 1:-1]
        same = r.hit_index[1:-1, 1:-1]
        planar = np.ones_like(same, dtype=bool)
        for sy, sx in ((0, 1), (2, 1), (1, 0), (1, 2)):
            planar &= r.hit_index[sy : sy + h - 2, sx : sx + w - 2] == same
            planar &= np.all(np.abs(n[sy : sy + h - 2, sx : sx + w - 2] - centre) < 1e-12, axis=-1)
        assert planar.sum() > 0.3 * planar.size
        assert np.abs((n_est * centre).sum(-1)[planar]).min() > 1 - 1e-6


def test_depth_of_every_pixel_is_the_ray_length_to_the_hit(indoor_items: list) -> None:
    for _, scene, r in indoor_items:
        origins, directions = scene.camera.world_rays()
        # unculled reference: each primitive's own intersection routine, nearest over all of them
        ts = np.stack([p.intersect(origins, directions)[0] for p in scene.primitives])
        np.testing.assert_allclose(r.depth.ravel(), ts.min(axis=0), rtol=1e-12)
        np.testing.assert_array_equal(r.hit_index.ravel(), ts.argmin(axis=0))
        assert np.isfinite(ts.min(axis=0)).all()  # indoors every ray hits something
        hit = cast(scene.primitives, origins, directions)
        np.testing.assert_array_equal(hit.index, ts.argmin(axis=0))


# ---------------------------------------------------------------------------------- datasets
def test_indoor_layout_matches_the_contract() -> None:
    ds = S.IndoorScenes("val", size=3)
    assert ds.is_standin and "STAND-IN" in ds.description
    assert list(ds.tasks) == ["segmentation", "depth", "normal"]
    assert isinstance(ds.tasks["segmentation"], SegmentationTask) and ds.tasks["segmentation"].num_classes == 13
    assert isinstance(ds.tasks["depth"], DepthTask) and isinstance(ds.tasks["normal"], NormalTask)
    x, y = ds[0]
    assert x.shape == (3, 48, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y["segmentation"].shape == (48, 64) and y["segmentation"].dtype == torch.int64
    assert y["segmentation"].min() >= 0 and y["segmentation"].max() <= 12
    assert y["depth"].shape == (1, 48, 64) and y["depth"].dtype == torch.float32 and (y["depth"] > 0).all()
    assert y["normal"].shape == (3, 48, 64) and y["normal"].dtype == torch.float32
    torch.testing.assert_close(y["normal"].norm(dim=0), torch.ones(48, 64))
    # the task specs accept the targets (a perfect prediction has zero error)
    assert ds.tasks["depth"].loss(y["depth"][None], y["depth"][None]) == 0
    assert ds.tasks["normal"].loss(y["normal"][None], y["normal"][None]).abs() < 1e-6
    assert len(ds) == 3
    assert S.IndoorScenes.default_sizes == {"train": 636, "val": 159, "test": 654}  # seed 001 A3.1
    assert S.StreetScenes.default_sizes == {"train": 2380, "val": 595, "test": 500}


def test_street_layout_inverse_depth_sky_and_void() -> None:
    ds = S.StreetScenes("test", seed=1, size=4)
    assert list(ds.tasks) == ["segmentation", "depth"] and ds.tasks["segmentation"].num_classes == 7
    assert ds.is_standin and "STAND-IN" in ds.description
    for i in range(4):
        x, y = ds[i]
        assert x.shape == (3, 32, 64) and y["depth"].shape == (1, 32, 64)
        seg, inv = y["segmentation"].numpy(), y["depth"][0].numpy()
        r = ds.render_item(i)
        sky = seg == S.SKY
        assert sky.any() and (r.hit_index[sky] == -1).all() and (inv[sky] == 0).all()
        void = seg == S.VOID
        assert (inv[void] == 0).all()
        solid = ~sky & ~void
        np.testing.assert_allclose(inv[solid], (1.0 / r.depth[solid]).astype(np.float32), rtol=1e-6)
    no_hood = S.StreetScenes("test", seed=1, size=4, ego_vehicle=False)
    assert not any((no_hood[i][1]["segmentation"] == S.VOID).any() for i in range(4))


def test_all_classes_occur() -> None:
    indoor = S.IndoorScenes("train", seed=0, size=40, resolution=(24, 32), shadows=False)
    seen = set(np.unique(np.concatenate([indoor[i][1]["segmentation"].numpy().ravel() for i in range(40)])))
    assert seen == set(range(13)), f"missing NYUv2 classes {set(range(13)) - seen}"
    street = S.StreetScenes("train", seed=0, size=30, resolution=(32, 64), shadows=False)
    seen = set(np.unique(np.concatenate([street[i][1]["segmentation"].numpy().ravel() for i in range(30)])))
    assert seen >= set(range(7)), f"missing Cityscapes classes {set(range(7)) - seen}"


def _digest(ds: torch.utils.data.Dataset) -> list[str]:
    return [hashlib.sha1(ds[i][0].numpy().tobytes()).hexdigest() for i in range(len(ds))]  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [S.IndoorScenes, S.StreetScenes])
def test_deterministic_per_index_and_splits_disjoint(cls: type) -> None:
    a = cls("train", seed=5, size=4, resolution=(16, 24))
    b = cls("train", seed=5, size=4, resolution=(16, 24))
    for i in range(4):
        assert torch.equal(a[i][0], b[i][0])
        for k in a[i][1]:
            assert torch.equal(a[i][1][k], b[i][1][k])
    prefix = cls("train", seed=5, size=2, resolution=(16, 24))
    assert _digest(prefix) == _digest(a)[:2]  # item i does not depend on the dataset size
    other_seed = cls("train", seed=6, size=4, resolution=(16, 24))
    digests = {s: set(_digest(cls(s, seed=5, size=4, resolution=(16, 24)))) for s in ("train", "val", "test")}
    assert len(set(_digest(a)) | set(_digest(other_seed))) == 8
    assert not (digests["train"] & digests["val"]) and not (digests["train"] & digests["test"])
    assert not (digests["val"] & digests["test"])


def test_disk_cache_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = S.IndoorScenes("test", seed=2, size=3, resolution=(16, 24), cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("re-rendered although cached")

    monkeypatch.setattr(S, "render", forbidden)
    again = S.IndoorScenes("test", seed=2, size=3, resolution=(16, 24), cache_dir=tmp_path)
    assert torch.equal(again[2][1]["normal"], first[2][1]["normal"])
    files[0].write_bytes(files[0].read_bytes()[:100])
    with pytest.raises(ValueError, match=files[0].name):
        S.IndoorScenes("test", seed=2, size=3, resolution=(16, 24), cache_dir=tmp_path)


def test_bad_options_raise_value_errors() -> None:
    with pytest.raises(ValueError, match="split 'dev'"):
        S.IndoorScenes("dev")
    with pytest.raises(ValueError, match="resolution"):
        S.IndoorScenes("test", size=1, resolution=(48,))
    with pytest.raises(ValueError, match="size"):
        S.IndoorScenes("test", size=0)
    with pytest.raises(ValueError, match="seed"):
        S.IndoorScenes("test", seed=-2, size=1)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['ego_vehicle'\]"):
        S.IndoorScenes("test", size=1, ego_vehicle=False)
    with pytest.raises(ValueError, match="fog"):
        S.StreetScenes("test", size=1, fog=True)
    ds = S.StreetScenes("test", size=1, resolution=(16, 32))
    with pytest.raises(IndexError):
        ds[1]


def test_generation_speed() -> None:
    # budget on 2 shared cores: the defaults (1449 indoor / 3475 street scenes) must take ~minutes
    start = time.process_time()
    S.IndoorScenes("train", size=20)
    indoor = (time.process_time() - start) / 20
    start = time.process_time()
    S.StreetScenes("train", size=20)
    street = (time.process_time() - start) / 20
    assert indoor < 0.1 and street < 0.15, (indoor, street)
