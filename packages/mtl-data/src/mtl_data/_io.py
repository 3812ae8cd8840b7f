"""Small file helpers shared by the loaders: atomic writes and validated reads with clear errors."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``path`` for binary writing; rename it onto ``path`` on success.

    A killed or failing writer leaves no partial ``path`` behind (the temp file is removed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path next to ``path`` for writers that need a file name (e.g. ``np.lib.format.open_memmap``);
    renamed onto ``path`` on success, removed on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | os.PathLike[str], payload: Any) -> None:
    with atomic_writer(path) as handle:
        handle.write((json.dumps(payload, indent=1, sort_keys=True) + "\n").encode())


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_writer(path) as handle:
        handle.write(text.encode())


def require_dir(path: Path, what: str, hint: str) -> Path:
    """Return ``path`` if it is a directory, else raise ``FileNotFoundError`` naming it and what to get."""
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: directory {path} does not exist. {hint}")
    return path


def require_file(path: Path, what: str, hint: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: file {path} does not exist. {hint}")
    return path


def load_npy(path: Path, shape: tuple[int | None, ...] | None = None, mmap: bool = False) -> np.ndarray:
    """``np.load`` with errors that name the file: missing, truncated/corrupt, of the wrong shape, or (read in
    full) holding NaN/Inf, which no dataset of ours stores (missing depth is 0, void labels -1): a corrupted
    sample is reported with its file here instead of as a non-finite loss epochs later.

    ``shape`` may contain ``None`` for free dimensions. ``mmap=True`` only reads the header and maps the
    data, which is how :func:`prepare` checks thousands of files quickly (a truncated file fails too,
    because the mapping is longer than the file); mapped data is not scanned.
    """
    if not path.is_file():
        raise FileNotFoundError(f"missing file {path}")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"cannot read {path}: truncated or not a .npy file ({error})") from error
    if shape is not None and (
        array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape))
    ):
        expected = "x".join("*" if s is None else str(s) for s in shape)
        raise ValueError(f"{path}: shape {array.shape} does not match the expected {expected}")
    if not mmap and np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
        bad = int(array.size - np.isfinite(array).sum())
        raise ValueError(
            f"{path}: {bad} of {array.size} values are NaN or infinite: the file is corrupt; restore it "
            "(dvc pull, or download it again) and run mtl prepare to verify the dataset"
        )
    return array
