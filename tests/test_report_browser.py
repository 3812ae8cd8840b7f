"""The HTML report as a reader sees it, in headless Chromium.

A sample report is built from synthetic results (:mod:`mtl_pipelines.report.sample`: the real builders,
figures, templates and writers), every page is opened in Chromium, measured in the browser by
:mod:`mtl_pipelines.report.browser` and screenshotted. Asserted: the verdict badges are there and each
verdict has its own colour, our cells and the paper's cells are styled differently, the pipeline-check label
and the data-and-scale line sit above their table and a pipeline check shows no gap, no title, header or
label is clipped, the figures load. The screenshots and the measurements are kept as test artefacts under
``$MTL_BROWSER_CHECK_OUT`` (default: the test's tmp dir, printed) — ``scripts/browser_check.sh`` does the same
for any built report.

Needs Chromium: Debian's ``chromium`` package is installed with apt-get when missing and running as root;
otherwise the tests are skipped with the reason, or when MTL_SKIP_BROWSER is set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mtl_pipelines.report import browser
from mtl_pipelines.report.sample import build_sample

pytestmark = pytest.mark.integration

VERDICT_BADGES = {"reproduced", "not reproduced", "inconclusive"}


def _install_chromium() -> str | None:
    """Chromium's path, installing Debian's package as root when missing; None with the reason skipped."""
    if os.environ.get("MTL_SKIP_BROWSER"):
        pytest.skip("MTL_SKIP_BROWSER is set")
    if browser.find_chromium():
        return browser.find_chromium()
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("Chromium is not installed and installing it needs root and apt-get (apt-get install -y chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, env=env)
    if done.returncode != 0:  # a fresh machine may need the package lists first
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env)
        done = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, env=env)
    if done.returncode != 0 or not browser.find_chromium():
        pytest.skip(f"apt-get install -y chromium failed: {done.stderr[-500:]}")
    return browser.find_chromium()


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path], list[str], dict]:
    _install_chromium()
    report = tmp_path_factory.mktemp("sample_report")
    build_sample(report)
    out = Path(os.environ.get("MTL_BROWSER_CHECK_OUT") or tmp_path_factory.mktemp("browser_check"))
    shots, problems, measured = browser.check(report, out)
    print(f"screenshots of the sample report: {out}")
    return report, out, shots, problems, measured


def test_a_reader_sees_no_problem_on_any_page(checked) -> None:
    _, out, shots, problems, measured = checked
    assert problems == []
    assert sorted(p.name for p in shots) == sorted(f"{name}.png" for name in measured)
    assert set(measured) == {"index", "sample_results", "sample_pipeline_check", "sample_robustness", "sample_other"}
    for shot in shots:  # a real rendering: a PNG of the whole page, not an empty image
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    assert json.loads((out / "layout.json").read_text()).keys() == measured.keys()


def test_verdict_badges_are_shown_each_in_its_own_colour(checked) -> None:
    _, _, _, _, measured = checked
    for page in ("index", "sample_results"):
        badges = measured[page]["badges"]
        shown = {b["text"] for b in badges}
        assert VERDICT_BADGES <= shown
        colours = {b["text"]: b["background"] for b in badges if b["text"] in VERDICT_BADGES}
        assert len(set(colours.values())) == 3, colours
        assert all(b["color"] == "rgb(255, 255, 255)" and b["bottom"] - b["top"] > 10 for b in badges)


def test_ours_and_the_papers_cells_look_different_and_the_gap_is_shown(checked) -> None:
    _, _, _, _, measured = checked
    (table,) = measured["sample_results"]["tables"]
    ours, paper = table["ours"], table["paper"]
    assert ours["color"] != paper["color"] and ours["background"] != paper["background"]
    assert (ours["fontStyle"], paper["fontStyle"]) == ("normal", "italic")
    assert table["gap_cells"] > 0
    assert table["data_scale"]["bottom"] <= table["table"]["top"] and "Scale:" in table["data_scale"]["text"]


def test_a_pipeline_check_is_labelled_above_its_table_without_a_gap(checked) -> None:
    _, _, _, _, measured = checked
    (table,) = measured["sample_pipeline_check"]["tables"]
    assert table["label"] is not None and table["label"]["bottom"] <= table["table"]["top"]
    assert table["gap_cells"] == 0
    assert "pipeline check" in {b["text"] for b in measured["sample_pipeline_check"]["badges"]}
    assert {b["text"] for b in measured["index"]["badges"]} >= {"pipeline check"}


def test_figures_load_at_a_readable_size(checked) -> None:
    _, _, _, _, measured = checked
    (image,) = measured["sample_robustness"]["images"]
    assert image["loaded"] and image["right"] - image["left"] > 600


def test_the_check_catches_a_clipped_title_and_look_alike_cells(checked, tmp_path: Path) -> None:
    """The measurement can fail: a page whose table titles are cut off and whose paper cells are styled like
    ours is reported."""
    report = checked[0]
    page = tmp_path / "table.html"
    broken = (report / "sample_results" / "table.html").read_text()
    broken = broken.replace(
        "</style>",
        "h2 { width: 120px; overflow: hidden; white-space: nowrap; }\n"
        "table.results td.paper { color: var(--ours); background: none; font-style: normal; }\n</style>",
    )
    page.write_text(broken)
    found = browser.problems(page, browser.layout(page))
    assert any("H2" in p and "clipped" in p for p in found), found
    assert any("look the same" in p for p in found), found
