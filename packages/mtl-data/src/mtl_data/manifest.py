"""Checksum manifests of prepared datasets: detect a file that changed, went missing or was truncated.

``prepare`` of each real dataset validates the files (counts, shapes) and then records a manifest
``{relative path: {"size": bytes, "sha256": hex}}`` next to the data. Later ``prepare`` calls verify
the files against it, so a corrupted copy is caught before any training run reads it.

A run verifies the manifest too (:func:`verify_dataset`, when it builds a dataset), cheaply: a file whose
size, mtime and ctime equal those it had when its SHA-256 last matched is not hashed again (a per-user cache
under ``$MTL_DATA_VERIFY_CACHE``, default ``~/.cache/mtl_data``, never inside the data directory, which DVC
may track); any other file is hashed in full. A copy that changed after ``prepare`` (a ``dvc pull`` gone
wrong, an edited or damaged file) stops the run naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl_data._io import write_json_atomic

MANIFEST_NAME = "mtl_data_manifest.json"
CACHE_ENV = "MTL_DATA_VERIFY_CACHE"
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(root: Path, relative_paths: Iterable[str], workers: int = 2) -> dict[str, dict]:
    """Size and SHA-256 of each file under ``root`` (hashing releases the GIL, so threads help)."""
    paths = sorted(set(relative_paths))

    def entry(rel: str) -> tuple[str, dict]:
        full = root / rel
        if not full.is_file():
            raise FileNotFoundError(f"missing file {full}")
        return rel, {"size": full.stat().st_size, "sha256": sha256_file(full)}

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(pool.map(entry, paths))


def verify_manifest(root: Path, manifest: dict[str, dict], workers: int = 2) -> None:
    """Raise ``FileNotFoundError``/``ValueError`` naming the first file that is missing or differs."""
    for rel, expected in sorted(manifest.items()):
        full = root / rel
        if not full.is_file():
            raise FileNotFoundError(f"{full} is listed in the manifest but missing")
        size = full.stat().st_size
        if size != expected["size"]:
            raise ValueError(f"{full}: size {size} bytes differs from the manifest ({expected['size']}): truncated?")
    actual = build_manifest(root, manifest, workers=workers)
    for rel, expected in sorted(manifest.items()):
        if actual[rel]["sha256"] != expected["sha256"]:
            raise ValueError(f"{root / rel}: SHA-256 differs from the manifest: the file changed or is corrupt")


def record_or_verify(
    root: Path, relative_paths: Iterable[str], manifest_path: Path | None = None, workers: int = 2
) -> tuple[Path, bool]:
    """Verify the files against an existing manifest, or write one. Returns (manifest path, created).

    The set of files must equal the manifest's: a file added or removed since is reported.
    """
    manifest_path = manifest_path or root / MANIFEST_NAME
    relative_paths = sorted(set(relative_paths))
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{manifest_path}: not a valid manifest ({error}); delete it to re-create") from error
        missing = sorted(set(manifest) - set(relative_paths))
        added = sorted(set(relative_paths) - set(manifest))
        if missing:
            raise FileNotFoundError(f"files listed in {manifest_path} are missing from {root}: {missing[:5]}")
        if added:
            raise ValueError(
                f"{root} has files that {manifest_path} does not list: {added[:5]}; delete the manifest to "
                "re-create it if the change is intended"
            )
        verify_manifest(root, manifest, workers=workers)
        return manifest_path, False
    write_json_atomic(manifest_path, build_manifest(root, relative_paths, workers=workers))
    return manifest_path, True


@dataclass(frozen=True)
class Verification:
    """What :func:`verify_cached` did: files listed in the manifest, and how many it hashed."""

    manifest: Path
    files: int
    hashed: int


def _cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mtl_data"


def _stamp(stat: os.stat_result) -> list[int]:
    """What must be unchanged for a verified file to count as verified: size, mtime and ctime (a tool that
    restores the mtime, ``cp -p`` or ``touch -d``, still changes the ctime)."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _read_manifest(manifest_path: Path) -> tuple[dict[str, dict], str]:
    text = manifest_path.read_bytes()
    try:
        manifest = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{manifest_path}: not a valid manifest ({error}); run mtl prepare to re-create it") from None
    if not isinstance(manifest, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("size"), int) and isinstance(e.get("sha256"), str)
        for e in manifest.values()
    ):
        raise ValueError(f"{manifest_path}: not a manifest of {{path: {{size, sha256}}}}; run mtl prepare")
    return manifest, hashlib.sha256(text).hexdigest()


def verify_cached(root: str | os.PathLike[str], manifest_path: str | os.PathLike[str] | None = None) -> Verification:
    """Verify the files of ``root`` against its manifest (default ``root/mtl_data_manifest.json``), hashing
    only the files changed since they last matched (see the module docstring). Raises ``FileNotFoundError`` /
    ``ValueError`` naming the first file that is missing, truncated or differs from its SHA-256."""
    root = Path(root)
    manifest_path = Path(manifest_path) if manifest_path is not None else root / MANIFEST_NAME
    manifest, manifest_digest = _read_manifest(manifest_path)
    key = hashlib.sha256(str(manifest_path.resolve()).encode()).hexdigest()[:20]
    cache_path = _cache_dir() / f"verified-{key}.json"
    seen: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        cached = json.loads(cache_path.read_text())
        if cached.get("manifest_sha256") == manifest_digest and cached.get("root") == str(root.resolve()):
            seen = cached["files"]
    stamps: dict[str, list[int]] = {}
    changed: list[str] = []
    for rel, expected in sorted(manifest.items()):
        full = root / rel
        try:
            stat = full.stat()
        except FileNotFoundError:
            raise FileNotFoundError(f"{full} is listed in the manifest {manifest_path} but missing") from None
        if stat.st_size != expected["size"]:
            raise ValueError(
                f"{full}: size {stat.st_size} bytes differs from the manifest {manifest_path} ({expected['size']}): "
                "truncated or replaced; restore it (dvc pull, or download it again) and run mtl prepare"
            )
        stamps[rel] = _stamp(stat)
        if seen.get(rel) != stamps[rel]:
            changed.append(rel)
    if changed:
        actual = build_manifest(root, changed)
        for rel in changed:
            if actual[rel]["sha256"] != manifest[rel]["sha256"]:
                raise ValueError(
                    f"{root / rel}: SHA-256 differs from the manifest {manifest_path}: the file changed or is "
                    "corrupt; restore it (dvc pull, or download it again) and run mtl prepare"
                )
        record = {"manifest_sha256": manifest_digest, "root": str(root.resolve()), "files": stamps}
        with contextlib.suppress(OSError):  # a read-only home: verify in full next time, still correct
            write_json_atomic(cache_path, record)
    return Verification(manifest_path, len(manifest), len(changed))


def verify_dataset(dataset: Any) -> Verification | None:
    """:func:`verify_cached` for a dataset object built from files under ``dataset.root`` that ``prepare``
    gave a manifest; None for stand-ins and for data never prepared (nothing to compare with)."""
    root = getattr(dataset, "root", None)
    if root is None or getattr(dataset, "is_standin", False):
        return None
    manifest_path = Path(root) / MANIFEST_NAME
    if not manifest_path.is_file():
        return None
    return verify_cached(root, manifest_path)
