"""File writes and the names they use: atomic writes (temp file in the same directory + ``os.replace``, so a
killed job leaves no half file), created with the permissions the umask allows (group-shared results,
docs/hpc.md), and the checks that keep a name from untrusted input (a run ``name``, a run id of a job
manifest) from writing outside its root."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

__all__ = [
    "SAFE_NAME",
    "UnsafePathError",
    "atomic_open",
    "check_name",
    "check_within",
    "read_jsonl",
    "write_json",
    "write_jsonl",
    "write_text",
    "write_yaml",
]

#: A run name, run id or job id: becomes one path component, so no separator, no leading dot (``..``,
#: hidden files), no shell metacharacter; at most 200 characters (file names are limited to 255 bytes).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
SAFE_NAME_HELP = "1-200 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit (no '/', no '..')"


class UnsafePathError(ValueError):
    """A name or path from untrusted input would write outside its root; the message names the value."""


def check_name(value: Any, what: str) -> str:
    """``value`` if it is a safe single path component (:data:`SAFE_NAME`), else :class:`UnsafePathError`."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise UnsafePathError(f"{what}: {value!r} is not a valid name; valid: {SAFE_NAME_HELP}")
    return value


def check_within(path: str | Path, root: str | Path, what: str) -> Path:
    """``path`` if it lies under ``root`` once ``..`` and absolute parts are resolved, else
    :class:`UnsafePathError` naming both. Lexical (symbolic links are not followed): a results directory
    that is itself a link to scratch space stays valid."""
    root_abs = os.path.normpath(os.path.abspath(root))
    path_abs = os.path.normpath(os.path.abspath(path))
    if os.path.commonpath([root_abs, path_abs]) != root_abs or path_abs == root_abs:
        raise UnsafePathError(f"{what}: {str(path)!r} lies outside its root {str(root)!r}; refused")
    return Path(path)


def _create_temp(directory: Path, name: str, binary: bool) -> tuple[int, str]:
    """A new temp file ``.<name>.<random>.tmp`` in ``directory``, created with mode 0666 so that the kernel
    applies the umask (and a directory's default ACL) exactly as for ``open()``. ``tempfile.mkstemp`` would
    create it 0600 whatever the umask, breaking group-shared results (docs/hpc.md)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) * binary
    for _ in range(100):
        tmp = str(directory / f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temp file for {name} in {directory}")


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temp file next to ``path``; on success it replaces ``path`` (fsynced), else it is removed.

    The file gets the permissions ``open()`` would give it (0644 under umask 022, 0664 under 002).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path.parent, path.name, "b" in mode)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_yaml(path: str | Path, data: Any) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_jsonl(path: str | Path, records: Iterable[Any]) -> None:
    write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def read_jsonl(path: str | Path) -> list[Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{i}: not a JSON line ({exc})") from exc
    return out
