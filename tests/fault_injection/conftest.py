"""Fixtures of the fault-injection suite: the template workspace (built once) and a private data cache."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the harness and the table, under --import-mode=importlib

from harness import build_workspace


@pytest.fixture(scope="session", autouse=True)
def private_verify_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """mtl_data's manifest verification cache lives in the user's cache directory: keep tests out of it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MTL_DATA_VERIFY_CACHE", str(tmp_path_factory.mktemp("verify-cache")))
        yield


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, private_verify_cache: None) -> Path:
    return build_workspace(tmp_path_factory.mktemp("fault-injection") / "template")
