"""Tests of the cached corrupted test set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from mtl_data import corruptions as C
from mtl_data.corruptions import dataset as corruption_dataset


class _TinyTestSet(Dataset):
    """Deterministic (image, targets) pairs like a stand-in test split."""

    def __init__(self, n: int = 5, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, 24, 32, generator=g)
        self.labels = torch.randint(0, 13, (n, 24, 32), generator=g)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.images[i], {"segmentation": self.labels[i]}


def test_items_are_the_quantised_per_index_corruptions_and_targets_pass_through() -> None:
    base = _TinyTestSet()
    ds = C.CorruptedDataset(base, "shot_noise", 3, seed=4)
    assert len(ds) == len(base)
    for i in range(len(base)):
        image, targets = ds[i]
        expected = C.apply(base[i][0], "shot_noise", 3, seed=(4, i))
        assert image.dtype == torch.float32 and image.shape == base[i][0].shape
        torch.testing.assert_close(image, torch.round(expected * 255) / 255, atol=1e-6, rtol=0)
        assert torch.equal(targets["segmentation"], base[i][1]["segmentation"])
    # different images get different noise even at the same severity
    assert not torch.equal(ds[0][0] - base[0][0], ds[1][0] - base[1][0])
    with pytest.raises(IndexError):
        ds[len(base)]


def test_cache_is_written_atomically_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _TinyTestSet()
    first = C.CorruptedDataset(base, "fog", 2, tmp_path)
    images = first.materialize()
    assert first.cache_path is not None and first.cache_path.exists()
    assert first.cache_path.with_suffix(".json").exists()
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".npy"]  # no temp files left
    assert images.dtype == np.uint8 and images.shape == (5, 3, 24, 32)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(corruption_dataset, "apply", forbidden)
    again = C.CorruptedDataset(base, "fog", 2, tmp_path)
    torch.testing.assert_close(again[3][0], first[3][0])
    # another severity, seed or base set is another cache file
    other_base = _TinyTestSet(seed=1)
    assert C.CorruptedDataset(other_base, "fog", 2, tmp_path).cache_path != first.cache_path
    assert C.CorruptedDataset(base, "fog", 2, tmp_path, seed=1).cache_path != first.cache_path
    assert C.CorruptedDataset(base, "fog", 3, tmp_path).cache_path != first.cache_path


def test_broken_cache_files_raise_naming_the_file(tmp_path: Path) -> None:
    base = _TinyTestSet()
    ds = C.CorruptedDataset(base, "contrast", 1, tmp_path)
    ds.materialize()
    path = ds.cache_path
    assert path is not None
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match=str(path.name)):
        C.CorruptedDataset(base, "contrast", 1, tmp_path).materialize()
    np.save(path, np.zeros((4, 3, 24, 32), np.uint8))  # wrong count
    with pytest.raises(ValueError, match="shape"):
        C.CorruptedDataset(base, "contrast", 1, tmp_path).materialize()


def test_bad_arguments() -> None:
    base = _TinyTestSet()
    with pytest.raises(ValueError, match="unknown corruption"):
        C.CorruptedDataset(base, "haze", 1)
    with pytest.raises(ValueError, match="severity"):
        C.CorruptedDataset(base, "fog", 9)
    with pytest.raises(ValueError, match="profile"):
        C.CorruptedDataset(base, "fog", 1, profile="imagenet64")
    with pytest.raises(ValueError, match="empty"):
        C.CorruptedDataset(_TinyTestSet(n=0), "fog", 1)


def test_grid_helper_builds_the_benchmark_grid() -> None:
    grid = C.corrupted_test_sets(_TinyTestSet(), None)
    assert len(grid) == 15 * 5 and ("jpeg_compression", 5) in grid
