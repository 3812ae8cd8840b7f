"""Office-31 / Office-Home folders: split files on disk, multi-input loader, errors."""

from __future__ import annotations

import pytest
import torch
from mtl_data_fixtures import write_image

import mtl_data
from mtl_data.base import MultiInputLoader


def write_office31(root, per_class=5, classes=31):
    for d, domain in enumerate(("amazon", "dslr", "webcam")):
        for c in range(classes):
            for i in range(per_class + d):  # domains of different sizes
                write_image(
                    root / domain / "images" / f"class_{c:02d}" / f"frame_{i:04d}.jpg", (12, 10), (c * 8, i * 40, 90)
                )


@pytest.fixture(scope="module")
def office_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("office31")
    write_office31(root)
    return root


def test_split_written_stratified_disjoint_and_reused(office_root, tmp_path):
    split_dir = tmp_path / "splits"
    parts = {
        s: mtl_data.create("office31", split=s, root=office_root, split_dir=split_dir) for s in ("train", "val", "test")
    }
    for domain, size in (("amazon", 5), ("dslr", 6), ("webcam", 7)):
        files = {s: set(parts[s].domains[domain].files) for s in parts}
        assert (
            not files["train"] & files["val"]
            and not files["train"] & files["test"]
            and not files["val"] & files["test"]
        )
        assert sum(len(f) for f in files.values()) == 31 * size
        # Stratified 60/20/20: per class round(0.6 n) train, round(0.2 n) val, rest test.
        labels = parts["train"].domains[domain].labels
        assert torch.bincount(labels, minlength=31).tolist() == [round(0.6 * size)] * 31
        assert (split_dir / f"{domain}_train.txt").is_file()
    first = (split_dir / "amazon_test.txt").read_text()
    line = first.splitlines()[0]
    assert line.startswith("amazon/images/class_") and line.split(" ")[1].isdigit()
    # Reused from disk: editing the file changes what is loaded.
    (split_dir / "amazon_test.txt").write_text(line + "\n")
    assert len(mtl_data.create("office31", split="test", root=office_root, split_dir=split_dir).domains["amazon"]) == 1


def test_items_and_tasks(office_root, tmp_path):
    ds = mtl_data.create("office31", split="val", root=office_root, split_dir=tmp_path, image_size=32)
    assert list(ds.tasks) == ["amazon", "dslr", "webcam"] == mtl_data.task_names("office31")
    assert ds.tasks["dslr"].output_dim == 31
    image, label = ds.domains["dslr"][0]
    assert image.shape == (3, 32, 32) and label.dtype == torch.int64
    name = ds.domains["dslr"].files[0].parent.name
    assert int(label) == int(name.split("_")[1])  # sorted class folders -> index


def test_multi_input_loader_cycle_and_eval(office_root, tmp_path):
    ds = mtl_data.create("office31", split="train", root=office_root, split_dir=tmp_path, image_size=16)
    sizes = {t: len(d) for t, d in ds.domains.items()}
    loader = ds.loader(batch_size=16)
    assert len(loader) == max(s // 16 for s in sizes.values())  # drop_last on train
    x, y = next(iter(loader))
    assert set(x) == set(y) == {"amazon", "dslr", "webcam"} and x["amazon"].shape == (16, 3, 16, 16)
    # Evaluation mode: every image exactly once per domain.
    seen = {t: 0 for t in ds.domains}
    for x, y in MultiInputLoader(ds.domains, batch_size=40, shuffle=False, cycle=False):
        for t in x:
            seen[t] += len(y[t])
    assert seen == sizes
    # Seeded shuffling is reproducible.
    a = next(iter(ds.loader(batch_size=8, seed=3)))[1]["webcam"]
    b = next(iter(ds.loader(batch_size=8, seed=3)))[1]["webcam"]
    assert torch.equal(a, b)


def test_prepare_and_errors(tmp_path):
    write_office31(tmp_path, per_class=5, classes=31)
    report = mtl_data.prepare("office31", root=tmp_path, strict=False)
    assert report.counts["amazon/train"] + report.counts["amazon/val"] + report.counts["amazon/test"] == 155
    with pytest.raises(ValueError, match="amazon has 155 images, the dataset has 2817"):
        mtl_data.prepare("office31", root=tmp_path, checksums=False)
    bad = tmp_path / "dslr" / "images" / "class_00" / "frame_0000.jpg"
    bad.write_bytes(b"broken")
    with pytest.raises(ValueError, match=r"frame_0000\.jpg is not a valid image"):
        mtl_data.prepare("office31", root=tmp_path, strict=False, checksums=False)


def test_wrong_class_count_and_missing_domain(tmp_path):
    write_office31(tmp_path, per_class=1, classes=3)
    with pytest.raises(ValueError, match="3 class folders, expected 31"):
        mtl_data.create("office31", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="Art"):
        mtl_data.create("office_home", root=tmp_path)


def test_bad_split_file_line(office_root, tmp_path):
    mtl_data.create("office31", root=office_root, split_dir=tmp_path)
    (tmp_path / "webcam_val.txt").write_text("webcam/images/class_00/frame_0000.jpg 77\n")
    with pytest.raises(ValueError, match=r"webcam_val\.txt:1: label 77 outside \[0, 31\)"):
        mtl_data.create("office31", split="val", root=office_root, split_dir=tmp_path)
