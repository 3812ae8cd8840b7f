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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtl_pipelines import grid, io
from mtl_pipelines.evaluate import flat
from mtl_pipelines.report import diagnostics
from mtl_pipelines.report.results import Results, bench_model
from mtl_pipelines.report.tables import Table

__all__ = [
    "corruption_heatmaps",
    "diagnostics_over_training",
    "efficiency",
    "parallel_coordinates",
    "task_cosine_heatmaps",
    "toy_trajectories",
]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(ncols: int = 1, nrows: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    """A figure with ``nrows`` x ``ncols`` axes in constrained layout (room is made for titles, labels and
    colorbars)."""
    return _pyplot().subplots(nrows, ncols, layout="constrained", **kwargs)


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
    """The study's ``figure.quantity`` over training (:mod:`mtl_pipelines.report.diagnostics`): ``diagnostics.png``,
    one panel per measure and a line per row (mean, shaded standard deviation, dotted 2.5 / 97.5 percentiles
    within the epoch, as seed 001 Fig. 3), or ``cosine_matrices.png`` for ``cosine_matrix``."""
    spec = diagnostics.figure_spec(study)
    if spec["quantity"] == "cosine_matrix":
        return _cosine_matrices(diagnostics.cosine_matrices(study, runs, results), spec, out)
    series = diagnostics.epoch_series(study, runs, results)
    if not series:
        return []
    panels = diagnostics.PANELS[spec["quantity"]]
    fig, axes = figure(len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    wrt = " (w.r.t. z)" if spec["wrt"] == "z" else ""
    for ax, panel in zip(axes[0], panels):
        for label, lines in series.items():
            if panel not in lines:
                continue
            line = lines[panel]
            mean, std = np.asarray(line.mean), np.asarray(line.std)
            (drawn,) = ax.plot(line.epochs, mean, marker="o", markersize=3, label=label)
            ax.fill_between(line.epochs, mean - std, mean + std, color=drawn.get_color(), alpha=0.2)
            for bound in (line.low, line.high):
                ax.plot(line.epochs, bound, linestyle=":", linewidth=0.8, color=drawn.get_color())
        ax.set_xlabel("epoch")
        ax.set_title(panel + wrt)
    axes[0][0].legend(fontsize=7)
    return [save(fig, out / "diagnostics.png")]


def _cosine_matrices(
    matrices: Mapping[str, tuple[list[str], Mapping[int, np.ndarray]]], spec: Mapping[str, Any], out: Path
) -> list[Path]:
    """``cosine_matrices.png``: a row of K x K matrices per table row, one per drawn epoch, on [0, 1]."""
    if not matrices:
        return []
    columns = max(len(by_epoch) for _, by_epoch in matrices.values())
    fig, axes = figure(columns, len(matrices), figsize=(2.4 * columns, 2.4 * len(matrices)), squeeze=False)
    image = None
    for row, (label, (tasks, by_epoch)) in zip(axes, matrices.items()):
        for ax in row[len(by_epoch) :]:
            ax.set_axis_off()
        for ax, (epoch, matrix) in zip(row, by_epoch.items()):
            image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0)
            ax.set_xticks(range(len(tasks)), tasks, rotation=90, fontsize=5)
            ax.set_yticks(range(len(tasks)), tasks, fontsize=5)
            ax.set_title(f"{label}, epoch {epoch}", fontsize=7)
    wrt = "z" if spec["wrt"] == "z" else "the shared parameters"
    fig.colorbar(image, ax=axes.ravel().tolist(), label=f"cosine of the task gradients w.r.t. {wrt} (< 0 shown as 0)")
    return [save(fig, out / "cosine_matrices.png")]


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


def _contour(ax: Any, problem: Any, weights: Sequence[float] | None = None) -> None:
    """Filled contours of the (weighted) summed task losses over the problem's box."""
    import torch

    (x_lo, x_hi), (y_lo, y_hi) = problem.bounds or problem.search_box
    xs, ys = np.linspace(x_lo, x_hi, 200), np.linspace(y_lo, y_hi, 200)
    grid_points = torch.tensor(np.stack(np.meshgrid(xs, ys), axis=-1), dtype=torch.float64)
    with torch.no_grad():
        losses = problem.losses(grid_points).numpy()
    total = losses.sum(-1) if weights is None else losses @ np.asarray(weights)
    ax.contourf(xs, ys, total, levels=30, cmap="Greys_r", alpha=0.8)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)


def toy_trajectories(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results, tables: list[Table], out: Path
) -> list[Path]:
    """``toy_trajectories.png``: each trajectory of the toy probe's table on the contours of its objective, the
    paper's starting points as stars (seed 002 Fig. 1, seed 003 Fig. 1 / Fig. 6)."""
    (table,) = tables
    payload = table.payload or {}
    panels: list[tuple[str, Any, list[Any]]] = []
    if "problem" in payload:  # one problem, several runs (002 Fig. 1)
        panels.append(("", payload["problem"], list(payload["trajectories"].items())))
    else:  # one panel per (method, task scale) (003 Fig. 6)
        for (label, scale), (problem, trajectory) in payload.get("trajectories", {}).items():
            panels.append((f"{label}, s={scale:g}", problem, [(label, trajectory)]))
    if not panels:
        return []
    fig, axes = figure(len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    for ax, (title, problem, drawn) in zip(axes[0], panels):
        _contour(ax, problem)
        for (label, trajectory), color in zip(drawn, ("tab:red", "tab:blue", "tab:orange", "tab:green")):
            points = trajectory.points
            for s in range(points.shape[1]):
                ax.plot(points[:, s, 0], points[:, s, 1], color=color, lw=1.2, label=label if s == 0 else None)
                ax.plot(points[-1, s, 0], points[-1, s, 1], "o", color=color, ms=4)
        starts = np.asarray(payload.get("starts", []), dtype=float)
        if starts.size:
            ax.plot(starts[:, 0], starts[:, 1], "*", color="gold", ms=11, mec="black", label="start (paper)")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
    axes[0][0].legend(fontsize=6, loc="upper right")
    return [save(fig, out / "toy_trajectories.png")]


def task_cosine_heatmaps(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results, tables: list[Table], out: Path
) -> list[Path]:
    """``task_cosines.png``: each measured K x K cosine matrix of the task gradients (mean over seeds), one
    panel per row of the table (seed 002 Figs. 2 and 5: LS beside LS with SAM), on one colour scale
    [-1, 1] centred on 0."""
    from matplotlib.colors import CenteredNorm

    (table,) = tables
    matrices = (table.payload or {}).get("matrices", {})
    if not matrices:
        return []
    fig, axes = figure(len(matrices), figsize=(3.4 * len(matrices), 3.2), squeeze=False)
    norm = CenteredNorm(vcenter=0.0, halfrange=1.0)
    image = None
    for ax, (label, (tasks, matrix)) in zip(axes[0], matrices.items()):
        image = ax.imshow(matrix, cmap="RdBu_r", norm=norm)
        ax.set_xticks(range(len(tasks)), tasks, rotation=60, ha="right", fontsize=6)
        ax.set_yticks(range(len(tasks)), tasks, fontsize=6)
        ax.set_title(label, fontsize=8)
    fig.colorbar(image, ax=axes[0].tolist(), label="cosine of the task gradients")
    return [save(fig, out / "task_cosines.png")]
