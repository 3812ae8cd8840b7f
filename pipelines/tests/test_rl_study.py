"""Study 003_table5 (mtl_pipelines.rl.study): the success table on synthetic results (mean ± SEM over seeds beside
the published cell of the same method, pipeline-check label), the profile's rl.mt10_sac settings and the study's
method entries (refused by name when invalid), the grid's answer without metaworld; the MT10 runs as jobs of the
grid (one run of kind mt10_sac per method and seed, with its config) and the report reading the finished runs."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from mtl_pipelines import grid, jobs
from mtl_pipelines.config import ConfigError, config_hash
from mtl_pipelines.rl.study import PAPER_SEEDS, check_study, settings, success_table
from mtl_pipelines.rl.training import PROTOCOL, MT10Run


def _study() -> dict:
    return grid.load_studies()["003_table5"]


def test_the_table_is_mean_and_sem_over_seeds_beside_the_published_cell() -> None:
    measured = {"MTL SAC": ("ls", [0.4, 0.6, 0.8]), "PCGrad": ("exact+pcgrad", [0.7]), "CAGrad": ("exact+cagrad", [])}
    table = success_table(_study(), measured, {}, seeds=PAPER_SEEDS)
    rows = {row.name: row.cells[0] for row in table.rows}
    assert rows["MTL SAC"].mean == pytest.approx(0.6)
    assert rows["MTL SAC"].std == pytest.approx(0.2 / math.sqrt(3))  # sample std 0.2 over sqrt(3) seeds
    assert (rows["MTL SAC"].published.value, rows["MTL SAC"].published.std) == (0.49, 0.073)
    assert rows["PCGrad"].std is None and rows["PCGrad"].published.value == 0.72  # one seed: no SEM
    assert rows["CAGrad"].mean is None and rows["CAGrad"].published.value == 0.83
    assert table.pipeline_check is None  # the paper's protocol and ten seeds: compared with the paper
    assert any("outside this study: STL SAC, MTL SAC + TE, MH SAC, SM, CARE (" in n for n in table.notes)
    assert any(n.endswith("does not run: Nash-MTL, Ours, Aligned-MTL") for n in table.notes)


def test_below_the_papers_scale_the_table_is_a_pipeline_check_saying_why() -> None:
    table = success_table(_study(), {"MTL SAC": ("ls", [0.5])}, {"total_steps": 200, "hidden_dim": 64}, seeds=1)
    assert "total_steps 200 (paper 2,000,000)" in table.pipeline_check
    assert "hidden_dim 64 (paper 400)" in table.pipeline_check and "1 seed(s)" in table.pipeline_check
    assert "Pipeline check" in table.markdown()


def test_rl_settings_of_the_profiles_and_their_errors() -> None:
    protocol, seeds, methods, train = settings(grid.load_profile("paper"))
    assert {**PROTOCOL, **protocol} == PROTOCOL and seeds == list(range(10)) and methods is None
    assert train == {"device": "auto", "threads": 8}
    smoke = grid.load_profile("smoke")
    assert settings(smoke)[0]["total_steps"] < PROTOCOL["total_steps"]
    bad = {"name": "x", "rl": {"mt10_sac": {"total_step": 5}}}
    with pytest.raises(ConfigError, match=r"profile 'x': rl.mt10_sac: unknown field\(s\) \['total_step'\]"):
        settings(bad)
    with pytest.raises(ConfigError, match=r"rl.mt10_sac.seeds: \[-1\] is not valid"):
        settings({"name": "x", "rl": {"mt10_sac": {"seeds": [-1]}}})
    with pytest.raises(ConfigError, match=r"rl.mt10_sac.one_hot: 'yes' is not valid; valid: true or false"):
        settings({"name": "x", "rl": {"mt10_sac": {"one_hot": "yes"}}})
    with pytest.raises(ConfigError, match=r"profile 'x': rl: \{'mt10': \{\}\} is not valid; valid: \{mt10_sac: "):
        settings({"name": "x", "rl": {"mt10": {}}})


def test_the_study_names_the_papers_rows_and_bad_entries_are_refused() -> None:
    study = _study()
    assert [m["name"] for m in study["table"]["methods"]] == [
        "ls", "exact+pcgrad", "exact+cagrad", "exact+nash_mtl", "exact+aligned_mtl",
    ]  # fmt: skip
    check_study(study, "003_table5.yaml")
    broken = {**study, "table": {"methods": [{"name": "samo+pcgrad", "label": "x"}]}}
    with pytest.raises(ValueError, match=r"003_table5.yaml: table.methods\[0\]: method 'samo\+pcgrad' cannot"):
        check_study(broken, "003_table5.yaml")


def test_without_metaworld_the_grid_says_what_is_missing(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "metaworld", None)  # import metaworld raises ImportError
    plan = grid.plan(grid.load_profile("smoke"))
    assert plan.unavailable["003_table5"] == ["needs metaworld, which is not installed"]
    # its runs are not planned (their train jobs could only fail): the report says what is missing instead
    assert not plan.by_study["003_table5"] and all(r.kind == "supervised" for r in plan.runs.values())


# --- the MT10 runs as jobs of the grid -----------------------------------------------------------------------
PAPER_OPTIONS = {"ls": {}, "exact+pcgrad": {"reduction": "mean"}, "exact+cagrad": {"c": 0.9},
                 "exact+nash_mtl": {}, "exact+aligned_mtl": {}}  # fmt: skip


def _plan(profile: dict) -> grid.Plan:
    return grid.plan({**profile, "studies": ["003_table5"]}, {"003_table5": _study()})


def test_the_plan_has_one_mt10_run_per_method_and_seed_with_the_reference_protocol() -> None:
    pytest.importorskip("metaworld", reason="the MT10 runs are planned only where metaworld is installed")
    profile = grid.load_profile("paper")
    plan = _plan(profile)
    runs = list(plan.runs.values())
    assert len(runs) == 5 * 10 and all(r.kind == "mt10_sac" and r.studies == {"003_table5"} for r in runs)
    assert {(r.method, r.seed) for r in runs} == {(m, s) for m in PAPER_OPTIONS for s in range(10)}
    for run in runs:
        # written out by hand: the paper profile states the reference protocol in full (protocol_facts.yaml)
        expected = {
            "kind": "mt10_sac",
            "name": "mt10-sac-" + run.method.replace("+", "_"),
            "seed": run.seed,
            "method": {"name": run.method, "options": PAPER_OPTIONS[run.method]},
            "protocol": PROTOCOL,
            "train": {"device": "auto", "threads": 8},
        }
        assert run.config == expected
        assert run.run_id == f"{expected['name']}-{config_hash(expected)}"
        assert (run.benchmark, run.model_key, run.task, run.label) == ("mt10", "sac", None, run.label)
        assert grid.run_dir(profile, run.run_id) == Path("results/paper/runs") / run.run_id
    assert len({r.run_id for r in runs}) == 50
    # the paper profile: one job per run (runs_per_job 1), trained only (evaluated while it trains), no data
    assert sorted(plan.jobs) == sorted(plan.runs)
    assert all(j.kind == "mt10_sac" and not j.evaluated_separately and not j.needs_data for j in plan.jobs.values())
    assert all(j.needs == [] and j.stl == {} for j in plan.jobs.values())


def test_a_smaller_profile_plans_its_scale_and_batches_the_runs_into_jobs(tmp_path) -> None:
    pytest.importorskip("metaworld", reason="the MT10 runs are planned only where metaworld is installed")
    smoke = grid.load_profile("smoke")
    plan = _plan(smoke)
    assert [(r.method, r.seed) for r in plan.runs.values()] == [("ls", 0), ("exact+pcgrad", 0)]  # restrict
    assert all(r.config["protocol"] == {**PROTOCOL, **smoke["rl"]["mt10_sac"]} for r in plan.runs.values())
    [job] = plan.jobs.values()  # runs_per_job 3: one process builds MT10 once for both runs
    assert job.runs == sorted(plan.runs) and job.kind == "mt10_sac"
    # the job manifest round-trips through the kind's validation
    jobs.write_manifests(plan.jobs, plan.runs, tmp_path)
    spec = jobs.load_manifest(tmp_path / "jobs" / f"{job.job_id}.yaml")
    assert [(r.run_id, r.config) for r in spec.runs] == [(r, plan.runs[r].config) for r in job.runs]
    chosen = {**smoke, "rl": {"mt10_sac": {"seeds": [3, 4], "methods": ["exact+cagrad"]}}, "restrict": None}
    assert [(r.method, r.seed) for r in _plan(chosen).runs.values()] == [("exact+cagrad", 3), ("exact+cagrad", 4)]
    with pytest.raises(ConfigError, match=r"rl.mt10_sac.methods \['pcgrad'\] are not methods of study 003_table5"):
        _plan({**smoke, "rl": {"mt10_sac": {"methods": ["pcgrad"]}}})


def test_a_manifest_with_an_unknown_kind_is_refused_naming_the_field() -> None:
    data = {"job": "j", "runs_root": "results/x/runs", "runs": [{"id": "r", "config": {"kind": "mt10-sac"}}]}
    with pytest.raises(
        ConfigError, match=r"m.yaml: runs\[0\] \(r\).config: kind: 'mt10-sac' is not valid; valid: mt10_sac"
    ):
        jobs.spec_from("m.yaml", data)


def _finish(profile: dict, run: grid.RunSpec, success: float) -> None:
    """A finished MT10 run's final.json (what train_mt10 writes last), for the report to read."""
    MT10Run(grid.run_dir(profile, run.run_id), run.config).write_final(
        {"dataset": "metaworld_mt10", "model": "sac", "method": run.method, "tasks": ["reach-v3"], "seed": run.seed,
         "epochs": 2, "steps": 100, "seconds": 1.0, "success": success, "last": {}, "last_k": {}}
    )  # fmt: skip


def test_the_report_reads_the_finished_runs_and_names_a_missing_one(tmp_path) -> None:
    pytest.importorskip("metaworld", reason="the MT10 runs are planned only where metaworld is installed")
    from mtl_pipelines.report import registry
    from mtl_pipelines.report.driver import build
    from mtl_pipelines.report.results import load_results

    profile = {
        **grid.load_profile("smoke"),
        "results_dir": str(tmp_path / "results"),
        "reports_dir": str(tmp_path / "reports"),
        "studies": ["003_table5"],
    }
    profile["rl"] = {"mt10_sac": {**profile["rl"]["mt10_sac"], "seeds": [0, 1]}}
    runs = grid.plan(profile).by_study["003_table5"]
    values = {("ls", 0): 0.2, ("ls", 1): 0.6, ("exact+pcgrad", 0): 0.5, ("exact+pcgrad", 1): 0.9}
    for run in runs:
        _finish(profile, run, values[(run.method, run.seed)])
    results = load_results(profile, {r.run_id: r for r in runs})
    [table] = registry.get("mt10_success").tables(_study(), profile, runs, results)
    cells = {row.name: row.cells[0] for row in table.rows}
    assert cells["MTL SAC"].mean == pytest.approx(0.4) and cells["MTL SAC"].std == pytest.approx(
        0.2
    )  # stdev 0.283 / sqrt(2)
    assert cells["PCGrad"].mean == pytest.approx(0.7) and cells["PCGrad"].std == pytest.approx(0.2)
    assert "total_steps 100 (paper 2,000,000)" in table.pipeline_check and "2 seed(s)" in table.pipeline_check
    written = build(profile, [_study()], index=False)
    markdown = (tmp_path / "reports" / "003_table5" / "table.md").read_text()
    assert any(p.name == "table.md" for p in written) and "| MTL SAC | 0.4 ± 0.2 (0.49 ± 0.073) |" in markdown
    assert "Meta-World MT10 simulation" in markdown and "environment steps 100" in markdown
    # a run that is not finished: the report stops, naming it and how to train it (nothing is dropped silently)
    missing = next(r for r in runs if (r.method, r.seed) == ("exact+pcgrad", 1))
    (grid.run_dir(profile, missing.run_id) / "final.json").unlink()
    message = rf"{missing.run_id}/final.json is missing: MT10 run {missing.run_id} is not finished; train it .*--job"
    with pytest.raises(FileNotFoundError, match=message):
        build(profile, [_study()], index=False)
