"""Cityscapes 3-task on a fixture in the official leftImg8bit/gtFine/disparity layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import mtl_data
from mtl_data.cityscapes3 import DISPARITY_SCALE, instance_offsets

H, W = 16, 32


def _sample_arrays(seed: int):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    labels = np.full((H, W), 7, dtype=np.uint8)  # road (train id 0, stuff)
    labels[:2] = 0  # unlabeled -> void
    labels[4:8, 2:6] = 26  # car
    labels[10:14, 20:30] = 26  # another car
    labels[12:16, 0:4] = 24  # person
    instances = labels.astype(np.uint16).copy()
    instances[4:8, 2:6] = 26000
    instances[10:14, 20:30] = 26001
    instances[12:16, 0:4] = 24000
    disparity = rng.integers(0, 30000, (H, W)).astype(np.uint16)
    disparity[0, :5] = 0
    return image, labels, instances, disparity


def write_cityscapes(root, n_train=4, n_val=2):
    for folder, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            city = "aachen" if i % 2 == 0 else "bochum"
            stem = f"{city}_{i:06d}_000019"
            image, labels, instances, disparity = _sample_arrays(i + (100 if folder == "val" else 0))
            paths = {
                root / "leftImg8bit" / folder / city / f"{stem}_leftImg8bit.png": image,
                root / "gtFine" / folder / city / f"{stem}_gtFine_labelIds.png": labels,
                root / "gtFine" / folder / city / f"{stem}_gtFine_instanceIds.png": instances,
                root / "disparity" / folder / city / f"{stem}_disparity.png": disparity,
            }
            for path, array in paths.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(path)


def test_instance_offsets_hand_computed():
    _, labels, instances, _ = _sample_arrays(0)
    offsets = instance_offsets(labels.astype(np.int64), instances.astype(np.int64))
    # Car at rows 4..7, cols 2..5: centroid (5.5, 3.5).
    assert offsets[0, 4, 2] == pytest.approx(-1.5) and offsets[1, 4, 2] == pytest.approx(-1.5)
    assert offsets[0, 7, 5] == pytest.approx(1.5) and offsets[1, 7, 5] == pytest.approx(1.5)
    assert np.isnan(offsets[:, 9, 9]).all()  # road: stuff, no instance
    assert np.isnan(offsets[:, 0, 0]).all()  # void
    person = offsets[:, 12:16, 0:4]
    assert np.allclose(np.nanmean(person, axis=(1, 2)), 0.0)


def test_items_at_full_resolution(tmp_path):
    write_cityscapes(tmp_path)
    ds = mtl_data.create("cityscapes3", split="test", root=tmp_path, resolution=(H, W))
    assert len(ds) == 2 and list(ds.tasks) == ["segmentation", "instance", "disparity"]
    assert list(ds.tasks) == mtl_data.task_names("cityscapes3")
    assert [t.output_dim for t in ds.tasks.values()] == [19, 2, 1]
    image, targets = ds[0]
    raw_image, labels, instances, disparity = _sample_arrays(100)
    assert torch.allclose(image, torch.from_numpy(raw_image).permute(2, 0, 1).float() / 255, atol=1 / 255)
    seg = targets["segmentation"]
    assert seg[0, 0] == -1 and seg[9, 9] == 0 and seg[5, 3] == 13 and seg[13, 1] == 11  # car = 13, person = 11
    assert torch.allclose(targets["disparity"][0], torch.from_numpy(disparity.astype(np.float32)) / DISPARITY_SCALE)
    expected = instance_offsets(labels.astype(np.int64), instances.astype(np.int64))
    assert torch.allclose(targets["instance"], torch.from_numpy(expected), equal_nan=True)


def test_downscaled_offsets_keep_full_resolution_units(tmp_path):
    write_cityscapes(tmp_path)
    ds = mtl_data.create("cityscapes3", split="test", root=tmp_path, resolution=(H // 2, W // 2))
    _, targets = ds[0]
    assert targets["instance"].shape == (2, H // 2, W // 2)
    finite = targets["instance"][torch.isfinite(targets["instance"])]
    assert finite.abs().max() > 2.0  # offsets of the 10-px-wide car are not divided by the scale


def test_splits_flip_and_cache(tmp_path):
    write_cityscapes(tmp_path, n_train=5)
    train = mtl_data.create("cityscapes3", split="train", root=tmp_path, resolution=(H, W), val_size=2)
    val = mtl_data.create("cityscapes3", split="val", root=tmp_path, resolution=(H, W), val_size=2)
    assert len(train) == 3 and len(val) == 2 and not {s[0] for s in train.samples} & {s[0] for s in val.samples}
    plain = mtl_data.create("cityscapes3", split="val", root=tmp_path, resolution=(H, W), val_size=2, augment=True)
    flips = 0
    for seed in range(8):
        torch.manual_seed(seed)
        _, t = plain[0]
        _, ref = val[0]
        if not torch.equal(t["segmentation"], ref["segmentation"]):
            flips += 1
            assert torch.equal(t["segmentation"], ref["segmentation"].flip(-1))
            assert torch.allclose(t["instance"][1], -ref["instance"][1].flip(-1), equal_nan=True)
    assert 0 < flips < 8
    cached = mtl_data.create(
        "cityscapes3", split="val", root=tmp_path, resolution=(H, W), val_size=2, cache_dir=tmp_path / "c"
    )
    a = cached[1]
    assert len(list((tmp_path / "c").rglob("*.npz"))) == 1
    b = cached[1]
    assert torch.equal(a[0], b[0]) and torch.allclose(a[1]["instance"], b[1]["instance"], equal_nan=True)


def test_missing_and_broken_files(tmp_path):
    write_cityscapes(tmp_path)
    report = mtl_data.prepare("cityscapes3", root=tmp_path, strict=False)
    assert report.counts == {"train": 4, "val": 2}
    victim = next((tmp_path / "gtFine" / "val").rglob("*_instanceIds.png"))
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=r"instanceIds\.png is missing"):
        mtl_data.prepare("cityscapes3", root=tmp_path, strict=False, checksums=False)
    ds = mtl_data.create("cityscapes3", split="test", root=tmp_path, resolution=(H, W))
    with pytest.raises(FileNotFoundError, match=r"instanceIds\.png is missing"):
        for i in range(len(ds)):
            ds[i]
    with pytest.raises(ValueError, match="official split has 2975"):
        mtl_data.prepare("cityscapes3", root=tmp_path, checksums=False)
