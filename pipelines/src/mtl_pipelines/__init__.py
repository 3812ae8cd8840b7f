"""mtl_pipelines: the ``mtl`` CLI, studies (the seed papers' tables), Snakemake/DVC wiring and reports.

Ties ``mtl_core`` (methods), ``mtl_data`` (datasets, task specs, metrics) and ``mtl_models``
(architectures) together; see ``pipelines/README.md``.
"""

__version__ = "0.1.0"
