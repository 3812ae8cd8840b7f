"""Fixtures shared by the cross-package tests."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the helper modules beside the tests (tiny_configs, run_helpers, fake_device): --import-mode=importlib puts no
# test directory on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parent))


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
