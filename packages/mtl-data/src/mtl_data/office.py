"""Office-31 and Office-Home: multi-input classification, one task per domain, 60/20/20 split on disk.

On-disk layout (as downloaded): one folder per domain with one sub-folder per class, optionally under
``images/`` (Office-31)::

    <root>/amazon/images/back_pack/frame_0001.jpg ...        Office-31: amazon, dslr, webcam (31 classes)
    <root>/Art/Alarm_Clock/00001.jpg ...                      Office-Home: Art, Clipart, Product, Real_World (65)

Split (LibMTL protocol, seed 002 Office-Home): each domain is split 60/20/20 into train/val/test,
stratified by class, by a keyed (deterministic) choice. The split is written to
``<split_dir>/<domain>_<split>.txt`` as LibMTL's ``data_txt`` files (``<path relative to root> <label>``
per line) and read back from there afterwards; copying LibMTL's own files there reproduces its exact
split. Classes are numbered in sorted folder order when we write the split.

Images: ``Resize((224, 224))``, ``ToTensor``, ImageNet mean/std normalisation (LibMTL ``office_Dataset``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from mtl_data._io import require_dir, write_text_atomic
from mtl_data.base import MultiInputDataset, PrepareReport, as_path, check_split
from mtl_data.manifest import record_or_verify
from mtl_data.splits import stratified_split
from mtl_data.tasks import classification_tasks

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OFFICE31 = {
    "domains": ("amazon", "dslr", "webcam"),
    "classes": 31,
    "counts": {"amazon": 2817, "dslr": 498, "webcam": 795},
}
OFFICE_HOME = {
    "domains": ("Art", "Clipart", "Product", "Real_World"),
    "classes": 65,
    "counts": {"Art": 2427, "Clipart": 4365, "Product": 4439, "Real_World": 4357},
}
_HINTS = {
    "office31": "Download Office-31 (amazon/dslr/webcam folders) and pass its directory as root.",
    "office_home": "Download Office-Home (Art/Clipart/Product/Real_World folders) and pass its directory as root.",
}

OFFICE31_TASKS: tuple[str, ...] = OFFICE31["domains"]
OFFICE_HOME_TASKS: tuple[str, ...] = OFFICE_HOME["domains"]


class ImageList(Dataset):
    """(image, label) pairs from a list of files; errors name the file that cannot be read."""

    def __init__(self, files: Sequence[Path], labels: Sequence[int], image_size: int = 224) -> None:
        self.files = list(files)
        self.labels = torch.as_tensor(list(labels), dtype=torch.int64)
        self.transform = transforms.Compose(
            [
                transforms.Resize((image_size, image_size)),
                transforms.ToTensor(),
                transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: int) -> tuple[Tensor, Tensor]:
        path = self.files[item]
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except FileNotFoundError:
            raise FileNotFoundError(f"image {path} is missing") from None
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"image {path} cannot be decoded ({error})") from error
        return self.transform(image), self.labels[item]


def domain_dir(root: Path, name: str, domain: str) -> Path:
    """The folder holding the class folders of ``domain`` (``<domain>/images`` or ``<domain>``)."""
    base = require_dir(root / domain, name, _HINTS[name])
    return base / "images" if (base / "images").is_dir() else base


def scan_domain(root: Path, name: str, domain: str, num_classes: int | None) -> tuple[list[str], list[tuple[str, int]]]:
    """(sorted class names, [(path, class index)]) of one domain folder, via torchvision's folder scan."""
    directory = domain_dir(root, name, domain)
    try:
        classes, class_to_idx = find_classes(str(directory))
        samples = make_dataset(str(directory), class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{name}: {directory}: {error}. {_HINTS[name]}") from error
    if num_classes is not None and len(classes) != num_classes:
        raise ValueError(f"{name}: {directory} has {len(classes)} class folders, expected {num_classes}")
    return classes, samples


def _split_files(split_dir: Path, domain: str) -> dict[str, Path]:
    return {split: split_dir / f"{domain}_{split}.txt" for split in FRACTIONS}


def _read_split_file(path: Path, root: Path, num_classes: int) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rsplit(" ", 1)
        try:
            label = int(parts[1])
        except (IndexError, ValueError):
            raise ValueError(f"{path}:{number}: expected '<relative path> <label>', got {line!r}") from None
        if not 0 <= label < num_classes:
            raise ValueError(f"{path}:{number}: label {label} outside [0, {num_classes})")
        files.append(root / parts[0])
        labels.append(label)
    if not files:
        raise ValueError(f"{path}: empty split file")
    return files, labels


def ensure_split(root: Path, name: str, domain: str, split_dir: Path, num_classes: int) -> dict[str, Path]:
    """Write the 60/20/20 split files of ``domain`` unless all three exist; return their paths."""
    paths = _split_files(split_dir, domain)
    present = [p.is_file() for p in paths.values()]
    if all(present):
        return paths
    if any(present):
        raise FileNotFoundError(
            f"{name}: only some split files of {domain} exist in {split_dir} "
            f"(missing {[str(p) for p in paths.values() if not p.is_file()]}); delete them to re-create"
        )
    _, samples = scan_domain(root, name, domain, num_classes)
    parts = stratified_split([label for _, label in samples], list(FRACTIONS.values()), f"{name}/{domain}")
    for path, indices in zip(paths.values(), parts):
        lines = [f"{Path(samples[i][0]).relative_to(root).as_posix()} {samples[i][1]}" for i in indices]
        write_text_atomic(path, "\n".join(lines) + "\n")
    return paths


class Office(MultiInputDataset):
    """Office-31 / Office-Home: ``domains[task]`` yields ``(3x224x224 image, int64 label)``."""

    def __init__(
        self,
        name: str,
        spec: dict,
        root: str | os.PathLike[str] | None,
        split: str,
        split_dir: str | os.PathLike[str] | None,
        image_size: int,
    ) -> None:
        check_split(split)
        root = as_path(root, name, _HINTS[name])
        split_path = Path(split_dir).expanduser() if split_dir is not None else root / "splits"
        domains = {}
        for domain in spec["domains"]:
            paths = ensure_split(root, name, domain, split_path, spec["classes"])
            files, labels = _read_split_file(paths[split], root, spec["classes"])
            domains[domain] = ImageList(files, labels, image_size)
        sizes = ", ".join(f"{d}: {len(ds)}" for d, ds in domains.items())
        description = f"{name} ({spec['classes']} classes, 60/20/20 split in {split_path}) {split!r}: {sizes}"
        super().__init__(split, domains, classification_tasks(spec["domains"], spec["classes"]), description)
        self.root = root
        self.split_dir = split_path


def office31(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    split_dir: str | os.PathLike[str] | None = None,
    image_size: int = 224,
) -> Office:
    """Office-31: tasks amazon, dslr, webcam (31 classes each). ``split_dir`` defaults to ``<root>/splits``."""
    return Office("office31", OFFICE31, root, split, split_dir, image_size)


def office_home(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    split_dir: str | os.PathLike[str] | None = None,
    image_size: int = 224,
) -> Office:
    """Office-Home: tasks Art, Clipart, Product, Real_World (65 classes each)."""
    return Office("office_home", OFFICE_HOME, root, split, split_dir, image_size)


def _prepare(
    name: str,
    spec: dict,
    root: str | os.PathLike[str] | None,
    strict: bool,
    checksums: bool,
    split_dir: str | os.PathLike[str] | None,
) -> PrepareReport:
    root = as_path(root, name, _HINTS[name])
    split_path = Path(split_dir).expanduser() if split_dir is not None else root / "splits"
    counts: dict[str, int] = {}
    relative: list[str] = []
    reference: list[str] | None = None
    for domain in spec["domains"]:
        classes, samples = scan_domain(root, name, domain, spec["classes"])
        if reference is not None and classes != reference:
            raise ValueError(f"{name}: domain {domain} has different class folders than {spec['domains'][0]}")
        reference = classes
        if strict and len(samples) != spec["counts"][domain]:
            raise ValueError(
                f"{name}: {domain} has {len(samples)} images, the dataset has {spec['counts'][domain]} "
                "(pass strict=False for a partial copy)"
            )
        for path, _ in samples:
            try:
                with Image.open(path) as image:
                    image.verify()
            except (UnidentifiedImageError, OSError) as error:
                raise ValueError(f"{name}: {path} is not a valid image ({error})") from error
            relative.append(Path(path).relative_to(root).as_posix())
        paths = ensure_split(root, name, domain, split_path, spec["classes"])
        for split, path in paths.items():
            files, _ = _read_split_file(path, root, spec["classes"])
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise FileNotFoundError(f"{path} lists {len(missing)} missing image(s), e.g. {missing[0]}")
            counts[f"{domain}/{split}"] = len(files)
    manifest, created = (None, False)
    if checksums:
        manifest, created = record_or_verify(root, relative, split_path / f"{name}_manifest.json")
    return PrepareReport(name, root, counts, manifest, created)


def prepare_office31(
    root: str | os.PathLike[str] | None = None,
    strict: bool = True,
    checksums: bool = True,
    split_dir: str | os.PathLike[str] | None = None,
) -> PrepareReport:
    """Validate Office-31 (class folders, counts, every image decodes), write/check the split and manifest."""
    return _prepare("office31", OFFICE31, root, strict, checksums, split_dir)


def prepare_office_home(
    root: str | os.PathLike[str] | None = None,
    strict: bool = True,
    checksums: bool = True,
    split_dir: str | os.PathLike[str] | None = None,
) -> PrepareReport:
    """Validate Office-Home (class folders, counts, every image decodes), write/check the split and manifest."""
    return _prepare("office_home", OFFICE_HOME, root, strict, checksums, split_dir)
