"""NYUv2 / Cityscapes .npy loaders, splits, augmentation and prepare, on fixtures in the MTAN layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from mtl_data_fixtures import write_scene_npy

import mtl_data
from mtl_data.augment import random_scale_crop
from mtl_data.manifest import MANIFEST_NAME
from mtl_data.scenes import NYUV2, cityscapes_layout
from mtl_data.splits import holdout


@pytest.fixture(scope="module")
def nyu_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("nyuv2")
    write_scene_npy(root, "nyuv2", n_train=5, n_test=2)
    return root


@pytest.fixture(scope="module")
def city_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cityscapes")
    write_scene_npy(root, "cityscapes", n_train=6, n_test=3)
    return root


def test_nyuv2_items_follow_the_contract(nyu_root):
    ds = mtl_data.create("nyuv2", split="test", root=nyu_root)
    assert len(ds) == 2 and not ds.is_standin and "nyuv2" in ds.description
    assert list(ds.tasks) == ["segmentation", "depth", "normal"] == mtl_data.task_names("nyuv2")
    image, targets = ds[1]
    assert image.shape == (3, 288, 384) and image.dtype == torch.float32
    assert targets["segmentation"].shape == (288, 384) and targets["segmentation"].dtype == torch.int64
    assert targets["depth"].shape == (1, 288, 384) and targets["normal"].shape == (3, 288, 384)
    # Values come from the right file, in the right layout (HxWxC -> CxHxW).
    raw = np.load(nyu_root / "val" / "image" / "1.npy")
    assert torch.equal(image, torch.from_numpy(raw).permute(2, 0, 1))
    assert int(targets["segmentation"][0, 0]) == 1
    assert targets["segmentation"].min() >= -1


def test_validation_holdout_is_deterministic_disjoint_and_complete(nyu_root):
    train = mtl_data.create("nyuv2", split="train", root=nyu_root, val_size=2, augment=False)
    val = mtl_data.create("nyuv2", split="val", root=nyu_root, val_size=2)
    full = mtl_data.create("nyuv2", split="trainval", root=nyu_root)
    assert len(val) == 2 and len(train) == 3 and len(full) == 5
    assert set(train.indices).isdisjoint(val.indices)
    assert sorted(train.indices + val.indices) == list(range(5))
    assert val.indices == mtl_data.create("nyuv2", split="val", root=nyu_root, val_size=2).indices
    assert not val.augment and train.split == "train"


def test_official_holdout_sizes():
    kept, held = holdout(795, 159, "nyuv2-seed001-validation")
    assert len(held) == 159 and len(kept) == 636 and not set(kept) & set(held)
    assert holdout(795, 159, "nyuv2-seed001-validation") == (kept, held)
    kept_c, held_c = holdout(2975, 595, "cityscapes-seed001-validation")
    assert len(held_c) == 595 and len(kept_c) == 2380
    assert NYUV2.val_holdout == 159 and cityscapes_layout(7).val_holdout == 595


def test_cityscapes_two_tasks(city_root):
    ds = mtl_data.create("cityscapes", split="train", root=city_root, val_size=2)
    assert list(ds.tasks) == ["segmentation", "depth"] == mtl_data.task_names("cityscapes")
    assert ds.tasks["segmentation"].output_dim == 7
    image, targets = ds[0]
    assert image.shape == (3, 128, 256) and set(targets) == {"segmentation", "depth"}
    assert ds.augment  # training split augments by default


def test_augmentation_keeps_layout_and_semantics():
    torch.manual_seed(0)
    h, w = 12, 16
    image = torch.rand(3, h, w)
    label = torch.randint(0, 5, (h, w))
    depth = torch.full((1, h, w), 2.0)
    normal = torch.zeros(3, h, w)
    normal[0] = 1.0  # every normal points to +x
    seen_scales, seen_flip = set(), False
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        img2, out = random_scale_crop(image, {"segmentation": label, "depth": depth, "normal": normal}, generator=g)
        assert img2.shape == image.shape and out["segmentation"].dtype == torch.int64
        assert set(out["segmentation"].unique().tolist()) <= set(label.unique().tolist())
        scale = 2.0 / float(out["depth"][0, 0, 0])  # depth is divided by the scale
        assert any(abs(scale - s) < 1e-5 for s in (1.0, 1.2, 1.5))
        seen_scales.add(round(scale, 3))
        x = float(out["normal"][0, 0, 0])
        assert x in (1.0, -1.0)  # flipped normals have their x component negated
        seen_flip |= x == -1.0
    assert seen_scales == {1.0, 1.2, 1.5} and seen_flip
    # Identity case: scale 1 without flip leaves everything unchanged.
    g = torch.Generator().manual_seed(0)
    img_same, out_same = random_scale_crop(image, {"segmentation": label}, scales=(1.0,), flip=False, generator=g)
    assert torch.allclose(img_same, image) and torch.equal(out_same["segmentation"], label)


def test_augmentation_is_seeded(nyu_root):
    ds = mtl_data.create("nyuv2", split="train", root=nyu_root, val_size=2)
    torch.manual_seed(3)
    a = ds[0]
    torch.manual_seed(3)
    b = ds[0]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1]["depth"], b[1]["depth"])


def test_prepare_writes_then_verifies_manifest(tmp_path):
    write_scene_npy(tmp_path, "cityscapes", n_train=3, n_test=2)
    report = mtl_data.prepare("cityscapes", root=tmp_path, strict=False)
    assert report.manifest_created and report.counts == {"train": 3, "val": 2}
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert len(manifest) == 5 * 3 and all(len(e["sha256"]) == 64 for e in manifest.values())
    again = mtl_data.prepare("cityscapes", root=tmp_path, strict=False)
    assert not again.manifest_created
    # A changed file is caught by its checksum.
    depth = tmp_path / "train" / "depth" / "1.npy"
    array = np.load(depth)
    array[5, 5, 0] += 1.0
    np.save(depth, array)
    with pytest.raises(ValueError, match=r"depth/1\.npy.*SHA-256"):
        mtl_data.prepare("cityscapes", root=tmp_path, strict=False)


def test_prepare_strict_counts(tmp_path):
    write_scene_npy(tmp_path, "cityscapes", n_train=2, n_test=1)
    with pytest.raises(ValueError, match="official split has 2975"):
        mtl_data.prepare("cityscapes", root=tmp_path, checksums=False)


def test_truncated_npy_is_named(tmp_path):
    write_scene_npy(tmp_path, "cityscapes", n_train=3, n_test=1)
    bad = tmp_path / "train" / "image" / "2.npy"
    bad.write_bytes(bad.read_bytes()[:1000])
    ds = mtl_data.create("cityscapes", split="trainval", root=tmp_path, augment=False)
    with pytest.raises(ValueError, match=r"image/2\.npy.*truncated"):
        ds[2]
    with pytest.raises(ValueError, match=r"image/2\.npy"):
        mtl_data.prepare("cityscapes", root=tmp_path, strict=False, checksums=False)


def test_missing_label_file_and_wrong_shape(tmp_path):
    write_scene_npy(tmp_path, "cityscapes", n_train=3, n_test=1)
    (tmp_path / "train" / "label_7" / "1.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"label_7/1\.npy"):
        mtl_data.create("cityscapes", split="trainval", root=tmp_path)
    np.save(tmp_path / "train" / "label_7" / "1.npy", np.zeros((64, 128), dtype=np.float32))
    ds = mtl_data.create("cityscapes", split="trainval", root=tmp_path, augment=False)
    with pytest.raises(ValueError, match=r"label_7/1\.npy: shape \(64, 128\) does not match the expected 128x256"):
        ds[1]


def test_bad_label_values_fail_prepare(tmp_path):
    write_scene_npy(tmp_path, "cityscapes", n_train=2, n_test=1)
    label = np.zeros((128, 256), dtype=np.float32)
    label[3, 3] = 9  # only 7 classes
    np.save(tmp_path / "val" / "label_7" / "0.npy", label)
    with pytest.raises(ValueError, match=r"label_7/0\.npy: labels must be integers in \[-1, 7\)"):
        mtl_data.prepare("cityscapes", root=tmp_path, strict=False, checksums=False)


def test_missing_root_and_bad_split(tmp_path):
    with pytest.raises(ValueError, match="pass root="):
        mtl_data.create("nyuv2")
    with pytest.raises(FileNotFoundError, match="lorenmt/mtan"):
        mtl_data.create("nyuv2", root=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        mtl_data.create("nyuv2", split="dev", root=tmp_path)
