"""Fixtures shared by the cross-package tests."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the helper modules beside the tests (tiny_configs, run_helpers, fake_device): --import-mode=importlib puts no
# test directory on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session", autouse=True)
def private_data_caches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """mtl_data keeps QM9's processed caches (``$MTL_DATA_CACHE``) and its manifest verification cache
    (``$MTL_DATA_VERIFY_CACHE``) in the user's cache directory: keep the tests, and the workflows they run as
    subprocesses, out of it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MTL_DATA_CACHE", str(tmp_path_factory.mktemp("data-cache")))
        patch.setenv("MTL_DATA_VERIFY_CACHE", str(tmp_path_factory.mktemp("verify-cache")))
        yield


def copy_workflow(dest: Path) -> Path:
    """The checkout's workflow files (Snakefile and pipelines/ without the Python package), no results.

    What a user bind-mounts into a container or submits to a cluster; tests run there so they never touch
    the checkout's own results/.
    """
    dest.mkdir()
    shutil.copy2(ROOT / "Snakefile", dest / "Snakefile")
    shutil.copytree(
        ROOT / "pipelines",
        dest / "pipelines",
        ignore=shutil.ignore_patterns("src", "tests", "*.egg-info", "__pycache__", "build"),
    )
    return dest


@pytest.fixture(scope="session")
def workflow_copy() -> Callable[[Path], Path]:
    return copy_workflow
