"""The index of a report: one row per study (``summary.json``, written with the study's tables) and, when
studies carry them, a verdict summary block at the top (counts, then one line per claim).

A verdict record (:class:`Verdict`) says whether a claim of a paper was reproduced by the run's seeds,
with the statistic and its uncertainty; a study whose tables are all pipeline checks (numbers that cannot be
compared with the paper's at this scale) shows ``pipeline check`` instead of a distance figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mtl_pipelines import io
from mtl_pipelines.report.tables import DASH, Table

__all__ = [
    "PIPELINE_CHECK",
    "SUMMARY",
    "VERDICTS",
    "StudySummary",
    "Verdict",
    "distance",
    "verdict_block",
    "write_index",
]

SUMMARY = "summary.json"  # a study's row of the index, written with its tables
VERDICTS = ("reproduced", "not reproduced", "inconclusive")
PIPELINE_CHECK = "pipeline check"


@dataclass(frozen=True)
class Verdict:
    """Whether one claim of a paper was reproduced: the ``statistic`` over ``n_seeds`` seeds, its
    ``interval`` ``[lo, hi]`` (None when none could be computed) and the ``method`` that gave it (e.g.
    "t-interval over 3 seeds"); the claim's ``kind`` (:data:`mtl_pipelines.claims.KINDS`) and ``source`` (the
    seed file and where in it the paper makes the claim: ``{"seed": ..., "where": ...}``)."""

    study: str
    claim: str
    statement: str
    verdict: str
    statistic: float | None
    interval: tuple[float, float] | None
    method: str
    n_seeds: int
    detail: str = ""
    kind: str = ""
    source: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.claim!r} of {self.study}: verdict {self.verdict!r}; valid: {VERDICTS}")
        if self.interval is not None:
            lo, hi = self.interval
            if not lo <= hi:
                raise ValueError(f"claim {self.claim!r} of {self.study}: interval [{lo}, {hi}] is not ordered")
            object.__setattr__(self, "interval", (float(lo), float(hi)))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        interval = data.get("interval")
        return cls(**{**data, "interval": tuple(interval) if interval is not None else None})

    def to_json(self) -> dict[str, Any]:
        """The record as plain data (``claims.json``, ``summary.json``)."""
        out = asdict(self)
        out["source"] = dict(self.source)
        return out

    @property
    def cited(self) -> str:
        """Where the paper makes the claim, e.g. ``seed 002, Table 6`` (empty without a source)."""
        if not self.source:
            return ""
        seed = self.source.get("seed", "")[:3]
        return ", ".join(x for x in (f"seed {seed}" if seed else "", self.source.get("where", "")) if x)

    def line(self, link: bool = True) -> str:
        """One Markdown line: verdict, (``link``: the study's page,) claim, statement, where the paper makes it
        and the numbers behind it."""
        numbers = []
        if self.statistic is not None:
            numbers.append(f"statistic {self.statistic:.4g}")
        if self.interval is not None:
            numbers.append(f"interval [{self.interval[0]:.4g}, {self.interval[1]:.4g}]")
        numbers.append(f"{self.method}, {self.n_seeds} seed{'s' if self.n_seeds != 1 else ''}")
        detail = f"; {self.detail}" if self.detail else ""
        cited = f" [{self.cited}]" if self.cited else ""
        study = f"[{self.study}]({self.study}/table.md) " if link else ""
        return f"- **{self.verdict}** — {study}{self.claim}: {self.statement}{cited} ({', '.join(numbers)}{detail})"


@dataclass(frozen=True)
class StudySummary:
    """A study's row of the index (its ``summary.json``)."""

    id: str
    title: str
    data: str
    scale: str
    runs: int
    distance: str
    not_run: int
    verdicts: tuple[Verdict, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdicts"] = [v.to_json() for v in self.verdicts]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StudySummary:
        verdicts = tuple(Verdict.from_json(v) for v in data.get("verdicts", []))
        return cls(**{**data, "verdicts": verdicts})


def distance(tables: Sequence[Table]) -> str:
    """Median absolute relative distance of our means to the published numbers over the cells that have both,
    pipeline-check tables left out (``pipeline check`` when every table is one)."""
    compared = [t for t in tables if t.pipeline_check is None]
    if tables and not compared:
        return PIPELINE_CHECK
    gaps = [
        abs(c.mean - c.published.value) / abs(c.published.value) * 100
        for t in compared
        for row in t.rows
        for c in row.cells
        if c.mean is not None and c.published is not None and c.published.value not in (None, 0)
    ]
    return f"{statistics.median(gaps):.0f}% over {len(gaps)} cells" if gaps else DASH


def verdict_block(verdicts: Sequence[Verdict], link: bool = True) -> list[str]:
    """Markdown lines of the verdict summary: the counts per verdict, then one line per claim (``link``: each
    names its study's page, as the index does); nothing without verdicts."""
    if not verdicts:
        return []
    counts = ", ".join(f"{sum(v.verdict == name for v in verdicts)} {name}" for name in VERDICTS)
    return ["## Verdicts", "", f"{len(verdicts)} claims: {counts}.", "", *[v.line(link) for v in verdicts], ""]


def write_index(profile: Mapping[str, Any], summaries: Sequence[StudySummary], out_root: Path) -> list[Path]:
    """``index.md`` and ``index.html`` (:mod:`~mtl_pipelines.report.html`): verdicts first, then one row per
    study."""
    lines = [f"# Reproduced tables — profile `{profile['name']}`", "", profile.get("description", ""), ""]
    lines += verdict_block([v for s in summaries for v in s.verdicts])
    lines += [
        "| study | title | data | scale | runs | distance to published (median rel.) | not run |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summaries:
        lines.append(
            f"| [{row.id}]({row.id}/table.md) | {row.title} | {row.data} | {row.scale} | "
            f"{row.runs} | {row.distance} | {row.not_run} |"
        )
    from mtl_pipelines.report.scope import not_reproduced

    skipped = not_reproduced()
    if skipped:
        lines += ["", "## Not reproduced here", ""]
        lines += [f"- seed {e['seed']} {e['table']}: {e['reason']}" for e in skipped]
    lines += [
        "",
        "Published numbers come from `mtl_pipelines.references` (transcribed from the seed texts); a "
        "cell lost in extraction is marked `lost`, never filled in.",
        "",
    ]
    io.write_text(out_root / "index.md", "\n".join(lines) + "\n")
    from mtl_pipelines.report.html import render_index  # html imports this module's constants

    io.write_text(out_root / "index.html", render_index(profile, summaries))
    return [out_root / "index.md", out_root / "index.html"]
