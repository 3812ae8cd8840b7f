"""The Cityscapes 3-task stand-in (``cityscapes3_standin``, seed 003) against the real loader's contract.

Every target is checked against quantities recomputed here from the ray caster's per-pixel primitive
ids (``Rendering.hit_index``) and the scene's parts, not against the module's own encoder.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cityscapes3 import write_cityscapes

import mtl_data
from mtl_data.cityscapes3 import DISPARITY_SCALE, OFFICIAL_COUNTS, VAL_HOLDOUT
from mtl_data.registry import _REGISTRY
from mtl_data.synthetic import street3 as S3
from mtl_data.synthetic.street import PART_KINDS, VOID, street_scene, street_scene_parts

H, W = 16, 32
# Cityscapes' 19 training classes in train-id order and the category of each (cityscapesScripts labels.py).
TRAIN_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip
TRAIN_CATEGORY = (
    "flat", "flat", "construction", "construction", "construction", "object", "object", "object", "nature",
    "nature", "sky", "human", "human", "vehicle", "vehicle", "vehicle", "vehicle", "vehicle", "vehicle",
)  # fmt: skip
STANDIN_CATEGORIES = ("flat", "construction", "object", "nature", "sky", "human", "vehicle")


@pytest.fixture(scope="module")
def items() -> list[tuple[S3.StreetSample, tuple[torch.Tensor, dict[str, torch.Tensor]]]]:
    ds = S3.StreetScenes3("test", seed=1, size=8, resolution=(32, 64))
    return [(ds.render_item(i), ds[i]) for i in range(len(ds))]


def _objects(sample: S3.StreetSample) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: the kind index into a kinds list and the object id of the primitive hit (-1: sky)."""
    hit = sample.rendering.hit_index
    instance = np.array([p.instance for p in sample.parts] + [-1])[hit]
    return hit, instance


def _kind(sample: S3.StreetSample) -> np.ndarray:
    return np.array([p.kind for p in sample.parts] + ["sky"], dtype=object)[sample.rendering.hit_index]


# --------------------------------------------------------------------------- contract of the real loader
def test_registered_with_the_real_loaders_task_specs_shapes_and_dtypes(tmp_path: Path) -> None:
    write_cityscapes(tmp_path)
    real = mtl_data.create("cityscapes3", split="test", root=tmp_path, resolution=(H, W))
    standin = mtl_data.create("cityscapes3_standin", split="test", size=2, resolution=(H, W))
    assert _REGISTRY["cityscapes3_standin"].target == "mtl_data.synthetic.street3:StreetScenes3"
    assert "3-task" in mtl_data.summary("cityscapes3_standin")
    assert isinstance(standin, S3.StreetScenes3) and standin.is_standin and not real.is_standin
    assert standin.description.startswith("STAND-IN for Cityscapes 3-task")
    assert list(standin.tasks) == list(real.tasks)
    for name, spec in real.tasks.items():
        ours = standin.tasks[name]
        assert ours == spec and type(ours) is type(spec)
        assert (ours.output_dim, ours.metrics, ours.kind) == (spec.output_dim, spec.metrics, spec.kind)
    (x_real, y_real), (x, y) = real[0], standin[0]
    assert x.shape == x_real.shape and x.dtype == x_real.dtype and 0 <= x.min() and x.max() <= 1
    assert list(y) == list(y_real)
    for name in y_real:
        assert y[name].shape == y_real[name].shape and y[name].dtype == y_real[name].dtype, name
    # the default sizes are the real loader's splits (seed 001 A3.1 hold-out of the training images)
    assert S3.StreetScenes3.default_sizes == {
        "train": OFFICIAL_COUNTS["train"] - VAL_HOLDOUT,
        "val": VAL_HOLDOUT,
        "test": OFFICIAL_COUNTS["val"],
    }


def test_split_sizes_options_and_errors() -> None:
    sizes = {"train": 5, "val": 3, "test": 2}
    for split, n in sizes.items():
        ds = mtl_data.create("cityscapes3_standin", split=split, size=n, resolution=(H, W), shadows=False)
        assert len(ds) == n and ds.split == split and ds.resolution == (H, W)
        assert ds._arrays["image"].shape == (n, 3, H, W)
    with pytest.raises(IndexError):
        ds[2]
    assert torch.equal(ds[-1][0], ds[1][0])
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['fog'\]"):
        mtl_data.create("cityscapes3_standin", split="test", size=1, fog=True)
    with pytest.raises(ValueError, match="split 'trainval'"):
        S3.StreetScenes3("trainval", size=1)
    with pytest.raises(ValueError, match="size"):
        S3.StreetScenes3("test", size=0)
    with pytest.raises(ValueError, match="resolution"):
        S3.StreetScenes3("test", size=1, resolution=(4, 64))
    assert S3.StreetScenes3("test", size=1).resolution == (32, 64)


# --------------------------------------------------------------------------- the street parts
def test_parts_refine_the_2task_scene_without_changing_it() -> None:
    for i in range(4):
        scene = street_scene(np.random.default_rng(i), 24, 48)
        again, parts = street_scene_parts(np.random.default_rng(i), 24, 48)
        assert again == scene  # the 2-task stand-in's scenes are unchanged
        assert len(parts) == len(scene.primitives)
        for prim, part in zip(scene.primitives, parts):
            assert PART_KINDS[part.kind] == prim.label
        ids = [p.instance for p in parts]
        assert ids == sorted(ids) and ids[0] == 0  # objects are numbered in scene order
        for obj in set(ids):
            assert len({p.kind for p in parts if p.instance == obj} - {"pole"}) <= 1


def test_class_mapping_is_cityscapes() -> None:
    assert set(S3.LABEL_IDS) == set(PART_KINDS) | {"sky"}
    for kind, train_id in S3.TRAIN_IDS.items():
        if kind == "ego vehicle":
            assert train_id == -1
        else:
            assert TRAIN_NAMES[train_id] == kind
            category = "sky" if kind == "sky" else STANDIN_CATEGORIES[PART_KINDS[kind]]
            assert TRAIN_CATEGORY[train_id] == category
    assert set(S3.THING_KINDS) == {"person", "car", "bus"}


# --------------------------------------------------------------------------- targets
def test_segmentation_is_the_train_id_of_the_primitive_hit(items: list) -> None:
    for sample, (_, y) in items:
        seg = y["segmentation"].numpy()
        assert seg.dtype == np.int64 and set(np.unique(seg)) <= set(range(-1, 19))
        kind = _kind(sample)
        expected = np.vectorize(S3.TRAIN_IDS.__getitem__, otypes=[np.int64])(kind)
        np.testing.assert_array_equal(seg, expected)
        np.testing.assert_array_equal(seg == -1, sample.rendering.labels == VOID)  # void = ego vehicle only
        np.testing.assert_array_equal(seg == 10, sample.rendering.hit_index == -1)  # sky = no hit


def test_all_occurring_classes_show_up() -> None:
    ds = S3.StreetScenes3("train", seed=0, size=40, shadows=False)
    seen = set(np.unique(ds._arrays["segmentation"]).tolist())
    assert seen == {-1} | {S3.TRAIN_IDS[k] for k in S3.LABEL_IDS if k != "ego vehicle"}


def test_instance_offsets_point_to_the_centroid_of_each_objects_mask(items: list) -> None:
    sy, sx = 1024 / 32, 2048 / 64  # full-resolution Cityscapes pixels per rendered pixel
    n_objects = 0
    for sample, (_, y) in items:
        offsets = y["instance"].numpy().astype(np.float64)
        assert offsets.shape == (2, 32, 64)
        _, instance = _objects(sample)
        thing = np.isin(_kind(sample), ["person", "car", "bus"])
        # NaN exactly where no instance, in both channels
        np.testing.assert_array_equal(np.isnan(offsets[0]), ~thing)
        np.testing.assert_array_equal(np.isnan(offsets[1]), ~thing)
        for obj in np.unique(instance[thing]):
            ys, xs = np.nonzero(thing & (instance == obj))
            cy, cx = ys.mean(), xs.mean()
            # pixel - offset = centroid (the real loader's offset is pixel - centroid), in full-res pixels
            np.testing.assert_allclose(ys - offsets[0, ys, xs] / sy, cy, atol=1e-4)
            np.testing.assert_allclose(xs - offsets[1, ys, xs] / sx, cx, atol=1e-4)
            n_objects += 1
    assert n_objects >= 10


def test_disparity_is_the_cityscapes_png_of_the_exact_depth(items: list) -> None:
    for sample, (_, y) in items:
        disparity = y["disparity"][0].numpy().astype(np.float64)
        assert np.isfinite(disparity).all()
        r = sample.rendering
        valid = (r.hit_index >= 0) & (r.labels != VOID)
        np.testing.assert_array_equal(disparity > 0, valid)
        assert (disparity[~valid] == 0).all()
        focal = 2048 / (2 * math.tan(math.radians(sample.camera.hfov) / 2))
        pixels = focal * 0.209313 / r.depth[valid]
        raw = disparity[valid] * DISPARITY_SCALE  # the 16-bit PNG value, = 256 d + 1
        np.testing.assert_allclose(raw, np.round(raw), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(raw, np.minimum(256 * pixels + 1, 65535), atol=0.51)


def test_losses_and_metrics_accept_the_targets() -> None:
    ds = S3.StreetScenes3("test", seed=1, size=2, resolution=(32, 64))
    _, y = torch.utils.data.default_collate([ds[0], ds[1]])
    for name, spec in ds.tasks.items():
        target = y[name]
        if name == "segmentation":
            prediction = torch.nn.functional.one_hot(target.clamp(min=0), 19).permute(0, 3, 1, 2).float() * 50
        else:
            prediction = target.clone()
        assert float(spec.loss(prediction, target)) == pytest.approx(0.0, abs=1e-6)
        metrics = spec.evaluate(torch.zeros_like(prediction), target)
        assert all(math.isfinite(v) for v in metrics.values()), (name, metrics)


# --------------------------------------------------------------------------- determinism and cache
def _arrays(ds: S3.StreetScenes3) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in ds._arrays.items()}


def _equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


def test_deterministic_per_seed_and_index_and_splits_differ() -> None:
    a = _arrays(S3.StreetScenes3("train", seed=5, size=3, resolution=(H, W)))
    assert _equal(a, _arrays(S3.StreetScenes3("train", seed=5, size=3, resolution=(H, W))))
    prefix = _arrays(S3.StreetScenes3("train", seed=5, size=2, resolution=(H, W)))
    assert _equal(prefix, {k: v[:2] for k, v in a.items()})  # item i does not depend on the size
    other = _arrays(S3.StreetScenes3("train", seed=6, size=3, resolution=(H, W)))
    val = _arrays(S3.StreetScenes3("val", seed=5, size=3, resolution=(H, W)))
    for b in (other, val):
        assert all(not np.array_equal(a["image"][i], b["image"][j]) for i in range(3) for j in range(3))
    # not the 2-task stand-in's scenes either (its own random streams)
    two_task = mtl_data.create("cityscapes_standin", split="train", seed=5, size=3, resolution=(H, W))
    assert all(not np.array_equal(a["image"][i], two_task[i][0].numpy()) for i in range(3))


def test_disk_cache_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = S3.StreetScenes3("val", seed=2, size=3, resolution=(H, W), cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and files[0].name.startswith("cityscapes3_standin_val")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("re-rendered although cached")

    monkeypatch.setattr(S3, "render", forbidden)
    again = S3.StreetScenes3("val", seed=2, size=3, resolution=(H, W), cache_dir=tmp_path)
    assert _equal(_arrays(first), _arrays(again))
    for i in range(3):
        (x0, y0), (x1, y1) = first[i], again[i]
        assert torch.equal(x0, x1) and all(torch.equal(y0[k], y1[k]) or k == "instance" for k in y0)
        assert torch.allclose(y0["instance"], y1["instance"], equal_nan=True)
    with pytest.raises(AssertionError, match="re-rendered"):  # another key is not served from this file
        S3.StreetScenes3("val", seed=3, size=3, resolution=(H, W), cache_dir=tmp_path)
    files[0].write_bytes(files[0].read_bytes()[:100])
    with pytest.raises(ValueError, match=files[0].name):
        S3.StreetScenes3("val", seed=2, size=3, resolution=(H, W), cache_dir=tmp_path)
