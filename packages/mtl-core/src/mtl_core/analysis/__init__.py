"""Analysis toolkit: gradient-system diagnostics, STL-vs-MTL gradient similarity, Hessian sharpness and the
loss-scale invariance probe (seeds 000, 001, 002, 003). Functions return data (tensors, arrays, dataclasses);
plotting is left to the caller.
"""

from __future__ import annotations

from .gradient_system import (
    GradientSystemReport,
    condition_number,
    conflicting_pair_share,
    conflicting_parameter_matrix,
    cosine_similarity_matrix,
    gradient_system_report,
    magnitude_similarity_matrix,
    numerical_rank,
    pareto_stationarity,
    singular_values,
    upper_triangle,
)
from .loss_scale import (
    LossScaleTrace,
    ScaleProbeMLP,
    compare_loss_scales,
    invariance_gap,
    lockstep_invariance_gap,
    loss_scale_probe,
    scale_probe_data,
)
from .sharpness import HessianVectorProduct, Sharpness, hessian_eigenvalues, sharpness
from .similarity import (
    GradientPairs,
    GradientSimilarityMonitor,
    pairwise_measures,
    stl_mtl_gradient_pairs,
    summarize,
)

__all__ = [
    "GradientPairs",
    "GradientSimilarityMonitor",
    "GradientSystemReport",
    "HessianVectorProduct",
    "LossScaleTrace",
    "ScaleProbeMLP",
    "Sharpness",
    "compare_loss_scales",
    "condition_number",
    "conflicting_pair_share",
    "conflicting_parameter_matrix",
    "cosine_similarity_matrix",
    "gradient_system_report",
    "hessian_eigenvalues",
    "invariance_gap",
    "lockstep_invariance_gap",
    "loss_scale_probe",
    "magnitude_similarity_matrix",
    "numerical_rank",
    "pairwise_measures",
    "pareto_stationarity",
    "scale_probe_data",
    "sharpness",
    "singular_values",
    "stl_mtl_gradient_pairs",
    "summarize",
    "upper_triangle",
]
