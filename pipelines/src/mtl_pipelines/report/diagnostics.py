"""What a diagnostics study's figure draws (its ``figure:`` block), from the runs' ``diagnostics.jsonl`` records.

``figure.quantity`` names the paper's figure:

- ``similarity`` (seed 001 Fig. 3): cosine, magnitude similarity and conflict share of the task gradients per
  epoch, mean, standard deviation and the 2.5 / 97.5 percentiles within the epoch;
- ``conflict`` (seed 000 Fig. 3): the share of conflicting gradient pairs per epoch (with two tasks, the share of
  minibatches whose g_1 . g_2 < 0);
- ``condition_number`` (seed 003 sec. 3): the condition number of the gradient system per epoch;
- ``grad_norms`` (seed 000 Fig. 2): per step the mean task-gradient norm and the sum of the task losses, per epoch;
- ``cosine_matrix`` (seed 004 Fig. 2): the K x K cosine matrix of the task gradients at epochs within the first
  ``figure.epochs``, negative values clipped to 0 as the paper draws them.

``figure.wrt``: ``parameters`` (the shared parameters' gradients, default) or ``z`` (w.r.t. the shared
representation, :mod:`mtl_pipelines.representation`; seed 004 Fig. 2). Records are pooled over the steps of an
epoch and the seeds of a row (:func:`mtl_pipelines.report.results.method_rows`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtl_pipelines import grid
from mtl_pipelines.report.results import Results, method_rows

__all__ = [
    "PANELS",
    "Series",
    "check_figure",
    "conflict_percent",
    "cosine_matrices",
    "epoch_series",
    "figure_spec",
    "mean_cosines",
]

# the panels of each line-figure quantity, left to right; cosine_matrix draws matrices instead
PANELS: dict[str, tuple[str, ...]] = {
    "similarity": ("cosine", "magnitude similarity", "conflict %"),
    "conflict": ("conflict %",),
    "condition_number": ("condition number",),
    "grad_norms": ("gradient norm", "task loss"),
}
QUANTITIES = (*PANELS, "cosine_matrix")
WRT = ("parameters", "z")
MATRIX_PANELS = 6  # epochs drawn of a cosine_matrix figure, evenly spread over the first figure.epochs
_FIGURE_FIELDS = {"quantity", "x", "wrt", "epochs"}


def figure_spec(study: Mapping[str, Any]) -> dict[str, Any]:
    """The study's figure block with its defaults (``similarity`` w.r.t. the parameters)."""
    spec = dict(study.get("figure") or {})
    return {"quantity": "similarity", "wrt": "parameters", "epochs": None, **spec}


def check_figure(study: Mapping[str, Any], where: str) -> None:
    """ValueError naming the study file, the ``figure`` field, the bad value and the valid ones."""
    raw = study.get("figure") or {}
    unknown = sorted(set(raw) - _FIGURE_FIELDS)
    if unknown:
        raise ValueError(f"{where}: figure has unknown field(s) {unknown}; valid: {sorted(_FIGURE_FIELDS)}")
    spec = figure_spec(study)
    if spec["quantity"] not in QUANTITIES:
        raise ValueError(f"{where}: figure.quantity {spec['quantity']!r}; valid: {', '.join(QUANTITIES)}")
    if spec["wrt"] not in WRT:
        raise ValueError(f"{where}: figure.wrt {spec['wrt']!r}; valid: {', '.join(WRT)}")
    if spec.get("x", "epoch") != "epoch":
        raise ValueError(f"{where}: figure.x {spec['x']!r}; valid: epoch")
    epochs = spec["epochs"]
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"{where}: figure.epochs {epochs!r}; valid: a positive number of epochs")
    if (epochs is not None) != (spec["quantity"] == "cosine_matrix"):
        raise ValueError(f"{where}: figure.epochs belongs to quantity cosine_matrix (the first epochs drawn)")


def conflict_percent(cosines: Sequence[float]) -> float:
    """Share of task pairs with conflicting gradients (cosine < 0), in percent."""
    return 100.0 * sum(c < 0 for c in cosines) / max(len(cosines), 1)


def _epoch_limit(study: Mapping[str, Any]) -> float:
    """The last epoch the study's figure draws (``figure.epochs``; every epoch when unset)."""
    return figure_spec(study)["epochs"] or math.inf


def _source(record: Mapping[str, Any], wrt: str) -> Mapping[str, Any] | None:
    return record if wrt == "parameters" else record.get("z")


def _values(record: Mapping[str, Any], panel: str) -> list[float]:
    """One record's values of ``panel`` (None entries, non-finite when recorded, are left out)."""
    if panel == "cosine":
        values = record["cosine"]
    elif panel == "magnitude similarity":
        values = record["magnitude_similarity"]
    elif panel == "conflict %":
        cosines = [c for c in record["cosine"] if c is not None]
        values = [conflict_percent(cosines)] if cosines else []
    elif panel == "condition number":
        values = [record["condition_number"]]
    elif panel == "gradient norm":  # one value per step: the mean of its task-gradient norms
        norms = [v for v in record["grad_norms"] if v is not None]
        values = [sum(norms) / len(norms)] if norms else []
    else:  # task loss, one value per step: the sum of its task losses (runs trained before they were recorded: none)
        losses = record.get("losses") or []
        values = [sum(losses)] if losses and None not in losses else []
    return [float(v) for v in values if v is not None and math.isfinite(v)]


@dataclass(frozen=True)
class Series:
    """One panel's line of one row: per epoch, the mean, standard deviation and 2.5 / 97.5 percentiles of the
    values pooled over the epoch's records."""

    epochs: list[int]
    mean: list[float]
    std: list[float]
    low: list[float]
    high: list[float]


def epoch_series(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> dict[str, dict[str, Series]]:
    """``{row label: {panel: Series}}`` of the study's line-figure quantity; rows without records are left out."""
    spec = figure_spec(study)
    out: dict[str, dict[str, Series]] = {}
    for label, rows in method_rows(runs).items():
        panels: dict[str, Series] = {}
        for panel in PANELS[spec["quantity"]]:
            by_epoch: dict[int, list[float]] = defaultdict(list)
            for run in rows:
                for record in results[run.run_id]["diagnostics"]:
                    source = _source(record, spec["wrt"])
                    if source is not None:
                        by_epoch[int(record["epoch"])] += _values(source, panel)
            epochs = [e for e in sorted(by_epoch) if by_epoch[e]]
            if not epochs:
                continue
            pooled = [np.asarray(by_epoch[e]) for e in epochs]
            panels[panel] = Series(
                epochs,
                [float(v.mean()) for v in pooled],
                [float(v.std(ddof=1)) if len(v) > 1 else 0.0 for v in pooled],
                [float(np.percentile(v, 2.5)) for v in pooled],
                [float(np.percentile(v, 97.5)) for v in pooled],
            )
        if panels:
            out[f"{label} ({rows[0].benchmark})"] = panels
    return out


def mean_cosines(study: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """One run's claim quantities (:mod:`mtl_pipelines.claims`): ``cosine`` and ``cosine_z``, the mean pairwise
    cosine of its task gradients w.r.t. the shared parameters and w.r.t. z over every diagnosed step of the epochs
    the study's figure draws (the first ``figure.epochs``; all when unset); absent when nothing was recorded."""
    limit = _epoch_limit(study)
    out: dict[str, float] = {}
    for quantity, wrt in (("cosine", "parameters"), ("cosine_z", "z")):
        pooled = [
            c
            for record in records
            if int(record["epoch"]) <= limit and (source := _source(record, wrt)) is not None
            for c in _values(source, "cosine")
        ]
        if pooled:
            out[quantity] = float(np.mean(pooled))
    return out


def _matrix(upper: Sequence[float], k: int) -> np.ndarray:
    """The symmetric K x K matrix with unit diagonal whose ``i < j`` entries are ``upper`` in row-major order
    (:func:`mtl_core.analysis.upper_triangle`)."""
    matrix = np.eye(k)
    rows, cols = np.triu_indices(k, 1)
    matrix[rows, cols] = upper
    matrix[cols, rows] = upper
    return matrix


def cosine_matrices(
    study: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Results
) -> dict[str, tuple[list[str], dict[int, np.ndarray]]]:
    """``{row label: (tasks, {epoch: K x K matrix})}``: per drawn epoch, the mean over the epoch's records (steps
    and seeds) of the task-gradient cosine matrix, negative values clipped to 0 (seed 004 Fig. 2). The epochs
    drawn are up to :data:`MATRIX_PANELS` of the recorded ones within the first ``figure.epochs``, evenly
    spread. The task order is the run's (``final.json`` ``tasks``, the order of the recorded rows)."""
    wrt, limit = figure_spec(study)["wrt"], _epoch_limit(study)
    out: dict[str, tuple[list[str], dict[int, np.ndarray]]] = {}
    for label, rows in method_rows(runs).items():
        by_epoch: dict[int, list[np.ndarray]] = defaultdict(list)
        tasks: list[str] = []
        for run in rows:
            tasks = list(results[run.run_id]["final"].get("tasks", []))
            k = len(tasks)
            for record in results[run.run_id]["diagnostics"]:
                source = _source(record, wrt)
                if source is None or int(record["epoch"]) > limit:
                    continue
                upper = source["cosine"]
                if len(upper) != k * (k - 1) // 2 or any(c is None for c in upper):
                    raise ValueError(
                        f"run {run.run_id}: a diagnostics record of epoch {record['epoch']} holds {len(upper)} "
                        f"cosines, {k} tasks have {k * (k - 1) // 2} pairs"
                    )
                by_epoch[int(record["epoch"])].append(_matrix(upper, k))
        if not by_epoch:
            continue
        recorded = sorted(by_epoch)
        picks = sorted({recorded[round(float(i))] for i in np.linspace(0, len(recorded) - 1, MATRIX_PANELS)})
        out[f"{label} ({rows[0].benchmark})"] = (
            tasks,
            {e: np.clip(np.mean(by_epoch[e], axis=0), 0.0, None) for e in picks},
        )
    return out
