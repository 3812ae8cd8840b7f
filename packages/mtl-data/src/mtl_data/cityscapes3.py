"""Cityscapes 3-task (seed 003): 19-class semantic segmentation, instance centroid regression, disparity.

On-disk layout: the official Cityscapes packages ``leftImg8bit_trainvaltest``, ``gtFine_trainvaltest`` and
``disparity_trainvaltest`` unpacked in one root::

    <root>/leftImg8bit/{train,val}/<city>/<stem>_leftImg8bit.png
    <root>/gtFine/{train,val}/<city>/<stem>_gtFine_labelIds.png, <stem>_gtFine_instanceIds.png
    <root>/disparity/{train,val}/<city>/<stem>_disparity.png

Targets as the reference (SamsungLabs/MTL ``code/data/datasets/cityscapes.py``, after Sener & Koltun):

- ``segmentation``: label ids mapped to the 19 training classes, void -> -1;
- ``instance``: for each pixel of a "thing" instance, its (y, x) offset to the instance's centroid,
  computed at full resolution, in full-resolution pixels (the unit of the reported L1 [px]); pixels of
  no instance (void, stuff classes, id 0) are NaN;
- ``disparity``: the raw 16-bit disparity PNG divided by 2729.068 (the reference ``DEPTH_STD``),
  0 = missing.

All maps are resized to ``resolution`` (default 256x512; images bilinearly, targets by nearest
neighbour). Training splits are flipped horizontally at random (x offsets negate); the reference also
rotates by up to 10 degrees, which is not done here. Decoding three full-size PNGs per sample is slow, so
``cache_dir=`` stores each resized sample once (``.npz``) and reads it back afterwards.

Splits: ``"test"`` = the official val images (500), ``"val"`` = 595 training images held out (a fixed
keyed choice over the sorted file list, seed 001 A3.1), ``"train"`` = the rest, ``"trainval"`` = all 2975.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from mtl_data._io import atomic_path, require_dir
from mtl_data.base import Batching, MTLDataset, PrepareReport, as_path, check_split
from mtl_data.manifest import record_or_verify
from mtl_data.splits import holdout
from mtl_data.tasks import CITYSCAPES3_TASK_NAMES, DisparityTask, InstanceTask, SegmentationTask

SPLITS3 = ("train", "val", "test", "trainval")
VALID_CLASSES = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
NO_INSTANCE_CLASSES = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23)  # stuff: never an instance
DISPARITY_SCALE = 2729.0680031169923
OFFICIAL_COUNTS = {"train": 2975, "val": 500}
VAL_HOLDOUT = 595
_HINT = (
    "Download leftImg8bit_trainvaltest.zip, gtFine_trainvaltest.zip and disparity_trainvaltest.zip from "
    "cityscapes-dataset.com and unpack them in one directory."
)

_TRAIN_ID = np.full(256, -1, dtype=np.int64)
_TRAIN_ID[list(VALID_CLASSES)] = np.arange(len(VALID_CLASSES))


def _read_png(path: Path, dtype: type) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.array(image, dtype=dtype)
    except FileNotFoundError:
        raise FileNotFoundError(f"Cityscapes file {path} is missing. {_HINT}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"Cityscapes file {path} cannot be decoded ({error})") from error


def instance_offsets(label_ids: np.ndarray, instance_ids: np.ndarray) -> np.ndarray:
    """(2, H, W) float32 (y, x) offsets from each instance pixel to its centroid; NaN elsewhere.

    Instances are the distinct ids of ``instanceIds`` outside void, stuff classes and id 0, as the
    reference ``encode_instancemap`` (crowd regions of a thing class form one instance).
    """
    valid = (_TRAIN_ID[label_ids] >= 0) & (instance_ids != 0) & ~np.isin(instance_ids, NO_INSTANCE_CLASSES)
    offsets = np.full((2, *instance_ids.shape), np.nan, dtype=np.float32)
    if not valid.any():
        return offsets
    ids, inverse = np.unique(instance_ids[valid], return_inverse=True)
    ys, xs = np.nonzero(valid)
    counts = np.bincount(inverse, minlength=len(ids))
    cy = np.bincount(inverse, weights=ys, minlength=len(ids)) / counts
    cx = np.bincount(inverse, weights=xs, minlength=len(ids)) / counts
    offsets[0, ys, xs] = ys - cy[inverse]
    offsets[1, ys, xs] = xs - cx[inverse]
    return offsets


def _files(root: Path, folder: str) -> list[tuple[Path, Path, Path, Path]]:
    """(image, labelIds, instanceIds, disparity) paths of every image of the official ``folder``."""
    image_root = require_dir(root / "leftImg8bit" / folder, "cityscapes3", _HINT)
    samples = []
    for image in sorted(image_root.glob("*/*_leftImg8bit.png")):
        stem, city = image.name[: -len("_leftImg8bit.png")], image.parent.name
        gt = root / "gtFine" / folder / city
        samples.append(
            (
                image,
                gt / f"{stem}_gtFine_labelIds.png",
                gt / f"{stem}_gtFine_instanceIds.png",
                root / "disparity" / folder / city / f"{stem}_disparity.png",
            )
        )
    if not samples:
        raise FileNotFoundError(f"no *_leftImg8bit.png under {image_root}/<city>/. {_HINT}")
    return samples


def _resize(array: Tensor, size: tuple[int, int], bilinear: bool) -> Tensor:
    mode = {"mode": "bilinear", "align_corners": False, "antialias": True} if bilinear else {"mode": "nearest"}
    return F.interpolate(array[None].float(), size=size, **mode)[0]


def encode_sample(paths: tuple[Path, Path, Path, Path], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Decode one sample and build its resized image and targets (see the module docstring)."""
    image_path, label_path, instance_path, disparity_path = paths
    image = _read_png(image_path, np.uint8)
    label_ids = _read_png(label_path, np.int64)
    instance_ids = _read_png(instance_path, np.int64)
    disparity = _read_png(disparity_path, np.float32) / DISPARITY_SCALE
    shapes = {p.name: a.shape[:2] for p, a in zip(paths, (image, label_ids, instance_ids, disparity))}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"Cityscapes sample with mismatched sizes: {shapes}")
    if label_ids.max(initial=0) > 255 or label_ids.min(initial=0) < 0:
        raise ValueError(f"{label_path}: label ids outside 0..255")
    segmentation = _TRAIN_ID[label_ids]
    offsets = instance_offsets(label_ids, instance_ids)
    out_image = _resize(torch.from_numpy(image).permute(2, 0, 1), size, bilinear=True).round().clamp(0, 255)
    return {
        "image": out_image.byte().numpy(),
        "segmentation": _resize(torch.from_numpy(segmentation)[None], size, False)[0].long().numpy(),
        "instance": _resize(torch.from_numpy(offsets), size, False).numpy(),
        "disparity": _resize(torch.from_numpy(disparity)[None], size, False).numpy(),
    }


class Cityscapes3(MTLDataset):
    """Cityscapes with segmentation (19), instance (2) and disparity (1) tasks; see the module docstring.

    Item: ``(image 3xHxW float32 in [0, 1], {"segmentation": int64 HxW, "instance": 2xHxW,
    "disparity": 1xHxW})``.
    """

    TASK_NAMES = CITYSCAPES3_TASK_NAMES
    batching = Batching.SINGLE

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike[str] | None = None,
        resolution: tuple[int, int] = (256, 512),
        augment: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        val_size: int = VAL_HOLDOUT,
    ) -> None:
        check_split(split, SPLITS3)
        if len(resolution) != 2 or min(resolution) < 1:
            raise ValueError(f"resolution must be (height, width), got {resolution}")
        self.root = as_path(root, "cityscapes3", _HINT)
        self.resolution = (int(resolution[0]), int(resolution[1]))
        samples = _files(self.root, "val" if split == "test" else "train")
        if split in ("train", "val"):
            if not 0 <= val_size < len(samples):
                raise ValueError(f"cannot hold out val_size={val_size} of the {len(samples)} training images")
            kept, held = holdout(len(samples), val_size, "cityscapes-seed001-validation")
            samples = [samples[i] for i in (kept if split == "train" else held)]
        self.samples = samples
        self.augment = split in ("train", "trainval") if augment is None else bool(augment)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        specs = (SegmentationTask("segmentation", 19), InstanceTask("instance"), DisparityTask("disparity"))
        tasks = {spec.name: spec for spec in specs}
        h, w = self.resolution
        description = (
            f"Cityscapes 3-task ({h}x{w}; 19 classes, instance centroids, disparity) {split!r}: "
            f"{len(samples)} images" + (", flip augmentation" if self.augment else "")
        )
        super().__init__(split, tasks, description)

    def __len__(self) -> int:
        return len(self.samples)

    def _encoded(self, item: int) -> dict[str, np.ndarray]:
        paths = self.samples[item]
        if self.cache_dir is None:
            return encode_sample(paths, self.resolution)
        h, w = self.resolution
        cached = self.cache_dir / f"{h}x{w}" / paths[0].parent.name / (paths[0].stem + ".npz")
        if cached.is_file():
            try:
                with np.load(cached) as stored:
                    return {key: stored[key] for key in ("image", "segmentation", "instance", "disparity")}
            except (ValueError, OSError, KeyError, EOFError) as error:
                raise ValueError(f"corrupt cache file {cached} ({error}); delete it") from error
        encoded = encode_sample(paths, self.resolution)
        with atomic_path(cached) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **encoded)
        return encoded

    def __getitem__(self, item: int) -> tuple[Tensor, dict[str, Tensor]]:
        encoded = self._encoded(item)
        image = torch.from_numpy(encoded["image"]).float().div_(255.0)
        targets = {
            "segmentation": torch.from_numpy(encoded["segmentation"]).long(),
            "instance": torch.from_numpy(encoded["instance"]).float(),
            "disparity": torch.from_numpy(encoded["disparity"]).float(),
        }
        if self.augment and float(torch.rand(1)) < 0.5:
            image = image.flip(-1)
            targets = {name: t.flip(-1) for name, t in targets.items()}
            targets["instance"][1] = -targets["instance"][1]
        return image, targets


def prepare_cityscapes3(
    root: str | os.PathLike[str] | None = None,
    strict: bool = True,
    checksums: bool = True,
    manifest_path: str | os.PathLike[str] | None = None,
) -> PrepareReport:
    """Check that every image has its labelIds, instanceIds and disparity PNG (``strict``: 2975/500
    images), that the annotation PNGs decode, then write or verify the checksum manifest."""
    root = as_path(root, "cityscapes3", _HINT)
    counts: dict[str, int] = {}
    relative: list[str] = []
    for folder in ("train", "val"):
        samples = _files(root, folder)
        if strict and len(samples) != OFFICIAL_COUNTS[folder]:
            raise ValueError(
                f"cityscapes3: {len(samples)} {folder} images, the official split has {OFFICIAL_COUNTS[folder]} "
                "(pass strict=False for a partial copy)"
            )
        for paths in samples:
            for path in paths:
                if not path.is_file():
                    raise FileNotFoundError(f"Cityscapes file {path} is missing (needed for {paths[0].name}). {_HINT}")
                relative.append(path.relative_to(root).as_posix())
            for path in paths[1:]:
                try:
                    with Image.open(path) as image:
                        image.verify()
                except (UnidentifiedImageError, OSError) as error:
                    raise ValueError(f"Cityscapes file {path} cannot be decoded ({error})") from error
        counts[folder] = len(samples)
    manifest, created = (None, False)
    if checksums:
        manifest, created = record_or_verify(root, relative, Path(manifest_path) if manifest_path else None)
    return PrepareReport("cityscapes3", root, counts, manifest, created)
