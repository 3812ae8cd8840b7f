"""Looking up the published cell beside each of ours, in the transcribed reference tables
(:mod:`mtl_pipelines.references`).

A cell lost in extraction is shown as ``lost``, one the paper leaves empty or that the reference does not
have as ``–``: nothing is invented. A reference whose numbers were *all* lost in extraction (status
``numbers_lost``, seed 003 Tables 1-4) is not looked up cell by cell: :func:`cite` says so once at the top
of the table instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mtl_pipelines.report.tables import DASH, Published, Table

__all__ = [
    "cite",
    "column_cell",
    "paper_row_setting",
    "paper_stl",
    "published",
    "reference_for",
    "study_references",
]

LOST = "lost"


def study_references(study: Mapping[str, Any]) -> list[Any]:
    """The transcribed reference tables a study names (ids without a transcription are skipped)."""
    from mtl_pipelines import references

    known = set(references.tables())
    return [references.load(ref_id) for ref_id in study.get("references", []) if ref_id in known]


def reference_for(refs: list[Any], dataset: str) -> Any:
    """The reference among ``refs`` whose table covers ``dataset`` (a benchmark key of the profile: the
    reference's ``dataset``, or one of its datasets); the only reference when none says (None if several)."""
    for ref in refs:
        covered = ref.dataset if isinstance(ref.dataset, tuple) else (ref.dataset,)
        if dataset in covered or any(c.dataset == dataset for c in ref.columns):
            return ref
    return refs[0] if len(refs) == 1 else None


def cite(table: Table, ref: Any) -> Any:
    """Say where the published numbers of ``table`` come from, and return the reference to look its cells up
    in: ``None`` when there is no reference, or when all its numbers were lost in extraction (then the table
    says so once at the top, and its cells show ours only)."""
    if ref is None:
        table.notes.append("no transcribed reference table for this study: published numbers not shown")
        return None
    if ref.status == "numbers_lost":
        table.banners.append(
            f"The published numbers of {ref.paper}, {ref.table} were lost in the seed's text extraction "
            f"(reference {ref.id}): only our numbers are shown."
        )
        return None
    table.notes.append(
        f"published numbers beside ours (in parentheses in Markdown and LaTeX): {ref.id} ({ref.paper}, "
        f"{ref.table}); "
        f"'lost' = lost in extraction, '{DASH}' = not printed / no such cell"
    )
    return ref


def _matches(setting: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """False if ``setting`` fixes one of the ``wanted`` keys to another value (unfixed keys match)."""
    return not any(k in setting and setting[k] != v for k, v in wanted.items())


def published(
    ref: Any,
    method: str,
    *,
    task: str | None = None,
    metric: str | None = None,
    kind: str | None = None,
    dataset: str | None = None,
    setting: Mapping[str, Any] | None = None,
    weighting: str | None = None,
    unit: str | None = None,
) -> Published:
    """The published cell of ``method`` in the first column matching ``task``/``metric``, ``kind``,
    ``dataset``, ``setting`` and (for a Delta_m column) ``weighting``. The setting is matched against the
    row's *and* the column's settings: seed 001 Table 1 puts the optimizer in rows and the learning rate in
    columns; a key the row or column does not fix matches. ``unit`` is our metric's unit: a cell the paper
    prints as a fraction beside our percentage (seed 001 Tables A3-A6) is compared as a percentage."""
    if ref is None:
        return Published.none()
    wanted = setting or {}
    for row in ref.find_rows(method):
        if not _matches(row.setting, wanted):
            continue
        for col, cell in zip(ref.columns, row.cells):
            if kind is not None and col.kind != kind:
                continue
            if metric is not None and (col.key != metric or col.task != task):
                continue
            if dataset is not None and col.dataset not in (None, dataset):
                continue
            if weighting is not None and col.weighting not in (None, weighting):
                continue
            if not _matches(col.setting, wanted):
                continue
            return _shown(cell, 100.0 if col.unit == "fraction" and unit == "%" else 1.0)
    return Published.none()


def _shown(cell: Any, scale: float = 1.0) -> Published:
    """The cell as shown; ``scale`` converts the paper's unit to ours (the text keeps the printed number)."""
    if cell.is_number:
        std = f" ± {cell.std:g}" if cell.std is not None else ""
        converted = f" (= {float(cell.value) * scale:g} %)" if scale != 1.0 else ""
        return Published(
            float(cell.value) * scale,
            cell.std * scale if cell.std is not None else None,
            f"{cell.value}{std}{converted}",
        )
    if cell.value is not None:  # a text cell
        return Published(None, None, str(cell.value))
    return Published(None, None, LOST if cell.missing == "lost in extraction" else DASH)


def column_cell(ref: Any, column: str | None, **row_setting: Any) -> Published:
    """The published cell of the printed ``column`` in the single row with ``row_setting`` (e.g. seed 002
    Table 1: methods are column groups, rows are epochs); ``–`` when there is no such column or row."""
    if ref is None or column is None:
        return Published.none()
    rows = ref.find_rows(**row_setting)
    return _shown(rows[0].cell(column)) if len(rows) == 1 else Published.none()


def paper_stl(ref: Any, dataset: str | None = None, units: Mapping[str, str] | None = None) -> dict[str, float]:
    """The paper's STL row as ``{"task/metric": value}`` over the columns of ``dataset`` (a table of several
    datasets, 000 Table 1, has one STL cell per dataset and metric), in our ``units`` (a fraction beside our
    percentage is scaled by 100); empty when the table has no single STL row."""
    if ref is None:
        return {}
    rows = ref.find_rows("stl")
    if len(rows) != 1:
        return {}
    out = {}
    for c, cell in zip(ref.columns, rows[0].cells):
        if c.kind != "metric" or not (c.key and c.task and cell.is_number):
            continue
        if dataset is not None and c.dataset not in (None, dataset):
            continue
        name = f"{c.task}/{c.key}"
        out[name] = float(cell.value) * (100.0 if c.unit == "fraction" and (units or {}).get(name) == "%" else 1.0)
    return out


def paper_row_setting(ref: Any, method: str, setting: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The setting of the published row ``published`` pairs with ``method`` and ``setting`` (e.g. the learning
    rate the paper selected for a method and optimizer, seed 001 Tables A3-A6); None without such a row."""
    if ref is None:
        return None
    for row in ref.find_rows(method):
        if _matches(row.setting, setting):
            return row.setting
    return None
