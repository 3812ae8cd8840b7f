"""The one registry of report builders. A study's ``builder:`` names one entry; :func:`mtl_pipelines.grid.load_studies`
validates it here, the report driver calls it.

Every builder has one signature, ``builder(study, profile, runs, results) -> list[Table]``
(:data:`TableBuilder`), whether it turns trained runs into tables (:mod:`mtl_pipelines.report.builders`) or
computes its numbers itself (the probes of :mod:`mtl_pipelines.probes`). Builders register themselves with
:func:`register` in their modules; the registry imports those modules (:data:`BUILDER_MODULES`) the first
time it is asked, so nothing here imports a builder module at import time (no import cycle with the probes).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BUILDER_MODULES", "Builder", "check_study", "get", "names", "register"]

# The modules whose import registers builders.
BUILDER_MODULES = ("mtl_pipelines.report.builders", "mtl_pipelines.probes", "mtl_pipelines.rl.study")

# builder(study, profile, runs, results) -> tables; results: mtl_pipelines.report.results.Results
TableBuilder = Callable[[Mapping[str, Any], Mapping[str, Any], Sequence[Any], Any], list[Any]]
# check(study, where): ValueError naming ``where`` (the study's file), the field and the valid values
StudyCheck = Callable[[Mapping[str, Any], str], None]
# runs(profile, study) -> the grid.RunSpec runs a study plans itself (runs of another kind than the supervised
# experiment blocks, e.g. the MT10 SAC runs of 003_table5); each is a train job of the workflow
RunPlanner = Callable[[Mapping[str, Any], Mapping[str, Any]], list[Any]]
# figures(study, runs, results, tables, out_dir) -> written PNG paths
FigureBuilder = Callable[[Mapping[str, Any], Sequence[Any], Any, list[Any], Path], list[Path]]


@dataclass(frozen=True)
class Builder:
    """A registered builder: its ``tables`` function, optional ``figures``, whether it is a ``probe``, and the
    ``runs`` planner of a study whose runs are not described by experiment blocks (:data:`RunPlanner`).

    A probe computes its numbers in the report step (mtl_core.toy, mtl_core.analysis): it runs even when
    the study trains no runs, and is skipped as a whole (not built from part of its runs) when part of its
    study cannot run on the profile.
    """

    name: str
    tables: TableBuilder
    figures: FigureBuilder | None = None
    probe: bool = False
    check: StudyCheck | None = None  # validates the study's builder options when the study is loaded
    runs: RunPlanner | None = None  # plans the study's runs (mtl_pipelines.grid.study_runs asks it)


_REGISTRY: dict[str, Builder] = {}


def register(
    name: str,
    *,
    figures: FigureBuilder | None = None,
    probe: bool = False,
    check: StudyCheck | None = None,
    runs: RunPlanner | None = None,
) -> Callable[[TableBuilder], TableBuilder]:
    """Decorator: register ``tables`` as the builder ``name`` (ValueError if another function has the name);
    ``check(study, where)`` validates a study's ``table``/``figure`` options for this builder at load time;
    ``runs(profile, study)`` plans the runs of its studies (see :data:`RunPlanner`)."""

    def decorate(tables: TableBuilder) -> TableBuilder:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.tables.__qualname__ != tables.__qualname__:
            raise ValueError(
                f"builder {name!r} is registered twice ({existing.tables.__module__}, {tables.__module__})"
            )
        _REGISTRY[name] = Builder(name, tables, figures, probe, check, runs)
        return tables

    return decorate


def _load() -> None:
    for module in BUILDER_MODULES:
        importlib.import_module(module)


def names() -> list[str]:
    """Every builder name, sorted."""
    _load()
    return sorted(_REGISTRY)


def get(name: str) -> Builder:
    """The builder ``name``; ValueError lists the valid names."""
    _load()
    if name not in _REGISTRY:
        raise ValueError(f"unknown builder {name!r}; valid: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def check_study(study: Mapping[str, Any], where: str) -> None:
    """ValueError naming ``where`` (the study's file), the field, the bad value and the valid builders."""
    _load()
    builder = study.get("builder")
    if builder not in _REGISTRY:
        raise ValueError(f"{where}: builder {builder!r} is not valid; valid: {', '.join(sorted(_REGISTRY))}")
    check = _REGISTRY[builder].check
    if check is not None:
        check(study, where)
