"""The fault-injection table run through the real ``mtl`` CLI (see ``harness.py`` and ``cases.py``), and the
README's reliability numbers checked against it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cases import ROWS
from harness import Case, changed_paths, counts, run_case

README = Path(__file__).resolve().parents[2] / "README.md"


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.pending)] if case.pending else []
    return pytest.param(case, id=case.id, marks=marks)


def test_table_is_well_formed() -> None:
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids)), "duplicate row ids"
    assert len([r for r in ROWS if not r.pending]) >= 60
    for row in ROWS:
        assert row.keep, f"{row.id}: every row names the files it must leave unchanged"
        assert row.exit == 0 or row.words, f"{row.id}: an error row names the words its message must hold"


@pytest.mark.parametrize("case", [_param(c) for c in ROWS])
def test_bad_input(case: Case, template: Path, tmp_path: Path) -> None:
    outcome = run_case(case, template, tmp_path / "ws")
    assert "Traceback" not in outcome.output, outcome.output
    assert outcome.code == case.exit, f"exit {outcome.code}, expected {case.exit}: {outcome.output}"
    text = outcome.output.lower()
    missing = [w for w in case.words if w.lower() not in text]
    assert not missing, f"message lacks {missing}: {outcome.output}"
    changed = changed_paths(outcome, case.keep)
    assert not changed, f"files not kept: {changed}"


def test_readme_reports_the_table() -> None:
    """README.md's reliability section states the counts of this table (and is updated with it)."""
    text = " ".join(README.read_text().split())  # the paragraph is wrapped
    expected = counts(ROWS)
    pattern = (
        r"(\d+) bad inputs tried, (\d+) answered with a clear error .*?, (\d+) with nothing lost .*? (\d+) of them, "
        r"tagged with their item of issue 15, failed before it\. (\d+) more rows?"
    )
    match = re.search(pattern, text)
    assert match, f"README.md lacks the reliability paragraph matching {pattern!r}"
    numbers = tuple(map(int, match.groups()))
    keys = ("tried", "clear_error", "nothing_lost", "tagged", "pending")
    assert numbers == tuple(expected[k] for k in keys)
