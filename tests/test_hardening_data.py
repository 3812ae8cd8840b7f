"""Issue 15 item 10: data faults are named by file; manifests are verified at run time, cheaply.

The command-line forms (a NaN sample stopping ``mtl train``, ``mtl prepare --partial``, a benchmark key that
shadows a real dataset) are rows of tests/fault_injection; here the verification cache itself.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import mtl_data
from mtl_data import manifest
from mtl_data._io import load_npy

sys.path.insert(0, str(Path(__file__).parent / "fault_injection"))
from harness import write_cityscapes  # the fault-injection suite's real-format fixture


@pytest.fixture
def city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(manifest.CACHE_ENV, str(tmp_path / "cache"))
    root = tmp_path / "cityscapes"
    write_cityscapes(root, n_train=2, n_test=1)
    mtl_data.prepare("cityscapes", root=root, strict=False)
    return root


def _count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    hashed: list[str] = []
    original = manifest.sha256_file

    def spy(path):  # type: ignore[no-untyped-def]
        hashed.append(Path(path).name)
        return original(path)

    monkeypatch.setattr(manifest, "sha256_file", spy)
    return hashed


def test_verification_hashes_only_files_changed_since_they_last_matched(
    city: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed = _count_hashes(monkeypatch)
    first = manifest.verify_cached(city)
    assert (first.files, first.hashed) == (9, 9) and len(hashed) == 9  # 3 samples x 3 modalities
    again = manifest.verify_cached(city)
    assert again.hashed == 0 and len(hashed) == 9  # size, mtime and ctime unchanged: no read at all
    touched = city / "train" / "depth" / "1.npy"
    os.utime(touched, ns=(1, 1))  # same bytes, new stamp: hashed again, still valid
    assert manifest.verify_cached(city).hashed == 1
    # the cache lives outside the data directory (which DVC may track)
    assert not [p for p in city.rglob("*") if "verif" in p.name]
    assert list((city.parent / "cache").glob("verified-*.json"))


def test_a_changed_file_of_the_same_size_is_named_even_with_its_old_mtime(city: Path) -> None:
    manifest.verify_cached(city)
    path = city / "train" / "image" / "0.npy"
    stamp = path.stat()
    array = np.load(path)
    np.save(path, array * 0.5)
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # cp -p / touch -d: only the ctime tells
    assert path.stat().st_size == stamp.st_size
    with pytest.raises(ValueError, match=r"image/0\.npy: SHA-256 differs from the manifest .*mtl prepare"):
        manifest.verify_cached(city)


def test_a_truncated_or_missing_file_is_named(city: Path) -> None:
    path = city / "val" / "depth" / "0.npy"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"val/depth/0\.npy: size 100 bytes differs from the manifest"):
        manifest.verify_cached(city)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"val/depth/0\.npy is listed in the manifest"):
        manifest.verify_cached(city)


def test_a_damaged_manifest_is_named(city: Path) -> None:
    (city / manifest.MANIFEST_NAME).write_text(json.dumps({"a": {"size": "x"}}))
    with pytest.raises(ValueError, match=r"mtl_data_manifest\.json: not a manifest"):
        manifest.verify_cached(city)


def test_verify_dataset_checks_prepared_real_data_only(city: Path, tmp_path: Path) -> None:
    dataset = mtl_data.create("cityscapes", split="test", root=city)
    assert manifest.verify_dataset(dataset) is not None
    standin = mtl_data.create("cityscapes_standin", split="test", size=2, resolution=[32, 64])
    assert manifest.verify_dataset(standin) is None
    unprepared = tmp_path / "unprepared"
    write_cityscapes(unprepared, n_train=2, n_test=1)
    assert manifest.verify_dataset(mtl_data.create("cityscapes", split="test", root=unprepared)) is None


def test_a_non_finite_sample_names_its_file(city: Path) -> None:
    path = city / "train" / "depth" / "1.npy"
    array = np.load(path)
    array[0, 0, 0] = np.inf
    np.save(path, array)
    with pytest.raises(ValueError, match=r"train/depth/1\.npy: 1 of 32768 values are NaN or infinite"):
        load_npy(path)
    dataset = mtl_data.create("cityscapes", split="trainval", root=city, augment=False)
    with pytest.raises(ValueError, match=r"train/depth/1\.npy"):
        dataset[1]
    assert load_npy(path, mmap=True).shape == (128, 256, 1)  # prepare's quick header check maps, never scans
