"""Summary measures of multi-task results: Delta_m and Mean Rank."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def _check_metric(name: str, value: float, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{where}[{name!r}] must be a finite number, got {value!r}")
    return float(value)


def delta_m(
    results: Mapping[str, float],
    baseline: Mapping[str, float],
    higher_is_better: Mapping[str, bool],
    tasks: Mapping[str, Sequence[str]] | None = None,
) -> float:
    """Average relative change to a baseline, in percent (Maninis et al. 2019; seed 000/002/004 Delta_m%).

    ``Delta_m = 100 / M * sum_j (-1)^{h_j} (R_j - B_j) / B_j`` over the M metrics, with ``h_j = 1`` when higher
    is better: as in the seeds, lower is better and a method that improves every metric has Delta_m < 0.
    With ``tasks = {task: [metric, ...]}`` the task-weighted variant of seed 003 is returned: metrics are
    first averaged within each task, then tasks are averaged (no task dominates by its metric count).
    """
    if not results:
        raise ValueError("results is empty")
    unknown = sorted(set(results) - set(baseline))
    if unknown:
        raise ValueError(f"baseline has no value for metric(s) {unknown}; it has {sorted(baseline)}")
    missing = sorted(set(results) - set(higher_is_better))
    if missing:
        raise ValueError(f"higher_is_better lacks metric(s) {missing}")

    def rel(name: str) -> float:
        r = _check_metric(name, results[name], "results")
        b = _check_metric(name, baseline[name], "baseline")
        if b == 0:
            raise ValueError(f"baseline[{name!r}] is 0: relative change undefined")
        sign = -1.0 if higher_is_better[name] else 1.0
        return sign * (r - b) / abs(b)

    if tasks is None:
        return 100.0 * sum(rel(m) for m in results) / len(results)
    per_task = []
    for task, metrics in tasks.items():
        metrics = list(metrics)
        if not metrics:
            raise ValueError(f"task {task!r} lists no metric")
        absent = sorted(set(metrics) - set(results))
        if absent:
            raise ValueError(f"task {task!r} lists metric(s) {absent} missing from results")
        per_task.append(sum(rel(m) for m in metrics) / len(metrics))
    return 100.0 * sum(per_task) / len(per_task)


def mean_rank(table: Mapping[str, Mapping[str, float]], higher_is_better: Mapping[str, bool]) -> dict[str, float]:
    """Mean Rank (seed 004): rank the methods on every metric (1 = best, ties share the average rank)."""
    methods = list(table)
    if not methods:
        raise ValueError("table is empty")
    metrics = list(higher_is_better)
    ranks: dict[str, list[float]] = {m: [] for m in methods}
    for metric in metrics:
        values = {m: _check_metric(metric, table[m][metric], f"table[{m!r}]") for m in methods}
        ordered = sorted(methods, key=lambda m: -values[m] if higher_is_better[metric] else values[m])
        i = 0
        while i < len(ordered):
            j = i
            while j + 1 < len(ordered) and values[ordered[j + 1]] == values[ordered[i]]:
                j += 1
            for m in ordered[i : j + 1]:
                ranks[m].append((i + j) / 2 + 1)
            i = j + 1
    return {m: sum(r) / len(r) for m, r in ranks.items()}
