"""Figures of the report (matplotlib PNG), one function per builder that has them, registered with the
builder (:func:`mtl_pipelines.report.registry.register`). Each takes ``(study, runs, results, tables,
out_dir)`` and returns the paths it wrote; PNGs are written atomically with fixed metadata so identical
numbers give identical bytes (Snakemake/DVC comparisons)."""

from __future__ import annotations

import io as stdio
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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


def save(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG, 110 dpi) atomically, without the varying ``Software`` metadata."""
    plt = _pyplot()
    fig.tight_layout()
    buffer = stdio.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    with io.atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())
    return path


def diagnostics_over_training(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results, tables: list[Table], out: Path
) -> list[Path]:
    """``diagnostics.png``: per row, the mean cosine, conflict share and condition number per epoch."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
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
    plt = _pyplot()
    (table,) = tables
    labels = [row.name for row in table.rows]
    means = [row.cells[0].mean or 0.0 for row in table.rows]
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(labels)), 3.2))
    ax.bar(range(len(labels)), means)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("seconds per step")
    return [save(fig, out / "efficiency.png")]


def parallel_coordinates(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results, tables: list[Table], out: Path
) -> list[Path]:
    """``parallel_<bench>_<model>.png``: every MTL run's test metrics, min-max normalised per metric
    (higher = better), Adam blue, SGD red (seed 001 Fig. 3)."""
    plt = _pyplot()
    hib = results.directions
    written = []
    for (bench, model), group in bench_model(runs).items():
        pts = [(r.config["optimizer"]["name"], flat(results[r.run_id]["eval"]["test"])) for r in group if not r.is_stl]
        names = sorted(set.intersection(*(set(v) for _, v in pts))) if pts else []
        if not names:
            continue
        fig, ax = plt.subplots(figsize=(max(4, len(names)), 3.2))
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
    """``corruption_heatmap_<i>.png``: the robustness tables' delta_t as heatmaps (rows = methods)."""
    plt = _pyplot()
    written: list[Path] = []
    for table in tables:
        data = [[c.mean if c.mean is not None else float("nan") for c in row.cells] for row in table.rows]
        if not data:
            continue
        fig, ax = plt.subplots(figsize=(max(4, len(table.columns)), 0.4 * len(data) + 1.5))
        image = ax.imshow(data, cmap="coolwarm", aspect="auto")
        ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(data)), [row.name for row in table.rows], fontsize=7)
        fig.colorbar(image, ax=ax, label="δ_t (MTL drop − STL drop, fraction)")
        written.append(save(fig, out / f"corruption_heatmap_{len(written)}.png"))
    return written
