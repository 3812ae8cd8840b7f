"""Study 003_table5 (seed 003 sec. 6.3, Table 5): the MT10 success rate of multi-task SAC per gradient method,
mean ± SEM over seeds, beside the published cells.

The runs are jobs of the grid like the supervised runs: :func:`plan_runs` (the study's run planner, registered
with its builder) gives one run of kind ``mt10_sac`` (:mod:`mtl_pipelines.kinds`) per (method, seed), each
trained by its own train job (``mtl train --job``, :func:`mtl_pipelines.rl.training.train_mt10`: resumable) in
``<results_dir>/runs/<run id>``. The builder ``mt10_success`` only reads the finished runs' ``final.json``
(through the run layer, :mod:`mtl_pipelines.report.results`). The study file lists the methods (the paper's
rows) and their options; the profile's ``rl.mt10_sac`` gives the seeds, an optional subset of ``methods``, the
``device``/``threads`` and any field of the protocol it scales down (:data:`mtl_pipelines.rl.training.PROTOCOL`).
A profile below the paper's scale is labelled a pipeline check.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from mtl_pipelines.config import ConfigError
from mtl_pipelines.report.published import cite, published, study_references
from mtl_pipelines.report.registry import register
from mtl_pipelines.report.tables import Cell, Table

__all__ = ["BENCHMARK", "MODEL", "SECTION", "describe", "mt10_success", "plan_runs", "settings", "success_table"]

SECTION = "mt10_sac"  # the profile's rl.mt10_sac: scale, seeds, methods of the MT10 runs
BENCHMARK, MODEL = "mt10", "sac"  # what the runs' RunSpec.benchmark / model_key say
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


def settings(profile: Mapping[str, Any]) -> tuple[dict[str, Any], list[int], list[str] | None, dict[str, Any]]:
    """``(protocol overrides, seeds, methods or None, train options)`` of the profile's ``rl.mt10_sac``
    (ConfigError naming the profile, field, value and what is valid)."""
    from mtl_pipelines.rl.training import check_protocol

    where = f"profile {profile.get('name')!r}: rl.{SECTION}"
    section = profile.get("rl") or {}
    if not isinstance(section, Mapping) or set(section) - {SECTION}:
        valid = f"{{{SECTION}: {{...}}}}"
        raise ConfigError(f"profile {profile.get('name')!r}: rl: {section!r} is not valid; valid: {valid}")
    raw = section.get(SECTION) or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {raw!r} is not a mapping of seeds, methods, device, threads and protocol fields")
    raw = dict(raw)
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


def plan_runs(profile: Mapping[str, Any], study: Mapping[str, Any]) -> list[Any]:
    """The runs of the study under ``profile``: one :class:`mtl_pipelines.grid.RunSpec` of kind ``mt10_sac`` per
    method entry (those of ``rl.mt10_sac.methods`` and ``restrict.methods`` when the profile names them) and
    seed, its config resolved by :func:`mtl_pipelines.rl.training.resolve_rl` (ConfigError names the profile or
    study field)."""
    from mtl_pipelines.grid import RunSpec
    from mtl_pipelines.rl.training import run_config, run_id

    protocol, seeds, wanted, train = settings(profile)
    entries = _entries(study, f"study {study['id']}")
    unknown = sorted(set(wanted or []) - {e["name"] for e in entries})
    if unknown:
        raise ConfigError(
            f"profile {profile.get('name')!r}: rl.{SECTION}.methods {unknown} are not methods of study "
            f"{study['id']}; valid: {[e['name'] for e in entries]}"
        )
    restrict = (profile.get("restrict") or {}).get("methods")
    out = []
    for entry in entries:
        if (wanted is not None and entry["name"] not in wanted) or (
            restrict is not None and entry["name"] not in restrict
        ):
            continue
        for seed in seeds:
            config = run_config(entry["name"], entry["options"], seed, protocol, **train)
            out.append(
                RunSpec(
                    run_id=run_id(config),
                    config=config,
                    benchmark=BENCHMARK,
                    model_key=MODEL,
                    method=entry["name"],
                    label=entry["label"],
                    task=None,
                    setting="",
                    seed=seed,
                    studies={study["id"]},
                )
            )
    return out


def describe(runs: Sequence[Any]) -> tuple[str, str]:
    """The report's data and scale line of MT10 runs: the simulator (metaworld's version, the reward) and the
    protocol's scale (environment steps, batch, networks, seeds)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = f"metaworld {version('metaworld')}"
    except PackageNotFoundError:
        installed = "metaworld not installed"
    protocols = [run.config["protocol"] for run in runs]

    def values(field: str) -> Any:
        found = sorted({p[field] for p in protocols})
        return found[0] if len(found) == 1 else found

    data = f"real: Meta-World MT10 simulation ({installed}, 10 tasks, reward {values('reward_function_version')})"
    scale = (
        f"environment steps {values('total_steps')}, batch {values('batch_size')}, networks "
        f"{values('num_layers')} x {values('hidden_dim')}, seeds {sorted({run.seed for run in runs})}"
    )
    return data, scale


@register("mt10_success", runs=plan_runs, check=check_study)
def mt10_success(
    study: Mapping[str, Any], profile: Mapping[str, Any], runs: Sequence[Any], results: Mapping[str, Any]
) -> list[Table]:
    """Seed 003 Table 5 from the finished runs of the study (``results``: their ``final.json``, loaded by the
    report, which names any run that is not finished), then :func:`success_table`."""
    measured: dict[str, tuple[str, list[float]]] = {}
    for run in runs:  # planned method by method, then seed by seed: rows in the study's order
        measured.setdefault(run.label, (run.method, []))[1].append(float(results[run.run_id]["final"]["success"]))
    protocol = runs[0].config["protocol"] if runs else {}
    return [success_table(study, measured, protocol, len({run.seed for run in runs}))]
