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
from typing import Any

from mtl_pipelines import grid
from mtl_pipelines.evaluate import flat
from mtl_pipelines.report import figures
from mtl_pipelines.report.published import cite, paper_stl, published, study_references
from mtl_pipelines.report.registry import register
from mtl_pipelines.report.results import (
    Results,
    bench_model,
    delta_m,
    groups,
    mean_std,
    method_rows,
    row_values,
    stl_baseline,
)
from mtl_pipelines.report.tables import Cell, Table

__all__ = ["cost", "delta_m_table", "diagnostics", "pareto", "relative_drop", "results_table", "robustness"]


@register("results")
def results_table(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> list[Table]:
    """Method x metric tables (one per benchmark/model/setting group), with the study's ``table`` options:
    ``delta_m: metric|task`` adds Delta_m% against our STL (and against the paper's STL row where the reference
    prints one), ``mean_rank: true`` the Mean Rank of seed 004 (``mtl_core.metrics.mean_rank`` over the rows'
    seed means), ``columns: mean`` (+ ``metric``) one column per metric kind averaged over tasks."""
    from mtl_core.metrics import mean_rank

    spec = study.get("table") or {}
    weighting = spec.get("delta_m") or None
    refs = {r.dataset if isinstance(r.dataset, str) else None: r for r in study_references(study)}
    hib = results.directions
    tables = []
    for (bench, model, setting), group in groups(runs).items():
        found = refs.get(bench) or (next(iter(refs.values())) if len(refs) == 1 else None)
        rows = method_rows(group)
        metrics = [m for m in hib if any(m in v for r in rows.values() for v in row_values(r, results).values())]
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
        stl_of_paper: dict[str, float] = {}
        if weighting:
            columns.append("Δm% (ours vs our STL)")
            higher.append(False)
            stl_of_paper = paper_stl(found)  # empty when the table prints no STL row (or lost its numbers)
            if stl_of_paper:
                columns.append("Δm% (ours vs paper STL)")
                higher.append(False)
        title = f"{study['title']} — {bench} / {model}" + (f" / {setting}" if setting else "")
        table = Table(title, columns, higher)
        ref = cite(table, found)
        per_row_means: dict[str, dict[str, float]] = {}
        for label, row_runs in rows.items():
            method = row_runs[0].method
            seeds = row_values(row_runs, results)
            cells = []
            means: dict[str, float] = {}
            for m in metrics_shown:
                if m.startswith("mean "):
                    key = m[5:]
                    vals = [
                        statistics.fmean([v for n, v in s.items() if n.endswith("/" + key)]) for s in seeds.values()
                    ]
                    paper = published(ref, method, kind="average") if ref else None
                else:
                    vals = [s.get(m) for s in seeds.values()]
                    task, metric = m.split("/", 1)
                    paper = published(ref, method, task=task, metric=metric) if ref else None
                mean, std = mean_std(vals)
                if mean is not None:
                    means[m] = mean
                cells.append(Cell(mean, std, paper))
            if weighting:
                dms = []
                for seed, values in seeds.items():
                    base = stl_baseline(group, results, seed)
                    dms.append(delta_m(values, base, hib, weighting) if base and label != "STL" else None)
                mean, std = mean_std(dms)
                paper = published(ref, method, kind="delta_m") if ref and label != "STL" else None
                cells.append(Cell(mean, std, paper))
                if stl_of_paper:
                    vs_paper = (
                        [delta_m(v, stl_of_paper, hib, weighting) for v in seeds.values()] if label != "STL" else []
                    )
                    cells.append(Cell(*mean_std(vs_paper)))
            per_row_means[label] = means
            table.add(label, cells, rank=label != "STL")
        if spec.get("mean_rank") and not mean_columns:
            ranked = {k: v for k, v in per_row_means.items() if k != "STL" and all(m in v for m in metrics)}
            if len(ranked) > 1:
                ranks = mean_rank(ranked, {m: hib[m] for m in metrics})
                table.add_column(
                    "MR",
                    False,
                    {
                        label: Cell(
                            ranks.get(label),
                            None,
                            published(ref, rows[label][0].method, kind="mean_rank") if ref and label != "STL" else None,
                        )
                        for label in rows
                    },
                )
        tables.append(table)
    return tables


@register("delta_m")
def delta_m_table(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> list[Table]:
    """Rows = methods, columns = benchmarks: Delta_m% (metric-weighted) against our STL runs, mean ± std over
    seeds of the per-seed Delta_m."""
    refs = study_references(study)
    benches = list(dict.fromkeys(r.benchmark for r in runs))
    table = Table(study["title"], [f"{b} Δm%" for b in benches], [False] * len(benches))
    ref = cite(table, refs[0] if refs else None)
    for label in dict.fromkeys(r.label for r in runs if not r.is_stl):
        cells = []
        for bench in benches:
            group = [r for r in runs if r.benchmark == bench]
            row = [r for r in group if r.label == label]
            dms = []
            for seed, values in row_values(row, results).items():
                base = stl_baseline(group, results, seed)
                if base:
                    dms.append(delta_m(values, base, results.directions, "metric"))
            method = row[0].method if row else label
            options = row[0].config["method"]["options"] if row else {}
            paper = published(ref, method, kind="delta_m", dataset=bench, setting=options) if ref else None
            cells.append(Cell(*mean_std(dms), paper))
        table.add(label, cells)
    table.notes.append("Δm% against our STL runs of the same benchmark, model and seed (lower is better)")
    return [table]


def _dominates(a: Mapping[str, float], b: Mapping[str, float], hib: Mapping[str, bool]) -> bool:
    """Pareto dominance: ``a`` is at least as good as ``b`` on every metric and better on one."""
    better_or_equal = all((a[m] >= b[m]) if hib[m] else (a[m] <= b[m]) for m in a)
    strictly = any((a[m] > b[m]) if hib[m] else (a[m] < b[m]) for m in a)
    return better_or_equal and strictly


def pareto_points(group: Sequence[grid.RunSpec], results: Results) -> list[tuple[str, dict[str, float]]]:
    """(optimizer, test metrics common to all) of the MTL runs of a group with finite metrics."""
    points = []
    for run in group:
        if run.is_stl:
            continue
        values = flat(results[run.run_id]["eval"]["test"])
        if all(math.isfinite(v) for v in values.values()):
            points.append((run.config["optimizer"]["name"], values))
    names = set.intersection(*(set(v) for _, v in points)) if points else set()
    return [(o, {n: v[n] for n in sorted(names)}) for o, v in points]


@register("pareto", figures=figures.parallel_coordinates)
def pareto(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> list[Table]:
    """Seed 001 Table 2: Pareto-optimal runs (over all test metrics) per optimizer, overall and w.r.t. the
    other optimizer's runs; runs with non-finite metrics are excluded (as the seed drops NaN runs)."""
    hib = results.directions
    table = Table(
        study["title"],
        ["#runs [adam / sgd]", "Adam PO (full)", "Adam PO w.r.t. SGD", "SGD PO (full)", "SGD PO w.r.t. Adam"],
        [None, True, True, True, True],
    )
    for (bench, model), group in bench_model(runs).items():
        pts = pareto_points(group, results)

        def po(opt: str, against: str | None, pts: list = pts) -> int:
            mine = [v for o, v in pts if o == opt]
            others = [v for o, v in pts if against is None or o == against]
            return sum(not any(_dominates(w, v, hib) for w in others if w is not v) for v in mine)

        counts = {o: sum(1 for p, _ in pts if p == o) for o in ("adam", "sgd")}
        table.add(
            f"{bench} / {model}",
            [
                Cell(None, text=f"{counts['adam']} / {counts['sgd']}"),
                Cell(po("adam", None)),
                Cell(po("adam", "sgd")),
                Cell(po("sgd", None)),
                Cell(po("sgd", "adam")),
            ],
            rank=False,
        )
    table.notes.append("counts of our runs; the published counts are in references 001_table2 / 001_tableA2")
    return [table]


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
    per seed (MTL and STL runs of the same seed), then mean ± std over seeds; in the paper's units
    (fractions, not percent). delta_t > 0: STL degrades less than MTL."""
    refs = study_references(study)
    tables = []
    for (bench, model), group in bench_model(runs).items():
        stl = _drops([r for r in group if r.is_stl], results)
        metrics = sorted({n for s in stl.values() for n in s})
        table = Table(f"{study['title']} — {bench} / {model}", [*metrics, "Mean"], [False] * (len(metrics) + 1))
        ref = cite(table, refs[0] if refs else None)
        for label, rows in method_rows([r for r in group if not r.is_stl]).items():
            mtl = _drops(rows, results)
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
                paper = published(ref, rows[0].method, task=task, metric=metric) if ref else None
                cells.append(Cell(*mean_std(list(per_seed[n].values())), paper))
            # The paper's Mean column: the mean of the row's per-metric deltas (per seed, over the metrics that
            # seed has every one of), then mean ± std over seeds.
            seeds = [s for s in mtl if all(s in per_seed[n] for n in metrics)]
            means = [statistics.fmean(per_seed[n][s] for n in metrics) for s in seeds] if metrics else []
            paper = published(ref, rows[0].method, kind="average") if ref else None
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


@register("cost", figures=figures.efficiency)
def cost(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> list[Table]:
    """Seconds per training step per method (seed 002 Table 3 / Fig. 4), relative to LS when present."""
    table = Table(study["title"], ["s / step", "× LS"], [False, False])
    per = {
        label: mean_std([seconds_per_step(results[r.run_id]["final"]) for r in rows])
        for label, rows in method_rows(runs).items()
    }
    ls = per.get("ls", (None, None))[0]
    for label, (mean, std) in per.items():
        table.add(label, [Cell(mean, std), Cell(mean / ls if mean and ls else None)])
    table.notes.append("wall time includes the per-epoch evaluation; timing columns are machine-dependent")
    return [table]


def conflict_percent(cosines: Sequence[float]) -> float:
    """Share of task pairs with conflicting gradients (cosine < 0), in percent."""
    return 100.0 * sum(c < 0 for c in cosines) / max(len(cosines), 1)


@register("diagnostics", figures=figures.diagnostics_over_training)
def diagnostics(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> list[Table]:
    """Gradient diagnostics over training, pooled over every record (epoch) of every seed of a row: mean ± std
    of the pairwise cosines, magnitude similarities, the per-record conflict share and the finite condition
    numbers (seed 003's condition number of the gradient system)."""
    table = Table(
        study["title"], ["cosine", "magnitude sim.", "conflict %", "condition number"], [None, None, None, None]
    )
    for label, rows in method_rows(runs).items():
        records = [d for r in rows for d in results[r.run_id]["diagnostics"]]
        cos = [c for d in records for c in d["cosine"]]
        mag = [c for d in records for c in d["magnitude_similarity"]]
        cond = [d["condition_number"] for d in records if math.isfinite(d["condition_number"])]
        conflict = [conflict_percent(d["cosine"]) for d in records]
        table.add(
            f"{label} ({rows[0].benchmark})",
            [Cell(*mean_std(cos)), Cell(*mean_std(mag)), Cell(*mean_std(conflict)), Cell(*mean_std(cond))],
            rank=False,
        )
    return [table]
