"""Fixtures of the fault-injection suite: the template workspace (built once; the private data caches are
tests/conftest.py's)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the harness and the table, under --import-mode=importlib

from harness import build_workspace


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, private_data_caches: None) -> Path:
    return build_workspace(tmp_path_factory.mktemp("fault-injection") / "template")
