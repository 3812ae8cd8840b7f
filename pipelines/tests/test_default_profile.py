"""The default profile (the README's main command): what runs at a finding scale, and its budget bookkeeping.

The profile records measured CPU costs (``budget:``); the test recomputes the cost of the profile's plan from
them, so a change that adds runs, steps, seeds or methods to the main command fails here until the budget is
re-measured.
"""

from __future__ import annotations

import math

import pytest

from mtl_pipelines import claims, grid


@pytest.fixture(scope="module")
def profile() -> dict:
    return grid.load_profile("default")


@pytest.fixture(scope="module")
def plan(profile: dict) -> grid.Plan:
    return grid.plan(profile)


def _family(run: grid.RunSpec) -> str:
    """Cost family of a run's method: its estimator, 'weighting' for a loss weighting, 'stl'."""
    if run.is_stl:
        return "stl"
    estimator, plus, _ = run.method.partition("+")
    if not plus:
        return "exact" if run.method == "consmtl" else "weighting"
    return "exact" if estimator == "features" else estimator


def _run_cost(run: grid.RunSpec, budget: dict) -> float:
    train = run.config["train"]
    steps_per_epoch = train["max_steps_per_epoch"]
    if steps_per_epoch is None:
        steps_per_epoch = budget["train_sizes"][run.benchmark] // train["batch_size"]
    costs = budget["steps"][run.benchmark]
    family = _family(run)
    assert family in costs, f"no measured step cost of {family!r} runs on {run.benchmark} ({run.run_id})"
    step = costs[family]
    if train.get("diagnostics_every"):
        step += costs["exact"]  # the diagnostics take a Jacobian of every task at each step
    epochs = train["epochs"]
    return (
        epochs * steps_per_epoch * step
        + epochs * budget["evaluation_per_epoch"][run.benchmark]
        + budget["setup_per_run"][run.benchmark]
    )


def _mt10_cost(profile: dict, plan: grid.Plan) -> float:
    """CPU seconds of the MT10 SAC train jobs (003_table5): the process setup per job and, per run, its
    environment steps at the measured per-step cost (only valid at the scale it was measured at)."""
    measured = profile["budget"]["rl"]["mt10_sac"]
    runs = [r for r in plan.runs.values() if r.kind == "mt10_sac"]
    for run in runs:
        scale = {k: run.config["protocol"][k] for k in measured["measured_at"]}
        assert scale == measured["measured_at"], f"MT10 run {run.run_id} at {scale}: re-measure budget.rl.mt10_sac"
    n_jobs = sum(j.kind == "mt10_sac" for j in plan.jobs.values())
    return (
        n_jobs * measured["setup_per_job"]
        + sum(r.config["protocol"]["total_steps"] for r in runs) * measured["per_step"]
    )


def estimated_cpu_seconds(profile: dict, plan: grid.Plan) -> dict[str, float]:
    """CPU seconds of the main command by part, from the profile's measured costs."""
    budget = profile["budget"]
    findings = set(profile["findings"]["benchmarks"])
    parts = {"findings": 0.0, "pipeline checks": 0.0, "MT10 SAC jobs": _mt10_cost(profile, plan)}
    for run in plan.runs.values():
        if run.kind != "supervised":
            continue
        if run.benchmark in findings:
            parts["findings"] += _run_cost(run, budget)
        else:
            per_run = budget["pipeline_check_run"]
            parts["pipeline checks"] += per_run.get(run.benchmark, per_run["default"])
    studies = grid.load_studies()
    chosen = list(studies) if profile["studies"] == "all" else profile["studies"]
    parts["reports"] = budget["report_per_study"] * len(chosen)
    parts["prepare"] = budget["prepare"]
    probes = profile["probes"]
    parts["toy probe"] = (
        probes["toy_convergence"]["max_iterations"] / 1000 * budget["probes"]["toy_convergence_per_1000_iterations"]
    )
    parts["loss-scale probe"] = probes["loss_scale"]["epochs"] * budget["probes"]["loss_scale_per_epoch"]
    return parts


def test_main_command_fits_the_budget(profile, plan):
    budget = profile["budget"]
    parts = estimated_cpu_seconds(profile, plan)
    available = (budget["minutes"] - budget["overhead_minutes"]) * 60 * budget["cores"] * (1 - budget["margin"])
    total = sum(parts.values())
    assert total <= available, f"{total:.0f} CPU-s planned > {available:.0f} available: {parts}"
    # the longest single job (the toy probe runs in one report process) must fit the wall budget alone
    wall = (budget["minutes"] - budget["overhead_minutes"]) * 60 * (1 - budget["margin"])
    assert parts["toy probe"] <= wall


def test_bookkeeping_counts_every_mt10_job(profile, plan):
    # 003_table5: its 5 methods x 1 seed, 200 environment steps each, batched into one job (runs_per_job 20)
    mt10 = [r for r in plan.runs.values() if r.kind == "mt10_sac"]
    assert sorted(r.method for r in mt10) == sorted(
        ["ls", "exact+pcgrad", "exact+cagrad", "exact+nash_mtl", "exact+aligned_mtl"]
    )
    assert _mt10_cost(profile, plan) == pytest.approx(8.0 + 5 * 200 * 0.040)


def test_bookkeeping_counts_every_finding_run(profile, plan):
    # Multi-MNIST per seed: 000 Table 1 (LS, 6 exact, 6 F-MTL), Fig. 3 (LS and F-LS with per-step diagnostics),
    # Table 6 (3 F-CAGrad aggregations), 2 STL; two full epochs of 64 pairs; 4 seeds
    mnist = [r for r in plan.runs.values() if r.benchmark == "multi_mnist"]
    assert len(mnist) == 4 * (13 + 2 + 3 + 2)
    budget = profile["budget"]
    steps = 2 * (7000 // 64)
    per_step = 0.042 + 6 * 0.071 + 9 * 0.165 + (0.042 + 0.071) + (0.165 + 0.071) + 2 * 0.042
    by_hand = 4 * (steps * per_step + 20 * (2 * 0.32 + 2.5))
    assert sum(_run_cost(r, budget) for r in mnist) == pytest.approx(by_hand)


def test_findings_run_enough_seeds_and_pipeline_checks_one(profile, plan):
    findings = set(profile["findings"]["benchmarks"])
    seeds: dict[str, set[int]] = {}
    for run in plan.runs.values():
        seeds.setdefault(run.benchmark, set()).add(run.seed)
    for bench, found in seeds.items():
        if bench in findings:
            assert len(found) >= claims.MIN_SEEDS, bench
        else:
            assert found == {0}, bench


def test_findings_name_real_benchmarks_and_probe_studies(profile):
    studies = grid.load_studies()
    for bench in profile["findings"]["benchmarks"]:
        assert "unavailable" not in profile["benchmarks"][bench]
    for study_id in profile["findings"]["probes"]:
        assert not studies[study_id].get("experiments")  # a probe computing its own numbers
        assert not claims.is_pipeline_check(profile, study_id)
    assert claims.is_pipeline_check(profile, "002_table4")  # Cityscapes stand-in
    assert not claims.is_pipeline_check(profile, "000_table1")  # Multi-MNIST
    assert claims.is_pipeline_check(profile, "004_table4")  # QM9: see the profile's findings comment
    assert claims.is_pipeline_check(profile, "002_table6", "celeba")
    assert math.isfinite(profile["findings"]["max_stl_gap_percent"])
