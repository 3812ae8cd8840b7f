"""Toy problems on R^2 for multi-task optimisers: CAGrad's two-objective toy (seed 001 Fig. 1, Tables 1
and A7; seed 003 Fig. 1) and SAMO's toy (seed 002 sec. 6.1, Fig. 1), runnable with any mtl_core aggregator
or weighting, GD or Adam, with or without SAM. Functions return trajectories and counts; plots are the
caller's.
"""

from __future__ import annotations

from .problems import (
    ALIGNED_MTL_STARTS,
    CAGRAD_STARTS,
    SAMO_BOUNDS,
    SAMO_START,
    ToyProblem,
    cagrad_losses,
    cagrad_toy,
    samo_losses,
    samo_toy,
)
from .runner import (
    GLOBAL_MINIMUM_TOL,
    OPTIMIZERS,
    SAMO_TOY_SETTINGS,
    TABLE_A7_LRS,
    TABLE_A7_MAX_ITERATIONS,
    TABLE_A7_METHODS,
    Convergence,
    Trajectory,
    iterations_to_global_minimum,
    run_toy,
    samo_toy_trajectories,
    table_a7,
)

__all__ = [
    "ALIGNED_MTL_STARTS",
    "CAGRAD_STARTS",
    "GLOBAL_MINIMUM_TOL",
    "OPTIMIZERS",
    "SAMO_BOUNDS",
    "SAMO_START",
    "SAMO_TOY_SETTINGS",
    "TABLE_A7_LRS",
    "TABLE_A7_MAX_ITERATIONS",
    "TABLE_A7_METHODS",
    "Convergence",
    "ToyProblem",
    "Trajectory",
    "cagrad_losses",
    "cagrad_toy",
    "iterations_to_global_minimum",
    "run_toy",
    "samo_losses",
    "samo_toy",
    "samo_toy_trajectories",
    "table_a7",
]
