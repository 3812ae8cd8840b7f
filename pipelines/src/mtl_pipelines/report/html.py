"""The HTML report, rendered from the Jinja2 templates shipped with the package (``templates/``): one page per
study (``table.html``: verdict badges, then each table with its pipeline-check label and data-and-scale line
at the top, ours and the paper's numbers in differently styled cells and the gap between them, the figures)
and the index (``index.html``: the verdict summary, then one row per study). The stylesheet
(``templates/report.css``) is inlined, so every page is one self-contained file that opens offline.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from mtl_pipelines.report.index import PIPELINE_CHECK, VERDICTS
from mtl_pipelines.report.scope import not_reproduced
from mtl_pipelines.report.tables import Table

__all__ = ["render_index", "render_study"]


@functools.cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("mtl_pipelines.report", "templates"),
        autoescape=True,  # every text (titles, notes, claim statements) comes from configs: escaped
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the render instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _css() -> str:
    return _environment().loader.get_source(_environment(), "report.css")[0]


def render_study(
    study: Mapping[str, Any],
    profile_name: str,
    tables: Sequence[Table],
    figures: Sequence[str],
    missing: Sequence[str],
    verdicts: Sequence[Any] = (),
) -> str:
    """A study's page: its verdicts, tables, figures (file names next to the page) and what was not run."""
    template = _environment().get_template("study.html.j2")
    return template.render(
        css=_css(),
        study={"note": None, **study},
        profile=profile_name,
        tables=list(tables),
        figures=list(figures),
        missing=list(missing),
        verdicts=list(verdicts),
        verdict_names=VERDICTS,
    )


def render_index(profile: Mapping[str, Any], summaries: Sequence[Any]) -> str:
    """The index page: the verdict summary (counts, one line per claim), then one row per study."""
    template = _environment().get_template("index.html.j2")
    return template.render(
        css=_css(),
        profile={"description": "", **profile},
        summaries=list(summaries),
        verdicts=[v for s in summaries for v in s.verdicts],
        not_reproduced=not_reproduced(),
        verdict_names=VERDICTS,
        pipeline_check=PIPELINE_CHECK,
    )
