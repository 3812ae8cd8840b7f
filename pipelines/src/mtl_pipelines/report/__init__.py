"""Study reports: tables (Markdown, LaTeX, CSV) in the seed's layout with the published numbers beside ours,
figures (matplotlib PNG) and ``index.md`` (+ ``index.html``).

- :mod:`~mtl_pipelines.report.tables`: the table model (cells of ours beside the published cell, banners,
  notes) and its renderings;
- :mod:`~mtl_pipelines.report.published`: the published cell of each of ours, from
  :mod:`mtl_pipelines.references`;
- :mod:`~mtl_pipelines.report.registry`: the one registry of builders, ``builder(study, profile, runs,
  results) -> list[Table]``; the builders of trained runs (:mod:`~mtl_pipelines.report.builders`) and the
  probes (:mod:`mtl_pipelines.probes`) register themselves there, and :func:`mtl_pipelines.grid.load_studies`
  validates every study's ``builder:`` against it;
- :mod:`~mtl_pipelines.report.results`: the evaluated runs a builder reads and the statistics over seeds;
- :mod:`~mtl_pipelines.report.figures`, :mod:`~mtl_pipelines.report.index`,
  :mod:`~mtl_pipelines.report.driver`.

Every cell shows ``ours`` as mean ± std over seeds and, where the study has a reference table, the
published value in parentheses; a published cell lost in extraction is shown as ``(lost)``, one the paper
leaves empty or that has no transcription as ``(–)``, and a table whose published numbers were all lost
says so once at its top: nothing is invented. Best values of ours (per column, over the methods other than
STL) are bold.
"""

from __future__ import annotations

from mtl_pipelines.report.driver import build, build_index
from mtl_pipelines.report.index import SUMMARY, StudySummary, Verdict
from mtl_pipelines.report.results import Results, load_results
from mtl_pipelines.report.tables import Cell, Published, Table

__all__ = [
    "SUMMARY",
    "Cell",
    "Published",
    "Results",
    "StudySummary",
    "Table",
    "Verdict",
    "build",
    "build_index",
    "load_results",
]
