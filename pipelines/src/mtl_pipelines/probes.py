"""Studies that are not tables of trained runs: the CAGrad toy (seed 001 Tables 1/A7), the loss-scale
invariance probe (seed 001 Figs. A1/A2), the Hessian sharpness of trained runs (seed 002 Table 1), the toy
figures of seed 002 (Fig. 1, LS vs LS with SAM) and seed 003 (Fig. 1 / App. C, the synthetic example per
method and task weighting), and the task-gradient cosines of trained runs (seed 002 Figs. 2 / 5).

They call :mod:`mtl_core.toy` and :mod:`mtl_core.analysis`; the profile's ``probes`` section scales them
(iteration budget, learning rates, epochs) so the default profile stays small. Each is a report builder
(:mod:`mtl_pipelines.report.registry`, ``probe=True``): a study names it as its ``builder``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from mtl_pipelines import grid
from mtl_pipelines.report import figures
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
    records = []  # Table.data: what the claims of seed 001 Table A7 read (mtl_pipelines.claims.toy_observations)
    for label in ("EW", "PCGrad", "CAGrad"):
        row = []
        for opt in ("adam", "gd"):
            for lr in lrs:
                conv = cells[(label, opt, float(lr))]
                value = None if any(v is None for v in conv.per_start) else float(max(conv.per_start))
                paper = published(ref, keys[label], setting={"optimizer": opt, "lr": float(lr)}) if ref else None
                row.append(Cell(value, None, paper))
                iterations = None if value is None else int(value)
                records.append({"method": keys[label], "optimizer": opt, "lr": float(lr), "iterations": iterations})
        table.add(label, row)
    table.notes.append("'–' (ours): a start did not reach the global minimum within the budget")
    table.data = {"probe": "toy_convergence", "budget": int(budget), "cells": records}
    return [table]


@register("loss_scale", probe=True)
def loss_scale(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]
) -> list[Table]:
    """Relative gap of the update norms between unscaled and scaled (10x, 0.1x) losses per parameter group,
    both taken from the same state at every step (:func:`mtl_core.analysis.lockstep_invariance_gap`; two
    separate runs of an invariant setting drift apart from round-off alone within 10 epochs): 0 = invariant to
    the loss scales (Adam heads with a frozen backbone, UW-O, one Adam per task)."""
    from mtl_core.analysis import lockstep_invariance_gap

    settings = profile.get("probes", {}).get("loss_scale", {})
    epochs = settings.get("epochs", 100)
    setups = [("sgd", "ew"), ("adam", "ew"), ("sgd", "uw_o"), ("adam_per_task", "ew")]
    tables = []
    for frozen in (True, False):
        rows = []
        for optimizer, weighting in setups:
            if optimizer == "adam_per_task" and frozen:
                continue
            gaps = lockstep_invariance_gap(
                optimizer=optimizer, weighting=weighting, freeze_backbone=frozen, epochs=epochs
            )
            rows.append((f"{optimizer} + {weighting}", gaps))
        groups = list(rows[0][1])
        backbone = "frozen" if frozen else "learnable"
        title = f"{study['title']} — {backbone} backbone ({epochs} epochs)"
        table = Table(title, [f"gap {g}" for g in groups], [False] * len(groups))
        for name, gaps in rows:
            table.add(name, [Cell(gaps[g]) for g in groups], rank=False)
        table.notes.append(
            "max relative difference of the update norms, unscaled vs scaled losses, both from the same state at "
            "every step (0 = invariant)"
        )
        # what the invariance claims of seed 001 Figs. A1/A2 read (mtl_pipelines.claims.loss_scale_observations)
        table.data = {
            "probe": "loss_scale",
            "gaps": [
                {"backbone": backbone, "setup": name, "group": g, "gap": None if gaps[g] is None else float(gaps[g])}
                for name, gaps in rows
                for g in groups
            ],
        }
        tables.append(table)
    return tables


def _trained_at_first_batch(
    profile: Mapping[str, Any], runs: Sequence[grid.RunSpec]
) -> Iterator[tuple[grid.RunSpec, Any, Mapping[str, Any], Any, Any]]:
    """Per trained run: ``(run, model at its final weights, task specs, x, targets)`` with the first training
    batch of epoch 0's seeded order, on the run's device (the batch the probes of seed 002 measure on). The
    caller's measurement runs with the run's own intra-op thread count (``train.threads``), so its float32
    sums do not depend on which tool started the report (Snakemake and DVC differed in the 7th digit)."""
    from mtl_pipelines.data import build_split, epoch_generator
    from mtl_pipelines.run import Run, place

    threads = torch.get_num_threads()
    try:
        for run in runs:
            config = run.config
            torch.set_num_threads(int(config["train"].get("threads") or threads))
            trained = Run(grid.run_dir(profile, run.run_id), config)
            on = trained.device("auto")
            split = build_split(config["dataset"], config["dataset"]["splits"]["train"], config["dataset"].get("tasks"))
            model = trained.trained_model(split, on)
            x, targets = next(
                iter(split.batches(config["train"]["batch_size"], shuffle=True, generator=epoch_generator(0, 0)))
            )
            yield run, model, split.dataset.tasks, place(x, on), place(targets, on)
    finally:
        torch.set_num_threads(threads)


@register("sharpness", probe=True)
def sharpness(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]
) -> list[Table]:
    """Largest Hessian eigenvalue and lambda_max / lambda_5 of the summed task loss at each trained run's
    final weights, over the shared parameters, on the first training batch (seed 002 Table 1)."""
    from mtl_core.analysis import sharpness as hessian_sharpness

    measured = []
    for run, model, specs, x, targets in _trained_at_first_batch(profile, runs):

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


# ------------------------------------------------------------------------------------------------ toy figures
def _hessian_lambda_max(problem: Any, point: Any) -> float:
    """Largest eigenvalue of the Hessian of the summed task losses at ``point`` (float64, 2 x 2: exact)."""
    x = torch.as_tensor(point, dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(lambda v: problem.losses(v).sum(), x)
    return float(torch.linalg.eigvalsh(hessian).max())


@register("toy_sam", probe=True, figures=figures.toy_trajectories)
def toy_sam(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]
) -> list[Table]:
    """Seed 002 Fig. 1 (sec. 6.1): LS and LS with (global) SAM from (-6, 1) on SAMO's toy
    (``mtl_core.toy.samo_toy_trajectories``): where each converges, its losses, how far from Pareto stationary
    (``mtl_core.analysis.pareto_stationarity``, 0 on the Pareto set) and the sharpness there: the largest
    Hessian eigenvalue of f1 + f2 (the paper: LS ends in a sharp minimum, LS with SAM in a flat one)."""
    from mtl_core.analysis import pareto_stationarity
    from mtl_core.toy import SAMO_START, SAMO_TOY_SETTINGS, samo_toy, samo_toy_trajectories

    settings = {**SAMO_TOY_SETTINGS, **profile.get("probes", {}).get("toy_sam", {})}
    trajectories = samo_toy_trajectories(**settings)
    problem = samo_toy()
    columns = ["x1", "x2", "f1", "f2", "Pareto stationarity", "λ_max(∇²(f1 + f2))"]
    table = Table(
        f"{study['title']} ({settings['optimizer']}, lr {settings['lr']:g}, ρ {settings['rho']:g}, "
        f"{settings['iterations']} steps)",
        columns,
        [None, None, False, False, False, False],
    )
    for label, trajectory in trajectories.items():
        point = trajectory.final_points[0]
        _, jac = problem.losses_and_jacobian(torch.as_tensor(point, dtype=torch.float64).reshape(1, 2))
        cells = [
            Cell(float(point[0])),
            Cell(float(point[1])),
            Cell(float(trajectory.losses[-1, 0, 0])),
            Cell(float(trajectory.losses[-1, 0, 1])),
            Cell(pareto_stationarity(jac[0])),
            Cell(_hessian_lambda_max(problem, point)),
        ]
        table.add(label, cells, rank=False)
    table.notes.append(
        f"both start at the paper's start {SAMO_START} in the box x1 ∈ [-6, 6], x2 ∈ [-3, 3]; the step rule is ours "
        "(the paper gives none, see mtl_core.toy.SAMO_TOY_SETTINGS); the figure draws the trajectories on f1 + f2"
    )
    table.payload = {"problem": problem, "trajectories": trajectories, "starts": [SAMO_START]}
    return [table]


# seed 003 App. C, Fig. 6: the methods of its rows (Uniform = LS) as mtl_core names
TOY_ALIGNED_METHODS = {
    "Uniform": "ls",
    "PCGrad": "pcgrad",
    "CAGrad": "cagrad",
    "IMTL": "imtl",
    "NashMTL": "nash_mtl",
    "Aligned-MTL": "aligned_mtl",
}
# Aligned-MTL's toy script (SamsungLabs/MTL optimize_toy.py): Adam, lr 1e-3, 35k iterations, task scale 0.5
TOY_ALIGNED_SETTINGS: dict[str, Any] = {"lr": 1e-3, "iterations": 35_000, "scales": [0.5], "tol": 0.1}


@register("toy_aligned", probe=True, figures=figures.toy_trajectories)
def toy_aligned(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]
) -> list[Table]:
    """Seed 003 Fig. 1 and App. C (Fig. 6): the CAGrad toy with task weights ``(s, 1 - s)`` from the five starts of
    Aligned-MTL's script, Adam, per method: how many starts reach the optimum of the weighted objective (its
    global minimum, within ``tol``) and the largest remaining gap. The paper: Aligned-MTL converges to the
    optimum of the pre-defined weighting from every start; IMTL and Nash-MTL stop at whichever Pareto-stationary
    point they reach first."""
    from mtl_core.toy import ALIGNED_MTL_STARTS, cagrad_toy, run_toy

    settings = {**TOY_ALIGNED_SETTINGS, **profile.get("probes", {}).get("toy_aligned", {})}
    wanted = settings.get("methods", list(TOY_ALIGNED_METHODS.values()))
    unknown = sorted(set(wanted) - set(TOY_ALIGNED_METHODS.values()))
    if unknown:
        raise ValueError(
            f"profile {profile.get('name')!r}: probes.toy_aligned.methods {unknown} are not methods of seed 003 "
            f"App. C; valid: {list(TOY_ALIGNED_METHODS.values())}"
        )
    methods = {k: v for k, v in TOY_ALIGNED_METHODS.items() if v in wanted}
    scales = [float(s) for s in settings["scales"]]
    columns = [f"{kind} s={s:g}" for s in scales for kind in ("reached", "max gap")]
    table = Table(
        f"{study['title']} (Adam, lr {settings['lr']:g}, {settings['iterations']} iterations)",
        columns,
        [True, False] * len(scales),
    )
    trajectories: dict[tuple[str, float], Any] = {}
    failures = []
    for label, method in methods.items():
        cells = []
        for s in scales:
            problem = cagrad_toy(task_scales=(s, 1 - s), starts=ALIGNED_MTL_STARTS)
            try:
                trajectory = run_toy(
                    problem, method, optimizer="adam", lr=settings["lr"], iterations=settings["iterations"]
                )
            except ValueError as exc:  # e.g. a method undefined where every task gradient vanishes
                failures.append(f"{label} (s={s:g}): {exc}")
                cells += [Cell(None), Cell(None)]
                continue
            trajectories[(label, s)] = (problem, trajectory)
            gaps = trajectory.losses.mean(-1)[-1] - problem.global_minimum[1]
            cells += [
                Cell(None, text=f"{int((gaps < settings['tol']).sum())} / {len(ALIGNED_MTL_STARTS)}"),
                Cell(float(gaps.max())),
            ]
        table.add(label, cells)
    table.notes.append(
        f"reached: starts whose weighted objective is within {settings['tol']:g} of its global minimum after the "
        f"last iteration; starts {list(ALIGNED_MTL_STARTS)} as Aligned-MTL's script; the paper's weights of "
        "App. C were lost in extraction"
    )
    table.notes += [f"failed: {f}" for f in failures]
    table.payload = {"trajectories": trajectories, "starts": list(ALIGNED_MTL_STARTS)}
    return [table]


@register("task_cosines", probe=True, figures=figures.task_cosine_heatmaps)
def task_cosines(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[grid.RunSpec], results: Mapping[str, Any]
) -> list[Table]:
    """Seed 002 Figs. 2 and 5: the cosine similarities of the task gradients (w.r.t. the shared parameters) at
    each trained run's final weights, on the first training batch (as the sharpness probe takes it); one
    matrix per row label (LS, LS with SAM; the study's blocks train 5, 10 and 15 epochs), mean over seeds."""
    from mtl_core import jacobian
    from mtl_core.analysis import cosine_similarity_matrix

    measured: dict[str, list[tuple[list[str], Any]]] = {}
    for run, model, specs, x, targets in _trained_at_first_batch(profile, runs):
        predictions = model(x)
        tasks = list(targets)
        losses = [specs[t].loss(predictions[t], targets[t]) for t in tasks]
        shared = [p for p in model.shared_parameters() if p.requires_grad]
        grads = jacobian(losses, shared).detach().double()
        measured.setdefault(run.label, []).append((tasks, cosine_similarity_matrix(grads).cpu().numpy()))
    return [task_cosine_table(study, measured)]


def task_cosine_table(study: Mapping[str, Any], measured: Mapping[str, Sequence[tuple[list[str], Any]]]) -> Table:
    """The cosine table from ``{row label: [(tasks, K x K cosine matrix) per seed]}``: mean ± std over seeds of
    the mean off-diagonal cosine and of the share of conflicting pairs (cosine < 0); the seed-mean matrices
    go to the figure."""
    import numpy as np

    table = Table(study["title"], ["mean cosine", "min cosine", "conflicting pairs %"], [True, True, False])
    matrices = {}
    for label, per_seed in measured.items():
        tasks = per_seed[0][0]
        k = len(tasks)
        upper = [m[np.triu_indices(k, 1)] for _, m in per_seed]
        table.add(
            label,
            [
                Cell(*mean_std([float(u.mean()) for u in upper])),
                Cell(*mean_std([float(u.min()) for u in upper])),
                Cell(*mean_std([100.0 * float((u < 0).mean()) for u in upper])),
            ],
        )
        matrices[label] = (tasks, np.mean([m for _, m in per_seed], axis=0))
    table.notes.append(
        "task gradients w.r.t. the shared parameters at the final weights, first training batch; the paper's "
        "figures give no numbers: the claim is that LS with SAM has the higher cosines"
    )
    table.payload = {"matrices": matrices}
    return table
