"""CelebA: 40 binary face attributes, images resized to 64x64, official train/val/test partition.

On-disk layout: torchvision's (``<root>/celeba/`` or ``<root>/`` holding ``img_align_celeba/``,
``list_attr_celeba.txt`` and ``list_eval_partition.txt``), or the original Google-Drive layout
(``Img/img_align_celeba/``, ``Anno/list_attr_celeba.txt``, ``Eval/list_eval_partition.txt``) that
Cranial-XIX/FAMO reads.

Protocol (seed 001 A3.1, FAMO/SAMO/ConsMTL): images resized to 64x64 (``Resize((64, 64))`` of the
aligned 178x218 crops, no normalisation), the official 162,770 / 19,867 / 19,962 split, one task per
attribute named as in ``list_attr_celeba.txt`` (``"5_o_Clock_Shadow"`` ... ``"Young"``), label 1 for
an attribute marked ``1`` and 0 for ``-1``.

``cache_dir=``: the resized split is written once as a uint8 ``.npy`` (about 12 KB per image) and read
through a memory map afterwards, so JPEG decoding is paid once instead of every epoch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torchvision.transforms import functional as TF

from mtl_data._io import atomic_path, load_npy
from mtl_data.base import Batching, MTLDataset, PrepareReport, as_path, check_split
from mtl_data.manifest import record_or_verify
from mtl_data.tasks import binary_attribute_tasks

SIZE = 64
PARTITION = {"train": 0, "val": 1, "test": 2}
OFFICIAL_COUNTS = {"train": 162_770, "val": 19_867, "test": 19_962}
#: The 40 attributes of ``list_attr_celeba.txt``, in its column order (the tasks, in table order).
ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip
_HINT = (
    "Download CelebA's img_align_celeba.zip, list_attr_celeba.txt and list_eval_partition.txt "
    "(mmlab.ie.cuhk.edu.hk/projects/CelebA.html) into <root>/celeba/ as torchvision expects."
)


def locate(root: Path) -> tuple[Path, Path, Path]:
    """(image directory, attribute file, partition file) in the torchvision or the original layout."""
    layouts = [
        (
            root / "celeba" / "img_align_celeba",
            root / "celeba" / "list_attr_celeba.txt",
            root / "celeba" / "list_eval_partition.txt",
        ),
        (root / "img_align_celeba", root / "list_attr_celeba.txt", root / "list_eval_partition.txt"),
        (
            root / "Img" / "img_align_celeba",
            root / "Anno" / "list_attr_celeba.txt",
            root / "Eval" / "list_eval_partition.txt",
        ),
    ]
    for images, attributes, partition in layouts:
        if images.is_dir() or attributes.is_file():
            for path in (attributes, partition):
                if not path.is_file():
                    raise FileNotFoundError(f"CelebA: {path} is missing. {_HINT}")
            if not images.is_dir():
                raise FileNotFoundError(f"CelebA: image directory {images} is missing. {_HINT}")
            return images, attributes, partition
    raise FileNotFoundError(f"CelebA: no img_align_celeba/ or list_attr_celeba.txt under {root}. {_HINT}")


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(attribute names, image file names, labels uint8 N x 40 in {0, 1}) with row-level checks."""
    with open(path) as handle:
        lines = handle.read().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: truncated (expected a count line and a header line)")
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise ValueError(f"{path}:1: expected the number of images, got {lines[0]!r}") from None
    names = lines[1].split()
    if tuple(names) != ATTRIBUTES:
        wrong = [f"{i + 1}: {n!r}" for i, n in enumerate(names) if i >= len(ATTRIBUTES) or n != ATTRIBUTES[i]]
        raise ValueError(
            f"{path}:2: expected the 40 CelebA attribute names {list(ATTRIBUTES)}, got {len(names)} names "
            f"(differing at {wrong[:3] or 'the end'})"
        )
    files: list[str] = []
    labels = np.empty((len(lines) - 2, 40), dtype=np.uint8)
    for row, line in enumerate(lines[2:]):
        fields = line.split()
        if not fields:
            raise ValueError(f"{path}:{row + 3}: empty line")
        if len(fields) != 41 or any(v not in ("1", "-1") for v in fields[1:]):
            raise ValueError(f"{path}:{row + 3}: expected an image name and 40 values in {{-1, 1}}, got {line[:80]!r}")
        files.append(fields[0])
        labels[row] = [v == "1" for v in fields[1:]]
    if declared != len(files):
        raise ValueError(f"{path}: declares {declared} images but lists {len(files)} (truncated file?)")
    return names, files, labels


def read_partition(path: Path, files: list[str]) -> np.ndarray:
    """Partition code (0 train, 1 val, 2 test) of each image, in the attribute file's order."""
    codes = {}
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise ValueError(f"{path}:{number}: expected '<image> <0|1|2>', got {line.strip()[:80]!r}")
            codes[fields[0]] = int(fields[1])
    missing = [f for f in files if f not in codes]
    if missing:
        raise ValueError(f"{path}: no partition for {len(missing)} image(s), e.g. {missing[:3]}")
    return np.array([codes[f] for f in files], dtype=np.int64)


def load_image(path: Path) -> Tensor:
    """An aligned CelebA JPEG as a 3x64x64 float tensor in [0, 1] (FAMO: ``Resize((64, 64))``)."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"CelebA image {path} is missing. {_HINT}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"CelebA image {path} cannot be decoded ({error})") from error
    return TF.to_tensor(TF.resize(image, [SIZE, SIZE]))


class CelebA(MTLDataset):
    """CelebA with 40 binary attribute tasks (see the module docstring).

    Item: ``(image 3x64x64 float32, {attribute: float32 scalar 0/1})``.
    """

    TASK_NAMES = ATTRIBUTES
    batching = Batching.SINGLE

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        check_split(split)
        self.root = as_path(root, "celeba", _HINT)
        self.image_dir, attributes, partition = locate(self.root)
        names, files, labels = read_attributes(attributes)
        keep = read_partition(partition, files) == PARTITION[split]
        self.files = [f for f, k in zip(files, keep) if k]
        self.labels = torch.from_numpy(labels[keep].astype(np.float32))
        self.attribute_names = names
        self._cache: np.ndarray | None = None
        if cache_dir is not None:
            self._cache = self._resized_cache(Path(cache_dir).expanduser(), split)
        description = f"CelebA (64x64, official split) {split!r}: {len(self.files)} images, 40 attributes"
        super().__init__(split, binary_attribute_tasks(names), description)

    def _resized_cache(self, cache_dir: Path, split: str) -> np.ndarray:
        path = cache_dir / f"celeba{SIZE}_{split}.npy"
        shape = (len(self.files), SIZE, SIZE, 3)
        if not path.is_file():
            with atomic_path(path) as tmp:
                array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
                for i, name in enumerate(self.files):
                    array[i] = (load_image(self.image_dir / name).permute(1, 2, 0) * 255).round().byte().numpy()
                array.flush()
                del array
        return load_npy(path, shape, mmap=True)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: int) -> tuple[Tensor, dict[str, Tensor]]:
        if self._cache is not None:
            image = torch.from_numpy(np.array(self._cache[item])).permute(2, 0, 1).float().div_(255.0)
        else:
            image = load_image(self.image_dir / self.files[item])
        row = self.labels[item]
        return image, {name: row[i] for i, name in enumerate(self.attribute_names)}


def prepare_celeba(
    root: str | os.PathLike[str] | None = None,
    strict: bool = True,
    checksums: bool = True,
    manifest_path: str | os.PathLike[str] | None = None,
) -> PrepareReport:
    """Validate the annotation files row by row, the split sizes (``strict``: the official ones), that
    every listed image exists and decodes, then write or verify the checksum manifest."""
    root = as_path(root, "celeba", _HINT)
    image_dir, attributes, partition = locate(root)
    _, files, _ = read_attributes(attributes)
    codes = read_partition(partition, files)
    counts = {split: int((codes == code).sum()) for split, code in PARTITION.items()}
    if strict and counts != OFFICIAL_COUNTS:
        raise ValueError(
            f"CelebA split sizes {counts} differ from the official {OFFICIAL_COUNTS} (strict=False to allow)"
        )
    present = set(os.listdir(image_dir))
    missing = [f for f in files if f not in present]
    if missing:
        raise FileNotFoundError(f"{len(missing)} CelebA image(s) missing from {image_dir}, e.g. {missing[:3]}")
    for name in files:
        path = image_dir / name
        try:
            with Image.open(path) as image:
                image.verify()
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"CelebA image {path} is not a valid image ({error})") from error
    manifest, created = (None, False)
    if checksums:
        relative = [str(p.relative_to(root)) for p in (attributes, partition)]
        relative += [str((image_dir / f).relative_to(root)) for f in files]
        manifest, created = record_or_verify(root, relative, Path(manifest_path) if manifest_path else None)
    return PrepareReport("celeba", root, counts, manifest, created)
