"""Studies that are not tables of trained runs: the CAGrad toy (seed 001 Tables 1/A7), the loss-scale
invariance probe (seed 001 Figs. A1/A2) and the Hessian sharpness of trained runs (seed 002 Table 1).

They call :mod:`mtl_core.toy` and :mod:`mtl_core.analysis`; the profile's ``probes`` section scales them
(iteration budget, learning rates, epochs) so the default profile stays small. Each is a report builder
(:mod:`mtl_pipelines.report.registry`, ``probe=True``): a study names it as its ``builder``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtl_pipelines import grid
from mtl_pipelines.report.published import cite, column_cell, published, study_references
from mtl_pipelines.report.registry import register
from mtl_pipelines.report.results import mean_std
from mtl_pipelines.report.tables import Cell, Table

__all__ = ["loss_scale", "sharpness", "sharpness_table", "toy_convergence"]


@register("toy_convergence", probe=True)
def toy_convergence(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]
) -> list[Table]:
    """Seed 001 Table 1/A7: iterations until every start reaches the global minimum of the CAGrad toy (max over
    starts; ``–`` if one never does), per method, optimizer and learning rate; each column beside the published
    cell of the same optimizer (row) and learning rate (column)."""
    from mtl_core.toy import TABLE_A7_LRS, TABLE_A7_MAX_ITERATIONS, table_a7

    settings = profile.get("probes", {}).get("toy_convergence", {})
    lrs = settings.get("lrs", list(TABLE_A7_LRS))
    budget = settings.get("max_iterations", TABLE_A7_MAX_ITERATIONS)
    cells = table_a7(lrs=lrs, max_iterations=budget)
    refs = study_references(study)
    columns = [f"{opt} lr={lr:g}" for opt in ("adam", "gd") for lr in lrs]
    # iteration counts span 22 to 2,135: compared with the paper's by ratio (see report.tables.GAPS)
    table = Table(f"{study['title']} (budget {budget} iterations)", columns, [False] * len(columns), gap="ratio")
    ref = cite(table, refs[-1] if refs else None)  # the last reference (Table A7) has every learning rate
    keys = {"EW": "ls", "PCGrad": "exact+pcgrad", "CAGrad": "exact+cagrad"}
    for label in ("EW", "PCGrad", "CAGrad"):
        row = []
        for opt in ("adam", "gd"):
            for lr in lrs:
                conv = cells[(label, opt, float(lr))]
                value = None if any(v is None for v in conv.per_start) else float(max(conv.per_start))
                paper = published(ref, keys[label], setting={"optimizer": opt, "lr": float(lr)}) if ref else None
                row.append(Cell(value, None, paper))
        table.add(label, row)
    table.notes.append("'–' (ours): a start did not reach the global minimum within the budget")
    return [table]


@register("loss_scale", probe=True)
def loss_scale(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]
) -> list[Table]:
    """Relative gap of the update norms between unscaled and scaled (10x, 0.1x) losses per parameter group:
    0 = invariant to the loss scales (Adam heads with a frozen backbone, UW-O, one Adam per task)."""
    from mtl_core.analysis import compare_loss_scales, invariance_gap

    settings = profile.get("probes", {}).get("loss_scale", {})
    epochs = settings.get("epochs", 100)
    setups = [("sgd", "ew"), ("adam", "ew"), ("sgd", "uw_o"), ("adam_per_task", "ew")]
    tables = []
    for frozen in (True, False):
        rows = []
        for optimizer, weighting in setups:
            if optimizer == "adam_per_task" and frozen:
                continue
            a, b = compare_loss_scales(optimizer=optimizer, weighting=weighting, freeze_backbone=frozen, epochs=epochs)
            rows.append((f"{optimizer} + {weighting}", invariance_gap(a, b)))
        groups = list(rows[0][1])
        title = f"{study['title']} — {'frozen' if frozen else 'learnable'} backbone ({epochs} epochs)"
        table = Table(title, [f"gap {g}" for g in groups], [False] * len(groups))
        for name, gaps in rows:
            table.add(name, [Cell(gaps[g]) for g in groups], rank=False)
        table.notes.append("max relative difference of the update norms, unscaled vs scaled losses (0 = invariant)")
        tables.append(table)
    return tables


@register("sharpness", probe=True)
def sharpness(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]
) -> list[Table]:
    """Largest Hessian eigenvalue and lambda_max / lambda_5 of the summed task loss at each trained run's
    final weights, over the shared parameters, on the first training batch (seed 002 Table 1)."""
    from mtl_core.analysis import sharpness as hessian_sharpness
    from mtl_pipelines.data import build_split, epoch_generator
    from mtl_pipelines.run import Run, place

    measured = []
    for run in runs:
        config = run.config
        trained = Run(grid.run_dir(profile, run.run_id), config)
        on = trained.device("auto")
        split = build_split(config["dataset"], config["dataset"]["splits"]["train"], config["dataset"].get("tasks"))
        model = trained.trained_model(split, on)
        x, targets = next(
            iter(split.batches(config["train"]["batch_size"], shuffle=True, generator=epoch_generator(0, 0)))
        )
        x, targets = place(x, on), place(targets, on)
        specs = split.dataset.tasks

        def loss_fn(model: Any = model, x: Any = x, targets: Any = targets, specs: Any = specs) -> torch.Tensor:
            predictions = model(x)
            return sum(specs[t].loss(predictions[t], targets[t]) for t in targets)

        shared = [p for p in model.shared_parameters() if p.requires_grad]
        measured.append((run, hessian_sharpness(loss_fn, shared, k=5)))
    return [sharpness_table(study, measured)]


def sharpness_table(study: Mapping[str, Any], measured: Sequence[tuple[grid.RunSpec, Any]]) -> Table:
    """Seed 002 Table 1 from the measured ``(run, SharpnessResult)`` pairs: per row label, mean ± std over
    seeds of lambda_max and lambda_max / lambda_5, beside the published values of the same method (the
    paper's column group) after the same number of epochs (the paper's rows)."""
    refs = study_references(study)
    table = Table(study["title"], ["λ_max", "λ_max / λ_5"], [False, False], gap="ratio")  # eigenvalues: by ratio
    ref = cite(table, refs[0] if refs else None)
    rows: dict[str, list[tuple[grid.RunSpec, Any]]] = {}
    for run, result in measured:
        rows.setdefault(run.label, []).append((run, result))
    for label, pairs in rows.items():
        run = pairs[0][0]
        epoch = {"epoch": run.config["train"]["epochs"]}
        columns = {c.name for c in ref.columns if c.method == run.method} if ref else set()
        lam = next((c for c in columns if c.endswith(" λ_max")), None)
        ratio = next((c for c in columns if c.endswith(" λ_max/λ_5")), None)
        table.add(
            label,
            [
                Cell(*mean_std([r.lambda_max for _, r in pairs]), column_cell(ref, lam, **epoch) if ref else None),
                Cell(*mean_std([r.ratio for _, r in pairs]), column_cell(ref, ratio, **epoch) if ref else None),
            ],
        )
    return table
