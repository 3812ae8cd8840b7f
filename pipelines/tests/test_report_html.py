"""The HTML pages (Jinja2 templates) and the figures, without a browser: what each cell holds, the gap and its
kind, the labels at the top of a table, the verdict badges, escaping; figures centred on 0 and not clipped.
(tests/test_report_browser.py looks at the same pages in Chromium.)"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from mtl_pipelines.report import Cell, Published, StudySummary, Table, Verdict, figures, sample
from mtl_pipelines.report import html as report_html
from mtl_pipelines.report.index import write_index


class _Cells(HTMLParser):
    """The text of every element by its class, in document order, and the order of the top-level blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.found: list[tuple[str, str, str]] = []  # (tag, class, text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("meta", "img", "br", "link"):
            return
        self.stack.append((tag, dict(attrs).get("class") or ""))
        self.found.append((tag, self.stack[-1][1], ""))
        self.stack[-1] = (*self.stack[-1], len(self.found) - 1)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for entry in self.stack:
            i = entry[2]
            tag, cls, text = self.found[i]
            self.found[i] = (tag, cls, text + data)

    def texts(self, cls: str, tag: str | None = None) -> list[str]:
        return [" ".join(t.split()) for g, c, t in self.found if cls in c.split() and (tag is None or g == tag)]

    def index(self, cls: str) -> int:
        return next(i for i, (_, c, _) in enumerate(self.found) if cls in c.split())


def _parse(text: str) -> _Cells:
    parser = _Cells()
    parser.feed(text)
    return parser


def _table(**kwargs) -> Table:
    table = Table("T <i>", ["acc", "iters"], [True, False], **kwargs)
    table.add("a", [Cell(0.5, 0.1, Published(0.6, None, "0.6")), Cell(30.0, None, Published(20.0, None, "20"))])
    table.add("b", [Cell(0.7), Cell(12.0, None, Published(None, None, "lost"))])
    return table


def test_cells_show_ours_the_paper_and_the_gap_each_in_its_own_cell() -> None:
    table = _table()
    table.data_scale = "Data: real: qm9. Scale: epochs [2]."
    page = _parse(report_html.render_study({"id": "s", "paper": "001", "title": "S"}, "p", [table], [], []))
    # ours with its std (bold = best of ours), the paper, the gap ours - paper
    assert page.texts("ours", "td") == ["0.5 ± 0.1", "30", "0.7", "12"]
    assert page.texts("best", "td") == ["0.7", "12"]
    assert page.texts("paper", "td") == ["0.6", "20", "", "lost"]
    assert page.texts("gap", "td") == ["-0.1", "+10", "–", "–"]
    assert page.texts("lost", "td") == ["lost"]
    # the data-and-scale line and the gap's kind above the table; the title escaped
    assert page.index("data-scale") < page.index("results")
    assert "gap = ours − paper (in the units of the cell)" in page.texts("data-scale")
    assert page.texts("report-table")[0].startswith("T <i>")


def test_a_ratio_table_says_so_and_shows_ratios() -> None:
    page = _parse(
        report_html.render_study({"id": "s", "paper": "001", "title": "S"}, "p", [_table(gap="ratio")], [], [])
    )
    assert page.texts("gap", "td") == ["0.833×", "1.5×", "–", "–"]
    assert "gap = ours / paper (a ratio: 1× is the paper)" in page.texts("data-scale")
    assert page.texts("gap", "th") == ["gap", "gap"]


def test_a_pipeline_check_is_labelled_at_the_top_and_shows_no_gap() -> None:
    table = _table(pipeline_check="2 epochs of 4 steps")
    page = _parse(report_html.render_study({"id": "s", "paper": "001", "title": "S"}, "p", [table], [], []))
    assert page.index("check-label") < page.index("results")
    assert page.texts("check-label")[0].startswith("pipeline check 2 epochs of 4 steps")
    assert page.texts("gap", "td") == page.texts("gap", "th") == [] and page.texts("paper", "td") == [
        "0.6",
        "20",
        "",
        "lost",
    ]
    assert [r["gap"] for r in table.csv_rows()] == [None] * 4  # no distance figure in the CSV either


def _verdict(verdict: str, claim: str) -> Verdict:
    return Verdict("s1", claim, "X beats <Y>", verdict, 1.0, (0.5, 1.5), "t-interval over 3 seeds", 3)


def test_index_opens_with_verdict_badges_then_the_studies(tmp_path: Path) -> None:
    verdicts = (_verdict("reproduced", "c1"), _verdict("not reproduced", "c2"), _verdict("inconclusive", "c3"))
    summaries = [
        StudySummary("s1", "One", "real", "epochs [2]", 3, "4% over 2 cells", 0, verdicts),
        StudySummary("s2", "Two", "stand-in", "epochs [1]", 1, "pipeline check", 0),
    ]
    write_index({"name": "p"}, summaries, tmp_path)
    page = _parse((tmp_path / "index.html").read_text())
    badges = page.texts("badge")
    assert badges[:3] == ["reproduced", "not reproduced", "inconclusive"]  # the counts
    assert page.texts("reproduced") == ["reproduced", "reproduced"]  # the count and the claim's line
    assert page.texts("not-reproduced") == ["not reproduced", "not reproduced"]
    assert "3 claims: reproduced 1, not reproduced 1, inconclusive 1" in page.texts("verdict-counts")
    claim = page.texts("claim")[1]
    assert claim.startswith("not reproduced s1 c2: X beats <Y>") and "interval [0.5, 1.5]" in claim
    assert page.index("verdicts") < page.index("index")
    assert page.texts("pipeline-check") == ["pipeline check"]  # s2's distance is a badge, not a number


def test_the_sample_report_builds_every_page(tmp_path: Path) -> None:
    written = sample.build_sample(tmp_path)
    names = {str(p.relative_to(tmp_path)) for p in written}
    studies = ("sample_results", "sample_pipeline_check", "sample_robustness", "sample_other")
    for study in studies:
        assert {f"{study}/table.{ext}" for ext in ("md", "tex", "csv", "html")} <= names
    assert {"index.html", "index.md", "sample_robustness/corruption_heatmap_0.png"} <= names
    index = (tmp_path / "index.html").read_text()
    assert all(f'href="{s}/table.html"' in index for s in studies) and sample.SAMPLE_NOTE in index


# ------------------------------------------------------------------------------------------------ figures
def _heatmap(tmp_path: Path, title: str) -> tuple[Path, object]:
    """A robustness table (values -0.1 .. 0.3, published beside two of them) drawn as a heatmap."""
    table = Table(title, ["a/x", "b/y", "Mean"], [False] * 3)
    table.add("ls", [Cell(-0.1, None, Published(-0.05, None, "-0.05")), Cell(0.3), Cell(0.1)])
    table.add("uw", [Cell(0.0), Cell(0.2, None, Published(0.25, None, "0.25")), Cell(0.1)])
    captured = {}
    original = figures.save

    def keep(fig, path):
        fig.canvas.draw()
        captured["fig"] = fig
        return original(fig, path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures, "save", keep)
        (path,) = figures.corruption_heatmaps({}, [], None, [table], tmp_path)
    return path, captured


def test_heatmaps_are_centred_on_zero_with_the_published_values_beside(tmp_path: Path) -> None:
    _, captured = _heatmap(tmp_path, "T")
    fig = captured["fig"]
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["ours", "published"]
    for ax in panels:
        norm = ax.images[0].norm
        # centred on 0, symmetric around it, the same scale in both panels
        assert norm.vcenter == 0 and (norm.vmin, norm.vmax) == pytest.approx((-0.3, 0.3))
        cmap = ax.images[0].get_cmap()
        assert np.allclose(cmap(norm(0.0))[:3], cmap(0.5)[:3])  # 0 is the colormap's neutral middle
    published = panels[1].images[0].get_array()
    assert published[0, 0] == -0.05 and np.ma.getmaskarray(published)[0, 1] and published[1, 1] == 0.25


def test_figures_are_not_clipped(tmp_path: Path) -> None:
    """Nothing drawn touches the edge of the PNG (titles, tick labels and colorbar label lie inside it, with
    the white margin of the tight bounding box), even with a title much wider than the axes."""
    from matplotlib.image import imread

    path, _ = _heatmap(tmp_path, "A very long table title " * 8)
    image = imread(path)[..., :3]
    frame = np.concatenate([image[:4].reshape(-1, 3), image[-4:].reshape(-1, 3)])
    frame = np.concatenate([frame, image[:, :4].reshape(-1, 3), image[:, -4:].reshape(-1, 3)])
    assert frame.min() > 0.99, "something is drawn on the edge of the image: cut off"
    assert not (image < 0.5).all(axis=2).all()  # and the image is not empty
