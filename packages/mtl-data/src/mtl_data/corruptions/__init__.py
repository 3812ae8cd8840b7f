"""Common image corruptions (Hendrycks & Dietterich, ICLR 2019) for the robustness study of seed 001 sec. 4.3.

The 15 benchmark corruptions (noise, blur, weather, digital) and the 4 extra ones, at 5 severities,
with the original parameter tables of hendrycks/robustness, reimplemented on numpy/scipy/PIL::

    from mtl_data import corruptions
    corruptions.names()                                   # 15 + 4 names
    x_c = corruptions.apply(x, "fog", severity=3, seed=(0, index))   # x: float CxHxW in [0, 1]
    test_c = corruptions.CorruptedDataset(test_set, "fog", 3, cache_dir="data/corrupted")

See :mod:`mtl_data.corruptions.api` for how parameters follow the image size and
:mod:`mtl_data.corruptions.frost_texture` for the one deviation (procedural frost texture).
"""

from mtl_data.corruptions.api import (
    PROFILES,
    SEVERITIES,
    apply,
    corruption_rng,
    names,
    parameters,
    pixel_scale,
    select_profile,
)
from mtl_data.corruptions.dataset import CorruptedDataset, corrupted_test_sets, dataset_fingerprint
from mtl_data.corruptions.tables import (
    BENCHMARK_CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    REFERENCE_SIZE,
    SEVERITY_PARAMETERS,
)

__all__ = [
    "BENCHMARK_CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "PROFILES",
    "REFERENCE_SIZE",
    "SEVERITIES",
    "SEVERITY_PARAMETERS",
    "CorruptedDataset",
    "apply",
    "corrupted_test_sets",
    "corruption_rng",
    "dataset_fingerprint",
    "names",
    "parameters",
    "pixel_scale",
    "select_profile",
]
