"""Published numbers of the five seed papers, transcribed into versioned data files.

Every table (and every figure whose numbers the text states) of the seeds in ``shared/seeds/`` is one
YAML file next to this module, named ``<seed>_<table>.yaml`` (``000_table1``, ``001_tableA3``, ...) and
validated against ``schema.json`` when loaded. A file records where its numbers come from (seed file and
its SHA-256, table, caption as extracted, section, line range), the columns (name as printed, our metric
key and task name, direction, unit) and the rows (name as printed, our method key, settings such as
optimizer or learning rate, values aligned with the columns, standard deviations where the table prints
``a ± b``). Cells are annotated where the extraction damaged them:

- ``missing: lost in extraction`` -- the number is not in the text (value ``null``); ``printed`` keeps the
  garbled characters when there are some; ``missing: not printed`` -- the paper leaves the cell empty;
- ``printed`` on a non-null cell -- the characters as extracted when they differ from the number (a lost
  decimal point, ``±`` read as a digit); the value restores only what is unambiguous;
- ``suspect`` -- the value is what the text prints, but the paper's own arithmetic (row average, Delta_m
  recomputed from the STL row, mean rank) or the same run in another table of the same paper contradicts
  it; the string gives the evidence;
- ``symbol`` -- the cell prints a symbol (``-``: see the file's ``symbols``), not a number.

Nothing is copied from another paper or from memory: where papers print different numbers for the same
baseline, each file keeps its own paper's numbers.

Usage::

    from mtl_pipelines import references
    references.tables()                        # ['000_figure3', '000_table1', ..., '004_table4']
    ref = references.load("004_table1")        # Reference (frozen dataclass)
    ref.value("Δm%", method="consmtl")         # -6.72
    ref.row(method="stl").cell("mIoU").decimals  # 2: print ours with the paper's precision
    ref.records()                              # long format, one dict per cell (for CSV / reports)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import jsonschema
import yaml

__all__ = [
    "AGGREGATORS",
    "ESTIMATORS",
    "WEIGHTINGS",
    "Cell",
    "Column",
    "Reference",
    "Row",
    "find",
    "is_method_key",
    "load",
    "load_all",
    "schema",
    "tables",
    "validate",
]

# Method keys follow the monorepo naming (ARCHITECTURE.md): a weighting, "stl", "consmtl", or
# "<estimator>+<base>" where the base is an aggregator (or, for SAM-family estimators, a weighting/stl).
WEIGHTINGS = frozenset({"ls", "si", "uw", "uw_o", "dwa", "rlw", "gls", "famo", "imtl_l"})
AGGREGATORS = frozenset(
    {
        "mgda",
        "pcgrad",
        "cagrad",
        "imtl",
        "nash_mtl",
        "fairgrad",
        "aligned_mtl",
        "graddrop",
        "gradnorm",
        "gradvac",
        "moco",
        "db_mtl",
        "consmtl",
    }
)
ESTIMATORS = frozenset({"exact", "features", "sam", "lsam", "fmtl", "samo"})
_GRADIENT_ESTIMATORS = frozenset({"exact", "features"})

LOST = "lost in extraction"  # the number is not in the extracted text
BLANK = "not printed"  # the paper leaves the cell empty (e.g. Delta_m of the STL baseline itself)


def is_method_key(key: str) -> bool:
    """True if ``key`` is a method name of the monorepo (``ls``, ``exact+pcgrad``, ``samo+fairgrad``...)."""
    if key in WEIGHTINGS or key in {"stl", "consmtl"}:
        return True
    estimator, plus, base = key.partition("+")
    if not plus or estimator not in ESTIMATORS:
        return False
    if estimator in _GRADIENT_ESTIMATORS:
        return base in AGGREGATORS
    return base in AGGREGATORS or base in WEIGHTINGS or base == "stl"


# --------------------------------------------------------------------------------------------------
# YAML numbers that remember how they were written ("0.2780" keeps its 4 decimals).


class _Float(float):
    text: str


class _Int(int):
    text: str


class _TextKeepingLoader(yaml.SafeLoader):
    """SafeLoader whose floats/ints keep their source text (to know the printed precision)."""


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> _Float:
    number = _Float(loader.construct_yaml_float(node))
    number.text = node.value
    return number


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> _Int:
    number = _Int(loader.construct_yaml_int(node))
    number.text = node.value
    return number


_TextKeepingLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_TextKeepingLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _decimals(text: str | None) -> int | None:
    if text is None:
        return None
    mantissa = text.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _plain(value: Any) -> Any:
    """Strips the text-keeping number types (recursively) so public objects hold plain floats/ints."""
    if isinstance(value, _Float):
        return float(value)
    if isinstance(value, _Int):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------
# Public data model.


@dataclass(frozen=True)
class Column:
    """One printed column: ``name`` as printed, our metric ``key``/``task``, direction and unit.

    ``kind`` is ``metric`` for a task metric, ``delta_m`` / ``mean_rank`` for the summary columns, and
    ``average``, ``count``, ``iterations``, ``statistic``, ``hyperparameter`` or ``text`` otherwise. A
    column may carry its own ``method`` or ``setting`` when the paper puts methods or learning rates in
    columns (e.g. 001 Table A2, Table 1).
    """

    name: str
    kind: str
    higher_is_better: bool | None
    unit: str | None
    key: str | None = None
    task: str | None = None
    dataset: str | None = None
    weighting: str | None = None
    method: str | None = None
    setting: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    mean_of: tuple[str, ...] = ()
    sum_of: tuple[str, ...] = ()
    header_lost: bool = False
    note: str | None = None


@dataclass(frozen=True)
class Cell:
    """One transcribed cell. ``value`` is None when the number is not in the text (see ``missing``).

    ``text`` is the number as written in the data file (its precision, see ``decimals``); ``printed`` the
    characters as extracted when they differ from the number; ``suspect`` the evidence against a printed
    value; ``symbol`` a non-numeric mark (``-``) whose meaning is in :attr:`Reference.symbols`.
    """

    value: float | str | None
    std: float | None = None
    text: str | None = None
    std_text: str | None = None
    printed: str | None = None
    std_printed: str | None = None
    missing: str | None = None
    suspect: str | None = None
    symbol: str | None = None
    relation: str | None = None
    source_text: str | None = None
    position: int | None = None
    note: str | None = None

    @property
    def decimals(self) -> int | None:
        """Number of decimals the paper prints for this cell (None for text or missing cells)."""
        return _decimals(self.text)

    @property
    def is_number(self) -> bool:
        return isinstance(self.value, float | int) and not isinstance(self.value, bool)


@dataclass(frozen=True)
class Row:
    """One printed row: ``name`` as printed, our ``method`` key (None when unmappable, see ``note``)."""

    name: str
    method: str | None
    setting: Mapping[str, Any]
    cells: tuple[Cell, ...]
    columns: tuple[Column, ...] = field(repr=False)
    label: str | None = None
    text: tuple[str, ...] = ()
    position: int | None = None
    note: str | None = None

    def cell(self, column: str) -> Cell:
        """The cell of column ``column`` (printed column name)."""
        for col, cell in zip(self.columns, self.cells):
            if col.name == column:
                return cell
        raise ValueError(f"row {self.name!r} has no column {column!r}; columns: {[c.name for c in self.columns]}")

    def value(self, column: str) -> float | str | None:
        return self.cell(column).value

    @property
    def display_name(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Reference:
    """The published numbers of one table (see the module docstring for the file format)."""

    id: str
    title: str
    seed: str
    seed_sha256: str
    paper: str
    table: str
    caption: str | None
    section: str
    lines: tuple[int, int]
    kind: str
    status: str
    dataset: str | tuple[str, ...] | None
    model: Mapping[str, str] | None
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    protocol: str | None = None
    notes: tuple[str, ...] = ()
    symbols: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    checks: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    number_inferred: bool = False

    def column(self, name: str) -> Column:
        """The column printed as ``name``; ValueError lists the valid names."""
        for col in self.columns:
            if col.name == name:
                return col
        raise ValueError(f"{self.id}: no column {name!r}; columns: {[c.name for c in self.columns]}")

    def columns_of(self, kind: str) -> list[Column]:
        """Columns of one kind (``metric``, ``delta_m``, ``mean_rank``, ...), in table order."""
        valid = schema()["$defs"]["column"]["properties"]["kind"]["enum"]
        if kind not in valid:
            raise ValueError(f"unknown column kind {kind!r}; kinds: {valid}")
        return [c for c in self.columns if c.kind == kind]

    def find_rows(self, method: str | None = None, *, name: str | None = None, **setting: Any) -> list[Row]:
        """Rows matching the given method key, printed name and settings (all optional)."""
        out = []
        for row in self.rows:
            if method is not None and row.method != method:
                continue
            if name is not None and row.name != name:
                continue
            if any(k not in row.setting or row.setting[k] != v for k, v in setting.items()):
                continue
            out.append(row)
        return out

    def row(self, method: str | None = None, *, name: str | None = None, **setting: Any) -> Row:
        """The single row matching ``method``/``name``/settings; ValueError if none or several match."""
        if method is None and name is None and not setting:
            raise ValueError(f"{self.id}: give a method, a name or a setting to select a row")
        found = self.find_rows(method, name=name, **setting)
        if len(found) != 1:
            choices = [(r.method, r.name, dict(r.setting)) for r in self.rows]
            what = "no row" if not found else f"{len(found)} rows"
            raise ValueError(
                f"{self.id}: {what} match method={method!r} name={name!r} setting={setting}; rows: {choices}"
            )
        return found[0]

    def cell(self, column: str, method: str | None = None, *, name: str | None = None, **setting: Any) -> Cell:
        self.column(column)
        return self.row(method, name=name, **setting).cell(column)

    def value(
        self, column: str, method: str | None = None, *, name: str | None = None, **setting: Any
    ) -> float | str | None:
        """The published value (None when lost in extraction or printed as a symbol)."""
        return self.cell(column, method, name=name, **setting).value

    def methods(self) -> list[str]:
        """Method keys of the rows (and of method-carrying columns), in table order, without duplicates."""
        keys = [r.method for r in self.rows] + [c.method for c in self.columns]
        return list(dict.fromkeys(k for k in keys if k is not None))

    def iter_cells(self) -> Iterator[tuple[Row, Column, Cell]]:
        for row in self.rows:
            for col, cell in zip(self.columns, row.cells):
                yield row, col, cell

    def counts(self) -> dict[str, int]:
        """Cells by state: ``transcribed`` (a number or text), ``lost`` (in extraction), ``blank`` (empty in the
        paper), ``symbol`` (a printed non-number), and ``suspect``/``restored`` (subsets of ``transcribed``:
        contradicted by the paper's own arithmetic / a glyph lost in extraction restored)."""
        out = {"transcribed": 0, "lost": 0, "blank": 0, "symbol": 0, "suspect": 0, "restored": 0}
        for _, _, cell in self.iter_cells():
            if cell.symbol is not None:  # even where the file reads the symbol as a number (001 Table A2)
                out["symbol"] += 1
            elif cell.value is not None:
                out["transcribed"] += 1
                out["suspect"] += cell.suspect is not None
                out["restored"] += cell.printed is not None
            elif cell.missing == BLANK:
                out["blank"] += 1
            else:
                out["lost"] += 1
        return out

    def records(self) -> list[dict[str, Any]]:
        """Long format: one dict per cell with its source, method, settings, column meta and flags."""
        out = []
        for row, col, cell in self.iter_cells():
            out.append(
                {
                    "table_id": self.id,
                    "seed": self.seed,
                    "table": self.table,
                    "dataset": col.dataset or self.dataset,
                    "row": row.display_name,
                    "method": row.method or col.method,
                    "setting": {**col.setting, **row.setting},
                    "column": col.name,
                    "metric": col.key,
                    "task": col.task,
                    "kind": col.kind,
                    "higher_is_better": col.higher_is_better,
                    "unit": col.unit,
                    "value": cell.value,
                    "std": cell.std,
                    "decimals": cell.decimals,
                    "missing": cell.missing,
                    "suspect": cell.suspect,
                    "symbol": cell.symbol,
                }
            )
        return out

    def recompute_delta_m(self, row: Row, baseline: Row, metrics: Sequence[str], scale: float = 100.0) -> float:
        """Delta_m of ``row`` relative to ``baseline`` over the printed ``metrics`` (metric-weighted).

        Uses :func:`mtl_core.metrics.delta_m` (percent, lower is better). ``scale`` rescales when a paper
        prints Delta_m in other units. ValueError if a needed cell is missing.
        """
        from mtl_core.metrics import delta_m

        results, base, hib = {}, {}, {}
        for name in metrics:
            col = self.column(name)
            r, b = row.cell(name).value, baseline.cell(name).value
            if not isinstance(r, float | int) or not isinstance(b, float | int):
                raise ValueError(f"{self.id}: {name!r} is not a number in row {row.name!r} or {baseline.name!r}")
            if col.higher_is_better is None:
                raise ValueError(f"{self.id}: column {name!r} has no direction")
            results[name], base[name], hib[name] = float(r), float(b), bool(col.higher_is_better)
        return delta_m(results, base, hib) * scale / 100.0


# --------------------------------------------------------------------------------------------------
# Loading and validation.


def _data_files() -> dict[str, Any]:
    root = resources.files(__name__)
    return {
        entry.name[: -len(".yaml")]: entry
        for entry in root.iterdir()
        if entry.name.endswith(".yaml") and entry.is_file()
    }


@cache
def schema() -> dict[str, Any]:
    """The JSON schema every data file is validated against."""
    return json.loads(resources.files(__name__).joinpath("schema.json").read_text(encoding="utf-8"))


def tables() -> list[str]:
    """Ids of all transcribed tables, sorted (``000_table1`` ... ``004_table4``)."""
    return sorted(_data_files(), key=_sort_key)


def _sort_key(table_id: str) -> tuple[str, str, int, str]:
    seed, _, rest = table_id.partition("_")
    match = re.fullmatch(r"([a-z]+)([A-Z]?)(\d*)([A-Za-z]*)", rest)
    if not match:
        return seed, rest, 0, ""
    word, letter, number, tail = match.groups()
    return seed, word + letter, int(number or 0), tail


@cache
def load(table_id: str) -> Reference:
    """Loads and validates the data file of ``table_id``; ValueError lists the valid ids if unknown."""
    files = _data_files()
    if table_id not in files:
        raise ValueError(f"unknown reference table {table_id!r}; valid ids: {tables()}")
    text = files[table_id].read_text(encoding="utf-8")
    try:
        document = yaml.load(text, Loader=_TextKeepingLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(f"{table_id}.yaml is not valid YAML: {exc}") from exc
    reference = validate(document, origin=f"{table_id}.yaml")
    if reference.id != table_id:
        raise ValueError(f"{table_id}.yaml declares id {reference.id!r}; it must match the file name")
    return reference


def load_all() -> dict[str, Reference]:
    """Every table, validated, by id."""
    return {table_id: load(table_id) for table_id in tables()}


def find(method: str, *, dataset: str | None = None) -> list[tuple[Reference, Row]]:
    """All published rows of ``method`` (e.g. ``"stl"``), optionally restricted to one dataset.

    Different papers often print different numbers for the same baseline: this lists each paper's own.
    """
    if not is_method_key(method):
        raise ValueError(f"{method!r} is not a method key (e.g. 'ls', 'exact+pcgrad', 'samo+fairgrad')")
    out = []
    for ref in load_all().values():
        if dataset is not None:
            datasets = ref.dataset if isinstance(ref.dataset, tuple) else (ref.dataset,)
            if dataset not in datasets:
                continue
        out.extend((ref, row) for row in ref.rows if row.method == method)
    return out


def validate(document: Any, origin: str = "<document>") -> Reference:
    """Validates a parsed data file (schema plus the cross-field rules) and builds its :class:`Reference`.

    Raises ValueError naming ``origin``, the offending field and what is valid.
    """
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise ValueError(f"{origin}: {first.json_path}: {first.message}")
    return _build(document, origin)


def _build(doc: Mapping[str, Any], origin: str) -> Reference:
    def fail(message: str) -> ValueError:
        return ValueError(f"{origin}: {message}")

    status = doc["status"]
    column_docs = doc["metrics"]
    names = [c["name"] for c in column_docs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise fail(f"duplicate column names {duplicates}")
    columns = tuple(_column(c, names, fail) for c in column_docs)
    text_columns = {c.name for c in columns if c.kind == "text"}

    rows = []
    seen: set[tuple[str, str]] = set()
    for index, row_doc in enumerate(doc["rows"]):
        rows.append(_row(row_doc, index, columns, text_columns, status, fail))
        identity = (row_doc["name"], json.dumps(_plain(row_doc.get("setting", {})), sort_keys=True))
        if identity in seen:
            raise fail(f"rows[{index}]: another row has the same name and setting {identity}")
        seen.add(identity)

    all_cells = [cell for row in rows for cell in row.cells]
    if status == "numbers_lost" and any(cell.value is not None for cell in all_cells):
        raise fail("status is numbers_lost but some cells hold numbers")
    if status == "complete" and any(cell.missing == LOST for cell in all_cells):
        raise fail("status is complete but some cells are lost in extraction (use status: partial)")
    if status == "partial" and not any(cell.missing == LOST for cell in all_cells):
        raise fail("status is partial but no cell is lost in extraction (use status: complete)")

    checks = _plain(doc.get("checks", {}))
    for spec in checks.get("delta_m", []):
        for name in [spec["column"], *spec["metrics"]]:
            if name not in names:
                raise fail(f"checks.delta_m refers to unknown column {name!r}; columns: {names}")
    if "mean_rank" in checks:
        for name in [checks["mean_rank"]["column"], *checks["mean_rank"]["metrics"]]:
            if name not in names:
                raise fail(f"checks.mean_rank refers to unknown column {name!r}; columns: {names}")

    source = doc["source"]
    lines = tuple(source["lines"])
    if lines[0] > lines[1]:
        raise fail(f"source.lines {list(lines)} is not an increasing range")
    dataset = doc["dataset"]
    return Reference(
        id=doc["id"],
        title=doc["title"],
        seed=source["seed"],
        seed_sha256=source["seed_sha256"],
        paper=source["paper"],
        table=source["table"],
        caption=source["caption"],
        section=source["section"],
        lines=(int(lines[0]), int(lines[1])),
        number_inferred=bool(source.get("number_inferred", False)),
        kind=doc["kind"],
        status=status,
        dataset=tuple(dataset) if isinstance(dataset, list) else dataset,
        model=MappingProxyType(dict(doc["model"])) if doc.get("model") else None,
        columns=columns,
        rows=tuple(rows),
        protocol=doc.get("protocol"),
        notes=tuple(doc.get("notes", ())),
        symbols=MappingProxyType(dict(doc.get("symbols", {}))),
        checks=MappingProxyType(checks),
    )


def _column(doc: Mapping[str, Any], names: list[str], fail: Any) -> Column:
    for ref_key in ("mean_of", "sum_of"):
        unknown = [n for n in doc.get(ref_key, []) if n not in names]
        if unknown:
            raise fail(f"column {doc['name']!r}: {ref_key} names unknown columns {unknown}; columns: {names}")
    method = doc.get("method")
    if method is not None and not is_method_key(method):
        raise fail(f"column {doc['name']!r}: {method!r} is not a method key")
    if doc["kind"] == "delta_m" and doc["higher_is_better"] is not False:
        raise fail(f"column {doc['name']!r}: a delta_m column must have higher_is_better: false")
    return Column(
        name=doc["name"],
        kind=doc["kind"],
        higher_is_better=doc["higher_is_better"],
        unit=doc["unit"],
        key=doc.get("key"),
        task=doc.get("task"),
        dataset=doc.get("dataset"),
        weighting=doc.get("weighting"),
        method=method,
        setting=MappingProxyType(_plain(doc.get("setting", {}))),
        mean_of=tuple(doc.get("mean_of", ())),
        sum_of=tuple(doc.get("sum_of", ())),
        header_lost=bool(doc.get("header_lost", False)),
        note=doc.get("note"),
    )


def _row(
    doc: Mapping[str, Any],
    index: int,
    columns: tuple[Column, ...],
    text_columns: set[str],
    status: str,
    fail: Any,
) -> Row:
    where = f"rows[{index}] ({doc['name']!r})"
    method = doc["method"]
    if method is not None and not is_method_key(method):
        raise fail(
            f"{where}: {method!r} is not a method key (weightings {sorted(WEIGHTINGS)}, "
            f"'stl', 'consmtl', or <estimator>+<base> with estimators {sorted(ESTIMATORS)})"
        )
    if method is None and not doc.get("note") and not doc.get("setting"):
        raise fail(f"{where}: method is null: add a note saying why, or a setting identifying the row")
    names = [c.name for c in columns]
    n = len(columns)
    if "values" not in doc:
        if status != "numbers_lost":
            raise fail(f"{where}: values are required unless status is numbers_lost")
        values: list[Any] = [None] * n
    else:
        values = list(doc["values"])
    if len(values) != n:
        raise fail(f"{where}: {len(values)} values for {n} columns {names}")
    stds = list(doc.get("std", [None] * n))
    if len(stds) != n:
        raise fail(f"{where}: {len(stds)} std entries for {n} columns")
    cell_docs = doc.get("cells", {})
    unknown = sorted(set(cell_docs) - set(names))
    if unknown:
        raise fail(f"{where}: cells for unknown columns {unknown}; columns: {names}")
    if "position" in doc and "text" not in doc:
        raise fail(f"{where}: position needs a text anchor")

    cells = []
    for col, value, std in zip(columns, values, stds):
        extra = cell_docs.get(col.name, {})
        here = f"{where}, column {col.name!r}"
        if isinstance(value, str) and col.name not in text_columns:
            raise fail(f"{here}: text value {value!r} in a numeric column")
        if value is None:
            if status != "numbers_lost" and not extra.get("missing") and not extra.get("symbol"):
                raise fail(f"{here}: null value needs missing ({LOST!r} or {BLANK!r}) or a symbol")
            if std is not None:
                raise fail(f"{here}: std without a value")
        elif extra.get("missing"):
            raise fail(f"{here}: a cell with a value cannot be missing")
        if status == "numbers_lost" and value is None and not extra.get("symbol"):
            extra = {**extra, "missing": LOST}
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(f"{here}: non-finite value {value}")
        if "position" in extra and "text" not in extra:
            raise fail(f"{here}: a cell position needs a cell text anchor")
        cells.append(
            Cell(
                value=_plain(value),
                std=_plain(std),
                text=getattr(value, "text", None),
                std_text=getattr(std, "text", None),
                printed=extra.get("printed"),
                std_printed=extra.get("std_printed"),
                missing=extra.get("missing"),
                suspect=extra.get("suspect"),
                symbol=extra.get("symbol"),
                relation=extra.get("relation"),
                source_text=extra.get("text"),
                position=extra.get("position"),
                note=extra.get("note"),
            )
        )
    text = doc.get("text", ())
    return Row(
        name=doc["name"],
        method=method,
        setting=MappingProxyType(_plain(doc.get("setting", {}))),
        cells=tuple(cells),
        columns=columns,
        label=doc.get("label"),
        text=(text,) if isinstance(text, str) else tuple(text),
        position=doc.get("position"),
        note=doc.get("note"),
    )
