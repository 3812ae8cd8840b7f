"""Study reports: tables (Markdown, LaTeX, CSV) in the seed's layout with the published numbers beside ours,
figures (matplotlib PNG) and ``index.md`` (+ ``index.html``).

Every cell shows ``ours`` as mean ± std over seeds and, where the study has a reference table, the
published value in parentheses; a published cell lost in extraction is shown as ``(lost)``, one the paper
leaves empty or that has no transcription as ``(–)``: nothing is invented. Best values of ours (per column,
over the methods other than STL) are bold. Delta_m (``mtl_core.metrics.delta_m``, metric- or task-weighted)
is computed against our own STL runs of the same benchmark, model, setting and seed, and, where the
reference table prints an STL row, also against the paper's STL numbers (column ``Δm% vs paper STL``).
"""

from __future__ import annotations

import csv
import io as stdio
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtl_pipelines import grid, io
from mtl_pipelines.evaluate import EVAL, flat
from mtl_pipelines.train import DIAGNOSTICS, FINAL

SUMMARY = "summary.json"  # a study's row of the index, written with its tables

__all__ = ["Table", "build", "load_results"]

DASH = "–"


class Table:
    """A rendered table: header, rows of cells ``(ours: float|None, std, paper: str)`` and notes."""

    def __init__(self, title: str, columns: list[str], higher: list[bool | None]) -> None:
        self.title = title
        self.columns = columns
        self.higher = higher
        self.rows: list[tuple[str, list[tuple[float | None, float | None, str | None]], bool]] = []
        self.notes: list[str] = []

    def add(self, name: str, cells: list[tuple[float | None, float | None, str | None]], rank: bool = True) -> None:
        self.rows.append((name, cells, rank))

    def best(self) -> list[float | None]:
        out: list[float | None] = []
        for j, hib in enumerate(self.higher):
            values = [cells[j][0] for _, cells, rank in self.rows if rank and cells[j][0] is not None]
            out.append(None if hib is None or not values else (max(values) if hib else min(values)))
        return out

    @staticmethod
    def _fmt(value: float | None, std: float | None) -> str:
        if value is None:
            return DASH
        text = f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
        return text if std is None else f"{text} ± {std:.2g}"

    def markdown(self) -> str:
        best = self.best()
        lines = [
            f"### {self.title}",
            "",
            "| method | " + " | ".join(self.columns) + " |",
            "|---|" + "---|" * len(self.columns),
        ]
        for name, cells, rank in self.rows:
            out = []
            for j, (v, s, paper) in enumerate(cells):
                text = self._fmt(v, s)
                if rank and v is not None and best[j] is not None and v == best[j]:
                    text = f"**{text}**"
                if paper is not None:
                    text += f" ({paper})"
                out.append(text)
            lines.append(f"| {name} | " + " | ".join(out) + " |")
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def latex(self) -> str:
        best = self.best()

        def esc(text: str) -> str:
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

        lines = [
            "\\begin{table}[t]",
            "\\centering",
            f"\\caption{{{esc(self.title)}}}",
            "\\begin{tabular}{l" + "r" * len(self.columns) + "}",
            "\\toprule",
            "Method & " + " & ".join(esc(c) for c in self.columns) + " \\\\",
            "\\midrule",
        ]
        for name, cells, rank in self.rows:
            out = []
            for j, (v, s, paper) in enumerate(cells):
                text = esc(self._fmt(v, s))
                if rank and v is not None and best[j] is not None and v == best[j]:
                    text = f"\\textbf{{{text}}}"
                if paper is not None:
                    text += f" ({esc(paper)})"
                out.append(text)
            lines.append(esc(name) + " & " + " & ".join(out) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
        return "\n".join(lines) + "\n"

    def csv_rows(self) -> list[dict[str, Any]]:
        out = []
        for name, cells, _ in self.rows:
            for column, (v, s, paper) in zip(self.columns, cells):
                out.append(
                    {
                        "table": self.title,
                        "row": name,
                        "column": column,
                        "ours_mean": v,
                        "ours_std": s,
                        "published": paper,
                    }
                )
        return out


# ------------------------------------------------------------------------------------------------ data
def load_results(profile: Mapping[str, Any], runs: Mapping[str, grid.RunSpec]) -> dict[str, dict[str, Any]]:
    """``{run_id: {"eval": eval.json, "final": final.json}}`` for every run (FileNotFoundError names a
    missing one: the report never silently drops a run)."""
    out = {}
    for run_id in runs:
        run_dir = grid.run_dir(profile, run_id)
        paths = {"eval": run_dir / EVAL, "final": run_dir / FINAL}
        for path in paths.values():
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: train and evaluate run {run_id} first")
        out[run_id] = {k: json.loads(p.read_text()) for k, p in paths.items()}
        diag = run_dir / DIAGNOSTICS
        out[run_id]["diagnostics"] = io.read_jsonl(diag) if diag.is_file() else []
    return out


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _directions(runs: Sequence[grid.RunSpec]) -> dict[str, bool]:
    import mtl_data

    out: dict[str, bool] = {}
    done: set[str] = set()
    for run in runs:
        ds = run.config["dataset"]
        if ds["name"] in done:
            continue
        options = {**ds.get("options", {}), **ds.get("split_options", {}).get("test", {})}
        dataset = mtl_data.create(ds["name"], split="test", root=ds.get("root"), **options)
        for task, spec in dataset.tasks.items():
            for metric, hib in spec.higher_is_better.items():
                out[f"{task}/{metric}"] = hib
        done.add(ds["name"])
    return out


def _delta_m(
    values: Mapping[str, float], baseline: Mapping[str, float], hib: Mapping[str, bool], weighting: str
) -> float | None:
    from mtl_core.metrics import delta_m

    names = [n for n in values if n in baseline and baseline[n] not in (0, None)]
    if not names:
        return None
    tasks = None
    if weighting == "task":
        tasks = defaultdict(list)
        for n in names:
            tasks[n.split("/")[0]].append(n)
    return delta_m({n: values[n] for n in names}, {n: baseline[n] for n in names}, {n: hib[n] for n in names}, tasks)


# ------------------------------------------------------------------------------------------------ references
def _references(study: Mapping[str, Any]) -> list[Any]:
    from mtl_pipelines import references

    out = []
    for ref_id in study.get("references", []):
        if ref_id in references.tables():
            out.append(references.load(ref_id))
    return out


def _published(
    ref: Any,
    method: str,
    *,
    task: str | None = None,
    metric: str | None = None,
    kind: str | None = None,
    dataset: str | None = None,
    setting: Mapping[str, Any] | None = None,
) -> str:
    """The published cell for (method, column) as text: number, ``lost``, or ``–`` (no such cell)."""
    if ref is None:
        return DASH
    for row in ref.find_rows(method):
        if setting and any(k in row.setting and row.setting[k] != v for k, v in setting.items()):
            continue
        for col, cell in zip(ref.columns, row.cells):
            if kind is not None and col.kind != kind:
                continue
            if metric is not None and (col.key != metric or col.task != task):
                continue
            if dataset is not None and col.dataset not in (None, dataset):
                continue
            if cell.value is not None:
                std = f" ± {cell.std:g}" if cell.std is not None else ""
                return f"{cell.value}{std}"
            return "lost" if cell.missing == "lost in extraction" else DASH
    return DASH


def _paper_stl(ref: Any) -> dict[str, float]:
    if ref is None:
        return {}
    rows = ref.find_rows("stl")
    if len(rows) != 1:
        return {}
    return {
        f"{c.task}/{c.key}": cell.value
        for c, cell in zip(ref.columns, rows[0].cells)
        if c.kind == "metric" and c.key and c.task and isinstance(cell.value, float | int)
    }


# ------------------------------------------------------------------------------------------------ builders
def _groups(runs: Sequence[grid.RunSpec]) -> dict[tuple[str, str, str], list[grid.RunSpec]]:
    out: dict[tuple[str, str, str], list[grid.RunSpec]] = defaultdict(list)
    for run in runs:
        out[(run.benchmark, run.model_key, run.setting)].append(run)
    return out


def _stl_baseline(runs: Sequence[grid.RunSpec], results: Mapping[str, Any], seed: int, part: str = "test") -> dict:
    base: dict[str, float] = {}
    for run in runs:
        if run.is_stl and run.seed == seed:
            base.update(flat(results[run.run_id]["eval"][part]))
    return base


def _method_rows(runs: Sequence[grid.RunSpec]) -> dict[str, list[grid.RunSpec]]:
    rows: dict[str, list[grid.RunSpec]] = defaultdict(list)
    for run in runs:
        rows["STL" if run.is_stl else run.label].append(run)
    return rows


def _row_values(rows: Sequence[grid.RunSpec], results: Mapping[str, Any], part: str = "test") -> dict[int, dict]:
    """Per seed: the flat metrics of a row (STL rows merge their single-task runs)."""
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for run in rows:
        out[run.seed].update(flat(results[run.run_id]["eval"][part]))
    return out


def build_results(study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]) -> list[Table]:
    """Method x metric tables (one per benchmark/model/setting group), Delta_m and Mean Rank columns."""
    from mtl_core.metrics import mean_rank

    spec = study.get("table") or {}
    weighting = spec.get("delta_m") or None
    refs = {r.dataset if isinstance(r.dataset, str) else None: r for r in _references(study)}
    hib = _directions(runs)
    tables = []
    for (bench, model, setting), group in _groups(runs).items():
        ref = refs.get(bench) or (next(iter(refs.values())) if len(refs) == 1 else None)
        rows = _method_rows(group)
        metrics = [m for m in hib if any(m in v for r in rows.values() for v in _row_values(r, results).values())]
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
        if weighting:
            columns.append("Δm% (ours vs our STL)")
            higher.append(False)
            paper_stl = _paper_stl(ref)
            if paper_stl:
                columns.append("Δm% (ours vs paper STL)")
                higher.append(False)
        title = f"{study['title']} — {bench} / {model}" + (f" / {setting}" if setting else "")
        table = Table(title, columns, higher)
        per_row_means: dict[str, dict[str, float]] = {}
        for label, row_runs in rows.items():
            seeds = _row_values(row_runs, results)
            cells = []
            means: dict[str, float] = {}
            for m in metrics_shown:
                if m.startswith("mean "):
                    key = m[5:]
                    vals = [
                        statistics.fmean([v for n, v in s.items() if n.endswith("/" + key)]) for s in seeds.values()
                    ]
                    paper = _published(ref, row_runs[0].method, kind="average") if ref else None
                else:
                    vals = [s.get(m) for s in seeds.values()]
                    task, metric = m.split("/", 1)
                    paper = _published(ref, row_runs[0].method, task=task, metric=metric) if ref else None
                mean, std = _mean_std(vals)
                if mean is not None:
                    means[m] = mean
                cells.append((mean, std, paper))
            if weighting:
                dms = []
                for seed, values in seeds.items():
                    base = _stl_baseline(group, results, seed)
                    dms.append(_delta_m(values, base, hib, weighting) if base and label != "STL" else None)
                mean, std = _mean_std([d for d in dms if d is not None])
                paper = _published(ref, row_runs[0].method, kind="delta_m") if ref else None
                cells.append((mean, std, paper if label != "STL" else None))
                if paper_stl:
                    vs_paper = (
                        [_delta_m(v, paper_stl, hib, weighting) for v in seeds.values()] if label != "STL" else []
                    )
                    mean, std = _mean_std([d for d in vs_paper if d is not None])
                    cells.append((mean, std, None))
            per_row_means[label] = means
            table.add(label, cells, rank=label != "STL")
        if spec.get("mean_rank") and not mean_columns:
            ranked = {k: v for k, v in per_row_means.items() if k != "STL" and all(m in v for m in metrics)}
            if len(ranked) > 1:
                ranks = mean_rank(ranked, {m: hib[m] for m in metrics})
                table.columns.append("MR")
                table.higher.append(False)
                for i, (label, cells, rank) in enumerate(table.rows):
                    paper = _published(ref, rows[label][0].method, kind="mean_rank") if ref else None
                    cells.append((ranks.get(label), None, paper if label != "STL" else None))
                    table.rows[i] = (label, cells, rank)
        if ref is not None:
            table.notes.append(
                f"published numbers in parentheses: {ref.id} ({ref.paper}, {ref.table}); "
                f"'lost' = lost in extraction, '{DASH}' = not printed / no such cell"
            )
        else:
            table.notes.append("no transcribed reference table for this study: published numbers not shown")
        tables.append(table)
    return tables


def build_delta_m(study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]) -> list[Table]:
    """Rows = methods, columns = benchmarks: Delta_m% (metric-weighted) against our STL runs."""
    hib = _directions(runs)
    refs = _references(study)
    ref = refs[0] if refs else None
    benches = list(dict.fromkeys(r.benchmark for r in runs))
    table = Table(study["title"], [f"{b} Δm%" for b in benches], [False] * len(benches))
    labels = list(dict.fromkeys(r.label for r in runs if not r.is_stl))
    for label in labels:
        cells = []
        for bench in benches:
            group = [r for r in runs if r.benchmark == bench]
            row = [r for r in group if r.label == label]
            dms = []
            for seed, values in _row_values(row, results).items():
                base = _stl_baseline(group, results, seed)
                if base:
                    dms.append(_delta_m(values, base, hib, "metric"))
            mean, std = _mean_std([d for d in dms if d is not None])
            method = row[0].method if row else label
            options = row[0].config["method"]["options"] if row else {}
            cells.append(
                (mean, std, _published(ref, method, kind="delta_m", dataset=bench, setting=options) if ref else None)
            )
        table.add(label, cells)
    table.notes.append("Δm% against our STL runs of the same benchmark, model and seed (lower is better)")
    return [table]


def _dominates(a: Mapping[str, float], b: Mapping[str, float], hib: Mapping[str, bool]) -> bool:
    better_or_equal = all((a[m] >= b[m]) if hib[m] else (a[m] <= b[m]) for m in a)
    strictly = any((a[m] > b[m]) if hib[m] else (a[m] < b[m]) for m in a)
    return better_or_equal and strictly


def build_pareto(study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]) -> list[Table]:
    """Seed 001 Table 2: Pareto-optimal runs (over all test metrics) per optimizer, overall and w.r.t. the
    other optimizer's runs; runs with non-finite metrics are excluded (as the seed drops NaN runs)."""
    hib = _directions(runs)
    table = Table(
        study["title"],
        ["#runs [adam / sgd]", "Adam PO (full)", "Adam PO w.r.t. SGD", "SGD PO (full)", "SGD PO w.r.t. Adam"],
        [None, True, True, True, True],
    )
    for (bench, model), group in _bench_model(runs).items():
        points = []
        for run in group:
            if run.is_stl:
                continue
            values = flat(results[run.run_id]["eval"]["test"])
            if all(math.isfinite(v) for v in values.values()):
                points.append((run.config["optimizer"]["name"], values))
        names = set.intersection(*(set(v) for _, v in points)) if points else set()
        pts = [(o, {n: v[n] for n in names}) for o, v in points]

        def po(opt: str, against: str | None, pts: list = pts) -> int:
            mine = [v for o, v in pts if o == opt]
            others = [v for o, v in pts if against is None or o == against]
            return sum(not any(_dominates(w, v, hib) for w in others if w is not v) for v in mine)

        counts = {o: sum(1 for p, _ in pts if p == o) for o in ("adam", "sgd")}
        table.add(
            f"{bench} / {model}",
            [
                (None, None, f"{counts['adam']} / {counts['sgd']}"),
                (po("adam", None), None, None),
                (po("adam", "sgd"), None, None),
                (po("sgd", None), None, None),
                (po("sgd", "adam"), None, None),
            ],
            rank=False,
        )
    table.notes.append("counts of our runs; the published counts are in references 001_table2 / 001_tableA2")
    return [table]


def _bench_model(runs: Sequence[grid.RunSpec]) -> dict[tuple[str, str], list[grid.RunSpec]]:
    out: dict[tuple[str, str], list[grid.RunSpec]] = defaultdict(list)
    for run in runs:
        out[(run.benchmark, run.model_key)].append(run)
    return out


def _relative_drop(clean: Mapping[str, float], corrupted: Mapping[str, float], hib: Mapping[str, bool]) -> dict:
    """Seed 001 eq. (6) ingredient: relative performance decrease on corrupted data (positive = worse)."""
    out = {}
    for name, c in clean.items():
        if name in corrupted and c != 0:
            sign = 1.0 if hib[name] else -1.0
            out[name] = 100.0 * sign * (c - corrupted[name]) / abs(c)
    return out


def build_robustness(study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]) -> list[Table]:
    """Seed 001 Table 3/A8/A9: delta_t = drop(MTL) - drop(STL), averaged over corruptions, severities, seeds."""
    hib = _directions(runs)
    refs = _references(study)
    ref = refs[0] if refs else None
    tables = []
    for (bench, model), group in _bench_model(runs).items():

        def drops(rs: Sequence[grid.RunSpec]) -> dict[int, dict[str, list[float]]]:
            out: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
            for run in rs:
                ev = results[run.run_id]["eval"]
                clean = flat(ev["corrupted_clean"])
                for severities in ev["corrupted"].values():
                    for metrics in severities.values():
                        for n, d in _relative_drop(clean, flat(metrics), hib).items():
                            out[run.seed][n].append(d)
            return out

        stl = drops([r for r in group if r.is_stl])
        metrics = sorted({n for s in stl.values() for n in s})
        table = Table(f"{study['title']} — {bench} / {model}", metrics, [False] * len(metrics))
        for label, rows in _method_rows([r for r in group if not r.is_stl]).items():
            mtl = drops(rows)
            cells = []
            for n in metrics:
                per_seed = [
                    statistics.fmean(mtl[s][n]) - statistics.fmean(stl[s][n])
                    for s in mtl
                    if n in mtl[s] and s in stl and n in stl[s]
                ]
                mean, std = _mean_std(per_seed)
                task, metric = n.split("/", 1)
                cells.append((mean, std, _published(ref, rows[0].method, task=task, metric=metric) if ref else None))
            table.add(label, cells)
        table.notes.append("δ_t > 0: STL degrades less than MTL on the corrupted test sets (seed 001 eq. 6)")
        tables.append(table)
    return tables


def build_cost(study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]) -> list[Table]:
    """Seconds per training step per method (seed 002 Table 3 / Fig. 4), relative to LS when present."""
    table = Table(study["title"], ["s / step", "× LS"], [False, False])
    per = {}
    for label, rows in _method_rows(runs).items():
        finals = [results[r.run_id]["final"] for r in rows]
        per[label] = _mean_std([f["seconds"] / max(f["steps"], 1) for f in finals])
    ls = per.get("ls", (None, None))[0]
    for label, (mean, std) in per.items():
        table.add(label, [(mean, std, None), (mean / ls if mean and ls else None, None, None)])
    table.notes.append("wall time includes the per-epoch evaluation; timing columns are machine-dependent")
    return [table]


def build_diagnostics(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]
) -> list[Table]:
    """Mean gradient cosine, magnitude similarity, conflict share and condition number over training."""
    table = Table(
        study["title"], ["cosine", "magnitude sim.", "conflict %", "condition number"], [None, None, None, None]
    )
    for label, rows in _method_rows(runs).items():
        records = [d for r in rows for d in results[r.run_id]["diagnostics"]]
        cos = [c for d in records for c in d["cosine"]]
        mag = [c for d in records for c in d["magnitude_similarity"]]
        cond = [d["condition_number"] for d in records if math.isfinite(d["condition_number"])]
        conflict = [100.0 * sum(c < 0 for c in d["cosine"]) / max(len(d["cosine"]), 1) for d in records]
        table.add(
            f"{label} ({rows[0].benchmark})",
            [(*_mean_std(cos), None), (*_mean_std(mag), None), (*_mean_std(conflict), None), (*_mean_std(cond), None)],
            rank=False,
        )
    return [table]


BUILDERS = {
    "results": build_results,
    "delta_m": build_delta_m,
    "pareto": build_pareto,
    "robustness": build_robustness,
    "cost": build_cost,
    "diagnostics": build_diagnostics,
}


# ------------------------------------------------------------------------------------------------ figures
def _figures(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any], out: Path
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    builder = study["builder"]
    if builder == "diagnostics":
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
        for label, rows in _method_rows(runs).items():
            by_epoch: dict[int, list[dict]] = defaultdict(list)
            for r in rows:
                for d in results[r.run_id]["diagnostics"]:
                    by_epoch[d["epoch"]].append(d)
            epochs = sorted(by_epoch)
            series = {
                "cosine": [statistics.fmean(c for d in by_epoch[e] for c in d["cosine"]) for e in epochs],
                "conflict %": [
                    100 * statistics.fmean(float(c < 0) for d in by_epoch[e] for c in d["cosine"]) for e in epochs
                ],
                "condition number": [statistics.fmean(d["condition_number"] for d in by_epoch[e]) for e in epochs],
            }
            for ax, (name, ys) in zip(axes, series.items()):
                ax.plot(epochs, ys, marker="o", label=f"{label} ({rows[0].benchmark})")
                ax.set_xlabel("epoch")
                ax.set_title(name)
        axes[0].legend(fontsize=7)
        written.append(_save(fig, out / "diagnostics.png"))
    elif builder == "cost":
        labels, means = [], []
        for label, rows in _method_rows(runs).items():
            labels.append(label)
            means.append(
                statistics.fmean(
                    results[r.run_id]["final"]["seconds"] / max(results[r.run_id]["final"]["steps"], 1) for r in rows
                )
            )
        fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(labels)), 3.2))
        ax.bar(range(len(labels)), means)
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("seconds per step")
        written.append(_save(fig, out / "efficiency.png"))
    elif builder == "pareto":
        hib = _directions(runs)
        for (bench, model), group in _bench_model(runs).items():
            pts = [
                (r.config["optimizer"]["name"], flat(results[r.run_id]["eval"]["test"])) for r in group if not r.is_stl
            ]
            names = sorted(set.intersection(*(set(v) for _, v in pts))) if pts else []
            if not names:
                continue
            fig, ax = plt.subplots(figsize=(max(4, len(names)), 3.2))
            for opt, values in pts:
                ys = []
                for n in names:
                    col = [v[n] for _, v in pts]
                    lo, hi = min(col), max(col)
                    y = (values[n] - lo) / (hi - lo) if hi > lo else 0.5
                    ys.append(y if hib[n] else 1 - y)
                ax.plot(range(len(names)), ys, color="tab:blue" if opt == "adam" else "tab:red", alpha=0.6)
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
            ax.set_ylabel("normalised (higher = better)")
            ax.set_title(f"{bench} / {model}: Adam (blue) vs SGD (red)")
            written.append(_save(fig, out / f"parallel_{bench}_{model}.png"))
    elif builder == "robustness":
        for table in build_robustness(study, runs, results):
            data = [[c[0] if c[0] is not None else float("nan") for c in cells] for _, cells, _ in table.rows]
            if not data:
                continue
            fig, ax = plt.subplots(figsize=(max(4, len(table.columns)), 0.4 * len(data) + 1.5))
            image = ax.imshow(data, cmap="coolwarm", aspect="auto")
            ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right", fontsize=7)
            ax.set_yticks(range(len(data)), [r[0] for r in table.rows], fontsize=7)
            fig.colorbar(image, ax=ax, label="δ_t (MTL drop − STL drop, %)")
            written.append(_save(fig, out / f"corruption_heatmap_{len(written)}.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = stdio.BytesIO()
    # Fixed metadata so identical numbers give identical bytes (Snakemake/DVC comparisons, dvc no-op).
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    with io.atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())
    return path


# ------------------------------------------------------------------------------------------------ driver
def _test_dataset(cfg_json: str) -> Any:
    import mtl_data

    cfg = json.loads(cfg_json)
    options = {**cfg.get("options", {}), **cfg.get("split_options", {}).get("test", {})}
    return mtl_data.create(cfg["name"], split="test", root=cfg.get("root"), **options)


def _scale_line(profile: Mapping[str, Any], runs: Sequence[grid.RunSpec]) -> tuple[str, str]:
    """What data the runs used (``stand-in``/``real``, the dataset's own description, sizes) and at which scale."""
    data = []
    datasets = {
        json.dumps({k: v for k, v in r.config["dataset"].items() if k != "tasks"}, sort_keys=True) for r in runs
    }
    for ds in sorted(datasets):
        cfg = json.loads(ds)
        dataset = _test_dataset(ds)
        kind = "stand-in" if dataset.is_standin else "real"
        sizes = {k: v.get("size") for k, v in cfg.get("split_options", {}).items() if "size" in v}
        extra = f", sizes {sizes}" if sizes else ""
        extra += f", subset {cfg['options']['subset']}" if "subset" in cfg.get("options", {}) else ""
        data.append(f"{kind}: {cfg['name']} ({dataset.description}{extra})")
    epochs = sorted({r.config["train"]["epochs"] for r in runs})
    seeds = sorted({r.seed for r in runs})
    caps = {r.config["train"].get("max_steps_per_epoch") for r in runs}  # per benchmark (CelebA, QM9 differ)
    steps = sorted(c for c in caps if c is not None) + ([None] if None in caps else [])
    shown = steps[0] if len(steps) == 1 else steps
    scale = f"epochs {epochs}, seeds {seeds}, max steps/epoch {shown}"
    return "; ".join(data), scale


def build(profile: Mapping[str, Any], studies: Sequence[Mapping[str, Any]], index: bool = True) -> list[Path]:
    """Write the reports of ``studies`` under ``profile['reports_dir']``: per study its tables, figures and
    ``summary.json`` (its index row); and, with ``index``, the index of these studies."""
    plan = grid.plan(profile)
    out_root = Path(profile["reports_dir"])
    written: list[Path] = []
    summaries = []
    for study in studies:
        runs = [r for r in plan.runs.values() if study["id"] in r.studies]
        out = out_root / study["id"]
        missing = plan.unavailable.get(study["id"], [])
        lines = [
            f"# {study['title']}",
            "",
            f"Study `{study['id']}` (seed {study['paper']}), profile `{profile['name']}`.",
            "",
        ]
        if study.get("note"):
            lines += [study["note"], ""]
        tables: list[Table] = []
        if study["builder"] == "probe" and not missing:
            from mtl_pipelines.probes import PROBES

            results = load_results(profile, {r.run_id: r for r in runs}) if runs else {}
            tables = PROBES[study["figure"]["probe"]](study, profile, runs, results)
            lines += [t.markdown() for t in tables]
        elif runs:
            results = load_results(profile, {r.run_id: r for r in runs})
            tables = BUILDERS[study["builder"]](study, runs, results)
            figures = _figures(study, runs, results, out)
            written += figures
            data, scale = _scale_line(profile, runs)
            lines += [f"Data: {data}.", f"Scale: {scale}.", ""]
            lines += [t.markdown() for t in tables]
            lines += [f"![{p.stem}]({p.name})" for p in figures]
        if missing:
            lines += ["", "Not run on this profile:"] + [f"- {m}" for m in missing]
        summary = _summary(profile, study, runs, missing, tables)
        summaries.append(summary)
        io.write_json(out / SUMMARY, summary)
        io.write_text(out / "table.md", "\n".join(lines) + "\n")
        io.write_text(out / "table.tex", "".join(t.latex() for t in tables))
        buffer = stdio.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["table", "row", "column", "ours_mean", "ours_std", "published"])
        writer.writeheader()
        for t in tables:
            writer.writerows(t.csv_rows())
        io.write_text(out / "table.csv", buffer.getvalue())
        written += [out / "table.md", out / "table.tex", out / "table.csv", out / SUMMARY]
    if index:
        written += _index(profile, summaries, out_root)
    return written


def build_index(profile: Mapping[str, Any], studies: Sequence[Mapping[str, Any]]) -> list[Path]:
    """``index.md`` / ``index.html`` from the ``summary.json`` each study's report wrote (FileNotFoundError
    names a study whose report is missing), without recomputing any table."""
    out_root = Path(profile["reports_dir"])
    summaries = []
    for study in studies:
        path = out_root / study["id"] / SUMMARY
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `mtl report {study['id']}` first")
        summaries.append(json.loads(path.read_text()))
    return _index(profile, summaries, out_root)


def _summary(
    profile: Mapping[str, Any], study: Mapping[str, Any], runs: Sequence[Any], missing: Sequence[str], tables: Any
) -> dict[str, Any]:
    """The study's row of the index."""
    data, scale = _scale_line(profile, runs) if runs else (DASH, DASH)
    return {
        "id": study["id"],
        "title": study["title"],
        "data": DASH if not runs else ("stand-in" if "stand-in:" in data else "real"),
        "scale": scale,
        "runs": len(runs),
        "distance": _distance(tables),
        "not_run": len(missing),
    }


def _distance(tables: Sequence[Table]) -> str:
    """Median absolute relative distance of our means to the published numbers over the shown cells."""
    gaps = []
    for t in tables:
        for _, cells, _ in t.rows:
            for v, _, paper in cells:
                try:
                    p = float(str(paper).split(" ± ")[0])
                except ValueError:
                    continue
                if v is not None and p != 0:
                    gaps.append(abs(v - p) / abs(p) * 100)
    return f"{statistics.median(gaps):.0f}% over {len(gaps)} cells" if gaps else DASH


def _index(profile: Mapping[str, Any], summaries: list, out_root: Path) -> list[Path]:
    lines = [
        f"# Reproduced tables — profile `{profile['name']}`",
        "",
        profile.get("description", ""),
        "",
        "| study | title | data | scale | runs | distance to published (median rel.) | not run |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summaries:
        lines.append(
            f"| [{row['id']}]({row['id']}/table.md) | {row['title']} | {row['data']} | {row['scale']} | "
            f"{row['runs']} | {row['distance']} | {row['not_run']} |"
        )
    lines += [
        "",
        "Published numbers come from `mtl_pipelines.references` (transcribed from the seed texts); a "
        "cell lost in extraction is marked `lost`, never filled in.",
        "",
    ]
    text = "\n".join(lines) + "\n"
    io.write_text(out_root / "index.md", text)
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render(text.replace(".md)", ".html)"))
    io.write_text(out_root / "index.html", f"<!doctype html><meta charset='utf-8'><title>MTL report</title>\n{html}")
    for row in summaries:
        if not (out_root / row["id"] / "table.md").is_file():
            continue
        md = (out_root / row["id"] / "table.md").read_text()
        body = MarkdownIt("commonmark").enable("table").render(md)
        io.write_text(out_root / row["id"] / "table.html", f"<!doctype html><meta charset='utf-8'>\n{body}")
    return [out_root / "index.md", out_root / "index.html"]
