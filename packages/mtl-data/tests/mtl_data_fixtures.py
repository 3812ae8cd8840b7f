"""Writers of tiny datasets in the exact on-disk formats the real loaders read (test-only)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_scene_npy(root: Path, kind: str, n_train: int, n_test: int, seed: int = 0) -> None:
    """MTAN ``.npy`` layout: ``{train,val}/{image,label|label_7,depth[,normal]}/{i}.npy``."""
    rng = np.random.default_rng(seed)
    if kind == "nyuv2":
        h, w, classes, label_dir, normals = 288, 384, 13, "label", True
    else:
        h, w, classes, label_dir, normals = 128, 256, 7, "label_7", False
    for folder, n in (("train", n_train), ("val", n_test)):
        for sub in ["image", label_dir, "depth"] + (["normal"] if normals else []):
            (root / folder / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            np.save(root / folder / "image" / f"{i}.npy", rng.random((h, w, 3), dtype=np.float32))
            label = rng.integers(-1, classes, (h, w)).astype(np.float32)
            label[0, 0] = i % classes  # a per-sample marker the tests can read back
            np.save(root / folder / label_dir / f"{i}.npy", label)
            depth = rng.uniform(0.5, 5.0, (h, w, 1)).astype(np.float32)
            depth[: h // 4] = 0.0  # missing depth rows
            np.save(root / folder / "depth" / f"{i}.npy", depth)
            if normals:
                normal = rng.normal(size=(h, w, 3)).astype(np.float32)
                normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
                normal[-4:] = 0.0
                np.save(root / folder / "normal" / f"{i}.npy", normal)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as distributed by yann.lecun.com (big-endian header, uint8 payload)."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.tobytes())


def write_image(path: Path, size: tuple[int, int], color: tuple[int, int, int], fmt: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    array[...] = color
    array[: size[1] // 2, : size[0] // 2] = 255 - np.asarray(color, dtype=np.uint8)
    Image.fromarray(array).save(path, format=fmt)
