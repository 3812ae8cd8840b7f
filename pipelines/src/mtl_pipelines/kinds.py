"""Run kinds: what a run of the grid is, decided by the ``kind`` field of its config (absent: supervised).

- supervised (no ``kind``): validated by :func:`mtl_pipelines.config.resolve`, trained by
  :func:`mtl_pipelines.train.train` on a prepared dataset, evaluated afterwards by its own step
  (``mtl evaluate``: selected clean and corrupted test metrics, ``eval.json``);
- ``mt10_sac`` (seed 003 Table 5): validated and trained by :mod:`mtl_pipelines.rl.training`; its policy is
  evaluated while it trains (every ``eval_every`` steps, as the reference runs), so the run is finished when
  ``final.json`` is written and it has no evaluation step; its environments come with the ``metaworld``
  package: nothing to prepare.

The grid, the job manifests, ``mtl train``, the workflow (Snakefile, ``dvc.yaml``) and the report ask this
module what a run needs; the run directory of every kind is a :class:`mtl_pipelines.run.Run` (or subclass).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl_pipelines.config import ConfigError

__all__ = ["KINDS", "SUPERVISED", "Kind", "get", "kind_of", "resolve", "run_class", "train"]

SUPERVISED = "supervised"


@dataclass(frozen=True)
class Kind:
    """One kind of run: where its config validation, training and run directory class live
    (``module:attribute``, imported when first used: the RL code is not imported by supervised work)."""

    name: str
    resolve: str
    train: str
    run: str
    evaluated_separately: bool  # an evaluation job after training writes eval.json (the report reads it)
    needs_data: bool  # its train job waits for the prepared dataset of its benchmark (mtl prepare)
    # describe(runs) -> (data, scale): the report's line on what the runs used; None: the report's own
    # (mtl_pipelines.report.driver.scale_line, from the datasets of supervised runs)
    describe: str | None = None

    def load(self, what: str) -> Any:
        module, _, attribute = getattr(self, what).partition(":")
        return getattr(importlib.import_module(module), attribute)


KINDS: dict[str, Kind] = {
    SUPERVISED: Kind(
        SUPERVISED,
        resolve="mtl_pipelines.config:resolve",
        train="mtl_pipelines.train:train",
        run="mtl_pipelines.run:Run",
        evaluated_separately=True,
        needs_data=True,
    ),
    "mt10_sac": Kind(
        "mt10_sac",
        resolve="mtl_pipelines.rl.training:resolve_rl",
        train="mtl_pipelines.rl.training:train_mt10",
        run="mtl_pipelines.rl.training:MT10Run",
        evaluated_separately=False,
        needs_data=False,
        describe="mtl_pipelines.rl.study:describe",
    ),
}


def kind_of(config: Mapping[str, Any], source: str = "config") -> str:
    """The kind of a run config: its ``kind`` field, or supervised without one (ConfigError for an unknown kind,
    naming ``source`` and the valid kinds; supervised configs have no ``kind``, so their hashes are unchanged)."""
    if not isinstance(config, Mapping) or "kind" not in config:
        return SUPERVISED
    kind = config["kind"]
    if kind == SUPERVISED or kind not in KINDS:
        valid = ", ".join(k for k in KINDS if k != SUPERVISED)
        raise ConfigError(f"{source}: kind: {kind!r} is not valid; valid: {valid} (no kind: a supervised run)")
    return kind


def get(config: Mapping[str, Any], source: str = "config") -> Kind:
    """The :class:`Kind` of a run config."""
    return KINDS[kind_of(config, source)]


def resolve(config: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate a run config of any kind and fill in its defaults (ConfigError naming ``source`` and the field)."""
    resolver: Callable[..., dict[str, Any]] = get(config, source).load("resolve")
    return resolver(config, source)


def run_class(config: Mapping[str, Any]) -> type:
    """The run directory class of a config's kind (:class:`mtl_pipelines.run.Run` or a subclass)."""
    return get(config).load("run")


def train(config: Mapping[str, Any], run_dir: str | Path, **options: Any) -> dict[str, Any]:
    """Train (or resume, or read when finished) the run of ``config`` in ``run_dir`` with the trainer of its
    kind; ``options``: ``progress``, ``log``, ``device``, ``restart``, ``trust_checkpoints``. Returns
    ``final.json``."""
    trainer: Callable[..., dict[str, Any]] = get(config).load("train")
    return trainer(config, run_dir, **options)
