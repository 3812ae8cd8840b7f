"""The report's table model: cells of ours (mean ± std over seeds) beside the published cell, rendered as
Markdown, LaTeX and long-format CSV rows.

A table may carry *banners*, labels shown once at the top (e.g. "the published numbers of this table were
lost in extraction", or a pipeline-check label), the *data and scale* line of its runs, *notes* shown
below it and the study's *deviations* from the paper's protocol (from the protocol facts,
:func:`mtl_pipelines.facts.deviations`), listed under the table in every rendering. A table marked as a
pipeline check (:attr:`Table.pipeline_check`) was run at a scale where its numbers cannot be compared with
the paper's: it is labelled at the top and gets no distance figure (no gap column, no distance in the
index).

The *gap* between ours and the published cell is the difference ``ours - published`` for metrics,
percentages and the paper's deltas (same units as the cell), or the ratio ``ours / published`` for
quantities compared by their order of magnitude (iteration counts, Hessian eigenvalues, seconds):
:attr:`Table.gap` says which, and every rendering names it in the gap column's header.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CSV_FIELDS", "DASH", "GAPS", "Cell", "Published", "Row", "Table"]

DASH = "–"  # no value (ours) / no such cell (published)
# How a table compares ours with the published cell: the header of its gap column.
GAPS = {"difference": "ours − paper", "ratio": "ours / paper"}


@dataclass(frozen=True)
class Published:
    """A published cell as shown: ``value`` (None when lost, blank, a symbol or not in the table), its ``std``
    and the ``text`` printed beside ours (``"22"``, ``"0.5 ± 0.1"``, ``"lost"``, ``"–"``)."""

    value: float | None
    std: float | None
    text: str

    @classmethod
    def none(cls) -> Published:
        """No such cell in the reference (or no reference): shown as ``–``."""
        return cls(None, None, DASH)


@dataclass(frozen=True)
class Cell:
    """One cell: ours (``mean`` ± ``std`` over seeds, or a ``text`` such as a count ``"3 / 5"``) and the
    ``published`` cell (None: the table has no published column for it, nothing is shown)."""

    mean: float | None
    std: float | None = None
    published: Published | None = None
    text: str | None = None

    def ours(self) -> str:
        """Ours as printed: the text, else ``mean ± std`` with 4 significant digits, ``–`` when None."""
        if self.text is not None:
            return self.text
        if self.mean is None:
            return DASH
        value = _number(self.mean)
        return value if self.std is None else f"{value} ± {self.std:.2g}"

    def ours_parts(self) -> tuple[str, str | None]:
        """Ours as printed, split into the value and its ``± std`` (None when there is none)."""
        value, _, std = self.ours().partition(" ± ")
        return (value, f"± {std}") if std and self.text is None else (self.ours(), None)

    def gap(self, kind: str) -> float | None:
        """Ours against the published value: ``mean - published`` (``kind="difference"``) or
        ``mean / published`` (``"ratio"``; None for a published 0); None without both numbers."""
        if self.mean is None or self.text is not None or self.published is None or self.published.value is None:
            return None
        if kind == "difference":
            return self.mean - self.published.value
        if kind == "ratio":
            return self.mean / self.published.value if self.published.value != 0 else None
        raise ValueError(f"gap {kind!r}; valid: {', '.join(GAPS)}")

    def gap_text(self, kind: str) -> str:
        """The gap as printed (signed for a difference, ``×`` for a ratio), ``–`` when there is none."""
        gap = self.gap(kind)
        if gap is None:
            return DASH
        return f"{gap:+.3g}" if kind == "difference" else f"{gap:.3g}×"


@dataclass
class Row:
    """A method's row; ``rank=False`` keeps it out of the best-value marks (STL, diagnostics rows)."""

    name: str
    cells: list[Cell]
    rank: bool = True


@dataclass
class Table:
    """A rendered table: header, rows, banners (top) and notes (below).

    ``higher`` gives per column whether higher is better (None: no best value is marked).
    """

    title: str
    columns: list[str]
    higher: list[bool | None]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    banners: list[str] = field(default_factory=list)
    pipeline_check: str | None = None  # why the numbers cannot be compared with the paper's (None: they can)
    gap: str = "difference"  # how ours is compared with the published cell (a key of GAPS)
    data_scale: str | None = None  # "Data: ...; scale: ..." of the runs behind the table, shown at its top
    deviations: list[str] = field(default_factory=list)  # where the runs deliberately differ from the paper
    # the benchmarks whose runs the table shows (set by builders of tables of several benchmarks' studies); the
    # driver labels the table a pipeline check when the profile runs one of them as such (empty: the study's)
    benchmarks: list[str] = field(default_factory=list)
    payload: Any = field(default=None, repr=False)  # what the builder's figure draws (not rendered in tables)
    # the numbers behind the table as plain data, for what reads them (mtl_pipelines.claims), so that no reader
    # parses titles or column labels: {"probe": <builder>, ...}; not rendered
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.columns) != len(self.higher):
            raise ValueError(f"table {self.title!r}: {len(self.columns)} columns but {len(self.higher)} directions")
        if self.gap not in GAPS:
            raise ValueError(f"table {self.title!r}: gap {self.gap!r}; valid: {', '.join(GAPS)}")

    def add(self, name: str, cells: list[Cell], rank: bool = True) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.title!r}, row {name!r}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(Row(name, list(cells), rank))

    def add_column(self, name: str, higher: bool | None, cells: dict[str, Cell]) -> None:
        """Append a column; ``cells`` by row name (rows not in it get an empty cell)."""
        self.columns.append(name)
        self.higher.append(higher)
        for row in self.rows:
            row.cells.append(cells.get(row.name, Cell(None)))

    def row(self, name: str) -> Row:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"table {self.title!r} has no row {name!r}; rows: {[r.name for r in self.rows]}")

    def cell(self, row: str, column: str) -> Cell:
        """The cell at (row name, column name)."""
        if column not in self.columns:
            raise KeyError(f"table {self.title!r} has no column {column!r}; columns: {self.columns}")
        return self.row(row).cells[self.columns.index(column)]

    def best(self) -> list[float | None]:
        """Per column, the best of our means over the ranked rows (None where no direction or no value)."""
        out: list[float | None] = []
        for j, hib in enumerate(self.higher):
            values = [r.cells[j].mean for r in self.rows if r.rank and r.cells[j].mean is not None]
            out.append(None if hib is None or not values else (max(values) if hib else min(values)))
        return out

    @property
    def gap_header(self) -> str:
        """The header of the gap column: ``ours − paper`` or ``ours / paper``."""
        return GAPS[self.gap]

    def parts(self) -> list[list[str]]:
        """Per column, what each of its cells shows: ``ours``, then ``paper`` when a cell of the column has a
        published cell beside it (a number, ``lost`` or ``–``), then ``gap`` when one has a published number
        and the table is no pipeline check."""
        out = []
        for j in range(len(self.columns)):
            published = [r.cells[j].published for r in self.rows if r.cells[j].published is not None]
            gap = self.pipeline_check is None and any(p.value is not None for p in published)
            out.append(["ours"] + (["paper"] if published else []) + (["gap"] if gap else []))
        return out

    @property
    def compared(self) -> bool:
        """Whether the table shows a gap: it has published numbers and is not a pipeline check."""
        return any("gap" in parts for parts in self.parts())

    def banner_lines(self) -> list[str]:
        """What is shown once at the top of the table (the pipeline-check label first)."""
        lines = [f"Pipeline check: {self.pipeline_check}"] if self.pipeline_check else []
        return lines + self.banners

    def marked_rows(self) -> Iterator[tuple[Row, list[tuple[Cell, bool]]]]:
        """Each row with its cells and whether each is the best value of ours in its column (shown bold)."""
        best = self.best()
        for row in self.rows:
            marked = [
                (c, row.rank and c.mean is not None and c.text is None and best[j] is not None and c.mean == best[j])
                for j, c in enumerate(row.cells)
            ]
            yield row, marked

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.data_scale:
            lines += [f"_{self.data_scale}_", ""]
        lines += [
            f"> **{b}**" if i == 0 and self.pipeline_check else f"> {b}" for i, b in enumerate(self.banner_lines())
        ]
        if self.banner_lines():
            lines.append("")
        lines += ["| method | " + " | ".join(self.columns) + " |", "|---|" + "---|" * len(self.columns)]
        for row, cells in self.marked_rows():
            out = []
            for cell, is_best in cells:
                text = cell.ours()
                if is_best:
                    text = f"**{text}**"
                if cell.published is not None:
                    text += f" ({cell.published.text})"
                out.append(text)
            lines.append(f"| {row.name} | " + " | ".join(out) + " |")
        lines += [""] + [f"- {n}" for n in self.notes]
        if self.deviations:
            lines += ["", "Deviations from the paper's protocol:"] + [f"- {d}" for d in self.deviations]
        return "\n".join(lines) + "\n"

    def latex(self) -> str:
        lines = [
            "\\begin{table}[t]",
            "\\centering",
            f"\\caption{{{_tex(self.title)}}}",
            *[f"% {_tex(b)}" for b in self.banner_lines()],
            "\\begin{tabular}{l" + "r" * len(self.columns) + "}",
            "\\toprule",
            "Method & " + " & ".join(_tex(c) for c in self.columns) + " \\\\",
            "\\midrule",
        ]
        for row, cells in self.marked_rows():
            out = []
            for cell, is_best in cells:
                text = _tex(cell.ours())
                if is_best:
                    text = f"\\textbf{{{text}}}"
                if cell.published is not None:
                    text += f" ({_tex(cell.published.text)})"
                out.append(text)
            lines.append(_tex(row.name) + " & " + " & ".join(out) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}"]
        lines += [f"% deviation from the paper: {_tex(d)}" for d in self.deviations]
        lines += ["\\end{table}"]
        return "\n".join(lines) + "\n"

    def csv_rows(self) -> list[dict[str, Any]]:
        """Long format, one dict per cell (see :data:`CSV_FIELDS`): our number in ``ours_mean``/``ours_std``
        or a text cell's text in ``ours_text``; the published cell as printed and its number; the gap and its
        kind (empty for a pipeline check, which gets no distance figure)."""
        out = []
        for row in self.rows:
            for column, cell in zip(self.columns, row.cells):
                gap = cell.gap(self.gap) if self.pipeline_check is None else None
                out.append(
                    {
                        "table": self.title,
                        "row": row.name,
                        "column": column,
                        "ours_mean": cell.mean if cell.text is None else None,
                        "ours_std": cell.std if cell.text is None else None,
                        "ours_text": cell.text,
                        "published": cell.published.text if cell.published is not None else None,
                        "published_value": cell.published.value if cell.published is not None else None,
                        "gap": gap,
                        "gap_kind": self.gap if gap is not None else None,
                    }
                )
        return out


CSV_FIELDS = [
    "table",
    "row",
    "column",
    "ours_mean",
    "ours_std",
    "ours_text",
    "published",
    "published_value",
    "gap",
    "gap_kind",
]


def _number(value: float) -> str:
    """4 significant digits, scientific notation from 10^4 on."""
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"


def _tex(text: str) -> str:
    for a, b in (
        ("\\", "\\textbackslash{}"),
        ("&", "\\&"),
        ("%", "\\%"),
        ("_", "\\_"),
        ("#", "\\#"),
        ("Δ", "$\\Delta$"),
        ("±", "$\\pm$"),
        (DASH, "--"),
    ):
        text = text.replace(a, b)
    return text
