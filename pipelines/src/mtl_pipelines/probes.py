"""Studies that are not tables of trained runs: the CAGrad toy (seed 001 Tables 1/A7), the loss-scale
invariance probe (seed 001 Figs. A1/A2) and the Hessian sharpness of trained runs (seed 002 Table 1).

They call :mod:`mtl_core.toy` and :mod:`mtl_core.analysis`; the profile's ``probes`` section scales them
(iteration budget, learning rates, epochs) so the default profile stays small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtl_pipelines import grid
from mtl_pipelines.report import Table, _published, _references

__all__ = ["PROBES", "loss_scale", "sharpness", "toy_convergence"]


def toy_convergence(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]
) -> list[Table]:
    """Iterations until every start reaches the global minimum (max over starts; ``–`` if one never does)."""
    from mtl_core.toy import TABLE_A7_LRS, TABLE_A7_MAX_ITERATIONS, table_a7

    settings = profile.get("probes", {}).get("toy_convergence", {})
    lrs = settings.get("lrs", list(TABLE_A7_LRS))
    budget = settings.get("max_iterations", TABLE_A7_MAX_ITERATIONS)
    cells = table_a7(lrs=lrs, max_iterations=budget)
    refs = _references(study)
    columns = [f"{opt} lr={lr:g}" for opt in ("adam", "gd") for lr in lrs]
    table = Table(f"{study['title']} (budget {budget} iterations)", columns, [False] * len(columns))
    keys = {"EW": "ls", "PCGrad": "exact+pcgrad", "CAGrad": "exact+cagrad"}
    for label in ("EW", "PCGrad", "CAGrad"):
        row = []
        for opt in ("adam", "gd"):
            for lr in lrs:
                conv = cells[(label, opt, float(lr))]
                value = None if any(v is None for v in conv.per_start) else float(max(conv.per_start))
                paper = _published(refs[-1], keys[label], setting={"optimizer": opt, "lr": lr}) if refs else None
                row.append((value, None, paper))
        table.add(label, row)
    table.notes.append("'–' (ours): a start did not reach the global minimum within the budget")
    return [table]


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
            table.add(name, [(gaps[g], None, None) for g in groups], rank=False)
        table.notes.append("max relative difference of the update norms, unscaled vs scaled losses (0 = invariant)")
        tables.append(table)
    return tables


def sharpness(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]
) -> list[Table]:
    """Largest Hessian eigenvalue and lambda_max / lambda_5 of the summed task loss at each trained run's
    final weights, over the shared parameters, on the first training batch (seed 002 Table 1)."""
    from mtl_core.analysis import sharpness as hessian_sharpness
    from mtl_pipelines.data import build_split, epoch_generator
    from mtl_pipelines.train import CHECKPOINT, _model

    refs = _references(study)
    ref = refs[0] if refs else None
    table = Table(study["title"], ["λ_max", "λ_max / λ_5"], [False, False])
    for run in runs:
        config = run.config
        split = build_split(config["dataset"], config["dataset"]["splits"]["train"], config["dataset"].get("tasks"))
        model = _model(config, split)
        state = torch.load(grid.run_dir(profile, run.run_id) / CHECKPOINT, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        model.eval()
        x, targets = next(
            iter(split.batches(config["train"]["batch_size"], shuffle=True, generator=epoch_generator(0, 0)))
        )
        specs = split.dataset.tasks

        def loss_fn(model: Any = model, x: Any = x, targets: Any = targets, specs: Any = specs) -> torch.Tensor:
            predictions = model(x)
            return sum(specs[t].loss(predictions[t], targets[t]) for t in targets)

        shared = [p for p in model.shared_parameters() if p.requires_grad]
        result = hessian_sharpness(loss_fn, shared, k=5)
        table.add(
            run.label,
            [
                (result.lambda_max, None, _published(ref, run.method, kind="sharpness") if ref else None),
                (result.ratio, None, None),
            ],
        )
    return [table]


PROBES = {"toy_convergence": toy_convergence, "loss_scale": loss_scale, "sharpness": sharpness}
