"""mtl_data: multi-task datasets (real on-disk loaders, offline stand-ins), task specs and metrics.

    import mtl_data
    mtl_data.names()                                   # every dataset name
    ds = mtl_data.create("nyuv2", split="train", root="~/data/nyuv2")
    ds.tasks                                           # {"segmentation": TaskSpec, "depth": ..., "normal": ...}
    mtl_data.task_names("nyuv2")                       # the same names, declared: no file is read
    ds.is_standin, ds.description
    mtl_data.prepare("nyuv2", root="~/data/nyuv2")     # validate files, write/verify checksum manifest

Task specs and metrics: :mod:`mtl_data.tasks`, :mod:`mtl_data.metrics`.
"""

from mtl_data.registry import create, names, prepare, prepare_options, summary, task_names

__version__ = "0.1.0"

__all__ = ["__version__", "create", "names", "prepare", "prepare_options", "summary", "task_names"]
