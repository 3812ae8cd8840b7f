"""Checksum manifests of prepared datasets: detect a file that changed, went missing or was truncated.

``prepare`` of each real dataset validates the files (counts, shapes) and then records a manifest
``{relative path: {"size": bytes, "sha256": hex}}`` next to the data. Later ``prepare`` calls verify
the files against it, so a corrupted copy is caught before any training run reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mtl_data._io import write_json_atomic

MANIFEST_NAME = "mtl_data_manifest.json"
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
