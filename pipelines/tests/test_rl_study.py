"""Study 003_table5 (mtl_pipelines.rl.study): the success table on synthetic results (mean ± SEM over seeds beside
the published cell of the same method, pipeline-check label), the profile's probe settings and the study's
method entries (refused by name when invalid), and the grid's answer without metaworld."""

from __future__ import annotations

import math
import sys

import pytest

from mtl_pipelines import grid
from mtl_pipelines.config import ConfigError
from mtl_pipelines.rl.study import PAPER_SEEDS, check_study, probe_settings, success_table
from mtl_pipelines.rl.training import PROTOCOL


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


def test_probe_settings_of_the_profiles_and_their_errors() -> None:
    protocol, seeds, methods, train = probe_settings(grid.load_profile("paper"))
    assert {**PROTOCOL, **protocol} == PROTOCOL and seeds == list(range(10)) and methods is None
    assert train == {"device": "auto", "threads": 8}
    smoke = grid.load_profile("smoke")
    assert probe_settings(smoke)[0]["total_steps"] < PROTOCOL["total_steps"]
    bad = {"name": "x", "probes": {"mt10_sac": {"total_step": 5}}}
    with pytest.raises(ConfigError, match=r"profile 'x': probes.mt10_sac: unknown field\(s\) \['total_step'\]"):
        probe_settings(bad)
    with pytest.raises(ConfigError, match=r"probes.mt10_sac.seeds: \[-1\] is not valid"):
        probe_settings({"name": "x", "probes": {"mt10_sac": {"seeds": [-1]}}})
    with pytest.raises(ConfigError, match=r"probes.mt10_sac.one_hot: 'yes' is not valid; valid: true or false"):
        probe_settings({"name": "x", "probes": {"mt10_sac": {"one_hot": "yes"}}})


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
