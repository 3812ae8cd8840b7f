"""A sample report from synthetic results, to preview and check the report's layout without training anything:
``python -m mtl_pipelines.report.sample OUT_DIR`` (used by ``scripts/browser_check.sh`` and the browser test).

Every number of *ours* here is drawn from a seeded random generator around the published cell (or made up
where there is none), and every page says so at its top: the sample exercises each kind of table the real
report has (a compared results table with Delta_m and Mean Rank, the same table as a pipeline check, a
robustness table with its heatmap, a table whose published numbers were lost in extraction, a table compared
by ratio) and each verdict, through the same builders, figures, templates and writers as ``mtl report``.
It never writes into a profile's reports directory unless asked to.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtl_pipelines import grid, references
from mtl_pipelines.report import figures, registry
from mtl_pipelines.report.driver import write_study
from mtl_pipelines.report.index import StudySummary, Verdict, distance, write_index
from mtl_pipelines.report.published import cite, published
from mtl_pipelines.report.results import Results
from mtl_pipelines.report.tables import Cell, Table

__all__ = ["SAMPLE_NOTE", "build_sample", "main"]

SAMPLE_NOTE = "SAMPLE: synthetic numbers drawn around the published ones to preview the layout; nothing was trained."
SEEDS = (0, 1, 2)
DATA_SCALE = "Data: synthetic sample (no dataset). Scale: seeds [0, 1, 2], no training."


def _run(bench: str, method: str, seed: int, task: str | None = None, study: str = "") -> grid.RunSpec:
    return grid.RunSpec(
        run_id=f"{bench}-{method}-{task}-{seed}",
        config={"method": {"name": method, "options": {}}, "optimizer": {"name": "adam"}, "train": {"epochs": 1}},
        benchmark=bench,
        model_key="sample",
        method=method,
        label="STL" if method == "stl" else method,
        task=task,
        setting="",
        seed=seed,
        studies={study},
    )


def _results_study(rng: np.random.Generator) -> tuple[list[grid.RunSpec], Results]:
    """Cityscapes-shaped runs around seed 004 Table 2 (ours within a few percent of the paper, except CAGrad)."""
    ref = references.load("004_table2")
    metrics = {("segmentation", "mIoU"): True, ("segmentation", "pix_acc"): True}
    metrics |= {("depth", "abs_err"): False, ("depth", "rel_err"): False}
    runs, results = [], {}
    spread = {"stl": 0.01, "ls": 0.02, "exact+pcgrad": 0.02, "exact+cagrad": 0.15}
    for method, rel in spread.items():
        for seed in SEEDS:
            values = {
                (t, m): ref.value(_column(ref, t, m), method=method) * (1 + rel * rng.standard_normal())
                for (t, m) in metrics
            }
            tasks = ("segmentation", "depth") if method == "stl" else (None,)
            for task in tasks:
                run = _run("cityscapes", method, seed, task, "sample_results")
                shown = {k: v for k, v in values.items() if task is None or k[0] == task}
                test: dict[str, dict[str, float]] = {}
                for (t, m), v in shown.items():
                    test.setdefault(t, {})[m] = v
                runs.append(run)
                results[run.run_id] = {"eval": {"test": test}, "final": {}, "diagnostics": []}
    return runs, Results(results, {f"{t}/{m}": hib for (t, m), hib in metrics.items()})


def _column(ref: Any, task: str, metric: str) -> str:
    return next(c.name for c in ref.columns if c.task == task and c.key == metric)


def _robustness_study(rng: np.random.Generator) -> tuple[list[grid.RunSpec], Results]:
    """NYUv2-shaped corrupted evaluations whose delta_t (seed 001 eq. 6) scatter around seed 001 Table 3."""
    ref = references.load("001_table3")
    columns = [c for c in ref.columns if c.kind == "statistic"]
    hib = {f"{c.task}/{c.key}": c.key in ("mIoU", "pix_acc") or c.key.startswith("within") for c in columns}
    runs, results = [], {}

    def evaluation(drops: Mapping[str, float]) -> dict[str, Any]:
        clean: dict[str, dict[str, float]] = {}
        corrupted: dict[str, dict[str, float]] = {}
        for name, drop in drops.items():
            task, metric = name.split("/", 1)
            clean.setdefault(task, {})[metric] = 1.0
            corrupted.setdefault(task, {})[metric] = 1.0 - drop if hib[name] else 1.0 + drop
        return {"corrupted_clean": clean, "corrupted": {"fog": {"3": corrupted}}}

    for seed in SEEDS:
        stl_drops = {name: 0.2 + 0.05 * rng.standard_normal() for name in hib}
        for task in sorted({n.split("/")[0] for n in hib}):
            run = _run("nyuv2", "stl", seed, task, "sample_robustness")
            ev = evaluation({n: d for n, d in stl_drops.items() if n.startswith(task + "/")})
            runs.append(run)
            results[run.run_id] = {"eval": ev, "final": {}, "diagnostics": []}
        for method in ("ls", "uw", "exact+cagrad"):
            row = ref.find_rows(method)[0]
            deltas = {f"{c.task}/{c.key}": float(cell.value) for c, cell in zip(ref.columns, row.cells) if c in columns}
            drops = {n: stl_drops[n] + deltas[n] + 0.02 * rng.standard_normal() for n in hib}
            run = _run("nyuv2", method, seed, None, "sample_robustness")
            runs.append(run)
            results[run.run_id] = {"eval": evaluation(drops), "final": {}, "diagnostics": []}
    return runs, Results(results, hib)


def _toy_table(rng: np.random.Generator) -> Table:
    """Iterations to the global minimum beside seed 001 Table A7, compared by ratio (orders of magnitude)."""
    lrs = (10.0, 1.0, 0.1)
    columns = [f"{opt} lr={lr:g}" for opt in ("adam", "gd") for lr in lrs]
    table = Table("CAGrad toy: iterations until every start reaches the global minimum", columns, [False] * 6)
    table.gap = "ratio"
    ref = cite(table, references.load("001_tableA7"))
    for label, method in (("EW", "ls"), ("PCGrad", "exact+pcgrad"), ("CAGrad", "exact+cagrad")):
        cells = []
        for opt in ("adam", "gd"):
            for lr in lrs:
                paper = published(ref, method, setting={"optimizer": opt, "lr": lr})
                ours = None if paper.value is None else round(paper.value * float(np.exp(0.1 * rng.standard_normal())))
                cells.append(Cell(ours, None, paper))
        table.add(label, cells)
    return table


def _lost_table(rng: np.random.Generator) -> Table:
    """Seed 003 Table 2: the published numbers were lost in extraction, said once at the top."""
    table = Table("NYUv2 / MTAN (Aligned-MTL, Table 2)", ["segmentation/mIoU", "depth/abs_err"], [True, False])
    cite(table, references.load("003_table2"))
    for method in ("ls", "exact+aligned_mtl", "features+aligned_mtl"):
        table.add(
            method, [Cell(0.3 + 0.02 * rng.standard_normal(), 0.01), Cell(0.6 + 0.05 * rng.standard_normal(), 0.02)]
        )
    return table


def _verdicts(study: str) -> tuple[Verdict, ...]:
    made_up = "synthetic sample, not a result"
    return (
        Verdict(study, "pcgrad-beats-ls", "PCGrad has a lower Delta_m than LS on Cityscapes", "reproduced",
                -1.2, (-2.0, -0.4), "t-interval over 3 seeds", 3, made_up),
        Verdict(study, "cagrad-beats-pcgrad", "CAGrad has a lower Delta_m than PCGrad on Cityscapes",
                "not reproduced", 2.1, (0.9, 3.3), "t-interval over 3 seeds", 3, made_up),
        Verdict(study, "rank-agreement", "our method ranking agrees with the paper's (Kendall tau > 0)",
                "inconclusive", 0.33, (-0.4, 1.0), "bootstrap over 3 seeds", 3, made_up),
    )  # fmt: skip


def build_sample(out_root: Path) -> list[Path]:
    """Write the sample report (four study pages and the index) under ``out_root``; returns the files."""
    rng = np.random.default_rng(0)
    written: list[Path] = []
    summaries = []

    def add(study: dict[str, Any], tables: Sequence[Table], figs: Sequence[Path] = (), verdicts=()) -> None:
        for table in tables:
            table.data_scale = table.data_scale or DATA_SCALE
        summary = StudySummary(
            study["id"], study["title"], "synthetic", "seeds [0, 1, 2]", 0, distance(tables), 0, tuple(verdicts)
        )
        summaries.append(summary)
        out = out_root / study["id"]
        written.extend(write_study(out, {**study, "note": SAMPLE_NOTE}, "sample", tables, figs, [], summary))

    study = {"id": "sample_results", "paper": "004", "title": "Cityscapes, SegNet: ConsMTL's Table 2 (sample)"}
    spec = {**study, "references": ["004_table2"], "table": {"delta_m": "metric", "mean_rank": True}}
    runs, results = _results_study(rng)
    tables = registry.get("results").tables(spec, {}, runs, results)
    add(study, tables, verdicts=_verdicts(study["id"]))

    check = {"id": "sample_pipeline_check", "paper": "004", "title": "The same table run as a pipeline check"}
    tables = registry.get("results").tables({**spec, **check}, {}, runs, results)
    for table in tables:
        table.pipeline_check = "2 epochs of at most 4 steps per epoch, far below the paper's 200 epochs"
    add(check, tables)

    robust = {"id": "sample_robustness", "paper": "001", "title": "Robustness to corrupted NYUv2 (sample)"}
    runs, results = _robustness_study(rng)
    robust_spec = {**robust, "references": ["001_table3"]}
    tables = registry.get("robustness").tables(robust_spec, {}, runs, results)
    out = out_root / robust["id"]
    add(robust, tables, figures.corruption_heatmaps(robust_spec, runs, results, tables, out))

    other = {
        "id": "sample_other",
        "paper": "001/003",
        "title": "A table compared by ratio; a table whose numbers were lost",
    }
    add(other, [_toy_table(rng), _lost_table(rng)])

    profile = {"name": "sample", "description": SAMPLE_NOTE}
    return written + write_index(profile, summaries, out_root)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtl_pipelines.report.sample", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path, help="directory to write the sample report into (created)")
    args = parser.parse_args(argv)
    written = build_sample(args.out_dir)
    print(f"sample report: {len(written)} files, open {args.out_dir / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
