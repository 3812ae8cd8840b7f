"""What the report does not reproduce, and why (``pipelines/configs/not_reproduced.yaml``): listed in the
index so that a reader sees every table of the seeds, including those no study covers."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["not_reproduced"]

_FIELDS = {"seed", "table", "reference", "reason", "needs"}


def not_reproduced() -> list[dict[str, Any]]:
    """The entries of ``not_reproduced.yaml`` (ValueError naming the file, entry and field when malformed)."""
    from mtl_pipelines import grid

    path = grid.configs_root() / "not_reproduced.yaml"
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text())
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected the keys schema_version and entries (a list)")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"seed", "table", "reason"} <= set(entry) <= _FIELDS:
            raise ValueError(f"{path}: entries[{i}] needs seed, table, reason (and optionally reference, needs)")
    return entries
