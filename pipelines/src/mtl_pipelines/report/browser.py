"""Look at the HTML report as a reader would: render its pages in headless Chromium, take screenshots and
measure the layout in the browser (``python -m mtl_pipelines.report.browser REPORT_DIR OUT_DIR``, or
``scripts/browser_check.sh``).

For each page a copy with a small measuring script is opened; the script runs after the page (and its
images) loaded and records what the browser actually laid out: titles, headers and labels whose text
overflows its box or sticks out of the window (clipped), the computed styles of our cells and of the paper's
cells, the verdict badges, where each pipeline-check label and data-and-scale line sits relative to its table,
the gap cells of each table and whether every figure loaded. :func:`problems` turns that into a list of
what a reader would see wrong.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_FLAGS", "find_chromium", "layout", "pages", "problems", "screenshot"]

# Headless, no network, no first-run UI, a throwaway profile (added per call).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
WINDOW = (1400, 1000)
MAX_HEIGHT = 8000  # a screenshot is the whole page up to this height

_MEASURE = r"""
<script>
window.addEventListener("load", () => {
  const viewport = document.documentElement.clientWidth;
  const style = (el) => {
    const s = getComputedStyle(el);
    return {color: s.color, background: s.backgroundColor, fontStyle: s.fontStyle, fontWeight: s.fontWeight};
  };
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right};
  };
  const height = document.documentElement.scrollHeight;
  const out = {viewport, height, clipped: [], badges: [], tables: [], images: []};
  for (const el of document.querySelectorAll("h1, h2, th, figcaption, .check-label, .data-scale, .banner, .badge")) {
    const r = box(el);
    const overflows = el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1;
    const outside = el.closest(".scroll") === null && (r.left < 0 || r.right > viewport + 1);
    const text = el.textContent.trim().slice(0, 80);
    if (overflows || outside) out.clipped.push({tag: el.tagName, text, ...r, overflows, outside});
  }
  for (const b of document.querySelectorAll(".badge")) {
    out.badges.push({text: b.textContent.trim(), ...style(b), ...box(b)});
  }
  for (const section of document.querySelectorAll("section.report-table")) {
    const table = section.querySelector("table"), label = section.querySelector(".check-label");
    const scale = section.querySelector(".data-scale");
    out.tables.push({
      title: section.querySelector("h2").textContent.trim(),
      table: box(table),
      label: label && box(label),
      data_scale: scale && {...box(scale), text: scale.textContent.trim()},
      gap_cells: section.querySelectorAll("td.gap").length,
      ours: [...section.querySelectorAll("td.ours")].slice(0, 1).map(style)[0] || null,
      paper: [...section.querySelectorAll("td.paper")].slice(0, 1).map(style)[0] || null,
    });
  }
  for (const img of document.images) {
    out.images.push({src: img.getAttribute("src"), loaded: img.complete && img.naturalWidth > 0, ...box(img)});
  }
  const pre = document.createElement("pre");
  pre.id = "mtl-layout-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def find_chromium() -> str | None:
    """The Chromium executable (``$MTL_CHROMIUM``, else ``chromium``/``chromium-browser`` on the PATH)."""
    for name in (os.environ.get("MTL_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _chromium(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("Chromium is not installed (Debian: apt-get install -y chromium; or set MTL_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="mtl-chromium-") as profile:
        command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {done.stderr[-2000:]}")
    return done


def layout(page: Path, window: tuple[int, int] = WINDOW, timeout: float = 120) -> dict[str, Any]:
    """What Chromium laid out for ``page`` (see the module docstring), measured in a ``window``-sized view."""
    page = page.resolve()
    # The copy sits next to the page so that its relative links (figures) resolve the same way.
    fd, name = tempfile.mkstemp(dir=page.parent, prefix=f".{page.stem}.measure.", suffix=".html")
    copy = Path(name)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(page.read_text().replace("</body>", _MEASURE + "</body>"))
        done = _chromium(
            [f"--window-size={window[0]},{window[1]}", "--virtual-time-budget=10000", "--dump-dom", copy.as_uri()],
            timeout,
        )
    finally:
        copy.unlink(missing_ok=True)
    found = re.search(r'<pre id="mtl-layout-check">(.*?)</pre>', done.stdout, re.S)
    if not found:
        raise RuntimeError(f"{page}: the measuring script left no result in the DOM: {done.stdout[-500:]}")
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, png: Path, height: int, width: int = WINDOW[0], timeout: float = 120) -> Path:
    """A screenshot of ``page`` in a ``width`` x ``height`` window (the page's full height, see :func:`layout`)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    height = max(200, min(int(height) + 20, MAX_HEIGHT))
    _chromium([f"--window-size={width},{height}", f"--screenshot={png.resolve()}", page.resolve().as_uri()], timeout)
    if not png.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot of {page} to {png}")
    return png


def pages(report_dir: Path) -> list[Path]:
    """The report's pages: ``index.html`` and every study's ``table.html``."""
    return [p for p in [report_dir / "index.html", *sorted(report_dir.glob("*/table.html"))] if p.is_file()]


def problems(page: Path, measured: dict[str, Any]) -> list[str]:
    """What a reader would see wrong on ``page``: clipped text, badges that are not distinct, our cells styled
    like the paper's, a pipeline-check label or data-and-scale line that is not above its table, a gap on a
    pipeline check, a figure that did not load."""
    out = [
        f"{page}: {c['tag']} {c['text']!r} is clipped "
        + ("(its text overflows its box)" if c["overflows"] else "(it sticks out of the window)")
        for c in measured["clipped"]
    ]
    colours: dict[str, set[str]] = {}
    for badge in measured["badges"]:
        colours.setdefault(badge["background"], set()).add(badge["text"])
    out += [f"{page}: badges {sorted(texts)} share one colour {bg}" for bg, texts in colours.items() if len(texts) > 1]
    for t in measured["tables"]:
        if t["ours"] and t["paper"] and t["ours"] == t["paper"]:
            out.append(f"{page}: table {t['title']!r}: our cells and the paper's look the same ({t['ours']})")
        if t["label"] is not None:
            if t["label"]["bottom"] > t["table"]["top"]:
                out.append(f"{page}: table {t['title']!r}: the pipeline-check label is not above the table")
            if t["gap_cells"]:
                out.append(f"{page}: table {t['title']!r} is a pipeline check but shows {t['gap_cells']} gap cells")
        if t["data_scale"] is not None and t["data_scale"]["bottom"] > t["table"]["top"]:
            out.append(f"{page}: table {t['title']!r}: the data-and-scale line is not above the table")
    out += [f"{page}: figure {i['src']} did not load" for i in measured["images"] if not i["loaded"]]
    return out


def check(report_dir: Path, out_dir: Path) -> tuple[list[Path], list[str], dict[str, Any]]:
    """Measure and screenshot every page of ``report_dir``; screenshots (``<study>.png``, ``index.png``) and
    ``layout.json`` go to ``out_dir``. Returns the screenshots, the problems and the measurements."""
    shots, found, measured_all = [], [], {}
    for page in pages(report_dir):
        name = "index" if page.parent == report_dir else page.parent.name
        measured = layout(page)
        measured_all[name] = measured
        found += problems(page, measured)
        shots.append(screenshot(page, out_dir / f"{name}.png", measured["height"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "layout.json").write_text(json.dumps(measured_all, indent=1) + "\n")
    return shots, found, measured_all


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtl_pipelines.report.browser", description=__doc__.split("\n")[0])
    parser.add_argument("report_dir", type=Path, help="a built report (index.html, <study>/table.html)")
    parser.add_argument("out_dir", type=Path, help="where the screenshots and layout.json go")
    args = parser.parse_args(argv)
    if not (args.report_dir / "index.html").is_file():
        print(f"error: {args.report_dir / 'index.html'} does not exist: build the report first", file=sys.stderr)
        return 2
    shots, found, _ = check(args.report_dir, args.out_dir)
    for problem in found:
        print(problem)
    print(f"{len(shots)} pages checked in Chromium, {len(found)} problems; screenshots in {args.out_dir}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
