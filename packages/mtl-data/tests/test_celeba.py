"""CelebA loader on a fixture in torchvision's layout (and the original Anno/Eval/Img layout)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mtl_data_fixtures import write_image

import mtl_data
from mtl_data.celeba import ATTRIBUTES as OFFICIAL_ATTRIBUTES

ATTRIBUTES = list(OFFICIAL_ATTRIBUTES)  # the official header (the loader checks it)


def write_celeba(base, n: int = 9, layout: str = "torchvision") -> np.ndarray:
    rng = np.random.default_rng(0)
    labels = rng.choice([-1, 1], size=(n, 40))
    files = [f"{i + 1:06d}.jpg" for i in range(n)]
    if layout == "torchvision":
        images, attr, part = base / "celeba" / "img_align_celeba", base / "celeba", base / "celeba"
    else:
        images, attr, part = base / "Img" / "img_align_celeba", base / "Anno", base / "Eval"
    for i, name in enumerate(files):
        write_image(images / name, (178, 218), (20 * i % 255, 100, 50))
    attr.mkdir(parents=True, exist_ok=True)
    part.mkdir(parents=True, exist_ok=True)
    rows = [f"{f} " + " ".join(f"{v:2d}" for v in row) for f, row in zip(files, labels)]
    (attr / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(ATTRIBUTES) + "\n" + "\n".join(rows) + "\n")
    codes = [0] * (n - 4) + [1, 1, 2, 2]
    (part / "list_eval_partition.txt").write_text("\n".join(f"{f} {c}" for f, c in zip(files, codes)) + "\n")
    return labels


def test_items_and_official_split(tmp_path):
    labels = write_celeba(tmp_path)
    train = mtl_data.create("celeba", split="train", root=tmp_path)
    test = mtl_data.create("celeba", split="test", root=tmp_path)
    assert (len(train), len(test)) == (5, 2)
    assert list(train.tasks) == ATTRIBUTES == mtl_data.task_names("celeba") and train.tasks["Young"].output_dim == 1
    image, targets = test[1]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32 and image.max() <= 1.0
    assert set(targets) == set(ATTRIBUTES) and targets["Young"].dtype == torch.float32
    expected = (labels[8] == 1).astype(np.float32)  # last image is the second test image
    assert [float(targets[a]) for a in ATTRIBUTES] == expected.tolist()


def test_original_layout_and_resize_cache(tmp_path):
    write_celeba(tmp_path, layout="original")
    plain = mtl_data.create("celeba", split="val", root=tmp_path)
    cached = mtl_data.create("celeba", split="val", root=tmp_path, cache_dir=tmp_path / "cache")
    assert (tmp_path / "cache" / "celeba64_val.npy").is_file()
    a, b = plain[0][0], cached[0][0]
    assert torch.allclose(a, b, atol=1 / 255 + 1e-6)  # cache stores uint8
    again = mtl_data.create("celeba", split="val", root=tmp_path, cache_dir=tmp_path / "cache")
    assert torch.equal(again[1][0], cached[1][0])


def test_bad_attribute_row_is_named(tmp_path):
    write_celeba(tmp_path)
    path = tmp_path / "celeba" / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace(" 1", " 2", 1) if " 1" in lines[5] else lines[5] + " 1"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"list_attr_celeba\.txt:6: expected an image name and 40 values"):
        mtl_data.create("celeba", root=tmp_path)


def test_truncated_attribute_file(tmp_path):
    write_celeba(tmp_path)
    path = tmp_path / "celeba" / "list_attr_celeba.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:-2]) + "\n")
    with pytest.raises(ValueError, match="declares 9 images but lists 7"):
        mtl_data.create("celeba", root=tmp_path)


def test_missing_files(tmp_path):
    write_celeba(tmp_path)
    (tmp_path / "celeba" / "list_eval_partition.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"list_eval_partition\.txt is missing"):
        mtl_data.create("celeba", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="img_align_celeba"):
        mtl_data.create("celeba", root=tmp_path / "empty")


def test_prepare_checks_images_and_counts(tmp_path):
    write_celeba(tmp_path)
    report = mtl_data.prepare("celeba", root=tmp_path, strict=False)
    assert report.counts == {"train": 5, "val": 2, "test": 2} and report.manifest_created
    with pytest.raises(ValueError, match="official"):
        mtl_data.prepare("celeba", root=tmp_path, checksums=False)
    broken = tmp_path / "celeba" / "img_align_celeba" / "000003.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"000003\.jpg is not a valid image"):
        mtl_data.prepare("celeba", root=tmp_path, strict=False, checksums=False)
    ds = mtl_data.create("celeba", root=tmp_path)
    with pytest.raises(ValueError, match=r"000003\.jpg cannot be decoded"):
        ds[2]


def test_attribute_header_must_be_the_official_one(tmp_path):
    write_celeba(tmp_path)
    path = tmp_path / "celeba" / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("Smiling", "Smile")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"list_attr_celeba.txt:2: expected the 40 CelebA attribute names.*'Smile'"):
        mtl_data.create("celeba", split="train", root=tmp_path)
