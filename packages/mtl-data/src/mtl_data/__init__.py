"""mtl_data: multi-task datasets (real on-disk loaders, offline stand-ins), task specs and metrics."""

__version__ = "0.1.0"
