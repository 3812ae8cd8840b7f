"""Figures of the report (matplotlib PNG), one function per builder that has them, registered with the
builder (:func:`mtl_pipelines.report.registry.register`). Each takes ``(study, runs, results, tables,
out_dir)`` and returns the paths it wrote; PNGs are written atomically with fixed metadata so identical
numbers give identical bytes (Snakemake/DVC comparisons).

Figures are laid out by matplotlib's constrained layout and saved with a tight bounding box, so titles and
tick labels are never clipped; signed quantities (seed 001's delta_t) are drawn with a diverging colormap
centred on 0; where the paper has the numbers (the reference table of the figure's table), they are drawn
beside ours on the same colour scale."""

from __future__ import annotations

import io as stdio
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtl_pipelines import grid, io
from mtl_pipelines.evaluate import flat
from mtl_pipelines.report.results import Results, bench_model, method_rows
from mtl_pipelines.report.tables import Table

__all__ = ["corruption_heatmaps", "diagnostics_over_training", "efficiency", "parallel_coordinates"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(ncols: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    """A figure with ``ncols`` axes in constrained layout (room is made for titles, labels and colorbars)."""
    return _pyplot().subplots(1, ncols, layout="constrained", **kwargs)


def save(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG, 110 dpi) atomically, without the varying ``Software`` metadata; the
    bounding box is the drawn content (``bbox_inches="tight"``), so nothing that sticks out is cut off."""
    plt = _pyplot()
    buffer = stdio.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None}, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    with io.atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())
    return path


def diagnostics_over_training(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results, tables: list[Table], out: Path
) -> list[Path]:
    """``diagnostics.png``: per row, the mean cosine, conflict share and condition number per epoch."""
    fig, axes = figure(3, figsize=(12, 3.4))
    for label, rows in method_rows(runs).items():
        by_epoch: dict[int, list[dict]] = defaultdict(list)
        for r in rows:
            for d in results[r.run_id]["diagnostics"]:
                by_epoch[d["epoch"]].append(d)
        epochs = sorted(by_epoch)
        series = {
            "cosine": [statistics.fmean(c for d in by_epoch[e] for c in d["cosine"]) for e in epochs],
            "conflict %": [
                100 * statistics.fmean(float(c < 0) for d in by_epoch[e] for c in d["cosine"]) for e in epochs
            ],
            "condition number": [statistics.fmean(d["condition_number"] for d in by_epoch[e]) for e in epochs],
        }
        for ax, (name, ys) in zip(axes, series.items()):
            ax.plot(epochs, ys, marker="o", label=f"{label} ({rows[0].benchmark})")
            ax.set_xlabel("epoch")
            ax.set_title(name)
    axes[0].legend(fontsize=7)
    return [save(fig, out / "diagnostics.png")]


def efficiency(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results, tables: list[Table], out: Path
) -> list[Path]:
    """``efficiency.png``: seconds per step per method (the first column of the cost table)."""
    (table,) = tables
    labels = [row.name for row in table.rows]
    means = [row.cells[0].mean or 0.0 for row in table.rows]
    fig, ax = figure(figsize=(max(4, 0.5 * len(labels)), 3.2))
    ax.bar(range(len(labels)), means)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("seconds per step")
    return [save(fig, out / "efficiency.png")]


def parallel_coordinates(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results, tables: list[Table], out: Path
) -> list[Path]:
    """``parallel_<bench>_<model>.png``: every MTL run's test metrics, min-max normalised per metric
    (higher = better), Adam blue, SGD red (seed 001 Fig. 3)."""
    hib = results.directions
    written = []
    for (bench, model), group in bench_model(runs).items():
        pts = [(r.config["optimizer"]["name"], flat(results[r.run_id]["eval"]["test"])) for r in group if not r.is_stl]
        names = sorted(set.intersection(*(set(v) for _, v in pts))) if pts else []
        if not names:
            continue
        fig, ax = figure(figsize=(max(4, len(names)), 3.2))
        for opt, values in pts:
            ys = []
            for n in names:
                col = [v[n] for _, v in pts]
                lo, hi = min(col), max(col)
                y = (values[n] - lo) / (hi - lo) if hi > lo else 0.5
                ys.append(y if hib[n] else 1 - y)
            ax.plot(range(len(names)), ys, color="tab:blue" if opt == "adam" else "tab:red", alpha=0.6)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("normalised (higher = better)")
        ax.set_title(f"{bench} / {model}: Adam (blue) vs SGD (red)")
        written.append(save(fig, out / f"parallel_{bench}_{model}.png"))
    return written


def corruption_heatmaps(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results, tables: list[Table], out: Path
) -> list[Path]:
    """``corruption_heatmap_<i>.png``: each robustness table's delta_t (rows = methods) on a diverging colormap
    centred on 0 (red: STL degrades less than MTL, blue: MTL degrades less), ours and, where the paper prints
    them, the published values beside it on the same colour scale; every cell is annotated with its value."""
    from matplotlib.colors import CenteredNorm

    written: list[Path] = []
    for table in tables:
        ours = np.array([[_value(c.mean) for c in row.cells] for row in table.rows], dtype=float).reshape(
            len(table.rows), len(table.columns)
        )
        if not ours.size:
            continue
        paper = np.array(
            [[_value(c.published.value if c.published else None) for c in row.cells] for row in table.rows],
            dtype=float,
        )
        panels = [("ours", ours)] + ([("published", paper)] if np.isfinite(paper).any() else [])
        finite = np.concatenate([m[np.isfinite(m)] for _, m in panels])
        norm = CenteredNorm(vcenter=0.0, halfrange=float(np.abs(finite).max()) if finite.size else 1.0)
        width = max(4.0, 0.7 * len(table.columns) + 1.5)
        fig, axes = figure(len(panels), figsize=(width * len(panels), 0.35 * len(table.rows) + 2.2), squeeze=False)
        for ax, (name, matrix) in zip(axes[0], panels):
            image = ax.imshow(matrix, cmap="RdBu_r", norm=norm, aspect="auto")
            for (i, j), v in np.ndenumerate(matrix):
                if np.isfinite(v):  # white on the dark ends of the colormap, black elsewhere
                    color = "white" if abs(v) > 0.6 * norm.halfrange else "black"
                    ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7, color=color)
            ax.set_xticks(range(len(table.columns)), table.columns, rotation=35, ha="right", fontsize=7)
            ax.set_yticks(range(len(table.rows)), [row.name for row in table.rows], fontsize=7)
            ax.set_title(name, fontsize=9)
        fig.colorbar(image, ax=axes[0].tolist(), label="δ_t (MTL drop − STL drop, fraction)")
        fig.suptitle(table.title, fontsize=9)
        written.append(save(fig, out / f"corruption_heatmap_{len(written)}.png"))
    return written


def _value(value: float | None) -> float:
    return float("nan") if value is None else float(value)
