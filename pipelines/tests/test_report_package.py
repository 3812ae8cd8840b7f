"""The report package around the builders: the table model and its renderings, the published-cell lookup,
the builder registry (and ``grid``'s validation of studies against it), the index (distance, verdicts) and
the driver's files on synthetic results."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
import yaml

from mtl_pipelines import grid, references
from mtl_pipelines.report import (
    Cell,
    Published,
    Results,
    StudySummary,
    Table,
    Verdict,
    build,
    build_index,
    index,
    published,
    registry,
)

REPORT_DIR = Path(__file__).resolve().parents[1] / "src" / "mtl_pipelines" / "report"


# ------------------------------------------------------------------------------------------------ tables
def _table() -> Table:
    table = Table("T", ["acc", "err", "note"], [True, False, None])
    table.add("a", [Cell(0.5, 0.1, Published(0.6, None, "0.6")), Cell(2.0), Cell(None, text="3 / 5")])
    table.add("b", [Cell(0.7), Cell(1.0, None, Published(None, None, "lost")), Cell(None)])
    table.add("STL", [Cell(0.9), Cell(0.5), Cell(None)], rank=False)
    return table


def test_markdown_marks_the_best_ranked_value_and_shows_published_in_parentheses() -> None:
    md = _table().markdown()
    assert "| a | 0.5 ± 0.1 (0.6) | 2 | 3 / 5 |" in md
    assert "| b | **0.7** | **1** (lost) | – |" in md  # STL (0.9, 0.5) is better but not ranked
    assert "| STL | 0.9 | 0.5 | – |" in md


def test_csv_and_latex_hold_the_same_cells() -> None:
    rows = _table().csv_rows()
    assert rows[0] == {
        "table": "T",
        "row": "a",
        "column": "acc",
        "ours_mean": 0.5,
        "ours_std": 0.1,
        "ours_text": None,
        "published": "0.6",
        "published_value": 0.6,
        "gap": pytest.approx(0.5 - 0.6),
        "gap_kind": "difference",
    }
    # a text cell's text has its own column; ours_mean stays numeric (or empty)
    assert rows[2]["ours_text"] == "3 / 5" and rows[2]["ours_mean"] is None and rows[2]["published"] is None
    # a lost published cell: shown as 'lost', no number, no gap
    assert (rows[4]["published"], rows[4]["published_value"], rows[4]["gap"]) == ("lost", None, None)
    tex = _table().latex()
    assert "b & \\textbf{0.7} & \\textbf{1} (lost) & -- \\\\" in tex


def test_table_rejects_a_row_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        _table().add("c", [Cell(1.0), Cell(2.0)])


def test_pipeline_check_is_labelled_at_the_top_and_has_no_distance() -> None:
    table = _table()
    assert index.distance([table]) == "17% over 1 cells"  # |0.5 - 0.6| / 0.6; 'lost' has no value
    table.pipeline_check = "2 epochs of 4 steps: not comparable with the paper"
    md = table.markdown()
    assert md.index("Pipeline check: 2 epochs") < md.index("| method |")
    assert index.distance([table]) == "pipeline check"
    other = Table("U", ["x"], [True])
    other.add("a", [Cell(1.5, None, Published(1.0, None, "1.0"))])
    assert index.distance([table, other]) == "50% over 1 cells"  # the check's cells are left out


# ------------------------------------------------------------------------------------------------ published
def test_published_matches_row_and_column_settings() -> None:
    """Seed 001 Table A7: optimizer in the rows, learning rate in the columns."""
    ref = references.load("001_tableA7")
    cell = published.published(ref, "exact+cagrad", setting={"optimizer": "gd", "lr": 1.0})
    assert (cell.value, cell.text) == (213.0, "213")
    assert published.published(ref, "exact+cagrad", setting={"optimizer": "gd", "lr": 10.0}).value == 644
    assert published.published(ref, "exact+cagrad", setting={"optimizer": "adam", "lr": 0.5}).value == 106
    no_cell = published.published(ref, "exact+cagrad", setting={"optimizer": "gd", "lr": 0.3})
    assert (no_cell.value, no_cell.text) == (None, "–")


def test_published_std_and_lost_cells() -> None:
    lost = next(
        (ref, row, col)
        for ref in map(references.load, references.tables())
        if ref.status == "partial"
        for row, col, cell in ref.iter_cells()
        if cell.missing == references.LOST and col.kind == "metric" and row.method and col.task
    )
    ref, row, col = lost
    shown = published.published(ref, row.method, task=col.task, metric=col.key, setting=dict(row.setting))
    assert shown.text == "lost" and shown.value is None


def test_cite_a_reference_whose_numbers_were_all_lost() -> None:
    table = Table("T", ["x"], [True])
    assert published.cite(table, references.load("003_table2")) is None
    assert table.banners == [
        "The published numbers of Independent Component Alignment for Multi-Task Learning (Aligned-MTL), "
        "Table 2 were lost in the seed's text extraction (reference 003_table2): only our numbers are shown."
    ]
    assert not table.notes
    kept = Table("T", ["x"], [True])
    ref = references.load("004_table2")
    assert published.cite(kept, ref) is ref and not kept.banners and ref.id in kept.notes[0]


# ------------------------------------------------------------------------------------------------ registry
def test_registry_has_every_builder_once_with_probes_flagged() -> None:
    assert registry.names() == sorted(
        [
            "results",
            "delta_m",
            "pareto",
            "robustness",
            "cost",
            "diagnostics",
            "toy_convergence",
            "loss_scale",
            "sharpness",
            "toy_sam",
            "toy_aligned",
            "task_cosines",
            "mt10_success",
        ]
    )
    probes = {"toy_convergence", "loss_scale", "sharpness", "toy_sam", "toy_aligned", "task_cosines"}
    assert {n for n in registry.names() if registry.get(n).probe} == probes
    # the MT10 builder reads trained runs that its study plans itself (jobs of the grid, not a probe)
    assert {n for n in registry.names() if registry.get(n).runs is not None} == {"mt10_success"}
    with pytest.raises(ValueError, match="unknown builder 'nope'; valid: cost, delta_m, diagnostics, loss_scale"):
        registry.get("nope")


def test_registering_another_function_under_a_taken_name_fails() -> None:
    def results(study, profile, runs, results):
        return []

    with pytest.raises(ValueError, match="registered twice"):
        registry.register("cost")(results)


def test_the_report_package_does_not_import_the_probes() -> None:
    """No import cycle: the probes import the report's table types; the report reaches the probes only
    through the registry's list of builder modules."""
    for path in REPORT_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = [
            alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        ]
        assert not [m for m in imported if "probes" in m], path


def test_grid_rejects_a_study_with_an_unknown_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(grid.configs_root(), configs)
    path = configs / "studies" / "001_table1.yaml"
    study = yaml.safe_load(path.read_text())
    study["builder"] = "probe"  # the pre-registry spelling of the probes
    path.write_text(yaml.safe_dump(study))
    monkeypatch.setenv(grid.CONFIGS_ENV, str(configs))
    with pytest.raises(
        ValueError, match=r"001_table1\.yaml: builder 'probe' is not valid; valid: cost, delta_m, .*, toy_convergence"
    ):
        grid.load_studies()


def test_every_study_names_a_registered_builder() -> None:
    assert {s["builder"] for s in grid.load_studies().values()} <= set(registry.names())


# ------------------------------------------------------------------------------------------------ index
def _verdict(**changes) -> Verdict:
    base = {
        "study": "002_table5",
        "claim": "samo-improves-ls",
        "statement": "SAMO-LS has a lower Delta_m than LS on QM9",
        "verdict": "inconclusive",
        "statistic": -1.5,
        "interval": [-4.0, 1.0],
        "method": "t-interval over 3 seeds",
        "n_seeds": 3,
        "detail": "interval crosses 0",
    }
    return Verdict.from_json({**base, **changes})


def test_verdicts_are_validated() -> None:
    with pytest.raises(ValueError, match="verdict 'probably'"):
        _verdict(verdict="probably")
    with pytest.raises(ValueError, match="not ordered"):
        _verdict(interval=[2.0, 1.0])
    assert _verdict(interval=None).interval is None


def test_index_opens_with_the_verdicts_then_the_studies(tmp_path: Path) -> None:
    summaries = [
        StudySummary("002_table5", "QM9", "real", "epochs [2]", 6, "40% over 3 cells", 0, (_verdict(),)),
        StudySummary(
            "000_table1",
            "MM",
            "stand-in",
            "epochs [1]",
            2,
            "pipeline check",
            1,
            (_verdict(study="000_table1", claim="c2", verdict="reproduced", interval=None, statistic=0.2),),
        ),
    ]
    for s in summaries:  # summary.json round trip, as `mtl report index` reads them back
        (tmp_path / s.id).mkdir()
        (tmp_path / s.id / "summary.json").write_text(json.dumps(s.to_json()))
        assert StudySummary.from_json(json.loads(json.dumps(s.to_json()))) == s
    build_index({"name": "p", "reports_dir": str(tmp_path)}, [{"id": s.id} for s in summaries])
    md = (tmp_path / "index.md").read_text()
    assert "2 claims: 1 reproduced, 0 not reproduced, 1 inconclusive." in md
    assert (
        "- **inconclusive** — [002_table5](002_table5/table.md) samo-improves-ls: SAMO-LS has a lower Delta_m "
        "than LS on QM9 (statistic -1.5, interval [-4, 1], t-interval over 3 seeds, 3 seeds; interval crosses 0)"
    ) in md
    assert md.index("## Verdicts") < md.index("| study |")
    assert "| [000_table1](000_table1/table.md) | MM | stand-in | epochs [1] | 2 | pipeline check | 1 |" in md
    assert '<table class="index">' in (tmp_path / "index.html").read_text()


def test_index_of_a_missing_study_report_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"x/summary\.json is missing"):
        build_index({"name": "p", "reports_dir": str(tmp_path)}, [{"id": "x"}])


# ------------------------------------------------------------------------------------------------ driver
def test_build_writes_the_files_of_each_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver on synthetic results: same file names as before the package split; a probe whose study
    cannot run is listed, not built."""
    from mtl_pipelines.report import driver

    runs = [grid.RunSpec(f"b-m-ls-{seed}", {}, "b", "m", "ls", "ls", None, "", seed, studies={"s1"}) for seed in (0, 1)]
    results = Results({r.run_id: {"final": {"seconds": 2.0, "steps": 1}, "eval": {}, "diagnostics": []} for r in runs})
    study = {"id": "s1", "paper": "004", "title": "S1", "builder": "cost", "references": []}
    probe = {"id": "s2", "paper": "001", "title": "S2", "builder": "toy_convergence", "references": []}
    plan = grid.Plan({r.run_id: r for r in runs}, {"s2": ["needs mtl_core.toy, which is not installed"]})
    monkeypatch.setattr(driver.grid, "plan", lambda profile: plan)
    monkeypatch.setattr(driver, "load_results", lambda profile, by_id: results)
    monkeypatch.setattr(driver, "scale_line", lambda runs: ("stand-in: x (tiny)", "epochs [2], seeds [0, 1]"))
    profile = {"name": "p", "reports_dir": str(tmp_path)}
    written = build(profile, [study, probe])
    names = sorted(str(p.relative_to(tmp_path)) for p in written)
    assert names == sorted(
        [f"s1/{n}" for n in ("table.md", "table.tex", "table.csv", "table.html", "summary.json", "efficiency.png")]
        + [f"s2/{n}" for n in ("table.md", "table.tex", "table.csv", "table.html", "summary.json")]
        + ["index.md", "index.html"]
    )
    md = (tmp_path / "s1" / "table.md").read_text()
    assert (
        "### S1\n\n_Data: stand-in: x (tiny). Scale: epochs [2], seeds [0, 1]._\n" in md
        and "| ls | **2 ± 0** | **1** | – | – |" in md  # no peak memory recorded
        and "![efficiency](efficiency.png)" in md
    )
    s2 = (tmp_path / "s2" / "table.md").read_text()
    assert "Not run on this profile:\n- needs mtl_core.toy" in s2 and "| method |" not in s2
    summary = json.loads((tmp_path / "s1" / "summary.json").read_text())
    assert summary["data"] == "stand-in" and summary["runs"] == len(runs) and summary["verdicts"] == []


def _claim(claim_id: str, kind: str, bench: str, **fields) -> dict:
    return {
        "id": claim_id,
        "kind": kind,
        "statement": f"{claim_id} on {bench}",
        "source": {"seed": "000_b20124c3765acfc2.txt", "where": "Table 1"},
        "benchmark": bench,
        "quantity": "mean accuracy",
        **fields,
    }


def test_build_opens_with_the_verdicts_and_labels_pipeline_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver on synthetic results of 3 seeds: benchmark ``b`` runs at a finding scale, ``c`` as a pipeline
    check. MGDA beats LS by 5 accuracy points on every seed: the improvement is reproduced on ``b``, the reverse
    ordering is not, and the claim on ``c`` is inconclusive (not tested); the index and the study page open with
    these verdicts, and only ``c``'s tables are labelled as pipeline checks, without a distance figure."""
    from mtl_pipelines.report import driver

    runs, evaluated = [], {}
    for bench in ("b", "c"):
        for seed in range(3):
            for method, label, task, left, right in (
                ("ls", "ls", None, 80.0 + seed, 70.0),
                ("exact+mgda", "exact+mgda", None, 85.0 + seed, 75.0 + seed / 10),
                ("stl", "STL", "left", 90.0, None),
                ("stl", "STL", "right", None, 88.0),
            ):
                run_id = f"{bench}-{label}-{task}-{seed}"
                studies = {"s1"} if bench == "b" else {"s1", "s2"}
                config = {"optimizer": {"name": "adam", "lr": 0.001}}
                runs.append(grid.RunSpec(run_id, config, bench, "m", method, label, task, "", seed, studies=studies))
                test = {t: {"accuracy": v} for t, v in (("left", left), ("right", right)) if v is not None}
                evaluated[run_id] = {"eval": {"test": test, "val": test}, "final": {}, "diagnostics": []}
    results = Results(evaluated, {"left/accuracy": True, "right/accuracy": True}, {})
    block = {"model": "m", "protocol": "mpnn_qm9", "stl": True, "methods": ["ls", "exact+mgda"]}
    s1 = {
        "id": "s1",
        "paper": "000",
        "title": "S1",
        "builder": "results",
        "references": [],
        "experiments": [{**block, "benchmark": "b"}, {**block, "benchmark": "c"}],
        "claims": [
            _claim("mgda_over_ls_b", "improvement", "b", method="exact+mgda", base="ls"),
            _claim("ls_over_mgda_b", "ordering", "b", better=["ls"], worse=["exact+mgda"]),
            _claim("mgda_over_ls_c", "improvement", "c", method="exact+mgda", base="ls"),
        ],
    }
    s2 = {**s1, "id": "s2", "title": "S2", "experiments": [{**block, "benchmark": "c"}], "claims": []}
    plan = grid.Plan({r.run_id: r for r in runs}, {})
    monkeypatch.setattr(driver.grid, "plan", lambda profile: plan)
    monkeypatch.setattr(driver, "load_results", lambda profile, by_id: results)
    monkeypatch.setattr(driver, "scale_line", lambda runs: ("real: x", "epochs [2], seeds [0, 1, 2]"))
    profile = {"name": "p", "reports_dir": str(tmp_path), "findings": {"benchmarks": ["b"]}, "benchmarks": {}}
    build(profile, [s1, s2])

    md = (tmp_path / "index.md").read_text()
    assert md.index("## Verdicts") < md.index("| study |")
    assert "3 claims: 1 reproduced, 1 not reproduced, 1 inconclusive." in md
    lines = [line for line in md.splitlines() if line.startswith("- **")]
    assert [line.split("**")[1] for line in lines] == ["reproduced", "not reproduced", "inconclusive"]
    assert "[s1](s1/table.md) mgda_over_ls_b" in lines[0] and "[seed 000, Table 1]" in lines[0]
    assert "advantage +5" in lines[0] and "not tested: c runs as a pipeline check" in lines[2]
    html = (tmp_path / "index.html").read_text()
    assert html.index('id="verdicts"') < html.index('id="studies"')
    assert html.count('class="claim" data-verdict=') == 3
    assert '<span class="cited">[seed 000, Table 1]</span> \n<span class="numbers">' in html  # spaced from them

    page = (tmp_path / "s1" / "table.md").read_text()
    assert page.index("## Verdicts") < page.index("### ")
    assert "3 claims: 1 reproduced" in page
    b_table = page[page.index("### S1 — b / m") : page.index("### S1 — c / m")]
    c_table = page[page.index("### S1 — c / m") :]
    assert "Pipeline check" not in b_table
    assert "> **Pipeline check: profile `p` runs c at a pipeline-check scale; comparable numbers need the paper " in (
        c_table
    )
    records = json.loads((tmp_path / "s1" / "claims.json").read_text())
    assert [(r["claim"], r["verdict"], r["kind"]) for r in records] == [
        ("mgda_over_ls_b", "reproduced", "improvement"),
        ("ls_over_mgda_b", "not reproduced", "ordering"),
        ("mgda_over_ls_c", "inconclusive", "improvement"),
    ]
    assert records[0]["source"] == {"seed": "000_b20124c3765acfc2.txt", "where": "Table 1"}
    summaries = {s: json.loads((tmp_path / s / "summary.json").read_text()) for s in ("s1", "s2")}
    assert [v["claim"] for v in summaries["s1"]["verdicts"]] == [r["claim"] for r in records]
    assert summaries["s2"]["distance"] == "pipeline check" and summaries["s1"]["distance"] != "pipeline check"
    assert not (tmp_path / "s2" / "claims.json").exists()  # a study without claims


def test_pipeline_check_reason_of_probes_and_mixed_tables() -> None:
    from mtl_pipelines.report import driver

    profile = {"name": "p", "findings": {"benchmarks": ["b"], "probes": ["t1"]}, "probes": {"toy": {"lr": 0.1}}}
    listed = {"id": "t1", "builder": "toy"}
    scaled = {"id": "t2", "builder": "toy"}
    table = Table("T", ["x"], [None])
    assert driver.pipeline_check_reason(profile, listed, table) is None
    reason = driver.pipeline_check_reason(profile, scaled, table)
    assert reason == (
        "profile `p` runs this probe scaled down (lr 0.1); the paper's settings are those of profile `paper`"
    )
    study = {"id": "s", "experiments": [{"benchmark": b, "protocol": "mpnn_qm9"} for b in ("b", "c")]}
    assert "runs c at a pipeline-check scale" in driver.pipeline_check_reason(profile, study, table)  # the study's
    assert driver.pipeline_check_reason(profile, study, Table("T", ["x"], [None], benchmarks=["b"])) is None
    assert driver.pipeline_check_reason({**profile, "findings": "all"}, scaled, table) is None  # profile paper


def test_results_mapping() -> None:
    results = Results({"r": {"eval": {}}}, {"A/acc": True})
    assert list(results) == ["r"] and len(results) == 1 and results["r"] == {"eval": {}}
