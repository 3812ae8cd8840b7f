"""Study 003_table5 (seed 003 sec. 6.3, Table 5): the MT10 success rate of multi-task SAC per gradient method,
mean ± SEM over seeds, beside the published cells.

The builder ``mt10_success`` is a probe (:mod:`mtl_pipelines.report.registry`): in the report step it trains
every (method, seed) run the profile asks for, or resumes it, or reads it when finished, each in its own run
directory ``<results_dir>/rl/<run id>`` (:mod:`mtl_pipelines.rl.training`). The study file lists the methods
(the paper's rows) and their options; the profile's ``probes.mt10_sac`` gives the seeds, an optional subset of
``methods``, the ``device``/``threads`` and any field of the protocol it scales down
(:data:`mtl_pipelines.rl.training.PROTOCOL`). A profile below the paper's scale is labelled a pipeline check.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtl_pipelines.config import ConfigError
from mtl_pipelines.report.published import cite, published, study_references
from mtl_pipelines.report.registry import register
from mtl_pipelines.report.tables import Cell, Table

__all__ = ["PROBE", "mt10_success", "probe_settings", "success_table"]

PROBE = "mt10_sac"
#: the fields of the protocol that set its scale: a profile changing one runs a pipeline check
SCALE = ("total_steps", "init_steps", "batch_size", "buffer_capacity", "eval_every", "max_episode_steps",
         "hidden_dim", "num_layers")  # fmt: skip
PAPER_SEEDS = 10  # the number of seeds of the paper profile (protocol_facts.yaml: the seed does not say)
_OWN = {"seeds", "methods", "device", "threads"}


def _entries(study: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    from mtl_pipelines.rl.sac import check_method

    methods = (study.get("table") or {}).get("methods")
    if not isinstance(methods, list) or not methods:
        raise ValueError(f"{where}: table.methods must list the methods, e.g. [{{name: exact+pcgrad, label: PCGrad}}]")
    out = []
    for i, entry in enumerate(methods):
        if (
            not isinstance(entry, Mapping)
            or not isinstance(entry.get("name"), str)
            or set(entry)
            - {
                "name",
                "label",
                "options",
            }
        ):
            raise ValueError(f"{where}: table.methods[{i}] must be {{name, label, options}}, got {entry!r}")
        try:
            check_method(entry["name"], entry.get("options") or {})
        except ValueError as exc:
            raise ValueError(f"{where}: table.methods[{i}]: {exc}") from None
        out.append(
            {"name": entry["name"], "label": entry.get("label", entry["name"]), "options": entry.get("options") or {}}
        )
    return out


def check_study(study: Mapping[str, Any], where: str) -> None:
    """ValueError naming the study file and the bad method entry."""
    _entries(study, where)


def probe_settings(profile: Mapping[str, Any]) -> tuple[dict[str, Any], list[int], list[str] | None, dict[str, Any]]:
    """``(protocol overrides, seeds, methods or None, train options)`` of the profile's ``probes.mt10_sac``
    (ConfigError naming the profile, field, value and what is valid)."""
    from mtl_pipelines.rl.training import check_protocol

    where = f"profile {profile.get('name')!r}: probes.{PROBE}"
    raw = dict((profile.get("probes") or {}).get(PROBE) or {})
    seeds = raw.get("seeds", profile.get("seeds", [0]))
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise ConfigError(f"{where}.seeds: {seeds!r} is not valid; valid: a non-empty list of integers >= 0")
    methods = raw.get("methods")
    if methods is not None and not (isinstance(methods, list) and all(isinstance(m, str) for m in methods)):
        raise ConfigError(f"{where}.methods: {methods!r} is not valid; valid: a list of method names of the study")
    train = {"device": raw.get("device", "auto"), "threads": raw.get("threads", profile.get("threads", 1))}
    protocol = {k: v for k, v in raw.items() if k not in _OWN}
    check_protocol(protocol, where)
    return protocol, list(seeds), methods, train


def _sem(values: Sequence[float]) -> float | None:
    """The standard error of the mean (sample standard deviation / sqrt(n)); None for one value."""
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None


def success_table(
    study: Mapping[str, Any],
    measured: Mapping[str, tuple[str, Sequence[float]]],
    protocol: Mapping[str, Any],
    seeds: int,
) -> Table:
    """Table 5 from ``{row label: (method, [final mean success rate per seed])}``: mean ± SEM over seeds beside
    the published cell of the same method; labelled a pipeline check below the paper's scale."""
    from mtl_pipelines.rl.training import PROTOCOL

    refs = study_references(study)
    table = Table(study["title"], ["Success ± SEM"], [True])
    ref = cite(table, refs[0] if refs else None)
    for label, (method, values) in measured.items():
        mean = statistics.fmean(values) if values else None
        table.add(label, [Cell(mean, _sem(values), published(ref, method) if ref else None)])
    full = {**PROTOCOL, **protocol}
    scaled = [f"{k} {full[k]:,} (paper {PROTOCOL[k]:,})" for k in SCALE if full[k] != PROTOCOL[k]]
    if seeds < PAPER_SEEDS:
        scaled.append(f"{seeds} seed(s) (paper profile {PAPER_SEEDS})")
    if scaled:
        table.pipeline_check = "multi-task SAC at a tiny scale: " + ", ".join(scaled)
    table.notes.append(
        "success: share of the 10 MT10 tasks whose deterministic-policy evaluation episode succeeds after the last "
        "training step, averaged over the tasks; '±' is the standard error of the mean over seeds, as the paper's"
    )
    if ref is not None:
        studied = {m["name"] for m in (study.get("table") or {}).get("methods", [])}
        others = [r.name for r in ref.rows if r.method not in studied]
        if others:
            table.notes.append(
                f"published rows outside this study: {', '.join(others)} (single-task SAC and the multi-task RL "
                "architectures of [49, 53, 55]; the study compares the gradient methods on one shared SAC)"
            )
    ran = {m for m, _ in measured.values()}
    left = [m["label"] for m in (study.get("table") or {}).get("methods", []) if m["name"] not in ran]
    if left:
        table.notes.append(f"rows of the study this profile does not run: {', '.join(left)}")
    return table


@register("mt10_success", probe=True, check=check_study)
def mt10_success(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[Any], results: Mapping[str, Any]
) -> list[Table]:
    """Seed 003 Table 5: train (or resume, or read) every (method, seed) run of the profile, then
    :func:`success_table`."""
    from mtl_pipelines.rl.training import run_config, run_id, train_mt10

    protocol, seeds, wanted, train = probe_settings(profile)
    entries = _entries(study, f"study {study['id']}")
    restrict = (profile.get("restrict") or {}).get("methods")
    unknown = sorted(set(wanted or []) - {e["name"] for e in entries})
    if unknown:
        raise ConfigError(
            f"profile {profile.get('name')!r}: probes.{PROBE}.methods {unknown} are not methods of study "
            f"{study['id']}; valid: {[e['name'] for e in entries]}"
        )
    root = Path(profile["results_dir"]) / "rl"
    measured: dict[str, tuple[str, list[float]]] = {}
    for entry in entries:
        if (wanted is not None and entry["name"] not in wanted) or (
            restrict is not None and entry["name"] not in restrict
        ):
            continue
        for seed in seeds:
            config = run_config(entry["name"], entry["options"], seed, protocol, **train)
            final = train_mt10(config, root / run_id(config))
            measured.setdefault(entry["label"], (entry["name"], []))[1].append(float(final["success"]))
    return [success_table(study, measured, protocol, len(seeds))]
