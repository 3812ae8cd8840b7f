"""Builders that turn a study's trained and evaluated runs into tables (one signature, see
:mod:`mtl_pipelines.report.registry`): method x metric results with Delta_m and Mean Rank, Delta_m per
benchmark, Pareto counts (seed 001 Table 2), robustness to corruptions (seed 001 eq. 6), cost per step and
gradient diagnostics over training.

Every cell of ours is the mean ± sample std over the seeds of the row's runs. Delta_m is computed per seed
against our own STL runs of the same benchmark, model, setting and seed, then averaged over seeds.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mtl_pipelines import grid
from mtl_pipelines.evaluate import flat
from mtl_pipelines.report import figures
from mtl_pipelines.report.diagnostics import check_figure, conflict_percent
from mtl_pipelines.report.published import (
    cite,
    column_cell,
    paper_row_setting,
    paper_stl,
    published,
    reference_for,
    study_references,
)
from mtl_pipelines.report.registry import register
from mtl_pipelines.report.results import (
    Results,
    bench_model,
    best_stl_runs,
    delta_m,
    groups,
    mean_std,
    method_rows,
    row_values,
    stl_baseline,
    stl_for,
)
from mtl_pipelines.report.tables import DASH, Cell, Published, Table

__all__ = ["cost", "delta_m_table", "diagnostics", "pareto", "relative_drop", "results_table", "robustness"]


DELTA_M_WEIGHTINGS = ("metric", "task")  # mtl_core.metrics.delta_m; "task": seed 003's task-weighted Delta_m
# how a results table picks one run per row and seed among a sweep (``table: select``)
SELECTIONS = {"best_val_delta_m_over_lr": "the setting (lr) of lowest validation Delta_m, mean over seeds"}
ROW_KINDS = ("method", "method x optimizer")
_RESULTS_OPTIONS = {"delta_m", "mean_rank", "columns", "metric", "select", "rows"}


def delta_m_weightings(spec: Mapping[str, Any]) -> list[str]:
    """The Delta_m flavours a table prints: ``delta_m`` is None, one of :data:`DELTA_M_WEIGHTINGS` or a list
    of them (seed 003 prints both)."""
    value = spec.get("delta_m")
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def check_results(study: Mapping[str, Any], where: str) -> None:
    """ValueError naming the study file, the ``table`` field, the bad value and the valid ones."""
    spec = study.get("table") or {}
    unknown = sorted(set(spec) - _RESULTS_OPTIONS)
    if unknown:
        raise ValueError(f"{where}: table has unknown field(s) {unknown}; valid: {sorted(_RESULTS_OPTIONS)}")
    value = spec.get("delta_m")
    if not (value is None or isinstance(value, str | list)) or any(
        w not in DELTA_M_WEIGHTINGS for w in delta_m_weightings(spec)
    ):
        raise ValueError(f"{where}: table.delta_m {value!r}; valid: null, one of {DELTA_M_WEIGHTINGS} or a list")
    if spec.get("select") not in (None, *SELECTIONS):
        raise ValueError(f"{where}: table.select {spec['select']!r}; valid: {', '.join(SELECTIONS)}")
    if spec.get("rows", "method") not in ROW_KINDS:
        raise ValueError(f"{where}: table.rows {spec['rows']!r}; valid: {', '.join(ROW_KINDS)}")
    if (spec.get("select") is None) != (spec.get("rows", "method") == "method"):
        raise ValueError(
            f"{where}: table.select and table.rows 'method x optimizer' go together (one row per method "
            "and optimizer, its setting selected)"
        )
    if spec.get("select") and not delta_m_weightings(spec):
        raise ValueError(f"{where}: table.select {spec['select']!r} selects on Delta_m: table.delta_m must be set")
    if spec.get("columns", "metrics") not in ("metrics", "mean"):
        raise ValueError(f"{where}: table.columns {spec['columns']!r}; valid: metrics, mean")


def _delta_m_column(weighting: str, against: str, several: bool) -> str:
    flavour = f", {weighting}-weighted" if several else ""
    return f"Δm% (ours vs {against}{flavour})"


@dataclass
class _ResultRow:
    """One row of a results table: its label, runs (every seed), the setting of the published row it is
    paired with (in the reference's terms) and, for a selected row, the setting chosen."""

    label: str
    runs: list[grid.RunSpec]
    paper_setting: dict[str, Any]
    chosen: str | None = None

    @property
    def method(self) -> str:
        return self.runs[0].method

    @property
    def is_stl(self) -> bool:
        return self.runs[0].is_stl


def _optimizer(run: grid.RunSpec) -> str:
    return run.config["optimizer"]["name"]


def _val_delta_m(run: grid.RunSpec, pool: Sequence[grid.RunSpec], results: Results, weighting: str) -> float | None:
    """Delta_m of ``run``'s validation metrics against its STL baseline's validation metrics."""
    base = stl_baseline(stl_for(pool, run), results, run.seed, part="val")
    return delta_m(flat(results[run.run_id]["eval"]["val"]), base, results.directions, weighting) if base else None


def _selected_rows(group: Sequence[grid.RunSpec], results: Results, weighting: str) -> list[_ResultRow]:
    """Seed 001 Tables A3-A6: per method and optimizer, the runs of the setting (lr) with the lowest validation
    Delta_m (mean over seeds; "the best learning rate w.r.t. the validation data based on the delta-M
    metric"), paired with the published row of the same method and optimizer."""
    sweeps: dict[tuple[str, str], dict[str, list[grid.RunSpec]]] = defaultdict(lambda: defaultdict(list))
    for run in group:
        if not run.is_stl:
            sweeps[(run.label, _optimizer(run))][run.setting].append(run)
    rows = []
    for (label, optimizer), by_setting in sweeps.items():

        def score(setting: str, by_setting: Mapping[str, list[grid.RunSpec]] = by_setting) -> float:
            mean, _ = mean_std([_val_delta_m(r, group, results, weighting) for r in by_setting[setting]])
            return math.inf if mean is None else mean

        best = min(by_setting, key=lambda s: (score(s), list(by_setting).index(s)))
        chosen = by_setting[best]
        setting = {"optimizer": optimizer, **chosen[0].reference_setting}
        rows.append(_ResultRow(f"{label} ({optimizer})", chosen, setting, best))
    return rows


def _rows(group: Sequence[grid.RunSpec], select: bool, results: Results, weighting: str | None) -> list[_ResultRow]:
    """The rows of a results table in first-seen order (the STL row: every STL candidate of the group; the
    baseline per seed and task is picked from them, see :func:`~mtl_pipelines.report.results.row_values`)."""
    rows = []
    for label, runs in method_rows(group).items():
        if label == "STL":
            rows.append(_ResultRow("STL", runs, {"optimizer": _optimizer(runs[0])}))
        elif not select:
            rows.append(_ResultRow(label, runs, dict(runs[0].reference_setting)))
    return rows + (_selected_rows(group, results, weighting or "metric") if select else [])


@register("results", check=check_results)
def results_table(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> list[Table]:
    """Method x metric tables (one per benchmark/model/setting group), with the study's ``table`` options:
    ``delta_m: metric|task|[task, metric]`` adds Delta_m% against our STL (and against the paper's STL row
    where the reference prints one), one column per flavour; ``mean_rank: true`` the Mean Rank of seed 004
    (``mtl_core.metrics.mean_rank`` over the rows' seed means); ``columns: mean`` (+ ``metric``) one column
    per metric kind averaged over tasks; ``select: best_val_delta_m_over_lr`` with ``rows: method x
    optimizer``: one table per benchmark and model, one row per method and optimizer at its best lr on
    validation (seed 001 Tables A3-A6), an ``lr`` column beside the paper's.

    Every row is paired with the published row of the same method and setting (the method entry's
    ``setting:``, the optimizer of a selected row) and the columns of the same dataset (the benchmark)."""
    from mtl_core.metrics import mean_rank

    spec = study.get("table") or {}
    check_results(study, f"study {study.get('id')}")
    weightings = delta_m_weightings(spec)
    select = spec.get("select") is not None
    refs = study_references(study)
    hib = results.directions
    tables = []
    grouped = (
        {(b, m, ""): g for (b, m), g in bench_model(runs).items() if any(not r.is_stl for r in g)}
        if select
        else groups(runs)
    )
    for (bench, model, setting), group in grouped.items():
        found = reference_for(refs, bench)
        rows = _rows(group, select, results, weightings[0] if weightings else None)
        metrics = [
            m for m in hib if any(m in v for row in rows for v in row_values(row.runs, results, hib=hib).values())
        ]
        mean_columns = spec.get("columns") == "mean"
        if mean_columns:
            chosen = spec.get("metric")
            kinds = sorted({m.split("/")[1] for m in metrics})
            metrics_shown = [f"mean {k}" for k in kinds if chosen in (None, k)]
        else:
            metrics_shown = metrics
        columns = list(metrics_shown)
        higher: list[bool | None] = [
            hib[m] if m in hib else hib[next(x for x in metrics if x.endswith(m[5:]))] for m in metrics_shown
        ]
        # empty when the reference has no STL row (or lost its numbers)
        stl_of_paper = paper_stl(found, bench, results.units) if weightings else {}
        several = len(weightings) > 1
        for w in weightings:
            columns.append(_delta_m_column(w, "our STL", several))
            higher.append(False)
            if stl_of_paper:
                columns.append(_delta_m_column(w, "paper STL", several))
                higher.append(False)
        title = f"{study['title']} — {bench} / {model}" + (f" / {setting}" if setting else "")
        table = Table(title, columns, higher, benchmarks=[bench])
        ref = cite(table, found)
        if select:
            table.add_column("lr", None, {})
        per_row_means: dict[str, dict[str, float]] = {}
        for row in rows:
            seeds = row_values(row.runs, results, hib=hib)
            where = {"dataset": bench, "setting": row.paper_setting}
            cells = []
            means: dict[str, float] = {}
            for m in metrics_shown:
                if m.startswith("mean "):
                    key = m[5:]
                    per_task = [[v for n, v in s.items() if n.endswith("/" + key)] for s in seeds.values()]
                    vals = [statistics.fmean(v) if v else None for v in per_task]
                    paper = published(ref, row.method, kind="average", **where) if ref else None
                else:
                    vals = [s.get(m) for s in seeds.values()]
                    task, metric = m.split("/", 1)
                    unit = results.units.get(m)
                    paper = published(ref, row.method, task=task, metric=metric, unit=unit, **where) if ref else None
                mean, std = mean_std(vals)
                if mean is not None:
                    means[m] = mean
                cells.append(Cell(mean, std, paper))
            for w in weightings:
                dms = []
                if not row.is_stl:
                    for run_seed, values in seeds.items():
                        base = stl_baseline(stl_for(group, row.runs[0]), results, run_seed)
                        dms.append(delta_m(values, base, hib, w) if base else None)
                paper = None
                if ref and not row.is_stl:
                    paper = published(ref, row.method, kind="delta_m", weighting=w, **where)
                cells.append(Cell(*mean_std(dms), paper))
                if stl_of_paper:
                    vs_paper = [delta_m(v, stl_of_paper, hib, w) for v in seeds.values()] if not row.is_stl else []
                    cells.append(Cell(*mean_std(vs_paper)))
            if select:
                cells.append(_lr_cell(row, ref))
            per_row_means[row.label] = means
            table.add(row.label, cells, rank=not row.is_stl)
        if select:
            table.notes.append(
                "one row per method and optimizer at the lr of lowest validation Δm (mean over seeds), as seed 001 "
                "A3.2 selects; lr: ours beside the lr the paper selected"
            )
        if spec.get("mean_rank") and not mean_columns:
            ranked = {r.label: per_row_means[r.label] for r in rows if not r.is_stl}
            ranked = {k: v for k, v in ranked.items() if all(m in v for m in metrics)}
            if len(ranked) > 1:
                ranks = mean_rank(ranked, {m: hib[m] for m in metrics})
                table.add_column(
                    "MR",
                    False,
                    {
                        r.label: Cell(
                            ranks.get(r.label),
                            None,
                            published(ref, r.method, kind="mean_rank", dataset=bench, setting=r.paper_setting)
                            if ref and not r.is_stl
                            else None,
                        )
                        for r in rows
                    },
                )
        tables.append(table)
    return tables


def _lr_cell(row: _ResultRow, ref: Any) -> Cell:
    """The lr a selected row runs at, beside the lr of the paired published row (text cells: no gap)."""
    lr = row.runs[0].config["optimizer"].get("lr")
    ours = DASH if lr is None else f"{lr:g}"
    paper = paper_row_setting(ref, row.method, row.paper_setting) if ref else None
    shown = None
    if ref is not None:
        paper_lr = (paper or {}).get("lr")
        shown = Published(None, None, f"{paper_lr:g}" if isinstance(paper_lr, int | float) else DASH)
    return Cell(None, None, shown, text=ours)


@register("delta_m")
def delta_m_table(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> list[Table]:
    """Rows = methods, columns = benchmarks: Delta_m% (metric-weighted) against our STL runs, mean ± std over
    seeds of the per-seed Delta_m. Each cell is paired with the published cell of the same method, setting
    (the method entry's ``setting:``, e.g. 002 Table 14's normalisation) and benchmark."""
    refs = study_references(study)
    benches = list(dict.fromkeys(r.benchmark for r in runs))
    table = Table(study["title"], [f"{b} Δm%" for b in benches], [False] * len(benches), benchmarks=benches)
    ref = cite(table, refs[0] if refs else None)
    for label in dict.fromkeys(r.label for r in runs if not r.is_stl):
        cells = []
        for bench in benches:
            row = [r for r in runs if r.benchmark == bench and r.label == label and not r.is_stl]
            dms = []
            for seed, values in row_values(row, results).items():
                base = stl_baseline(stl_for(runs, row[0]), results, seed)
                if base:
                    dms.append(delta_m(values, base, results.directions, "metric"))
            paper = None
            if ref and row:
                setting = row[0].reference_setting
                paper = published(ref, row[0].method, kind="delta_m", dataset=bench, setting=setting)
            cells.append(Cell(*mean_std(dms), paper))
        table.add(label, cells)
    table.notes.append("Δm% against our STL runs of the same benchmark, model and seed (lower is better)")
    return [table]


def _dominates(a: Mapping[str, float], b: Mapping[str, float], hib: Mapping[str, bool]) -> bool:
    """Pareto dominance: ``a`` is at least as good as ``b`` on every metric and better on one."""
    better_or_equal = all((a[m] >= b[m]) if hib[m] else (a[m] <= b[m]) for m in a)
    strictly = any((a[m] > b[m]) if hib[m] else (a[m] < b[m]) for m in a)
    return better_or_equal and strictly


PARETO_GROUPS = ("optimizer",)


def check_pareto(study: Mapping[str, Any], where: str) -> None:
    """ValueError naming the study file and the bad ``table`` field of a Pareto study."""
    spec = study.get("table") or {}
    unknown = sorted(set(spec) - {"group", "exclude_below"})
    if unknown:
        raise ValueError(f"{where}: table has unknown field(s) {unknown}; valid: exclude_below, group")
    if spec.get("group", "optimizer") not in PARETO_GROUPS:
        raise ValueError(f"{where}: table.group {spec['group']!r}; valid: {', '.join(PARETO_GROUPS)}")
    floors = spec.get("exclude_below") or {}
    if not isinstance(floors, Mapping) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in floors.values()
    ):
        raise ValueError(f"{where}: table.exclude_below {floors!r}; valid: {{<task>/<metric>: <finite number>}}")


def pareto_points(
    group: Sequence[grid.RunSpec], results: Results, exclude_below: Mapping[str, float] | None = None
) -> list[tuple[grid.RunSpec, dict[str, float]]]:
    """(run, test metrics common to all) of the MTL runs of a group that are valid: finite metrics (the seed
    drops NaN runs) and none of ``exclude_below``'s metrics under its floor (seed 001 Table 2: "runs with
    mIoU < 0.1 removed"; our mIoU is in %, so the floor is 10)."""
    floors = exclude_below or {}
    points = []
    for run in group:
        if run.is_stl:
            continue
        values = flat(results[run.run_id]["eval"]["test"])
        if not all(math.isfinite(v) for v in values.values()):
            continue
        if any(name in values and values[name] < floor for name, floor in floors.items()):
            continue
        points.append((run, values))
    names = set.intersection(*(set(v) for _, v in points)) if points else set()
    return [(r, {n: v[n] for n in sorted(names)}) for r, v in points]


def _on_front(
    mine: Sequence[Mapping[str, float]], others: Sequence[Mapping[str, float]], hib: Mapping[str, bool]
) -> list[bool]:
    """For each point of ``mine``: whether no point of ``others`` (other than itself) dominates it."""
    return [not any(_dominates(w, v, hib) for w in others if w is not v) for v in mine]


# Seed 001 Table 2's columns (as printed: the reference's column names) and what each counts
# (name, the optimizer whose runs are counted, against: "valid" = count them, "all" = on the overall front,
# else not dominated by any run of that optimizer)
_TABLE2_COLUMNS = (
    ("#Exp. valid Adam", "adam", "valid"),
    ("#Exp. valid SGD", "sgd", "valid"),
    ("Adam PO (full)", "adam", "all"),
    ("Adam PO w.r.t. SGD", "adam", "sgd"),
    ("SGD+mom PO (full)", "sgd", "all"),
    ("SGD+mom PO w.r.t. Adam", "sgd", "adam"),
)


@register("pareto", figures=figures.parallel_coordinates, check=check_pareto)
def pareto(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> list[Table]:
    """Seed 001 Table 2: Pareto-optimal runs (over all test metrics, every seed a run) per optimizer, overall
    and w.r.t. the other optimizer's runs, beside the published row of the same dataset and network; and
    Table A2: per optimizer, the runs of each method on the overall front, beside the published cell of the
    same dataset, network, optimizer and method. Runs with non-finite metrics or under ``exclude_below``
    are left out, as the seed drops them."""
    check_pareto(study, f"study {study.get('id')}")
    hib = results.directions
    floors = (study.get("table") or {}).get("exclude_below") or {}
    refs = study_references(study)
    per_method_ref = next((r for r in refs if any(c.method for c in r.columns)), None)
    overall_ref = next((r for r in refs if r is not per_method_ref), None)
    overall = Table(study["title"], [c for c, _, _ in _TABLE2_COLUMNS], [None, None, True, True, True, True])
    overall_cited = cite(overall, overall_ref)
    grouped = {k: g for k, g in bench_model(runs).items() if any(not r.is_stl for r in g)}
    labels = list(dict.fromkeys(r.label for r in runs if not r.is_stl))
    methods = {r.label: r.method for r in runs if not r.is_stl}
    per_method = Table(
        f"{study['title']} — Pareto-optimal runs per method (Table A2)", [*labels, "Total"], [True] * (len(labels) + 1)
    )
    per_method_cited = cite(per_method, per_method_ref)
    for (bench, model), group in grouped.items():
        pts = pareto_points(group, results, floors)
        everyone = [v for _, v in pts]
        cells = []
        for column, opt, against in _TABLE2_COLUMNS:
            mine = [v for r, v in pts if _optimizer(r) == opt]
            if against == "valid":
                value = len(mine)
            else:
                others = [v for r, v in pts if against == "all" or _optimizer(r) == against]
                value = sum(_on_front(mine, others, hib))
            paper = column_cell(overall_cited, column, dataset=bench, model=model) if overall_cited else None
            cells.append(Cell(value, None, paper))
        overall.add(f"{bench} / {model}", cells, rank=False)
        front = dict(zip((id(v) for v in everyone), _on_front(everyone, everyone, hib)))
        for opt in ("adam", "sgd"):
            counts = []
            for label in labels:
                value = sum(front[id(v)] for r, v in pts if r.label == label and _optimizer(r) == opt)
                paper = None
                if per_method_cited:
                    column = next((c.name for c in per_method_cited.columns if c.method == methods[label]), None)
                    paper = column_cell(per_method_cited, column, dataset=bench, model=model, optimizer=opt)
                counts.append(Cell(value, None, paper))
            total = column_cell(per_method_cited, "Total", dataset=bench, model=model, optimizer=opt)
            counts.append(Cell(sum(c.mean or 0 for c in counts), None, total if per_method_cited else None))
            per_method.add(f"{bench} / {model} / {opt}", counts, rank=False)
    floors_text = ", ".join(f"{n} < {v:g}" for n, v in floors.items())
    for table in (overall, per_method):
        table.notes.append(
            "counts of our runs (every seed of every lr a run); runs with a non-finite metric"
            + (f" or {floors_text}" if floors else "")
            + " are left out, as the seed removes them"
        )
    return [overall, per_method]


def relative_drop(clean: Mapping[str, float], corrupted: Mapping[str, float], hib: Mapping[str, bool]) -> dict:
    """Seed 001 eq. (6) ingredient: the relative performance decrease on corrupted data, a fraction (positive =
    worse): ``1 - M_corrupted / M_clean`` when higher is better, ``M_corrupted / M_clean - 1`` otherwise, so
    that ``(-1)^p(t) delta_{t,c,s}`` = drop(MTL) - drop(STL)."""
    out = {}
    for name, c in clean.items():
        if name in corrupted and c != 0:
            sign = 1.0 if hib[name] else -1.0
            out[name] = sign * (c - corrupted[name]) / abs(c)
    return out


def _drops(rs: Sequence[grid.RunSpec], results: Results) -> dict[int, dict[str, list[float]]]:
    """Per seed and metric: the relative drops over every corruption and severity."""
    out: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in rs:
        ev = results[run.run_id]["eval"]
        clean = flat(ev["corrupted_clean"])
        for severities in ev["corrupted"].values():
            for metrics in severities.values():
                for n, d in relative_drop(clean, flat(metrics), results.directions).items():
                    out[run.seed][n].append(d)
    return out


@register("robustness", figures=figures.corruption_heatmaps)
def robustness(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> list[Table]:
    """Seed 001 Table 3/A8/A9, eq. (6): delta_t = mean over corruptions and severities of drop(MTL) - drop(STL)
    per seed (MTL and STL runs of the same seed; the STL baseline per task is the best on validation where
    the STL runs sweep an lr grid), then mean ± std over seeds; in the paper's units (fractions, not
    percent). delta_t > 0: STL degrades less than MTL. Rows are paired with the published row of the same
    method and network (Tables A8/A9 print both networks)."""
    refs = study_references(study)
    tables = []
    for (bench, model), group in bench_model(runs).items():
        if not any(not r.is_stl for r in group):
            continue
        stl = _drops(best_stl_runs([r for r in group if r.is_stl], results, results.directions), results)
        metrics = sorted({n for s in stl.values() for n in s})
        table = Table(
            f"{study['title']} — {bench} / {model}",
            [*metrics, "Mean"],
            [False] * (len(metrics) + 1),
            benchmarks=[bench],
        )
        ref = cite(table, reference_for(refs, bench))
        for label, rows in method_rows([r for r in group if not r.is_stl]).items():
            mtl = _drops(rows, results)
            where = {"dataset": bench, "setting": {"model": model, **rows[0].reference_setting}}
            per_seed: dict[str, dict[int, float]] = {
                n: {
                    s: statistics.fmean(mtl[s][n]) - statistics.fmean(stl[s][n])
                    for s in mtl
                    if n in mtl[s] and s in stl and n in stl[s]
                }
                for n in metrics
            }
            cells = []
            for n in metrics:
                task, metric = n.split("/", 1)
                paper = published(ref, rows[0].method, task=task, metric=metric, **where) if ref else None
                cells.append(Cell(*mean_std(list(per_seed[n].values())), paper))
            # The paper's Mean column: the mean of the row's per-metric deltas (per seed, over the metrics that
            # seed has every one of), then mean ± std over seeds.
            seeds = [s for s in mtl if all(s in per_seed[n] for n in metrics)]
            means = [statistics.fmean(per_seed[n][s] for n in metrics) for s in seeds] if metrics else []
            paper = published(ref, rows[0].method, kind="average", **where) if ref else None
            cells.append(Cell(*mean_std(means), paper))
            table.add(label, cells)
        table.notes.append(
            "δ_t (seed 001 eq. 6) as a fraction, as the paper prints it; δ_t > 0: STL degrades less than MTL "
            "on the corrupted test sets; Mean: the mean of a row's δ_t over the metrics"
        )
        tables.append(table)
    return tables


def seconds_per_step(final: Mapping[str, Any]) -> float:
    return final["seconds"] / max(final["steps"], 1)


def peak_mib(final: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """A run's peak memory in MiB and its measure (:mod:`mtl_pipelines.memory`); (None, None) for a run trained
    before the measure existed or where none is available."""
    peak = final.get("peak_memory") or {}
    if peak.get("bytes") is None:
        return None, None
    return peak["bytes"] / 2**20, peak["measure"]


@register("cost", figures=figures.efficiency)
def cost(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> list[Table]:
    """Seconds per training step and peak memory of the training steps per method (seed 002 Table 3 / Fig. 4,
    seed 004 Fig. 3), each relative to LS when present; the time ratio beside the paper's symbolic overhead of
    the method's estimator (002 Table 3's row of the same estimator)."""
    refs = study_references(study)
    table = Table(study["title"], ["s / step", "× LS", "peak MiB", "memory × LS"], [False, False, False, False])
    ref = cite(table, refs[0] if refs else None)
    measures: set[str] = set()
    per: dict[str, tuple] = {}
    for label, rows in method_rows(runs).items():
        peaks = [peak_mib(results[r.run_id]["final"]) for r in rows]
        measures |= {m for _, m in peaks if m}
        per[label] = (
            rows[0].method,
            mean_std([seconds_per_step(results[r.run_id]["final"]) for r in rows]),
            mean_std([p for p, _ in peaks]),
        )
    ls_time, ls_memory = (per["ls"][1][0], per["ls"][2][0]) if "ls" in per else (None, None)
    for label, (method, (mean, std), (mib, mib_std)) in per.items():
        estimator = method.split("+")[0] if "+" in method else "exact"
        overhead = column_cell(ref, "Overheads", estimator=estimator) if ref else None
        table.add(
            label,
            [
                Cell(mean, std),
                Cell(mean / ls_time if mean and ls_time else None, None, overhead),
                Cell(mib, mib_std),
                Cell(mib / ls_memory if mib is not None and ls_memory else None),
            ],
        )
    table.notes.append("wall time includes the per-epoch evaluation; timing columns are machine-dependent")
    table.notes.append(
        "peak memory of the training steps: "
        + (", ".join(sorted(measures)) if measures else "not recorded")
        + " (mtl_pipelines.memory: cuda_max_allocated = torch.cuda.max_memory_allocated; rss_peak_increase = "
        "the process's peak resident size during the steps minus its size before them, CPU)"
    )
    if len(measures) > 1:
        table.banners.append(f"peak memory measured in different ways across runs ({sorted(measures)}): not comparable")
    return [table]


@register("diagnostics", figures=figures.diagnostics_over_training, check=check_figure)
def diagnostics(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> list[Table]:
    """Gradient diagnostics over training, pooled over every record (epoch) of every seed of a row: mean ± std
    of the pairwise cosines, magnitude similarities, the per-record conflict share and the finite condition
    numbers (seed 003's condition number of the gradient system), of the task gradients w.r.t. the shared
    parameters and, in a row of its own, w.r.t. the shared representation z where the runs recorded them
    (seed 004 Fig. 2; :mod:`mtl_pipelines.representation`)."""
    table = Table(
        study["title"], ["cosine", "magnitude sim.", "conflict %", "condition number"], [None, None, None, None]
    )
    for label, rows in method_rows(runs).items():
        records = [d for r in rows for d in results[r.run_id]["diagnostics"]]
        wrt_z = [d["z"] for d in records if d.get("z")]
        for name, pooled in (
            (f"{label} ({rows[0].benchmark})", records),
            (f"{label} ({rows[0].benchmark}, ∂/∂z)", wrt_z),
        ):
            if not pooled and name.endswith("∂/∂z)"):
                continue
            cos = [c for d in pooled for c in d["cosine"]]
            mag = [c for d in pooled for c in d["magnitude_similarity"]]
            cond = [d["condition_number"] for d in pooled if math.isfinite(d["condition_number"])]
            conflict = [conflict_percent(d["cosine"]) for d in pooled]
            table.add(
                name,
                [Cell(*mean_std(cos)), Cell(*mean_std(mag)), Cell(*mean_std(conflict)), Cell(*mean_std(cond))],
                rank=False,
            )
    return [table]
