"""Every report builder on small synthetic results, against numbers computed by hand.

The runs are in-memory :class:`mtl_pipelines.grid.RunSpec` objects and their results in-memory
``eval``/``final``/``diagnostics`` dicts (no training, no dataset): each test states the inputs, and the
expected cells are derived in the comments (means and sample stds over seeds, Delta_m against the STL runs
of the same seed, Pareto counts, seed 001 eq. (6) drops, ...). The probes' heavy parts (mtl_core's toy and
loss-scale runs, the Hessian) are replaced by fixed numbers: what is tested is the table built from them.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from mtl_pipelines import grid, probes, references
from mtl_pipelines.report import Results, Table, builders, registry

TWO_TASKS = {"A/acc": True, "B/err": False}  # higher is better for A/acc, lower for B/err
SQRT2 = math.sqrt(2.0)


def run(
    method: str,
    seed: int,
    *,
    bench: str = "b",
    task: str | None = None,
    label: str | None = None,
    optimizer: str = "adam",
    options: dict[str, Any] | None = None,
    epochs: int = 2,
    tag: str = "",
) -> grid.RunSpec:
    run_id = f"{bench}-m-{method}-{task}-{optimizer}-{seed}{tag}"
    return grid.RunSpec(
        run_id=run_id,
        config={
            "optimizer": {"name": optimizer},
            "method": {"name": method, "options": options or {}},
            "train": {"epochs": epochs},
        },
        benchmark=bench,
        model_key="m",
        method=method,
        label=label or ("STL" if method == "stl" else method),
        task=task,
        setting="",
        seed=seed,
    )


def two_task_eval(acc: float, err: float) -> dict[str, Any]:
    return {"test": {"A": {"acc": acc}, "B": {"err": err}}}


def results_of(
    entries: list[tuple[grid.RunSpec, dict[str, Any]]], directions: dict[str, bool] = TWO_TASKS
) -> tuple[list[grid.RunSpec], Results]:
    runs = [r for r, _ in entries]
    return runs, Results({r.run_id: {"final": {}, "diagnostics": [], **res} for r, res in entries}, directions)


def stl_runs(seed: int, acc: float, err: float, bench: str = "b") -> list[tuple[grid.RunSpec, dict[str, Any]]]:
    """The two single-task runs of a seed (one per task), as the grid makes them."""
    return [
        (run("stl", seed, bench=bench, task="A"), {"eval": {"test": {"A": {"acc": acc}}}}),
        (run("stl", seed, bench=bench, task="B"), {"eval": {"test": {"B": {"err": err}}}}),
    ]


def build(name: str, study: dict[str, Any], runs: list[grid.RunSpec], results: Results, profile=None) -> list[Table]:
    """Through the registry, as the report driver calls it."""
    return registry.get(name).tables({"id": "t", "title": "T", **study}, profile or {}, runs, results)


# ------------------------------------------------------------------------------------------------ results
def _results_fixture() -> tuple[list[grid.RunSpec], Results]:
    # STL: seed 0 (acc 0.8, err 2.0), seed 1 (0.6, 4.0).
    # ls:  seed 0 (0.88, 1.8) -> rel. changes -0.1 (acc up 10%), -0.1 (err down 10%) -> Delta_m = -10
    #      seed 1 (0.54, 4.4) -> +0.1, +0.1                                          -> Delta_m = +10
    # mgda: seed 0 (0.8, 2.2) -> 0, +0.1 -> +5; seed 1 (0.6, 4.0) -> 0
    return results_of(
        [
            *stl_runs(0, 0.8, 2.0),
            *stl_runs(1, 0.6, 4.0),
            (run("ls", 0), {"eval": two_task_eval(0.88, 1.8)}),
            (run("ls", 1), {"eval": two_task_eval(0.54, 4.4)}),
            (run("exact+mgda", 0, label="mgda"), {"eval": two_task_eval(0.8, 2.2)}),
            (run("exact+mgda", 1, label="mgda"), {"eval": two_task_eval(0.6, 4.0)}),
        ]
    )


def test_results_means_stds_delta_m_and_mean_rank() -> None:
    runs, results = _results_fixture()
    (table,) = build("results", {"table": {"delta_m": "metric", "mean_rank": True}}, runs, results)
    assert table.title == "T — b / m"
    assert table.columns == ["A/acc", "B/err", "Δm% (ours vs our STL)", "MR"]
    assert [r.name for r in table.rows] == ["STL", "ls", "mgda"]
    expected = {
        # row: [(mean, std)] per column
        "ls": [(0.71, 0.34 / SQRT2), (3.1, 2.6 / SQRT2), (0.0, 20 / SQRT2), (1.25, None)],
        "mgda": [(0.7, 0.2 / SQRT2), (3.1, 1.8 / SQRT2), (2.5, 5 / SQRT2), (1.75, None)],
        # MR: acc ranks ls 1, mgda 2; err tie 3.1 = 3.1 -> 1.5 each
        "STL": [(0.7, 0.2 / SQRT2), (3.0, 2.0 / SQRT2), (None, None), (None, None)],
    }
    for row, cells in expected.items():
        for column, (mean, std) in zip(table.columns, cells):
            cell = table.cell(row, column)
            assert cell.mean == (pytest.approx(mean, abs=1e-12) if mean is not None else None), (row, column)
            assert cell.std == (pytest.approx(std, rel=1e-9) if std is not None else None), (row, column)
            assert cell.published is None  # the study has no reference
    assert not table.row("STL").rank
    assert "no transcribed reference table" in table.notes[0]
    md = table.markdown()
    assert "| ls | **0.71 ± 0.24** |" in md  # best acc of the ranked rows in bold (STL not ranked)


def test_results_task_weighted_delta_m_differs_from_metric_weighted() -> None:
    # B has two metrics. Relative changes vs STL: A/acc 0, B/e1 +0.3, B/e2 +0.1.
    # metric-weighted: (0 + 0.3 + 0.1) / 3 = 13.33%; task-weighted: (0 + (0.3 + 0.1) / 2) / 2 = 10%.
    hib = {"A/acc": True, "B/e1": False, "B/e2": False}
    runs, results = results_of(
        [
            (run("stl", 0, task="A"), {"eval": {"test": {"A": {"acc": 1.0}}}}),
            (run("stl", 0, task="B"), {"eval": {"test": {"B": {"e1": 1.0, "e2": 1.0}}}}),
            (run("ls", 0), {"eval": {"test": {"A": {"acc": 1.0}, "B": {"e1": 1.3, "e2": 1.1}}}}),
        ],
        hib,
    )
    for weighting, expected in (("metric", 40 / 3), ("task", 10.0)):
        (table,) = build("results", {"table": {"delta_m": weighting}}, runs, results)
        assert table.cell("ls", "Δm% (ours vs our STL)").mean == pytest.approx(expected)
        assert table.cell("ls", "Δm% (ours vs our STL)").std is None  # one seed


def test_results_mean_columns_average_a_metric_over_tasks() -> None:
    # columns: mean, metric acc: per seed the mean over tasks of */acc, then mean over seeds.
    hib = {"A/acc": True, "B/acc": True}
    runs, results = results_of(
        [
            (run("ls", 0), {"eval": {"test": {"A": {"acc": 0.2}, "B": {"acc": 0.4}}}}),  # 0.3
            (run("ls", 1), {"eval": {"test": {"A": {"acc": 0.5}, "B": {"acc": 0.7}}}}),  # 0.6
        ],
        hib,
    )
    (table,) = build("results", {"table": {"columns": "mean", "metric": "acc"}}, runs, results)
    assert table.columns == ["mean acc"]
    assert table.cell("ls", "mean acc").mean == pytest.approx(0.45)
    assert table.cell("ls", "mean acc").std == pytest.approx(0.3 / SQRT2)


def test_results_published_cells_and_delta_m_against_the_papers_stl() -> None:
    """With a reference: each cell carries the published cell of the same method/task/metric, and Delta_m is
    also computed against the paper's STL row (seed 004 Table 2, Cityscapes)."""
    ref = references.load("004_table2")
    metrics = {f"{c.task}/{c.key}": c for c in ref.columns_of("metric")}
    hib = {name: bool(c.higher_is_better) for name, c in metrics.items()}
    stl = ref.row(method="stl")
    paper_stl = {name: float(stl.value(c.name)) for name, c in metrics.items()}

    def eval_of(values: dict[str, float]) -> dict[str, Any]:
        out: dict[str, dict[str, float]] = {}
        for name, v in values.items():
            task, metric = name.split("/")
            out.setdefault(task, {})[metric] = v
        return {"test": out}

    ours_stl = {n: v * 1.1 for n, v in paper_stl.items()}
    ours_ls = {n: v * 1.2 for n, v in paper_stl.items()}
    tasks = sorted({n.split("/")[0] for n in metrics})
    entries = [
        (run("stl", 0, task=t), eval_of({n: v for n, v in ours_stl.items() if n.startswith(t + "/")})) for t in tasks
    ]
    entries.append((run("ls", 0), eval_of(ours_ls)))
    runs, results = results_of([(r, {"eval": e}) for r, e in entries], hib)
    (table,) = build("results", {"references": ["004_table2"], "table": {"delta_m": "metric"}}, runs, results)
    for name, column in metrics.items():
        assert table.cell("ls", name).published.value == pytest.approx(ref.value(column.name, method="ls"))
    (dm_column,) = ref.columns_of("delta_m")
    assert table.cell("ls", "Δm% (ours vs our STL)").published.value == ref.value(dm_column.name, method="ls")
    # ours = 1.2 x paper STL on every metric: Delta_m vs the paper's STL = mean of (-1)^h * 0.2 * 100
    signs = [-1.0 if hib[n] else 1.0 for n in metrics]
    assert table.cell("ls", "Δm% (ours vs paper STL)").mean == pytest.approx(20.0 * sum(signs) / len(signs))
    # vs our STL (1.1 x): relative change 1.2 / 1.1 - 1 on every metric
    assert table.cell("ls", "Δm% (ours vs our STL)").mean == pytest.approx(
        100 * (1.2 / 1.1 - 1) * sum(signs) / len(signs)
    )
    assert any(ref.id in note for note in table.notes)


def test_results_whose_published_numbers_were_all_lost_say_so_once_at_the_top() -> None:
    """Seed 003 Tables 1-4 lost every number in extraction: one banner, no ``(lost)`` in every cell."""
    ref = references.load("003_table1")
    assert ref.status == "numbers_lost"
    metric = ref.columns_of("metric")[0]
    name = f"{metric.task}/{metric.key}"
    runs, results = results_of(
        [(run(ref.methods()[0], 0), {"eval": {"test": {metric.task: {metric.key: 1.0}}}})],
        {name: bool(metric.higher_is_better)},
    )
    (table,) = build("results", {"references": ["003_table1"]}, runs, results)
    assert len(table.banners) == 1 and "lost in the seed's text extraction" in table.banners[0]
    assert all(c.published is None for r in table.rows for c in r.cells)
    md = table.markdown()
    assert "(lost)" not in md and md.count("lost in the seed's text extraction") == 1
    assert md.index("lost in the seed's text extraction") < md.index("| method |")


# ------------------------------------------------------------------------------------------------ delta_m
def test_delta_m_per_benchmark_mean_over_seeds() -> None:
    # b1: seed 0 ls -10 (see _results_fixture), seed 1 +10 -> 0 ± 14.14; mgda only on b1.
    # b2: STL (0.5, 1.0), ls (0.5, 1.5): (0 + 0.5) / 2 -> +25, one seed.
    runs, results = results_of(
        [
            *stl_runs(0, 0.8, 2.0, bench="b1"),
            *stl_runs(1, 0.6, 4.0, bench="b1"),
            (run("ls", 0, bench="b1"), {"eval": two_task_eval(0.88, 1.8)}),
            (run("ls", 1, bench="b1"), {"eval": two_task_eval(0.54, 4.4)}),
            (run("exact+mgda", 0, bench="b1", label="mgda"), {"eval": two_task_eval(0.8, 2.2)}),
            *stl_runs(0, 0.5, 1.0, bench="b2"),
            (run("ls", 0, bench="b2"), {"eval": two_task_eval(0.5, 1.5)}),
        ]
    )
    (table,) = build("delta_m", {}, runs, results)
    assert table.columns == ["b1 Δm%", "b2 Δm%"]
    assert [r.name for r in table.rows] == ["ls", "mgda"]
    assert table.cell("ls", "b1 Δm%").mean == pytest.approx(0.0, abs=1e-12)
    assert table.cell("ls", "b1 Δm%").std == pytest.approx(20 / SQRT2)
    assert table.cell("ls", "b2 Δm%").mean == pytest.approx(25.0)
    assert table.cell("mgda", "b1 Δm%").mean == pytest.approx(5.0)
    assert table.cell("mgda", "b2 Δm%").mean is None


# ------------------------------------------------------------------------------------------------ pareto
def test_pareto_counts_overall_and_against_the_other_optimizer() -> None:
    # (acc up, err down). adam: a1 (.9, 2.0) a2 (.8, 1.0) a3 (.7, 3.0) a4 (.88, 2.2);
    # sgd: s1 (.85, 1.5) s2 (.6, .9) s4 (.58, .95), s3 has a NaN metric (excluded, as the seed drops NaN runs).
    # a3 is dominated by a1, a2 and s1; a4 only by a1 (an adam run); s4 only by s2 (an sgd run).
    # Adam PO: full {a1, a2} = 2, w.r.t. SGD {a1, a2, a4} = 3; SGD PO: full {s1, s2} = 2, w.r.t. Adam 3.
    points = {
        "a1": ("adam", 0.9, 2.0),
        "a2": ("adam", 0.8, 1.0),
        "a3": ("adam", 0.7, 3.0),
        "a4": ("adam", 0.88, 2.2),
        "s1": ("sgd", 0.85, 1.5),
        "s2": ("sgd", 0.6, 0.9),
        "s3": ("sgd", float("nan"), 0.1),
        "s4": ("sgd", 0.58, 0.95),
    }
    entries = [
        (run("ls", 0, optimizer=opt, tag=name), {"eval": two_task_eval(acc, err)})
        for name, (opt, acc, err) in points.items()
    ]
    entries += stl_runs(0, 0.1, 0.1)  # STL runs are not points
    runs, results = results_of(entries)
    table, per_method = build("pareto", {}, runs, results)
    row = table.row("b / m")
    assert [c.mean for c in row.cells] == [4, 3, 2, 3, 2, 3]  # 4 valid adam runs, 3 valid sgd runs
    assert all(c.published is None for c in row.cells)  # no reference
    assert "| b / m | 4 | 3 | 2 | 3 | 2 | 3 |" in table.markdown()
    # Table A2: per optimizer and method, the runs on the overall front (one method here: ls)
    assert per_method.columns == ["ls", "Total"]
    assert [c.mean for c in per_method.row("b / m / adam").cells] == [2, 2]
    assert [c.mean for c in per_method.row("b / m / sgd").cells] == [2, 2]


def test_pareto_excludes_runs_under_the_floor() -> None:
    """Seed 001 Table 2 removes runs with mIoU < 0.1 (10 in our %): a run under the floor is neither counted nor
    on the front. a3 (acc .05 < .1) has the lowest err: on the front without the floor, removed with it. s1
    (.7, 3) is dominated by a2 (.8, 1) either way."""
    points = {"a1": ("adam", 0.9, 2.0), "a2": ("adam", 0.8, 1.0), "a3": ("adam", 0.05, 0.5), "s1": ("sgd", 0.7, 3)}
    entries = [
        (run("ls", 0, optimizer=opt, tag=name), {"eval": two_task_eval(acc, err)})
        for name, (opt, acc, err) in points.items()
    ]
    runs, results = results_of(entries)
    study = {"table": {"exclude_below": {"A/acc": 0.1}}}
    table, per_method = build("pareto", study, runs, results)
    assert [c.mean for c in table.row("b / m").cells] == [2, 1, 2, 2, 0, 0]
    assert [c.mean for c in per_method.row("b / m / adam").cells] == [2, 2]
    (unfloored, _) = build("pareto", {}, runs, results)
    assert [c.mean for c in unfloored.row("b / m").cells] == [3, 1, 3, 3, 0, 0]  # a1, a2, a3 on the front


# ------------------------------------------------------------------------------------------------ robustness
def test_robustness_delta_t_is_a_fraction_as_in_the_paper() -> None:
    """Seed 001 eq. (6): delta_t = mean_{c,s} drop(MTL) - drop(STL) with drop = 1 - M_corr / M_clean (higher is
    better) or M_corr / M_clean - 1 (lower is better); per seed, then mean ± std over seeds. Fractions, as
    Tables 3/A8/A9 print them (0.0226), not percent."""
    seg, depth = "segmentation/mIoU", "depth/abs_err"
    hib = {seg: True, depth: False}

    def corrupted(clean: tuple[float, float], sev1: tuple[float, float], sev3: tuple[float, float]) -> dict:
        def m(v: tuple[float, float]) -> dict:
            return {"segmentation": {"mIoU": v[0]}, "depth": {"abs_err": v[1]}}

        return {"corrupted_clean": m(clean), "corrupted": {"noise": {"1": m(sev1), "3": m(sev3)}}}

    def stl(seed: int, clean: tuple[float, float], sev1: tuple[float, float], sev3: tuple[float, float]) -> list:
        ev = corrupted(clean, sev1, sev3)
        out = []
        for task in ("segmentation", "depth"):
            only = {
                "corrupted_clean": {task: ev["corrupted_clean"][task]},
                "corrupted": {"noise": {s: {task: v[task]} for s, v in ev["corrupted"]["noise"].items()}},
            }
            out.append((run("stl", seed, task=task), {"eval": only}))
        return out

    # seed 0: STL drops seg (.8 -> .6, .4): .25, .5 -> .375; depth (2 -> 2.5, 3): .25, .5 -> .375
    #         ls drops seg (.9 -> .45, .9): .5, 0 -> .25;   depth (1 -> 1.5, 1.1): .5, .1 -> .3
    #         delta: seg -.125, depth -.075
    # seed 1: STL seg (.5 -> .5, .25): 0, .5 -> .25; depth (1 -> 1, 1): 0
    #         ls seg (1 -> .5, .5): .5;  depth (2 -> 3, 2): .5, 0 -> .25
    #         delta: seg .25, depth .25
    runs, results = results_of(
        [
            *stl(0, (0.8, 2.0), (0.6, 2.5), (0.4, 3.0)),
            *stl(1, (0.5, 1.0), (0.5, 1.0), (0.25, 1.0)),
            (run("ls", 0), {"eval": corrupted((0.9, 1.0), (0.45, 1.5), (0.9, 1.1))}),
            (run("ls", 1), {"eval": corrupted((1.0, 2.0), (0.5, 3.0), (0.5, 2.0))}),
        ],
        hib,
    )
    (table,) = build("robustness", {"references": ["001_table3"]}, runs, results)
    assert table.columns == [depth, seg, "Mean"]
    assert table.cell("ls", seg).mean == pytest.approx(0.0625)
    assert table.cell("ls", seg).std == pytest.approx(0.375 / SQRT2)
    assert table.cell("ls", depth).mean == pytest.approx(0.0875)
    assert table.cell("ls", depth).std == pytest.approx(0.325 / SQRT2)
    ref = references.load("001_table3")
    assert table.cell("ls", seg).published.value == ref.value("δ_mIoU", method="ls") == 0.0226
    assert table.cell("ls", depth).published.value == ref.value("δ_AbsErr", method="ls")
    # Mean (the paper prints one): per seed the mean over the metrics, seed 0 (-.125 - .075) / 2 = -.1, seed 1
    # (.25 + .25) / 2 = .25 -> .075 ± .35 / sqrt(2); beside the paper's Mean column (0.0293 for EW)
    assert table.cell("ls", "Mean").mean == pytest.approx(0.075)
    assert table.cell("ls", "Mean").std == pytest.approx(0.35 / SQRT2)
    assert table.cell("ls", "Mean").published.value == ref.value("Mean", method="ls") == 0.0293


def test_relative_drop_signs() -> None:
    drops = builders.relative_drop({"a": 0.8, "e": 2.0}, {"a": 0.6, "e": 3.0}, {"a": True, "e": False})
    assert drops == pytest.approx({"a": 0.25, "e": 0.5})


# ------------------------------------------------------------------------------------------------ cost
def test_cost_seconds_per_step_and_ratio_to_ls() -> None:
    # ls: 10 s / 5 steps = 2, 12 / 4 = 3 -> 2.5 ± .707; mgda: 9 / 3 = 3, 15 / 3 = 5 -> 4 ± 1.414 -> 1.6 x LS
    runs, results = results_of(
        [
            (run("ls", 0), {"final": {"seconds": 10.0, "steps": 5}}),
            (run("ls", 1), {"final": {"seconds": 12.0, "steps": 4}}),
            (run("exact+mgda", 0, label="mgda"), {"final": {"seconds": 9.0, "steps": 3}}),
            (run("exact+mgda", 1, label="mgda"), {"final": {"seconds": 15.0, "steps": 3}}),
        ]
    )
    (table,) = build("cost", {}, runs, results)
    assert table.cell("ls", "s / step").mean == pytest.approx(2.5)
    assert table.cell("ls", "s / step").std == pytest.approx(1 / SQRT2)
    assert table.cell("mgda", "s / step").mean == pytest.approx(4.0)
    assert table.cell("mgda", "s / step").std == pytest.approx(SQRT2)
    assert table.cell("ls", "× LS").mean == pytest.approx(1.0)
    assert table.cell("mgda", "× LS").mean == pytest.approx(1.6)


# ------------------------------------------------------------------------------------------------ diagnostics
def test_diagnostics_pool_records_of_every_seed() -> None:
    records0 = [
        {"epoch": 1, "cosine": [0.5, -0.5], "magnitude_similarity": [0.8, 0.6], "condition_number": 2.0},
        {"epoch": 2, "cosine": [-0.2, -0.4], "magnitude_similarity": [0.9, 0.7], "condition_number": math.inf},
    ]
    records1 = [{"epoch": 1, "cosine": [0.1, 0.3], "magnitude_similarity": [1.0, 1.0], "condition_number": 4.0}]
    runs, results = results_of([(run("ls", 0), {"diagnostics": records0}), (run("ls", 1), {"diagnostics": records1})])
    (table,) = build("diagnostics", {}, runs, results)
    cosines = np.array([0.5, -0.5, -0.2, -0.4, 0.1, 0.3])
    mags = np.array([0.8, 0.6, 0.9, 0.7, 1.0, 1.0])
    expected = {
        "cosine": (cosines.mean(), cosines.std(ddof=1)),
        "magnitude sim.": (mags.mean(), mags.std(ddof=1)),
        "conflict %": (50.0, 50.0),  # per record: 1 of 2, 2 of 2, 0 of 2 pairs conflict
        "condition number": (3.0, SQRT2),  # the infinite one is left out
    }
    for column, (mean, std) in expected.items():
        cell = table.cell("ls (b)", column)
        assert (cell.mean, cell.std) == (pytest.approx(mean), pytest.approx(std)), column
    assert not table.row("ls (b)").rank


# ------------------------------------------------------------------------------------------------ probes
def test_toy_convergence_compares_every_lr_column_with_its_own_published_cell(monkeypatch) -> None:
    """Seed 001 Table 1/A7: the cell (optimizer, lr) is compared with the published cell of the same optimizer
    (row setting) and learning rate (column setting), not the first (lr = 10) column."""
    import mtl_core.toy

    calls = []

    def fake_table_a7(*, lrs, max_iterations):
        calls.append((list(lrs), max_iterations))
        out = {}
        for label in ("EW", "PCGrad", "CAGrad"):
            for opt in ("adam", "gd"):
                for i, lr in enumerate(lrs):
                    never = label == "PCGrad" and opt == "gd"
                    per_start = (3, None, 5) if never else (3, 7 + i, 5)
                    out[(label, opt, float(lr))] = mtl_core.toy.Convergence(per_start=per_start)
        return out

    monkeypatch.setattr(mtl_core.toy, "table_a7", fake_table_a7)
    profile = {"probes": {"toy_convergence": {"lrs": [10.0, 1.0, 0.001], "max_iterations": 500}}}
    (table,) = build("toy_convergence", {"references": ["001_table1", "001_tableA7"]}, [], Results(), profile)
    assert calls == [([10.0, 1.0, 0.001], 500)]
    assert table.title == "T (budget 500 iterations)"
    cols = ["adam lr=10", "adam lr=1", "adam lr=0.001", "gd lr=10", "gd lr=1", "gd lr=0.001"]
    assert table.columns == cols
    assert [table.cell("EW", c).mean for c in cols] == [7, 8, 9, 7, 8, 9]  # max over the starts
    assert [table.cell("PCGrad", c).mean for c in cols[3:]] == [None, None, None]  # a start never converged
    published = {
        # seed 001 Table A7 rows (optimizer) x columns (lr = 10, 1, 0.001); '-' = not all seeds converged
        "EW": ["26", "22", "–", "–", "–", "–"],  # GD EW converged only at lr = 5 (103)
        "PCGrad": ["25", "56", "–", "–", "–", "–"],
        "CAGrad": ["27", "32", "57700", "644", "213", "–"],
    }
    for row, texts in published.items():
        assert [table.cell(row, c).published.text for c in cols] == texts, row
    # iteration counts are compared by ratio: CAGrad adam lr=10 ours 7 vs 27 published
    assert table.gap == "ratio" and table.cell("CAGrad", "adam lr=10").gap_text(table.gap) == f"{7 / 27:.3g}×"


def test_loss_scale_tables_from_the_invariance_gaps(monkeypatch) -> None:
    import mtl_core.analysis

    gaps = {
        ("sgd", "ew", True): {"backbone": 0.0, "heads": 0.9},
        ("adam", "ew", True): {"backbone": 0.0, "heads": 0.0},
        ("sgd", "uw_o", True): {"backbone": 0.0, "heads": 0.1},
        ("sgd", "ew", False): {"backbone": 0.8, "heads": 0.9},
        ("adam", "ew", False): {"backbone": 0.3, "heads": 0.0},
        ("sgd", "uw_o", False): {"backbone": 0.2, "heads": 0.1},
        ("adam_per_task", "ew", False): {"backbone": 0.01, "heads": 0.0},
    }
    epochs_seen = set()

    def fake_gap(*, optimizer, weighting, freeze_backbone, epochs):
        epochs_seen.add(epochs)
        return gaps[(optimizer, weighting, freeze_backbone)]

    monkeypatch.setattr(mtl_core.analysis, "lockstep_invariance_gap", fake_gap)
    frozen, learnable = build("loss_scale", {}, [], Results(), {"probes": {"loss_scale": {"epochs": 3}}})
    assert epochs_seen == {3}
    assert frozen.title == "T — frozen backbone (3 epochs)" and learnable.title == "T — learnable backbone (3 epochs)"
    assert frozen.columns == learnable.columns == ["gap backbone", "gap heads"]
    assert [r.name for r in frozen.rows] == ["sgd + ew", "adam + ew", "sgd + uw_o"]
    assert [r.name for r in learnable.rows] == ["sgd + ew", "adam + ew", "sgd + uw_o", "adam_per_task + ew"]
    for table, is_frozen in ((frozen, True), (learnable, False)):
        for row in table.rows:
            optimizer, weighting = row.name.split(" + ")
            expected = gaps[(optimizer, weighting, is_frozen)]
            assert [c.mean for c in row.cells] == [expected["backbone"], expected["heads"]]
    # the same numbers as plain data, which the claims read (mtl_pipelines.claims.loss_scale_observations)
    records = [r for t in (frozen, learnable) for r in t.data["gaps"]]
    assert frozen.data["probe"] == learnable.data["probe"] == "loss_scale"
    assert {(r["setup"], r["group"], r["backbone"]): r["gap"] for r in records} == {
        (f"{o} + {w}", g, "frozen" if f else "learnable"): v for (o, w, f), by in gaps.items() for g, v in by.items()
    }


def test_sharpness_table_means_over_seeds_beside_the_published_epoch_row() -> None:
    """Seed 002 Table 1: methods are column groups (LS, LS with SAM), rows are epochs."""
    measured = [
        (run("ls", 0, epochs=10), SimpleNamespace(lambda_max=100.0, ratio=10.0)),
        (run("ls", 1, epochs=10), SimpleNamespace(lambda_max=200.0, ratio=30.0)),
        (run("sam+ls", 0, epochs=10), SimpleNamespace(lambda_max=50.0, ratio=4.0)),
    ]
    table = probes.sharpness_table({"id": "t", "title": "T", "references": ["002_table1"]}, measured)
    assert table.columns == ["λ_max", "λ_max / λ_5"]
    assert table.cell("ls", "λ_max").mean == pytest.approx(150.0)
    assert table.cell("ls", "λ_max").std == pytest.approx(100 / SQRT2)
    assert table.cell("ls", "λ_max / λ_5").mean == pytest.approx(20.0)
    assert table.cell("sam+ls", "λ_max").std is None
    ref = references.load("002_table1")
    assert table.cell("ls", "λ_max").published.value == ref.value("LS λ_max", epoch=10) == 493.5
    assert table.cell("ls", "λ_max / λ_5").published.value == ref.value("LS λ_max/λ_5", epoch=10)
    assert table.cell("sam+ls", "λ_max").published.value == ref.value("LS with SAM λ_max", epoch=10)
    assert table.gap == "ratio" and table.cell("ls", "λ_max").gap("ratio") == pytest.approx(150.0 / 493.5)
    other_epochs = probes.sharpness_table(
        {"id": "t", "title": "T", "references": ["002_table1"]},
        [(run("ls", 0, epochs=2), SimpleNamespace(lambda_max=1.0, ratio=1.0))],
    )
    assert other_epochs.cell("ls", "λ_max").published.text == "–"  # the paper has no epoch-2 row


def test_every_registered_builder_is_tested_here() -> None:
    tested = {"results", "delta_m", "pareto", "robustness", "cost", "diagnostics", "toy_convergence", "loss_scale"}
    tested |= {"sharpness"}  # through sharpness_table (its Hessian needs trained weights)
    tested |= {"toy_sam", "toy_aligned"}
    tested |= {"task_cosines"}  # through task_cosine_table (its gradients need trained weights)
    tested |= {"mt10_success"}  # on synthetic results in test_rl_study.py
    assert set(registry.names()) == tested


# ------------------------------------------------------------------------------------------------ STL groups
def _swept(method: str, seed: int, lr: float, *, task: str | None = None, optimizer: str = "adam") -> grid.RunSpec:
    """A run of a seed 001 sweep: MTL runs named by their lr setting, every STL run in one STL group."""
    spec = run(method, seed, task=task, optimizer=optimizer, tag=f"-{lr:g}")
    spec.config["optimizer"]["lr"] = lr
    spec.setting = f"{'stl ' if method == 'stl' else ''}{optimizer} lr={lr:g}"
    spec.stl_group = "STL (sweep)"
    return spec


def _eval(acc: float, err: float, val: tuple[float, float] | None = None, task: str | None = None) -> dict:
    ev = {"test": {"A": {"acc": acc}, "B": {"err": err}}, "val": {"A": {"acc": val[0]}, "B": {"err": val[1]}}}
    if task is not None:
        ev = {part: {task: ms[task]} for part, ms in ev.items()}
    return {"eval": ev}


def test_results_select_the_best_lr_on_validation_per_method_and_optimizer() -> None:
    """Seed 001 Tables A3-A6: one row per method and optimizer, at the lr of lowest validation Delta_m (mean
    over seeds), against the STL of the best lr per task on validation; one table for all lr settings.

    STL candidates (val): A at lr .01 acc .5, at lr .001 acc .8 -> lr .001 (test acc 0.7);
                          B at lr .01 err 2.0, at lr .001 err 4.0 -> lr .01 (test err 1.0).
    ls adam, val vs STL val (.8, 2.0): lr .1 (.8, 2.2) -> (0 + 10) / 2 = 5; lr .01 (.88, 1.8) -> -10: chosen.
      its test (.77, 0.9) vs STL test (.7, 1.0): (-10 - 10) / 2 = -10.
    ls sgd: one lr (.1), val (.4, 4.0) -> (50 + 100) / 2 = 75; test (.7, 1.0) -> 0.
    """
    entries = [
        (_swept("stl", 0, 0.01, task="A"), _eval(0.6, 9.0, (0.5, 9.0), task="A")),
        (_swept("stl", 0, 0.001, task="A"), _eval(0.7, 9.0, (0.8, 9.0), task="A")),
        (_swept("stl", 0, 0.01, task="B"), _eval(9.0, 1.0, (9.0, 2.0), task="B")),
        (_swept("stl", 0, 0.001, task="B"), _eval(9.0, 0.5, (9.0, 4.0), task="B")),
        (_swept("ls", 0, 0.1), _eval(0.99, 0.1, (0.8, 2.2))),
        (_swept("ls", 0, 0.01), _eval(0.77, 0.9, (0.88, 1.8))),
        (_swept("ls", 0, 0.1, optimizer="sgd"), _eval(0.7, 1.0, (0.4, 4.0))),
    ]
    runs, results = results_of(entries)
    study = {
        "references": ["001_tableA3"],
        "table": {"delta_m": "metric", "rows": "method x optimizer", "select": "best_val_delta_m_over_lr"},
    }
    (table,) = build("results", study, runs, results)
    assert table.title == "T — b / m"  # one table over every lr setting
    assert [r.name for r in table.rows] == ["STL", "ls (adam)", "ls (sgd)"]
    assert table.cell("STL", "A/acc").mean == pytest.approx(0.7) and table.cell("STL", "B/err").mean == 1.0
    assert table.cell("ls (adam)", "A/acc").mean == pytest.approx(0.77)
    assert table.cell("ls (adam)", "Δm% (ours vs our STL)").mean == pytest.approx(-10.0)
    assert table.cell("ls (sgd)", "Δm% (ours vs our STL)").mean == pytest.approx(0.0, abs=1e-12)
    assert table.cell("ls (adam)", "lr").text == "0.01" and table.cell("ls (sgd)", "lr").text == "0.1"
    ref = references.load("001_tableA3")
    # the lr column: beside the lr the paper selected for the same method and optimizer (EW: adam 0.005, sgd 0.1)
    assert table.cell("ls (adam)", "lr").published.text == "0.005"
    assert table.cell("ls (sgd)", "lr").published.text == "0.1"
    assert table.cell("ls (sgd)", "Δm% (ours vs our STL)").published.value == ref.value(
        "DeltaM", method="ls", optimizer="sgd"
    )


def test_results_take_the_stl_baseline_of_the_runs_stl_group_not_of_their_setting() -> None:
    """STL runs of their own protocol and lr grid (seed 001) are the baseline of every MTL setting of the block;
    a table per MTL setting, none for the STL settings."""
    entries = [
        (_swept("stl", 0, 0.01, task="A"), _eval(0.8, 9.0, (0.8, 9.0), task="A")),
        (_swept("stl", 0, 0.01, task="B"), _eval(9.0, 2.0, (9.0, 2.0), task="B")),
        (_swept("ls", 0, 0.1), _eval(0.88, 1.8, (0.1, 0.1))),
        (_swept("ls", 0, 0.01), _eval(0.8, 2.2, (0.1, 0.1))),
    ]
    runs, results = results_of(entries)
    tables = build("results", {"table": {"delta_m": "metric"}}, runs, results)
    assert [t.title for t in tables] == ["T — b / m / adam lr=0.1", "T — b / m / adam lr=0.01"]
    assert [t.cell("ls", "Δm% (ours vs our STL)").mean for t in tables] == [pytest.approx(-10.0), pytest.approx(5.0)]
    assert all(t.cell("STL", "A/acc").mean == 0.8 for t in tables)


def test_results_options_are_checked_when_the_study_is_loaded() -> None:
    for table, field in (
        ({"delta_m": "both"}, "table.delta_m"),
        ({"delta_m": ["task", "mean"]}, "table.delta_m"),
        ({"delta_m": "metric", "select": "best_lr"}, "table.select"),
        ({"delta_m": "metric", "select": "best_val_delta_m_over_lr"}, "go together"),
        ({"rows": "method x optimizer", "select": "best_val_delta_m_over_lr"}, "table.delta_m must be set"),
        ({"colums": "mean"}, "unknown field"),
    ):
        with pytest.raises(ValueError, match=field):
            registry.check_study({"builder": "results", "table": table}, "studies/x.yaml")
    with pytest.raises(ValueError, match=r"studies/x.yaml: table.exclude_below"):
        registry.check_study({"builder": "pareto", "table": {"exclude_below": {"A/acc": "low"}}}, "studies/x.yaml")


def test_cost_peak_memory_next_to_time() -> None:
    mib = 2**20
    entries = [
        (run("ls", 0), {"final": {"seconds": 1.0, "steps": 1, "peak_memory": {"bytes": 100 * mib, "measure": "m"}}}),
        (run("ls", 1), {"final": {"seconds": 1.0, "steps": 1, "peak_memory": {"bytes": 300 * mib, "measure": "m"}}}),
        (
            run("sam+ls", 0),
            {"final": {"seconds": 3.0, "steps": 1, "peak_memory": {"bytes": 500 * mib, "measure": "m"}}},
        ),
    ]
    runs, results = results_of(entries)
    (table,) = build("cost", {"references": ["002_table3"]}, runs, results)
    assert table.cell("ls", "peak MiB").mean == pytest.approx(200.0)
    assert table.cell("ls", "peak MiB").std == pytest.approx(200 / SQRT2)
    assert table.cell("sam+ls", "memory × LS").mean == pytest.approx(2.5)
    assert table.cell("sam+ls", "× LS").mean == pytest.approx(3.0)
    assert table.cell("sam+ls", "× LS").published.text == "C_{b}"  # 002 Table 3: G-SAM costs one more backward
    assert any("peak memory of the training steps: m" in n for n in table.notes)


def test_a_published_fraction_is_compared_with_our_percentage_as_a_percentage() -> None:
    """Seed 001 Tables A3-A6 print mIoU as a fraction (STL 0.7122); our mIoU is in % (71.22): the published cell
    is scaled to ours (its text keeps the printed number), and so is the paper's STL row for Delta_m."""
    hib = {"segmentation/mIoU": True}
    entries = [
        (run("stl", 0, task="segmentation"), {"eval": {"test": {"segmentation": {"mIoU": 71.22}}}}),
        (run("ls", 0), {"eval": {"test": {"segmentation": {"mIoU": 64.098}}}}),
    ]
    runs, _ = results_of(entries, hib)
    results = Results(
        {r.run_id: {"final": {}, "diagnostics": [], **res} for r, res in entries}, hib, {"segmentation/mIoU": "%"}
    )
    study = {"references": ["001_tableA3"], "table": {"delta_m": "metric"}}
    (table,) = build("results", study, runs, results)
    stl = table.cell("STL", "segmentation/mIoU")
    assert stl.published.value == pytest.approx(71.22) and stl.published.text.startswith("0.7122")
    assert stl.gap("difference") == pytest.approx(0.0, abs=1e-9)
    # ours vs the paper's STL (71.22 %): mIoU 10 % lower -> Delta_m +10
    assert table.cell("ls", "Δm% (ours vs paper STL)").mean == pytest.approx(10.0)


def test_toy_sam_ends_ls_in_the_sharp_well_and_ls_with_sam_on_the_flat_part(tmp_path) -> None:
    """Seed 002 Fig. 1 with mtl_core's step rule (500 Adam steps, lr 0.1, rho 1.5): both end Pareto stationary;
    LS in the sharp well of f2 at (-4, 0), LS with SAM rho away from it on the flat part (largest Hessian
    eigenvalue of f1 + f2 two orders smaller), as the paper's figure shows."""
    (table,) = build("toy_sam", {}, [], Results(), {})
    ls, sam = table.row("LS"), table.row("LS+SAM")
    x1 = table.columns.index("x1")
    assert ls.cells[x1].mean == pytest.approx(-4.0, abs=0.05)
    assert sam.cells[x1].mean > -3.0
    stationarity = table.columns.index("Pareto stationarity")
    assert ls.cells[stationarity].mean < 1e-3 and sam.cells[stationarity].mean < 1e-2
    lam = table.columns.index("λ_max(∇²(f1 + f2))")
    assert ls.cells[lam].mean > 30 * sam.cells[lam].mean
    # an independent Hessian of f1 + f2 at LS's end point, by finite differences of the analytic gradient
    from mtl_core.toy import samo_losses

    x = torch.tensor([ls.cells[x1].mean, ls.cells[x1 + 1].mean], dtype=torch.float64)

    def grad(v):
        v = v.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(samo_losses(v).sum(), v)
        return g

    h = 1e-5
    hessian = torch.stack([(grad(x + h * e) - grad(x - h * e)) / (2 * h) for e in torch.eye(2, dtype=torch.float64)])
    assert ls.cells[lam].mean == pytest.approx(float(torch.linalg.eigvalsh(hessian).max()), rel=1e-4)
    from mtl_pipelines.report import figures

    (png,) = figures.toy_trajectories({}, [], Results(), [table], tmp_path)
    assert png.name == "toy_trajectories.png" and png.stat().st_size > 0


def test_toy_aligned_counts_the_starts_that_reach_the_weighted_optimum() -> None:
    """Seed 003 Fig. 1 / App. C, scaled down: a start counts when its weighted objective ends within tol of the
    global minimum. Checked against the trajectories run here with mtl_core.toy directly."""
    from mtl_core.toy import ALIGNED_MTL_STARTS, cagrad_toy, run_toy

    settings = {"iterations": 150, "lr": 0.05, "scales": [0.5], "methods": ["ls", "aligned_mtl"], "tol": 0.1}
    (table,) = build("toy_aligned", {}, [], Results(), {"probes": {"toy_aligned": settings}})
    assert [r.name for r in table.rows] == ["Uniform", "Aligned-MTL"]
    for label, method in (("Uniform", "ls"), ("Aligned-MTL", "aligned_mtl")):
        problem = cagrad_toy(task_scales=(0.5, 0.5), starts=ALIGNED_MTL_STARTS)
        trajectory = run_toy(problem, method, optimizer="adam", lr=0.05, iterations=150)
        gaps = trajectory.losses.mean(-1)[-1] - problem.global_minimum[1]
        assert table.cell(label, "reached s=0.5").text == f"{int((gaps < 0.1).sum())} / 5"
        assert table.cell(label, "max gap s=0.5").mean == pytest.approx(float(gaps.max()))


def test_task_cosine_table_from_the_measured_matrices() -> None:
    """Seed 002 Figs. 2 / 5: off-diagonal cosines of each seed's matrix -> mean, min and conflict share, then
    mean ± std over seeds. LS seed 0: pairs (.5, -.5, .2) -> mean .0667, min -.5, 33.3%; seed 1: (.1, .1, .1) ->
    .1, .1, 0%."""
    m0 = np.array([[1, 0.5, -0.5], [0.5, 1, 0.2], [-0.5, 0.2, 1]])
    m1 = np.array([[1, 0.1, 0.1], [0.1, 1, 0.1], [0.1, 0.1, 1]])
    tasks = ["a", "b", "c"]
    table = probes.task_cosine_table({"title": "T"}, {"LS": [(tasks, m0), (tasks, m1)]})
    assert table.cell("LS", "mean cosine").mean == pytest.approx((0.2 / 3 + 0.1) / 2)
    assert table.cell("LS", "min cosine").mean == pytest.approx((-0.5 + 0.1) / 2)
    assert table.cell("LS", "conflicting pairs %").mean == pytest.approx(100 / 6)
    tasks_out, mean_matrix = table.payload["matrices"]["LS"]
    assert tasks_out == tasks and mean_matrix[0, 2] == pytest.approx(-0.2)
