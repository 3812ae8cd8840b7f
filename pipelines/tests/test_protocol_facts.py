"""The paper profile runs what the papers ran (issue 16 sec. 1): every protocol fact of
``pipelines/configs/protocol_facts.yaml`` holds for every run of the ``paper`` profile, every quoted sentence
occurs in its seed file, every study has facts, and the deviations are the ones stated. No data is needed."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from mtl_pipelines import facts, grid

REPO = Path(__file__).resolve().parents[2]


def _seeds_dir() -> Path | None:
    for candidate in (os.environ.get("MTL_SEEDS_DIR"), REPO.parent / "shared" / "seeds"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


SEEDS = _seeds_dir()


@pytest.fixture(scope="module")
def paper_mismatches() -> list[facts.Mismatch]:
    return facts.check(grid.load_profile("paper"))


def test_every_fact_holds_on_the_paper_profile(paper_mismatches: list[facts.Mismatch]) -> None:
    assert not paper_mismatches, "\n".join(map(str, paper_mismatches))


def test_every_study_has_facts() -> None:
    assert set(facts.load()["studies"]) == set(grid.load_studies())


@pytest.mark.skipif(SEEDS is None, reason="seed texts not found ($MTL_SEEDS_DIR, ../shared/seeds)")
def test_every_quote_occurs_in_its_seed() -> None:
    assert SEEDS is not None
    texts = facts.seed_files(SEEDS)
    missing = [
        (study, seed, quote) for study, seed, quote in facts.quotes() if not facts.quote_found(texts[seed], quote)
    ]
    assert not missing, "\n".join(f"{s}: seed {k}: {q!r} not found" for s, k, q in missing)


def test_quote_matching_is_whitespace_normalised_but_exact() -> None:
    text = "The model is trained for 200 epochs\nwith a batch size of 8."
    assert facts.quote_found(text, "trained for 200   epochs with a batch")
    assert not facts.quote_found(text, "trained for 300 epochs")


def test_a_drift_is_named_with_study_run_field_expected_and_source() -> None:
    """Put back the drift of the old sweep protocol (seed 001 Cityscapes at 200 epochs / batch 8): the check
    names the study, the run, the field, the expected value and the seed sentence."""
    profile = grid.load_profile("paper")
    studies = {"001_tableA3": copy.deepcopy(grid.load_studies()["001_tableA3"])}
    studies["001_tableA3"]["experiments"][0]["overrides"] = {"train": {"epochs": 200, "batch_size": 8}}
    studies["001_tableA3"]["experiments"][0]["settings"] = [{"label": "adam lr=0.001", "config": {}}]
    only = {
        "schema_version": 1,
        "seeds": facts.load()["seeds"],
        "studies": {"001_tableA3": facts.load()["studies"]["001_tableA3"]},
    }
    original = facts.load
    try:
        facts.load = lambda: only  # type: ignore[assignment]
        found = facts.check(profile, studies)
    finally:
        facts.load = original  # type: ignore[assignment]
    epochs = [m for m in found if m.field == "train.epochs"]
    assert epochs and all(m.expected == 300 and m.found == 200 for m in epochs)
    text = str(epochs[0])
    assert "001_tableA3" in text and "cityscapes-segnet-" in text and "train.epochs" in text
    assert "we train for 300 epochs" in text
    assert any(m.field == "train.batch_size" and m.expected == 64 for m in found)
    assert any(m.field.startswith("values:optimizer.lr") for m in found)  # the lr sweep was cut to one lr


def test_deviations_are_returned_for_the_report() -> None:
    assert facts.deviations("002_table4") == []
    fields = {d["field"] for d in facts.deviations("003_table1")}
    assert fields == {"model.options.output_resolution", "eval.selection"}


def test_seed_001_stl_runs_select_on_the_validation_loss_without_deviation() -> None:
    """Seed 001 A3.2: "The training was stopped early based on the validation loss." Every STL run of the
    paper profile's seed 001 studies selects best_val_loss (the facts hold, checked above), every MTL run
    best_val, and no seed 001 study states a deviation on eval.selection any more."""
    runs = grid.expand(grid.load_profile("paper"))
    seed_001 = [r for r in runs.values() if any(s.startswith("001_") for s in r.studies)]
    stl = [r for r in seed_001 if r.is_stl]
    assert stl and {r.config["eval"]["selection"] for r in stl} == {"best_val_loss"}
    assert {r.config["eval"]["selection"] for r in seed_001 if not r.is_stl} == {"best_val"}
    for study in grid.load_studies():
        if study.startswith("001_"):
            assert all(d["field"] != "eval.selection" for d in facts.deviations(study)), study
    stated = [f for f in facts.load()["studies"]["001_tableA3"] if f["field"] == "eval.selection" and f["where"]["stl"]]
    assert [f["value"] for f in stated] == ["best_val_loss"] and "deviation" not in stated[0]
