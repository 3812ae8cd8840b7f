"""Every row of every report table is paired with the published cells of the same setting (issue 16).

For each table kind (builder), every study of the ``paper`` profile that has a transcribed reference is built
from synthetic results of its planned runs (no data, no training): the runs' metrics are made up, the
pairing is real. For each row, the published row it should be paired with is derived here independently,
from the reference's raw YAML file: the row of the same method whose setting agrees with what the run
states (the method entry's ``setting:``, the benchmark, the network, the optimizer of a selected row) and
names every key the entry's ``setting:`` names; there must be exactly one. Each cell's published value must
be that row's value in the column of the same task and metric (or kind) and dataset; a row with no such
published row must show none.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import pytest
import yaml

from mtl_pipelines import grid, references
from mtl_pipelines.report import Results, registry
from mtl_pipelines.report.tables import Table


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def paper() -> tuple[dict[str, Any], dict[str, dict[str, Any]], grid.Plan]:
    profile = grid.load_profile("paper")
    studies = grid.load_studies()
    return profile, studies, grid.plan(profile, studies)


@cache
def raw(ref_id: str) -> dict[str, Any]:
    """The reference's YAML file as written (not through mtl_pipelines.references)."""
    text = resources.files("mtl_pipelines.references").joinpath(f"{ref_id}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _columns(ref_id: str) -> list[dict[str, Any]]:
    data = raw(ref_id)
    return [{"dataset": None, **c} for c in data["metrics"]]


def _directions() -> dict[str, bool]:
    """``task/metric`` -> higher is better, from every reference's metric columns."""
    out: dict[str, bool] = {}
    for ref_id in references.tables():
        for c in _columns(ref_id):
            if c["kind"] == "metric" and c.get("task") and c.get("key") and c.get("higher_is_better") is not None:
                out[f"{c['task']}/{c['key']}"] = bool(c["higher_is_better"])
    return out


DIRECTIONS = _directions()


def _number(*parts: Any) -> float:
    """A made-up metric value in [0.5, 1.5), the same for the same parts."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return 0.5 + int.from_bytes(digest[:8], "big") / 2**64


def _metrics_of(run: grid.RunSpec, ref_ids: Sequence[str]) -> dict[str, set[str]]:
    """``{task: {metric}}`` a run reports: the reference columns of its benchmark (its own task for STL)."""
    out: dict[str, set[str]] = {}
    for ref_id in ref_ids:
        for c in _columns(ref_id):
            if c.get("key") and c["dataset"] in (None, run.benchmark):
                for task in [c["task"]] if c.get("task") else ["attr0", "attr1"]:  # a mean over tasks (CelebA)
                    out.setdefault(task, set()).add(c["key"])
    if not out:  # a reference without metric columns (Delta_m per benchmark): two tasks of our own
        out = {"segmentation": {"mIoU"}, "depth": {"abs_err"}}
    return {t: ms for t, ms in out.items() if run.task is None or t == run.task} or {run.task: {"mIoU"}}


def synthetic_results(runs: Sequence[grid.RunSpec], ref_ids: Sequence[str]) -> Results:
    out = {}
    for run in runs:
        metrics = _metrics_of(run, ref_ids)

        def values(part: str, run: grid.RunSpec = run, metrics: dict = metrics) -> dict[str, dict[str, float]]:
            return {t: {m: _number(run.run_id, part, t, m) for m in sorted(ms)} for t, ms in metrics.items()}

        out[run.run_id] = {
            "eval": {
                "test": values("test"),
                "val": values("val"),
                "corrupted_clean": values("clean"),
                "corrupted": {"noise": {"3": values("noise")}},
            },
            "final": {"seconds": _number(run.run_id, "s"), "steps": 10, "peak_memory": None},
            "diagnostics": [],
        }
    directions = {**DIRECTIONS, "segmentation/mIoU": True, "depth/abs_err": False}
    directions |= {f"attr{i}/{k}": k != "error" for i in range(2) for k in ("error", "accuracy")}
    return Results(out, directions)


def study_tables(paper: tuple, builder: str) -> list[tuple[dict[str, Any], list[grid.RunSpec], list[Table]]]:
    """Per study of ``builder`` with a reference whose numbers survived: its runs and built tables."""
    profile, studies, plan = paper
    out = []
    for study in studies.values():
        ref_ids = [r for r in study.get("references", []) if r in references.tables()]
        if study["builder"] != builder or not ref_ids:
            continue
        if all(raw(r)["status"] == "numbers_lost" for r in ref_ids):
            continue
        runs = plan.by_study[study["id"]]
        tables = registry.get(builder).tables(study, profile, runs, synthetic_results(runs, ref_ids))
        out.append((study, runs, tables))
    assert out, f"no study of builder {builder!r} has a reference"
    return out


# ------------------------------------------------------------------------------------------------ matching
def paper_rows(ref_id: str, method: str, context: Mapping[str, Any], named: Mapping[str, Any]) -> list[dict]:
    """The raw rows of ``method`` whose setting agrees with ``context`` on every key both have and that fix
    every key of ``named`` (the method entry's ``setting:``) to its value."""
    out = []
    for row in raw(ref_id)["rows"]:
        setting = row.get("setting") or {}
        if row.get("method") != method:
            continue
        if any(k in setting and setting[k] != v for k, v in context.items()):
            continue
        if any(setting.get(k) != v for k, v in named.items()):
            continue
        out.append(row)
    return out


def the_row(ref_id: str, method: str, context: Mapping[str, Any], named: Mapping[str, Any], where: str) -> dict:
    rows = paper_rows(ref_id, method, context, named)
    assert len(rows) <= 1, f"{where}: {len(rows)} published rows of {ref_id} pair with {method} {dict(named)}"
    return rows[0] if rows else {}


def cell_value(ref_id: str, row: Mapping[str, Any], match: Mapping[str, Any]) -> tuple[bool, Any]:
    """(found, value) of the raw row's first column matching every item of ``match``."""
    if not row:
        return False, None
    for column, value in zip(_columns(ref_id), row["values"]):
        if all(column.get(k) == v or (k == "dataset" and column.get(k) is None) for k, v in match.items()):
            return True, value
    return False, None


def assert_paired(cell: Any, found: bool, value: Any, where: str) -> None:
    if not found or value is None:  # no such cell, or one lost / left blank: nothing to compare with
        assert cell.published is None or cell.published.value is None, f"{where}: published {cell.published}"
        return
    assert cell.published is not None, f"{where}: not paired (expected {value})"
    if isinstance(value, int | float) and not isinstance(value, bool):
        assert cell.published.value == pytest.approx(value), f"{where}: {cell.published} != {value}"
    else:
        assert cell.published.value is None, f"{where}: {cell.published} for a published {value!r}"


def _reference_of(study: Mapping[str, Any], bench: str) -> str:
    ref_ids = [r for r in study["references"] if r in references.tables()]
    for ref_id in ref_ids:
        datasets = raw(ref_id)["dataset"]
        if bench == datasets or (isinstance(datasets, list) and bench in datasets):
            return ref_id
    assert len(ref_ids) == 1, f"{study['id']}: no reference of {bench}"
    return ref_ids[0]


# ------------------------------------------------------------------------------------------------ per kind
def test_results_tables_pair_every_row_with_the_published_row_of_its_setting(paper: tuple) -> None:
    checked = 0
    for study, runs, tables in study_tables(paper, "results"):
        select = bool((study.get("table") or {}).get("select"))
        for table in tables:
            bench, model = table.title.split(" — ")[1].split(" / ")[:2]
            ref_id = _reference_of(study, bench)
            if raw(ref_id)["status"] == "numbers_lost":
                continue
            group = [r for r in runs if r.benchmark == bench and r.model_key == model]
            for row in table.rows:
                if row.name == "STL":
                    run = next(r for r in group if r.is_stl)
                else:
                    run = next(
                        r
                        for r in group
                        if not r.is_stl
                        and (f"{r.label} ({r.config['optimizer']['name']})" if select else r.label) == row.name
                    )
                context = {"dataset": bench, "model": model}
                if select or run.is_stl:
                    context["optimizer"] = run.config["optimizer"]["name"]
                where = f"{study['id']} / {table.title} / {row.name}"
                paper_row = the_row(ref_id, run.method, context, run.reference_setting, where)
                if run.reference_setting:
                    assert paper_row, f"{where}: the entry's setting {run.reference_setting} names no published row"
                for column, cell in zip(table.columns, row.cells):
                    if "/" in column and not column.startswith("Δ"):
                        task, metric = column.split("/", 1)
                        match = {"task": task, "key": metric, "dataset": bench}
                    elif column.startswith("mean "):
                        match = {"kind": "average", "dataset": bench}
                    elif column.startswith("Δm% (ours vs our STL"):
                        if row.name == "STL":
                            assert cell.published is None, where
                            continue
                        match = {"kind": "delta_m", "dataset": bench}
                        if "weighted" in column:
                            match["weighting"] = column.split(", ")[1].split("-")[0]
                    elif column == "MR":
                        match = {"kind": "mean_rank"}
                    elif column == "lr":
                        lr = (paper_row.get("setting") or {}).get("lr")
                        assert cell.published is not None and cell.published.text == (f"{lr:g}" if lr else "–"), where
                        continue
                    else:
                        assert cell.published is None, f"{where} / {column}"
                        continue
                    found, value = cell_value(ref_id, paper_row, match)
                    assert_paired(cell, found, value, f"{where} / {column}")
                    checked += found
    assert checked > 1000


def test_delta_m_tables_pair_each_benchmark_cell_with_the_published_row_of_its_setting(paper: tuple) -> None:
    checked = 0
    for study, runs, tables in study_tables(paper, "delta_m"):
        (table,) = tables
        ref_id = next(r for r in study["references"] if r in references.tables())
        for row in table.rows:
            for column, cell in zip(table.columns, row.cells):
                bench = column.removesuffix(" Δm%")
                row_runs = [r for r in runs if r.label == row.name and r.benchmark == bench and not r.is_stl]
                if not row_runs:
                    continue
                run = row_runs[0]
                where = f"{study['id']} / {row.name} / {column}"
                paper_row = the_row(ref_id, run.method, {"dataset": bench}, run.reference_setting, where)
                if run.reference_setting:
                    assert paper_row, f"{where}: the entry's setting {run.reference_setting} names no published row"
                found, value = cell_value(ref_id, paper_row, {"kind": "delta_m", "dataset": bench})
                assert_paired(cell, found, value, where)
                checked += found
    assert checked > 100


def test_robustness_tables_pair_each_row_with_the_published_row_of_its_network(paper: tuple) -> None:
    checked = 0
    for study, runs, tables in study_tables(paper, "robustness"):
        for table in tables:
            bench, model = table.title.split(" — ")[1].split(" / ")
            ref_id = _reference_of(study, bench)
            for row in table.rows:
                run = next(r for r in runs if r.label == row.name and r.model_key == model and not r.is_stl)
                where = f"{study['id']} / {table.title} / {row.name}"
                paper_row = the_row(ref_id, run.method, {"model": model}, run.reference_setting, where)
                assert paper_row, where
                for column, cell in zip(table.columns, row.cells):
                    if column == "Mean":
                        match = {"kind": "average"}
                    else:
                        task, metric = column.split("/", 1)
                        match = {"task": task, "key": metric}
                    found, value = cell_value(ref_id, paper_row, match)
                    assert_paired(cell, found, value, f"{where} / {column}")
                    checked += found
    assert checked > 50


def test_pareto_tables_pair_each_row_with_the_published_row_of_its_dataset_network_and_optimizer(
    paper: tuple,
) -> None:
    ((_study, runs, (overall, per_method)),) = study_tables(paper, "pareto")
    for row in overall.rows:
        bench, model = row.name.split(" / ")
        (paper_row,) = [r for r in raw("001_table2")["rows"] if r["setting"] == {"dataset": bench, "model": model}]
        for column, cell in zip(overall.columns, row.cells):
            found, value = cell_value("001_table2", paper_row, {"name": column})
            assert found, f"{row.name} / {column}: Table 2 has no such column"
            assert_paired(cell, found, value, f"{row.name} / {column}")
    assert len(overall.rows) == 4 and len(per_method.rows) == 8
    methods = {r.label: r.method for r in runs if not r.is_stl}
    for row in per_method.rows:
        bench, model, optimizer = row.name.split(" / ")
        (paper_row,) = [
            r
            for r in raw("001_tableA2")["rows"]
            if r["setting"] == {"dataset": bench, "model": model, "optimizer": optimizer}
        ]
        for column, cell in zip(per_method.columns, row.cells):
            match = {"name": "Total"} if column == "Total" else {"method": methods[column]}
            found, value = cell_value("001_tableA2", paper_row, match)
            assert found, f"{row.name} / {column}"
            assert_paired(cell, found, value, f"{row.name} / {column}")


def test_cost_tables_pair_each_method_with_its_estimators_published_overhead(paper: tuple) -> None:
    ((_study, runs, (table,)),) = study_tables(paper, "cost")
    overheads = {r["setting"]["estimator"]: r["values"][0] for r in raw("002_table3")["rows"]}
    seen = set()
    for row in table.rows:
        method = next(r.method for r in runs if r.label == row.name)
        estimator = method.split("+")[0] if "+" in method else "exact"
        cell = table.cell(row.name, "× LS")
        if estimator in overheads:
            assert cell.published is not None and cell.published.text == overheads[estimator], row.name
            seen.add(estimator)
        else:
            assert cell.published is None or cell.published.text == "–", row.name
    assert seen == {"sam", "lsam", "fmtl", "samo"}  # 002 Table 3 runs G-SAM, L-SAM, F-MTL and SAMO


def test_a_multi_dataset_table_pairs_each_benchmark_with_its_own_columns(paper: tuple) -> None:
    """000 Table 1: the MultiFashion, MultiMNIST and MultiFashion+MNIST tables each carry their own dataset's
    published cells (the old lookup put MultiFashion's beside every dataset)."""
    ((_study, _, tables),) = [s for s in study_tables(paper, "results") if s[0]["id"] == "000_table1"]
    mgda = {t.title.split(" — ")[1].split(" / ")[0]: t.cell("exact+mgda", "left/accuracy") for t in tables}
    ls = {bench: cell.published.value for bench, cell in mgda.items()}
    expected = {}
    (row,) = [r for r in raw("000_table1")["rows"] if r["method"] == "exact+mgda"]
    for column, value in zip(_columns("000_table1"), row["values"]):
        if column.get("task") == "left":
            expected[column["dataset"]] = value
    assert ls == expected and len(set(expected.values())) == 3


def test_both_delta_m_flavours_are_columns_and_finite(paper: tuple) -> None:
    """Seed 003 reports the task-weighted and the metric-weighted Delta_m: a column each."""
    profile, studies, plan = paper
    study = studies["003_table2"]
    runs = plan.by_study[study["id"]]
    metrics = {"segmentation": {"mIoU", "pix_acc"}, "depth": {"abs_err"}}
    results = synthetic_results(runs, [])
    for run in runs:  # three metrics over two tasks: the flavours differ
        for part in ("test", "val"):
            results.runs[run.run_id]["eval"][part] = {
                t: {m: _number(run.run_id, part, t, m) for m in sorted(ms)}
                for t, ms in metrics.items()
                if run.task in (None, t)
            }
    (table,) = registry.get("results").tables(study, profile, runs, results)
    task_col, metric_col = "Δm% (ours vs our STL, task-weighted)", "Δm% (ours vs our STL, metric-weighted)"
    assert {task_col, metric_col} <= set(table.columns)
    row = next(r for r in table.rows if r.name != "STL")
    task_dm, metric_dm = table.cell(row.name, task_col).mean, table.cell(row.name, metric_col).mean
    assert math.isfinite(task_dm) and math.isfinite(metric_dm) and task_dm != pytest.approx(metric_dm)


def test_a_run_shared_by_studies_is_named_as_each_study_names_it(paper: tuple) -> None:
    """002 Table 13's SAMO-LS (rho 1e-3) is the same run as 002 Table 10's 'samo+ls rho=0.001': one run, but
    each study's report pairs it under its own label and setting (Table 10: the rho = 1e-3 row)."""
    _, _, plan = paper
    t13 = next(r for r in plan.by_study["002_table13"] if r.label == "samo+ls")
    (t10,) = [r for r in plan.by_study["002_table10"] if r.run_id == t13.run_id]
    assert t10.label == "samo+ls rho=0.001" and t10.reference_setting == {"rho": 0.001}
    assert t13.reference_setting == {} and {"002_table10", "002_table13"} <= plan.runs[t13.run_id].studies


def test_deviations_are_printed_under_the_tables_in_markdown_and_html(tmp_path, monkeypatch) -> None:
    from mtl_pipelines import facts
    from mtl_pipelines.report import Cell, driver, html
    from mtl_pipelines.report.index import StudySummary

    (deviation,) = facts.deviations("002_table1")  # batch normalisation kept in the CelebA CNN
    table = Table("T", ["x"], [None])
    table.add("ls", [Cell(1.0)])
    table.deviations = driver.deviation_lines("002_table1")
    assert len(table.deviations) == 1 and deviation["reason"] in table.deviations[0]
    assert deviation["field"] in table.deviations[0]
    md = table.markdown()
    assert md.index("Deviations from the paper's protocol:") > md.index("| ls |")
    assert deviation["reason"] in md
    page = html.render_study({"id": "s", "title": "S", "paper": "002"}, "p", [table], [], [])
    assert 'class="deviations"' in page and html_escape(deviation["reason"]) in page
    summary = StudySummary("s", "S", "real", "x", 1, "–", 0)
    written = driver.write_study(tmp_path, {"id": "s", "title": "S", "paper": "002"}, "p", [table], [], [], summary)
    assert deviation["reason"] in (tmp_path / "table.md").read_text() and written


def html_escape(text: str) -> str:
    from markupsafe import escape  # as the templates escape

    return str(escape(text))


def test_the_index_lists_what_is_not_reproduced_with_the_reason(tmp_path, monkeypatch) -> None:
    """A table no study reproduces is listed in the index with the reason, in md and html; seed 003 Table 5
    (Meta-World MT10), once listed there, is study 003_table5 now."""
    from mtl_pipelines.report import html, scope
    from mtl_pipelines.report.index import write_index

    assert not [e for e in scope.not_reproduced() if e.get("reference") == "003_table5"]
    assert grid.load_studies()["003_table5"]["references"] == ["003_table5"]
    entry = {"seed": "003", "table": "Table 9 (a table)", "reason": "it needs what is not here", "needs": "x"}
    monkeypatch.setattr(scope, "not_reproduced", lambda: [entry])
    monkeypatch.setattr(html, "not_reproduced", lambda: [entry])
    write_index({"name": "p"}, [], tmp_path)
    md = (tmp_path / "index.md").read_text()
    assert "## Not reproduced here" in md and f"seed 003 {entry['table']}: {entry['reason']}" in md
    assert entry["table"] in (tmp_path / "index.html").read_text()
