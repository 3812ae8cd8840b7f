"""NYUv2 and Cityscapes in the preprocessed ``.npy`` layout of MTAN / CAGrad / Nash-MTL.

On-disk layout (what lorenmt/mtan links for download)::

    <root>/train/image/0.npy ... <root>/train/image/{N-1}.npy     H x W x 3 float, RGB in [0, 1]
    <root>/train/label/{i}.npy          (NYUv2)                   H x W float, 0..12, -1 = void
    <root>/train/label_7/{i}.npy        (Cityscapes, 7 classes)   H x W float, 0..6, -1 = void
    <root>/train/depth/{i}.npy                                    H x W x 1 float, 0 = missing
    <root>/train/normal/{i}.npy         (NYUv2)                   H x W x 3 float, unit or 0 = missing
    <root>/val/...                      the official test images (654 NYUv2 / 500 Cityscapes)

NYUv2 is 288x384 (795 train / 654 test), Cityscapes 128x256 (2975 train / 500 test).

Splits (seed 001 A3.1, so that no study selects on test data): ``"val"`` holds out 159 NYUv2 / 595
Cityscapes images of the official training set (a fixed, keyed choice: :func:`mtl_data.splits.holdout`),
``"train"`` is the rest, ``"trainval"`` all official training images, ``"test"`` the official test
images (the ``val`` folder of the layout). Training splits apply the random scale-crop + flip of the
reference code by default (:mod:`mtl_data.augment`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mtl_data._io import load_npy, require_dir
from mtl_data.augment import random_scale_crop
from mtl_data.base import Batching, MTLDataset, PrepareReport, as_path, check_split
from mtl_data.manifest import record_or_verify
from mtl_data.splits import holdout
from mtl_data.tasks import scene_task_names, scene_tasks

SCENE_SPLITS = ("train", "val", "test", "trainval")
_INDEX_FILE = re.compile(r"^(\d+)\.npy$")


@dataclass(frozen=True)
class SceneLayout:
    """Everything that differs between the NYUv2 and Cityscapes ``.npy`` layouts."""

    name: str
    height: int
    width: int
    num_classes: int
    label_dir: str
    normals: bool
    train_count: int
    test_count: int
    val_holdout: int
    download_hint: str

    @property
    def task_names(self) -> tuple[str, ...]:
        """The tasks of this layout (declared: no file is read)."""
        return scene_task_names(self.normals)

    @property
    def modalities(self) -> dict[str, tuple[int | None, ...]]:
        """Directory name -> expected array shape of one file."""
        h, w = self.height, self.width
        shapes: dict[str, tuple[int | None, ...]] = {
            "image": (h, w, 3),
            self.label_dir: (h, w),
            "depth": (h, w, 1),
        }
        if self.normals:
            shapes["normal"] = (h, w, 3)
        return shapes


NYUV2 = SceneLayout(
    name="nyuv2",
    height=288,
    width=384,
    num_classes=13,
    label_dir="label",
    normals=True,
    train_count=795,
    test_count=654,
    val_holdout=159,
    download_hint="Get the preprocessed NYUv2 (13 classes, 288x384 .npy) linked from github.com/lorenmt/mtan.",
)


def cityscapes_layout(num_classes: int = 7) -> SceneLayout:
    if num_classes not in (2, 7, 19):
        raise ValueError(f"Cityscapes .npy labels exist for 2, 7 or 19 classes, got num_classes={num_classes}")
    return SceneLayout(
        name="cityscapes",
        height=128,
        width=256,
        num_classes=num_classes,
        label_dir=f"label_{num_classes}",
        normals=False,
        train_count=2975,
        test_count=500,
        val_holdout=595,
        download_hint="Get the preprocessed Cityscapes (128x256 .npy) linked from github.com/lorenmt/mtan.",
    )


CITYSCAPES = cityscapes_layout()


def _folder_for(split: str) -> str:
    return "val" if split == "test" else "train"


def _indexed_files(directory: Path) -> list[int]:
    """Indices ``i`` of the ``{i}.npy`` files in ``directory`` (other files are ignored)."""
    indices = []
    for entry in os.listdir(directory):
        match = _INDEX_FILE.match(entry)
        if match:
            indices.append(int(match.group(1)))
    return sorted(indices)


def _count_and_check(root: Path, layout: SceneLayout, folder: str) -> int:
    """Number of samples in ``root/folder``; every modality must hold exactly the files 0..N-1."""
    base = require_dir(root / folder, layout.name, layout.download_hint)
    counts: dict[str, list[int]] = {}
    for modality in layout.modalities:
        directory = require_dir(base / modality, layout.name, layout.download_hint)
        counts[modality] = _indexed_files(directory)
    images = counts["image"]
    n = len(images)
    if images != list(range(n)):
        missing = sorted(set(range(max(images, default=-1) + 1)) - set(images))
        raise FileNotFoundError(f"{base / 'image'}: files must be 0.npy..{n - 1}.npy; missing {missing[:5]}")
    for modality, indices in counts.items():
        if indices != images:
            missing = sorted(set(images) - set(indices))
            extra = sorted(set(indices) - set(images))
            detail = f"missing {[str(base / modality / f'{i}.npy') for i in missing[:3]]}" if missing else ""
            detail += f" extra {extra[:3]}" if extra else ""
            raise FileNotFoundError(f"{layout.name}: {modality} files do not match the images: {detail}")
    if n == 0:
        raise FileNotFoundError(f"{base / 'image'} holds no .npy file. {layout.download_hint}")
    return n


class NpySceneDataset(MTLDataset):
    """NYUv2 / Cityscapes (2-task) from the ``.npy`` layout; see the module docstring.

    Item: ``(image 3xHxW float32, {"segmentation": int64 HxW, "depth": 1xHxW, ["normal": 3xHxW]})``.
    """

    batching = Batching.SINGLE

    def __init__(
        self,
        layout: SceneLayout,
        root: str | os.PathLike[str],
        split: str = "train",
        augment: bool | None = None,
        val_size: int | None = None,
    ) -> None:
        check_split(split, SCENE_SPLITS)
        self.layout = layout
        self.root = as_path(root, layout.name, layout.download_hint)
        n = _count_and_check(self.root, layout, _folder_for(split))
        self.val_size = layout.val_holdout if val_size is None else int(val_size)
        if split in ("test", "trainval"):
            self.indices = list(range(n))
        else:
            if not 0 <= self.val_size < n:
                raise ValueError(f"{layout.name}: cannot hold out val_size={self.val_size} of the {n} training images")
            kept, held = holdout(n, self.val_size, f"{layout.name}-seed001-validation")
            self.indices = kept if split == "train" else held
        self.folder = self.root / _folder_for(split)
        self.augment = split in ("train", "trainval") if augment is None else bool(augment)
        description = (
            f"{layout.name} ({layout.height}x{layout.width} .npy of MTAN), split {split!r} "
            f"({len(self.indices)} images"
            + (f"; val = {self.val_size} held-out training images, seed 001 A3.1" if split != "test" else "")
            + (", scale-crop+flip augmentation" if self.augment else "")
            + ")"
        )
        super().__init__(split, scene_tasks(layout.num_classes, normals=layout.normals), description)

    def __len__(self) -> int:
        return len(self.indices)

    def _load(self, modality: str, index: int) -> np.ndarray:
        return load_npy(self.folder / modality / f"{index}.npy", self.layout.modalities[modality])

    def __getitem__(self, item: int) -> tuple[Tensor, dict[str, Tensor]]:
        index = self.indices[item]
        image = torch.from_numpy(np.ascontiguousarray(np.moveaxis(self._load("image", index), -1, 0))).float()
        label = torch.from_numpy(np.asarray(self._load(self.layout.label_dir, index))).long()
        targets = {
            "segmentation": label,
            "depth": torch.from_numpy(np.ascontiguousarray(np.moveaxis(self._load("depth", index), -1, 0))).float(),
        }
        if self.layout.normals:
            normal = np.moveaxis(self._load("normal", index), -1, 0)
            targets["normal"] = torch.from_numpy(np.ascontiguousarray(normal)).float()
        if self.augment:
            image, targets = random_scale_crop(image, targets)
        return image, targets


def nyuv2(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    augment: bool | None = None,
    val_size: int | None = None,
) -> NpySceneDataset:
    """NYUv2, 3 tasks (13-class segmentation, depth, normals), MTAN ``.npy`` layout.

    ``augment``: reference scale-crop + flip (default: on for training splits); ``val_size``: images held
    out of the official training set for ``"val"`` (default 159, seed 001 A3.1).
    """
    return NpySceneDataset(NYUV2, root, split, augment, val_size)


def cityscapes(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    augment: bool | None = None,
    val_size: int | None = None,
    num_classes: int = 7,
) -> NpySceneDataset:
    """Cityscapes, 2 tasks (7-class segmentation, depth), MTAN ``.npy`` layout.

    ``val_size`` defaults to 595 (seed 001 A3.1); ``num_classes`` picks ``label_7`` (or ``label_19``/``label_2``).
    """
    return NpySceneDataset(cityscapes_layout(num_classes), root, split, augment, val_size)


def prepare_scenes(
    layout: SceneLayout,
    root: str | os.PathLike[str],
    strict: bool = True,
    checksums: bool = True,
    manifest_path: str | os.PathLike[str] | None = None,
) -> PrepareReport:
    """Validate a NYUv2/Cityscapes ``.npy`` tree: file sets, counts (``strict``: the official ones),
    each array's shape and values (labels in [-1, C), finite depth >= 0, normals in [-1, 1]), then write
    or verify the checksum manifest. Raises naming the first offending file."""
    root = as_path(root, layout.name, layout.download_hint)
    counts = {}
    relative = []
    for folder, expected in (("train", layout.train_count), ("val", layout.test_count)):
        n = _count_and_check(root, layout, folder)
        if strict and n != expected:
            raise ValueError(
                f"{layout.name}: {root / folder} has {n} samples, the official split has {expected} "
                "(pass strict=False for a partial copy)"
            )
        counts[folder] = n
        for modality, shape in layout.modalities.items():
            for i in range(n):
                path = root / folder / modality / f"{i}.npy"
                array = load_npy(path, shape)
                _check_values(path, modality, array, layout)
                relative.append(str(path.relative_to(root)))
    manifest, created = (None, False)
    if checksums:
        manifest, created = record_or_verify(root, relative, Path(manifest_path) if manifest_path else None)
    return PrepareReport(layout.name, root, counts, manifest, created)


def _check_values(path: Path, modality: str, array: np.ndarray, layout: SceneLayout) -> None:
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: contains NaN or infinite values")
    if modality == layout.label_dir:
        bad = (array != np.round(array)) | (array < -1) | (array >= layout.num_classes)
        if bad.any():
            raise ValueError(
                f"{path}: labels must be integers in [-1, {layout.num_classes}), found {np.unique(array[bad])[:5]}"
            )
    elif modality == "depth" and (array < 0).any():
        raise ValueError(f"{path}: negative depth values")
    elif modality == "normal" and np.abs(array).max(initial=0.0) > 1.001:
        raise ValueError(f"{path}: normal components must lie in [-1, 1]")


def prepare_nyuv2(
    root: str | os.PathLike[str] | None = None,
    strict: bool = True,
    checksums: bool = True,
    manifest_path: str | os.PathLike[str] | None = None,
) -> PrepareReport:
    """:func:`prepare_scenes` for NYUv2."""
    return prepare_scenes(NYUV2, as_path(root, "nyuv2", NYUV2.download_hint), strict, checksums, manifest_path)


def prepare_cityscapes(
    root: str | os.PathLike[str] | None = None,
    strict: bool = True,
    checksums: bool = True,
    manifest_path: str | os.PathLike[str] | None = None,
    num_classes: int = 7,
) -> PrepareReport:
    """:func:`prepare_scenes` for Cityscapes (2-task)."""
    layout = cityscapes_layout(num_classes)
    return prepare_scenes(layout, as_path(root, "cityscapes", layout.download_hint), strict, checksums, manifest_path)
