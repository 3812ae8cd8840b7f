"""The templated dvc.yaml expands (in DVC itself) to the stages of the grid, with the grid's commands, deps,
outs and order, and the summary that `dvc metrics show` / `dvc plots show` read.

Expected values are built from ``grid.plan`` (the same plan Snakemake runs), not from the generator: every
benchmark is prepared, every job trained and evaluated by the same CLI command as the Snakefile's rule, every
run directory tracked, every study reported, and DVC's DAG orders them as the Snakefile's does.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mtl_pipelines import dvc, grid

BIN = Path(sys.executable).parent
MTL = ["python", "-m", "mtl_pipelines.cli"]


def _expand(profile_name: str, root: Path) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """DVC's view of the generated files: stages by name, the stage DAG, and params.yaml."""
    import networkx as nx
    from dvc.repo import Repo

    dvc.write(profile_name, root)
    subprocess.run([str(BIN / "dvc"), "init", "--no-scm", "-q"], cwd=root, check=True, timeout=120)
    repo = Repo(str(root))
    try:
        stages = {s.name: s for s in repo.index.stages}
        graph = nx.DiGraph(repo.index.graph)  # edge: stage -> a stage it depends on
    finally:
        repo.close()
    return stages, graph, yaml.safe_load((root / "params.yaml").read_text())


def _paths(items: Any, root: Path) -> set[str]:
    return {Path(i.fs_path).relative_to(root).as_posix() for i in items}


def _check_expansion(profile_name: str, root: Path) -> None:
    profile = grid.load_profile(profile_name)
    plan = grid.plan(profile)
    studies = [s for s in grid.load_studies() if profile["studies"] == "all" or s in profile["studies"]]
    results, reports = profile["results_dir"], profile["reports_dir"]
    stages, graph, params = _expand(profile_name, root)

    def named(prefix: str, key: str) -> Any:
        matches = [stages[n] for n in stages if n.split("@")[0].startswith(prefix) and n.endswith(f"@{key}")]
        assert len(matches) == 1, (prefix, key, matches)
        return matches[0]

    def upstream(stage: Any) -> set[str]:
        return {s.name for s in nx_descendants(graph, stage)}

    # runs evaluated while they train (MT10 SAC, mtl_pipelines.kinds) read no prepared data and have no evaluation
    benchmarks = sorted({j.benchmark for j in plan.jobs.values() if j.needs_data})
    evaluated = [j for j in plan.jobs.values() if j.evaluated_separately]
    expected = (
        len(benchmarks) + len(plan.jobs) + len(evaluated) + len(plan.runs) + len(studies) + 1  # + index
    )
    assert len(stages) == expected, sorted(stages)

    for bench in benchmarks:
        stage = named("prepare", bench) if f"prepare@{bench}" in stages else named("render", bench)
        stamp = f"{results}/prepared/{bench}.json"
        assert shlex.split(stage.cmd) == [*MTL, "prepare", bench, "--profile", profile_name, "--stamp", stamp]
        cache_dir = profile["benchmarks"][bench]["dataset"].get("options", {}).get("cache_dir")
        assert _paths(stage.outs, root) == {stamp} | ({cache_dir} if cache_dir else set())
        assert {str(k) for d in stage.deps if hasattr(d, "params") for k in d.params} == {f"benchmarks.{bench}"}

    for job in plan.jobs.values():
        train = named("train", job.job_id)
        argv = shlex.split(train.cmd)
        assert argv[: len(MTL) + 5] == [*MTL, "train", "--params", "params.yaml", "--job", job.job_id]
        assert argv[argv.index("--runs-root") + 1] == f"{results}/runs"
        if job.needs_data:
            prepared = f"{'render' if f'render@{job.benchmark}' in stages else 'prepare'}@{job.benchmark}"
            assert upstream(train) == {prepared}
        else:
            assert upstream(train) == set()
        # its params dependency is its job's entry, holding exactly the grid's configs of its runs
        assert [k for d in train.deps if hasattr(d, "params") for k in d.params] == [f"jobs.{job.job_id}"]
        entry = params["jobs"][job.job_id]["runs"]
        assert list(entry) == job.runs
        spec = dvc.job_spec(root / "params.yaml", job.job_id, f"{results}/runs")
        assert [(r.run_id, r.config, r.stl) for r in spec.runs] == [
            (r, plan.runs[r].config, job.stl.get(r, [])) for r in job.runs
        ]
        if not job.evaluated_separately:  # its train stage's stamp is its evaluation stamp: the reports' fan-in
            stamp = argv[argv.index("--stamp") + 1]
            assert stamp.startswith(f"{results}/dvc/evaluated/") and _paths(train.outs, root) == {stamp}
            for run_id in job.runs:
                run = stages[f"run_rl@{run_id}"]
                assert _paths(run.outs, root) == {f"{results}/runs/{run_id}"}
                assert all(o.persist and o.use_cache for o in run.outs)
                assert {s.name for s in graph.successors(run)} == {train.name}
            continue
        evaluate = named("evaluate", job.job_id)
        argv = shlex.split(evaluate.cmd)
        assert argv[: len(MTL) + 5] == [*MTL, "evaluate", "--params", "params.yaml", "--job", job.job_id]
        # evaluated after its own training and after every STL job its runs are selected against
        direct = {s.name for s in graph.successors(evaluate)}
        assert f"train@{job.job_id}" in direct
        for needed in job.needs:
            assert named("evaluate", needed).name in direct, (job.job_id, needed)
        for run_id in job.runs:
            run = stages[f"run@{run_id}"]
            assert _paths(run.outs, root) == {f"{results}/runs/{run_id}"}
            assert all(o.persist and o.use_cache for o in run.outs)
            assert {s.name for s in graph.successors(run)} == {evaluate.name}

    for study in studies:
        report = stages[f"report@{study}"]
        assert shlex.split(report.cmd[0]) == [*MTL, "report", study, "--profile", profile_name]
        assert shlex.split(report.cmd[1]) == [*MTL, "dvc", "--profile", profile_name, "--summary", study]
        outs = _paths(report.outs, root)
        assert {f"{reports}/{study}/{n}" for n in ("table.md", "table.tex", "table.csv", "summary.json")} <= outs
        direct = {s.name for s in graph.successors(report)}
        finishing = {
            named("evaluate" if j.evaluated_separately else "train", j.job_id).name for j in serving_jobs(plan, study)
        }
        assert finishing <= direct
    index = stages["index"]
    assert shlex.split(index.cmd) == [*MTL, "report", "index", "--profile", profile_name]
    assert {s.name for s in graph.successors(index)} == {f"report@{s}" for s in studies}
    assert _paths(index.outs, root) == {f"{reports}/index.md", f"{reports}/index.html"}


def serving_jobs(plan: grid.Plan, study: str) -> list[Any]:
    return [j for j in plan.jobs.values() if any(study in plan.runs[r].studies for r in j.runs)]


def nx_descendants(graph: Any, stage: Any) -> set[Any]:
    import networkx as nx

    return set(nx.descendants(graph, stage))


def test_templated_dvc_yaml_expands_to_the_smoke_grid(tmp_path: Path) -> None:
    _check_expansion("smoke", tmp_path)


@pytest.mark.slow  # the default grid (hundreds of runs) plus DVC's index of ~500 stages: ~1 min on 2 cores
def test_templated_dvc_yaml_expands_to_the_default_grid(tmp_path: Path) -> None:
    _check_expansion("default", tmp_path)


def test_committed_dvc_yaml_is_short_and_templated() -> None:
    text = (Path(__file__).resolve().parents[1] / "dvc.yaml").read_text()
    assert len(text.splitlines()) < 150 and text.count("foreach:") >= 5
    assert "-15runs-" not in text and "runs/" in text  # no job or run id: they live in params.yaml


def test_job_configs_are_independent_copies(tmp_path: Path) -> None:
    """params.yaml writes equal blocks once (YAML aliases); the configs a job reads must not share objects."""
    dvc.write("smoke", tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    job_id = next(j for j, e in params["jobs"].items() if len(e["runs"]) > 1)
    spec = dvc.job_spec(tmp_path / "params.yaml", job_id, "runs")
    first, second = spec.runs[0].config, spec.runs[1].config
    assert dvc.run_config(tmp_path / "params.yaml", spec.runs[0].run_id) == first
    assert first["dataset"] == second["dataset"]
    first["dataset"]["options"]["mutated"] = True
    assert "mutated" not in second["dataset"]["options"]
    with pytest.raises(ValueError, match="has no job 'nope'"):
        dvc.job_spec(tmp_path / "params.yaml", "nope", "runs")


def test_summary_metrics_keep_what_a_table_can_show() -> None:
    verdict = {"study": "004_table2", "claim": "c", "statement": "s", "statistic": 1.0, "interval": [0.5, 1.5]}
    verdict |= {"method": "t-interval over 3 seeds", "n_seeds": 3, "detail": ""}
    summary = {
        "id": "004_table2",
        "title": "ConsMTL Table 2: Cityscapes 2-task (MTAN) — a long title",
        "data": "stand-in",
        "scale": "epochs [2], seeds [0], max steps/epoch 4",
        "runs": 12,
        "distance": "97% over 16 cells",
        "not_run": 0,
        "verdicts": [{**verdict, "verdict": v} for v in ("reproduced", "inconclusive", "inconclusive")],
        "extra": {"n": 1, "note": "x" * 40},
    }
    assert dvc.summary_metrics(summary) == {
        "data": "stand-in",
        "runs": 12,
        "published_cells": 16,
        "median_distance_pct": 97.0,
        "not_run": 0,
        "verdicts": {"reproduced": 1, "not_reproduced": 0, "inconclusive": 2},
        "extra": {"n": 1},
    }
    assert dvc.summary_metrics({"distance": "—", "runs": 0}) == {"runs": 0}
    assert dvc.summary_metrics({"distance": "pipeline check", "verdicts": []}) == {
        "pipeline_check": True,
        "verdicts": {"reproduced": 0, "not_reproduced": 0, "inconclusive": 0},
    }


def test_write_summary_copies_the_figures_and_drops_stale_ones(tmp_path: Path, monkeypatch) -> None:
    profile = grid.load_profile("smoke")
    reports = tmp_path / "reports"
    monkeypatch.setattr(grid, "load_profile", lambda name: {**profile, "reports_dir": str(reports)})
    study = profile["studies"][0]
    (reports / study).mkdir(parents=True)
    (reports / study / "summary.json").write_text(json.dumps({"id": study, "runs": 3, "distance": "5% over 2 cells"}))
    (reports / study / "fig.png").write_bytes(b"\x89PNG fake")
    (reports / study / "table.csv").write_text("a,b\n")
    stale = reports / "summary" / "figures" / study / "old.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    written = dvc.write_summary("smoke", study)
    assert json.loads((reports / "summary" / "metrics" / f"{study}.json").read_text()) == {
        "runs": 3,
        "published_cells": 2,
        "median_distance_pct": 5.0,
    }
    assert sorted(p.name for p in (reports / "summary" / "figures" / study).iterdir()) == ["fig.png"]
    assert (reports / "summary" / "figures" / study / "fig.png").read_bytes() == b"\x89PNG fake"
    assert len(written) == 2
    (reports / study / "summary.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        dvc.write_summary("smoke", study)


def test_params_yaml_keeps_jobs_and_runs_out_of_dvc_yaml(tmp_path: Path) -> None:
    """The list that used to be 119 hand-listed stages now is data: every job and run of the grid once."""
    dvc.write("smoke", tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    plan = grid.plan(grid.load_profile("smoke"))
    assert set(params["jobs"]) == set(plan.jobs)
    tracked = [*params["each"]["run"], *params["each"]["run_rl"]]  # run_rl: the MT10 SAC runs (no eval.json)
    assert sorted(tracked) == sorted(plan.runs)
    assert sorted(r for e in params["jobs"].values() for r in e["runs"]) == sorted(plan.runs)  # each once


def test_dvcignore_keeps_its_rules_and_adds_the_fan_in_rule_once(tmp_path: Path) -> None:
    (tmp_path / ".dvcignore").write_text("# mine\n/data/raw")
    dvc.write("smoke", tmp_path)
    dvc.write("smoke", tmp_path)
    assert (tmp_path / ".dvcignore").read_text() == f"# mine\n/data/raw\n{dvc.DVCIGNORE_RULE}\n"
    assert dvc.check("smoke", tmp_path) == []
    (tmp_path / ".dvcignore").write_text("# mine\n")
    assert dvc.check("smoke", tmp_path) == [".dvcignore"]
