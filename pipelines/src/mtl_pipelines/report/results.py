"""What the builders read: the evaluated runs of a study (:class:`Results`), grouped by benchmark, model,
setting, method row and seed, and the statistics over seeds."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mtl_pipelines import grid, kinds
from mtl_pipelines.evaluate import best_stl_candidate, flat

__all__ = [
    "Results",
    "bench_model",
    "best_stl_runs",
    "delta_m",
    "directions",
    "groups",
    "load_results",
    "mean_std",
    "method_rows",
    "row_values",
    "stl_baseline",
    "stl_for",
]


@dataclass(frozen=True)
class Results(Mapping[str, Mapping[str, Any]]):
    """The evaluated runs of a study, by run id: ``{"eval": eval.json, "final": final.json,
    "diagnostics": [diagnostics.jsonl records]}``, the direction of every ``task/metric``
    (``directions[name]``: True when higher is better) and its unit (``units[name]``, e.g. ``%``)."""

    runs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    directions: Mapping[str, bool] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, run_id: str) -> Mapping[str, Any]:
        return self.runs[run_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)


def load_results(profile: Mapping[str, Any], runs: Mapping[str, grid.RunSpec]) -> Results:
    """The results of every run of ``runs`` (FileNotFoundError names a missing file: the report never silently
    drops a run) and the metric directions of their datasets. A supervised run's results hold its ``eval.json``;
    a run evaluated while it trains (MT10 SAC, :mod:`mtl_pipelines.kinds`) only its ``final.json``."""
    # through the run layer of each run's kind: every file is checked against the run's config (a final.json or
    # eval.json of another config is refused)
    out = {
        run_id: kinds.run_class(run.config)(grid.run_dir(profile, run_id), run.config).read_results()
        for run_id, run in runs.items()
    }
    specs = list(runs.values())
    return Results(out, directions(specs), units(specs))


def directions(runs: Sequence[grid.RunSpec]) -> dict[str, bool]:
    """``{"task/metric": higher_is_better}`` of the test split of every dataset the runs use."""
    return {name: metric.higher_is_better for name, metric in _metrics(runs).items()}


def units(runs: Sequence[grid.RunSpec]) -> dict[str, str]:
    """``{"task/metric": unit}`` (``mtl_data`` metric units: ``%`` for percentages in [0, 100])."""
    return {name: metric.unit for name, metric in _metrics(runs).items()}


def _metrics(runs: Sequence[grid.RunSpec]) -> dict[str, Any]:
    """``{"task/metric": mtl_data Metric}`` of the test split of every dataset the runs use."""
    import mtl_data

    out: dict[str, Any] = {}
    done: set[str] = set()
    for run in runs:
        if run.kind != kinds.SUPERVISED:  # no dataset: an MT10 run's success rate is read by its own builder
            continue
        ds = run.config["dataset"]
        if ds["name"] in done:
            continue
        options = {**ds.get("options", {}), **ds.get("split_options", {}).get("test", {})}
        dataset = mtl_data.create(ds["name"], split="test", root=ds.get("root"), **options)
        for task, spec in dataset.tasks.items():
            for metric in spec.metrics:
                out[f"{task}/{metric.name}"] = metric
        done.add(ds["name"])
    return out


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1) of the finite values (std None for fewer than two)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None, None
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else None)


def delta_m(
    values: Mapping[str, float], baseline: Mapping[str, float], hib: Mapping[str, bool], weighting: str
) -> float | None:
    """Delta_m% of ``values`` against ``baseline`` over their common metrics with a non-zero baseline
    (``mtl_core.metrics.delta_m``; ``weighting`` ``"task"``: seed 003's task-weighted variant)."""
    from mtl_core.metrics import delta_m as core_delta_m

    names = [n for n in values if n in baseline and baseline[n] not in (0, None)]
    if not names:
        return None
    tasks = None
    if weighting == "task":
        tasks = defaultdict(list)
        for n in names:
            tasks[n.split("/")[0]].append(n)
    return core_delta_m(
        {n: values[n] for n in names}, {n: baseline[n] for n in names}, {n: hib[n] for n in names}, tasks
    )


def groups(runs: Sequence[grid.RunSpec]) -> dict[tuple[str, str, str], list[grid.RunSpec]]:
    """Runs by (benchmark, model, setting) of the MTL runs: one results table each, with the STL runs that are
    their baseline (same benchmark and model, and the STL group of one of the table's runs: the same setting
    by default; seed 001's STL runs follow their own lr grid, all in one group). Runs keep their order; a
    study of STL runs only is grouped by the STL runs' setting."""

    def key(run: grid.RunSpec) -> tuple[str, str, str]:
        return (run.benchmark, run.model_key, run.setting)

    mtl = [r for r in runs if not r.is_stl]
    if not mtl:
        only: dict[tuple[str, str, str], list[grid.RunSpec]] = defaultdict(list)
        for run in runs:
            only[key(run)].append(run)
        return only
    wanted: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for run in mtl:
        wanted[key(run)].add(run.stl_group)
    out: dict[tuple[str, str, str], list[grid.RunSpec]] = {k: [] for k in wanted}
    for run in runs:
        for k, stl_groups in wanted.items():
            if run.is_stl:
                belongs = (run.benchmark, run.model_key) == k[:2] and run.stl_group in stl_groups
            else:
                belongs = key(run) == k
            if belongs:
                out[k].append(run)
    return out


def bench_model(runs: Sequence[grid.RunSpec]) -> dict[tuple[str, str], list[grid.RunSpec]]:
    """Runs by (benchmark, model)."""
    out: dict[tuple[str, str], list[grid.RunSpec]] = defaultdict(list)
    for run in runs:
        out[(run.benchmark, run.model_key)].append(run)
    return out


def method_rows(runs: Sequence[grid.RunSpec]) -> dict[str, list[grid.RunSpec]]:
    """Runs by row label (all single-task runs form the row ``STL``), in first-seen order."""
    rows: dict[str, list[grid.RunSpec]] = defaultdict(list)
    for run in runs:
        rows["STL" if run.is_stl else run.label].append(run)
    return rows


def best_stl_runs(runs: Sequence[grid.RunSpec], results: Mapping[str, Any], hib: Mapping[str, bool]) -> list:
    """The STL runs of ``runs`` that are the baseline: per seed and task, the best on validation where a task
    has several (an STL lr grid; :func:`mtl_pipelines.evaluate.best_stl_candidate`, the criterion evaluation
    uses), else the only one."""
    by_task: dict[tuple[int, str | None], list[grid.RunSpec]] = defaultdict(list)
    for run in runs:
        if run.is_stl:
            by_task[(run.seed, run.task)].append(run)
    chosen = {
        best_stl_candidate({r.run_id: results[r.run_id]["eval"] for r in group}, hib) for group in by_task.values()
    }
    return [r for r in runs if r.run_id in chosen]


def row_values(
    rows: Sequence[grid.RunSpec],
    results: Mapping[str, Any],
    part: str = "test",
    hib: Mapping[str, bool] | None = None,
) -> dict[int, dict]:
    """Per seed: the flat metrics of a row (per-task rows merge their single-task runs; an STL row keeps the
    best candidate per task and seed, see :func:`best_stl_runs`, which needs the directions ``hib``)."""
    if any(r.is_stl for r in rows):
        rows = best_stl_runs(rows, results, hib if hib is not None else getattr(results, "directions", {}))
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for run in rows:
        out[run.seed].update(flat(results[run.run_id]["eval"][part]))
    return out


def stl_baseline(runs: Sequence[grid.RunSpec], results: Mapping[str, Any], seed: int, part: str = "test") -> dict:
    """The flat metrics of the STL baseline of ``seed`` among ``runs`` (the Delta_m baseline): one STL run
    per task, the best on validation where a task has several candidates (:func:`best_stl_runs`)."""
    return row_values([r for r in runs if r.is_stl and r.seed == seed], results, part).get(seed, {})


def stl_for(runs: Sequence[grid.RunSpec], run: grid.RunSpec) -> list[grid.RunSpec]:
    """The STL runs among ``runs`` that can be ``run``'s baseline: same benchmark, model and STL group (any
    seed; :func:`stl_baseline` picks the seed)."""
    return [
        r
        for r in runs
        if r.is_stl and r.benchmark == run.benchmark and r.model_key == run.model_key and r.stl_group == run.stl_group
    ]
