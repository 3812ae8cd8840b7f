"""Studies, profiles and the run grid: the single source of truth of Snakemake, DVC and the report.

- a **study** (``pipelines/configs/studies/<id>.yaml``) is one table or figure of a seed: the reference
  tables it reproduces, the builder that turns runs into its rows/columns, and one or more experiment
  blocks (benchmark x model x methods x settings, plus STL runs), or, for runs of another kind
  (:mod:`mtl_pipelines.kinds`: the MT10 SAC runs of 003_table5), the run planner registered with its builder;
- a **protocol** (``pipelines/configs/protocols.yaml``) is a paper's training recipe (optimizer, lr
  schedule, epochs, batch size, evaluation selection);
- a **profile** (``pipelines/configs/profiles/<name>.yaml``: smoke, default, paper) maps each benchmark to
  data (embedded stand-in or real files), each model to its options (width), scales the protocol
  (epochs, steps) and lists the seeds and the studies it runs.

:func:`expand` turns a profile into the deduplicated runs: two studies that need the same resolved config
share one run (same hash, same directory). Each run lists the studies it serves. :func:`plan` also groups
the runs into workflow jobs (``runs_per_job`` of the profile; see :mod:`mtl_pipelines.jobs`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mtl_pipelines import io, jobs, safe_paths
from mtl_pipelines.config import VALIDATION_SELECTIONS, config_hash, resolve

__all__ = [
    "Plan",
    "RunSpec",
    "configs_dir",
    "configs_root",
    "expand",
    "load_profile",
    "load_studies",
    "plan",
    "prepare",
    "profile_names",
    "write_configs",
]

CONFIGS_ENV = "MTL_PIPELINES_CONFIGS"


def configs_root() -> Path:
    """``pipelines/configs`` (or ``$MTL_PIPELINES_CONFIGS``)."""
    if os.environ.get(CONFIGS_ENV):
        root = Path(os.environ[CONFIGS_ENV])
    else:
        root = Path(__file__).resolve().parents[2] / "configs"
    if not (root / "studies").is_dir():
        raise FileNotFoundError(f"no studies under {root}; set ${CONFIGS_ENV} to the pipelines/configs directory")
    return root


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return yaml.safe_load(path.read_text())


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def profile_names() -> list[str]:
    return sorted(p.stem for p in (configs_root() / "profiles").glob("*.yaml"))


def load_profile(name: str) -> dict[str, Any]:
    """The profile ``name`` (ValueError lists the valid profiles)."""
    path = configs_root() / "profiles" / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(profile_names())}")
    profile = _read_yaml(path)
    for key in ("name", "seeds", "results_dir", "reports_dir", "benchmarks", "models", "studies"):
        if key not in profile:
            raise ValueError(f"{path}: missing field {key!r}")
    from mtl_pipelines import claims

    try:
        jobs.check_runs_per_job(profile.get("runs_per_job", 1))
        claims.findings(profile)  # what runs at a finding scale: 'all', or benchmarks and probe studies
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if profile["name"] != name:
        raise ValueError(f"{path}: name {profile['name']!r} differs from the file name {name!r}")
    safe_paths.check_profile(profile, str(path))  # its paths and names are pasted into shell commands
    return profile


@cache
def _protocols() -> dict[str, Any]:
    return _read_yaml(configs_root() / "protocols.yaml")


_STUDY_FIELDS = {"id", "paper", "title", "builder", "references", "experiments", "table", "figure", "note", "claims"}


def load_studies() -> dict[str, dict[str, Any]]:
    """Every study, by id, in file-name order (ValueError on a malformed study, naming the field; the
    ``builder`` must be one of the report's registry, :mod:`mtl_pipelines.report.registry`)."""
    from mtl_pipelines import claims
    from mtl_pipelines.report import registry  # the report package imports this module

    out = {}
    for path in sorted((configs_root() / "studies").glob("*.yaml")):
        study = _read_yaml(path)
        where = f"{path}"
        unknown = sorted(set(study) - _STUDY_FIELDS)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown}; valid fields: {sorted(_STUDY_FIELDS)}")
        if study.get("id") != path.stem:
            raise ValueError(f"{where}: id {study.get('id')!r} must equal the file name {path.stem!r}")
        registry.check_study(study, where)
        for i, block in enumerate(study.get("experiments", [])):
            if block.get("protocol") not in _protocols():
                raise ValueError(
                    f"{where}: experiments[{i}].protocol {block.get('protocol')!r} is not valid; "
                    f"valid: {', '.join(_protocols())}"
                )
        claims.validate_claims(study, where)  # unknown kinds, methods, benchmarks, references: errors here
        out[study["id"]] = study
    return out


@dataclass
class RunSpec:
    """One run of the grid: its id (directory name), resolved config and what it is for."""

    run_id: str
    config: dict[str, Any]
    benchmark: str
    model_key: str
    method: str
    label: str
    task: str | None
    setting: str
    seed: int
    studies: set[str] = field(default_factory=set)
    # the STL runs that are this run's Delta_m baseline share its group: by default its setting; a block
    # whose STL baselines follow their own protocol (seed 001: one Adam STL per task and lr) names it
    stl_group: str = ""
    # the setting of the published row this run reproduces, in the reference table's terms (a study's method
    # entry may name it where our option names differ from the paper's: 002 Table 14 ``normalization``)
    reference_setting: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The run's kind (:mod:`mtl_pipelines.kinds`): ``supervised``, or the ``kind`` of its config."""
        from mtl_pipelines import kinds

        return kinds.kind_of(self.config)

    @property
    def is_stl(self) -> bool:
        return self.method == "stl"

    @property
    def per_task(self) -> bool:
        """One run per task: the STL baseline or a per-task variant of it (``sam+stl``, 000 Table 7 F-STL)."""
        return self.task is not None


def _scaled(protocol: Mapping[str, Any], scale: Mapping[str, Any]) -> dict[str, Any]:
    """Scale a paper protocol to a profile: epochs, lr milestones and last-k proportionally."""
    out = copy.deepcopy(dict(protocol))
    epochs = protocol["train"]["epochs"]
    new = scale.get("epochs", epochs)
    ratio = new / epochs
    out["train"]["epochs"] = new
    if "schedule" in out and out["schedule"].get("milestones"):
        milestones = sorted({max(1, round(m * ratio)) for m in out["schedule"]["milestones"]})
        out["schedule"]["milestones"] = [m for m in milestones if m < new]
        if not out["schedule"]["milestones"]:
            out["schedule"] = {"name": "constant"}
    if out.get("eval", {}).get("last_k"):
        out["eval"]["last_k"] = max(1, min(new, round(out["eval"]["last_k"] * ratio)))
    for key in ("batch_size", "max_steps_per_epoch", "threads"):
        if key in scale:
            out["train"][key] = scale[key]
    if "eval_batch_size" in scale:
        out.setdefault("eval", {})["batch_size"] = scale["eval_batch_size"]
    return out


_ENTRY_FIELDS = {"name", "options", "label", "setting"}


def _method_entries(block: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    out = []
    for i, entry in enumerate(block.get("methods", [])):
        if isinstance(entry, str):
            entry = {"name": entry}
        unknown = sorted(set(entry) - _ENTRY_FIELDS)
        if unknown:
            raise ValueError(f"{where}.methods[{i}]: unknown field(s) {unknown}; valid: {sorted(_ENTRY_FIELDS)}")
        out.append(
            {
                "name": entry["name"],
                "options": dict(entry.get("options", {})),
                "label": entry.get("label", entry["name"]),
                "setting": dict(entry.get("setting", {})),
            }
        )
    return out


PER_TASK_SUFFIX = "+stl"


def trained_method(method: str) -> str:
    """The method string a run trains: ``<estimator>+stl`` (one run per task, e.g. ``sam+stl`` = SAM on each
    STL model, 000 Table 7 F-STL) trains ``<estimator>+ls`` on its single task."""
    return method[: -len(PER_TASK_SUFFIX)] + "+ls" if method.endswith(PER_TASK_SUFFIX) else method


def _protocol_dataset(protocol: Mapping[str, Any], dataset: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The benchmark's dataset config adjusted to the protocol's ``dataset`` block (see protocols.yaml)."""
    out = copy.deepcopy(dict(dataset))
    spec = protocol.get("dataset") or {}
    unknown = sorted(set(spec) - {"splits", "by_name"})
    if unknown:
        raise ValueError(f"{where}: protocol dataset block has unknown field(s) {unknown}; valid: by_name, splits")
    if spec.get("splits"):
        out["splits"] = {**out.get("splits", {}), **spec["splits"]}
    extra = (spec.get("by_name") or {}).get(out["name"])
    if extra:
        out = deep_merge(out, extra)
    return out


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _task_names(benchmark: Mapping[str, Any]) -> list[str]:
    """The tasks of a benchmark: its ``tasks`` list, else every task its dataset declares (no file is read:
    a grid is planned before the data is downloaded; only training and ``mtl prepare`` need the data)."""
    import mtl_data

    if "tasks" in benchmark:
        return list(benchmark["tasks"])
    return mtl_data.task_names(benchmark["dataset"]["name"])


@dataclass
class Plan:
    """The runs of a profile and, per study, what cannot run on it and why (shown in the report index)."""

    runs: dict[str, RunSpec]
    unavailable: dict[str, list[str]]
    jobs: dict[str, jobs.Job] = field(default_factory=dict)
    # per study, its runs as the study names them (label, setting, reference setting): a run shared by several
    # studies is one entry of ``runs`` (the first study's names) but each study's report uses its own
    by_study: dict[str, list[RunSpec]] = field(default_factory=dict)


def plan(profile: Mapping[str, Any], studies: Mapping[str, Mapping[str, Any]] | None = None) -> Plan:
    """All runs of ``profile`` (deduplicated across studies, stable order) and the unavailable parts."""
    studies = studies if studies is not None else load_studies()
    chosen = list(studies) if profile["studies"] == "all" else list(profile["studies"])
    unknown = [s for s in chosen if s not in studies]
    if unknown:
        raise ValueError(f"profile {profile['name']!r} lists unknown studies {unknown}; valid: {list(studies)}")
    runs: dict[str, RunSpec] = {}
    unavailable: dict[str, list[str]] = {}
    by_study: dict[str, list[RunSpec]] = {}
    for study_id in chosen:
        study_list, missing = study_runs(profile, studies[study_id])
        if missing:
            unavailable[study_id] = missing
        own: dict[str, RunSpec] = {}
        for run in study_list:
            own.setdefault(run.run_id, run)
        by_study[study_id] = list(own.values())
        for run in study_list:
            existing = runs.setdefault(run.run_id, run)
            existing.studies.add(study_id)
    return Plan(runs, unavailable, jobs.group(runs, profile.get("runs_per_job", 1)), by_study)


def expand(profile: Mapping[str, Any], studies: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, RunSpec]:
    """All runs of ``profile`` (see :func:`plan`)."""
    return plan(profile, studies).runs


def _settings(profile: Mapping[str, Any], block: Mapping[str, Any]) -> list[dict[str, Any]]:
    settings = block.get("settings")
    if settings is None:
        return [{"label": "", "config": {}}]
    if isinstance(settings, str):
        named = {**_read_yaml(configs_root() / "settings.yaml"), **profile.get("settings", {})}
        if settings not in named:
            raise ValueError(f"unknown settings list {settings!r}; valid: {', '.join(named)}")
        return list(named[settings])
    return list(settings)


def _unavailable_method(method: str) -> str | None:
    """Why a method string of a study cannot run with the installed mtl_core (None if it can)."""
    from mtl_pipelines import methods, references

    if method in methods.names():
        return None
    if references.is_method_key(method):
        return f"method {method!r} is not provided by the installed mtl_core"
    raise ValueError(f"{method!r} is not a method key; valid methods: {', '.join(methods.names())}")


def _task_subset(spec: Any, declared: list[str], where: str) -> list[str]:
    """A block's ``tasks``: a list of task names, or ``{sample: n, key: text}``, n of the declared tasks drawn
    by a keyed permutation (the same on every machine), in the dataset's order."""
    if isinstance(spec, Mapping):
        from mtl_data.splits import stable_permutation

        n = spec.get("sample")
        if set(spec) != {"sample", "key"} or not isinstance(n, int) or not 0 < n <= len(declared):
            raise ValueError(
                f"{where}: tasks must be a list or {{sample: 1..{len(declared)}, key: <text>}}, got {spec}"
            )
        chosen = set(stable_permutation(len(declared), str(spec["key"]))[:n])
        return [t for i, t in enumerate(declared) if i in chosen]
    unknown = [t for t in spec if t not in declared]
    if unknown:
        raise ValueError(f"{where}: tasks {unknown} are not tasks of the benchmark; valid: {declared}")
    return list(spec)


def _block_runs(
    profile: Mapping[str, Any],
    study: Mapping[str, Any],
    block: Mapping[str, Any],
    protocol_name: str,
    entries: list[dict[str, Any]],
    settings: list[dict[str, Any]],
    stl_group: str | None,
) -> list[RunSpec]:
    """The runs of one experiment block under one protocol: entries x settings x seeds (x tasks for the
    per-task entries). ``stl_group`` None: each setting is its own STL group."""
    where = f"study {study['id']}"
    bench_key, model_key = block["benchmark"], block["model"]
    benchmark = profile["benchmarks"][bench_key]
    protocol = _protocols()[protocol_name]
    if protocol_name == block["protocol"]:
        protocol = deep_merge(protocol, block.get("overrides", {}))
    scale = deep_merge(profile.get("scale", {}), benchmark.get("scale", {}))
    base = _scaled({k: v for k, v in protocol.items() if k != "dataset"}, scale)
    base["train"].setdefault("threads", profile.get("threads", 1))
    if "loader" in profile:  # how batches are produced (train.loader; not part of a run's identity)
        base["train"].setdefault("loader", copy.deepcopy(profile["loader"]))
    if block.get("diagnostics_every"):
        base["train"]["diagnostics_every"] = block["diagnostics_every"]
    if block.get("corruptions"):
        base.setdefault("eval", {})["corruptions"] = copy.deepcopy(profile.get("corruptions", {}))
    dataset = _protocol_dataset(protocol, benchmark["dataset"], f"{where} (protocol {protocol_name})")
    selection = base.get("eval", {}).get("selection")
    if selection in VALIDATION_SELECTIONS and dataset.get("splits", {}).get("val") == "test":
        raise ValueError(
            f"{where}: protocol {protocol_name!r} selects on the validation split (eval.selection {selection}) but "
            "maps it onto the test split; that would select on test data"
        )
    if block.get("tasks"):  # a block training a subset of the benchmark's tasks (002 Table 1: 8 of 40)
        dataset["tasks"] = _task_subset(block["tasks"], _task_names(benchmark), f"{where}: {bench_key}")
    tasks = list(dataset.get("tasks") or _task_names(benchmark)) if any(e["per_task"] for e in entries) else []
    out = []
    for setting in settings:
        # a block's own seeds, else the benchmark's in the profile (finding-scale benchmarks run more seeds)
        for seed in block.get("seeds", benchmark.get("seeds", profile["seeds"])):
            common = deep_merge(base, setting.get("config", {}))
            common["train"]["seed"] = seed
            common["dataset"] = copy.deepcopy(dataset)
            common["model"] = copy.deepcopy(profile["models"][model_key])
            variants = [(e, t) for e in entries for t in (tasks if e["per_task"] else [None])]
            for entry, task in variants:
                config = copy.deepcopy(common)
                config["method"] = {"name": trained_method(entry["name"]), "options": entry["options"]}
                if task is not None:
                    config["dataset"]["tasks"] = [task]
                if entry["name"] == "stl":
                    method_tag = f"stl_{task}"
                elif task is not None:
                    method_tag = f"{entry['name']}_{task}"
                else:
                    method_tag = entry["name"]
                config["name"] = f"{bench_key}-{model_key}-{_safe(method_tag)}"
                resolved = resolve(config, f"{where} ({config['name']})")
                out.append(
                    RunSpec(
                        run_id=f"{config['name']}-{config_hash(resolved)}",
                        config=resolved,
                        benchmark=bench_key,
                        model_key=model_key,
                        method=entry["name"],
                        label=entry["label"],
                        task=task,
                        setting=setting.get("label", ""),
                        seed=seed,
                        studies={study["id"]},
                        stl_group=setting.get("label", "") if stl_group is None else stl_group,
                        reference_setting=entry["setting"],
                    )
                )
    return out


def study_runs(profile: Mapping[str, Any], study: Mapping[str, Any]) -> tuple[list[RunSpec], list[str]]:
    """The runs one study needs under ``profile`` and the reasons parts of it cannot run.

    A block's ``stl`` is ``true`` (one STL run per task under the block's protocol and settings, the Delta_m
    baseline of the runs of the same setting) or ``{protocol: <name>, settings: <list>}`` (the STL runs
    follow their own protocol and settings, e.g. seed 001 A3.2: one Adam STL per task for each lr of the
    STL grid; every MTL run of the block then has all of them as its baseline group).
    """
    out: list[RunSpec] = []
    missing: list[str] = []
    needs = (study.get("figure") or {}).get("needs")
    if needs:
        import importlib

        try:
            importlib.import_module(needs)
        except ImportError:
            missing.append(f"needs {needs}, which is not installed")
    from mtl_pipelines.report import registry  # the report package imports this module

    planner = registry.get(study["builder"]).runs
    if planner is not None and not missing:  # runs that need a missing package are not planned: they would fail
        out += planner(profile, study)
    restrict = (profile.get("restrict") or {}).get("methods")
    for i, block in enumerate(study.get("experiments", [])):
        where = f"study {study['id']}: experiments[{i}]"
        bench_key = block["benchmark"]
        if bench_key not in profile["benchmarks"]:
            raise ValueError(
                f"{where}.benchmark {bench_key!r} has no entry in profile "
                f"{profile['name']!r}; valid: {', '.join(profile['benchmarks'])}"
            )
        benchmark = profile["benchmarks"][bench_key]
        if "unavailable" in benchmark:
            missing.append(f"{bench_key}: {benchmark['unavailable']}")
            continue
        model_key = block["model"]
        if model_key not in profile["models"]:
            raise ValueError(
                f"{where}.model {model_key!r} has no entry in profile "
                f"{profile['name']!r}; valid: {', '.join(profile['models'])}"
            )
        entries = []
        for entry in _method_entries(block, where):
            if restrict is not None and entry["name"] not in restrict:
                continue
            reason = _unavailable_method(trained_method(entry["name"]))
            if reason:
                missing.append(f"{bench_key}/{model_key}: {reason}")
            else:
                entries.append({**entry, "per_task": entry["name"].endswith(PER_TASK_SUFFIX)})
        stl = block.get("stl", False)
        stl_entry = {"name": "stl", "options": {}, "label": "STL", "setting": {}, "per_task": True}
        settings = _settings(profile, block)
        if isinstance(stl, Mapping):
            unknown = sorted(set(stl) - {"protocol", "settings"})
            if unknown or stl.get("protocol") not in _protocols():
                raise ValueError(
                    f"{where}.stl: expected {{protocol: <one of {', '.join(_protocols())}>, settings: <list>}}, "
                    f"got {dict(stl)!r}"
                )
            group = f"STL ({stl['protocol']})"
            out += _block_runs(profile, study, block, block["protocol"], entries, settings, group)
            stl_settings = _settings(profile, {"settings": stl.get("settings")})
            out += _block_runs(profile, study, block, stl["protocol"], [stl_entry], stl_settings, group)
        else:
            out += _block_runs(
                profile, study, block, block["protocol"], entries + [stl_entry] * bool(stl), settings, None
            )
    return out, missing


def run_dir(profile: Mapping[str, Any], run_id: str) -> Path:
    """``<results>/runs/<run_id>``; a run id that is not one safe path component is refused."""
    runs_root = Path(profile["results_dir"]) / "runs"
    return io.check_within(runs_root / io.check_name(run_id, "run id"), runs_root, "run directory")


def configs_dir(profile: Mapping[str, Any]) -> Path:
    return Path(profile["results_dir"]) / "configs"


def write_configs(profile: Mapping[str, Any], runs: Mapping[str, RunSpec]) -> int:
    """Write ``<results>/configs/<run_id>.yaml`` for every run whose file is missing or differs."""
    written = 0
    root = configs_dir(profile)
    for run in runs.values():
        path = io.check_within(root / f"{io.check_name(run.run_id, 'run id')}.yaml", root, "run config")
        text = yaml.safe_dump(run.config, sort_keys=False)
        if not path.exists() or path.read_text() != text:
            io.write_text(path, text)
            written += 1
    return written


def stl_runs_for(runs: Mapping[str, RunSpec], run: RunSpec) -> list[RunSpec]:
    """The STL runs matching ``run`` (same benchmark, model, STL group and seed): its Delta_m baseline. Where
    the STL runs sweep their own lr grid (seed 001), a task has several candidates; evaluation keeps the best
    on validation."""
    return [
        r
        for r in runs.values()
        if r.is_stl
        and r.benchmark == run.benchmark
        and r.model_key == run.model_key
        and r.stl_group == run.stl_group
        and r.seed == run.seed
    ]


def _prepare_target(name: str, root: str | None, prof: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The dataset config ``mtl prepare <name>`` works on, and whether it is a benchmark of the profile. A
    benchmark key gives its dataset (e.g. the stand-in the default profile maps ``nyuv2`` to), except where
    the key also names a real dataset and the profile has no data for it (an ``unavailable`` entry) or
    ``--root`` points at real files: then it is that dataset (the key must not shadow the real name)."""
    import mtl_data

    benchmark = prof["benchmarks"].get(name)
    is_dataset = name in mtl_data.names()
    if benchmark is not None and "dataset" in benchmark and not (is_dataset and root is not None):
        cfg = dict(benchmark["dataset"])
        return (cfg if root is None else {**cfg, "root": root}), True
    if is_dataset:
        return {"name": name, "root": root, "options": {}}, False
    if benchmark is not None:  # a benchmark key without data in this profile, and no dataset of that name
        raise ValueError(
            f"benchmark {name!r} has no data in profile {prof['name']!r}: {benchmark.get('unavailable', benchmark)}"
        )
    raise ValueError(
        f"unknown dataset {name!r}; valid: benchmarks of profile {prof['name']!r} "
        f"{list(prof['benchmarks'])} or datasets {mtl_data.names()}"
    )


def _check_files(name: str, root: str | None, partial: bool, options: Mapping[str, Any]) -> Any:
    """``mtl_data.prepare`` (validate the files, write or verify the checksum manifest) with the dataset
    ``options`` its prepare step also takes (QM9's ``subset`` featurises only those molecules); None for data
    generated in memory. Errors are worded for this command (``--partial`` for the loaders' strict=False)."""
    import mtl_data

    try:
        shared = mtl_data.prepare_options(name, options)
        return mtl_data.prepare(name, root=root, **shared, **({"strict": False} if partial else {}))
    except ValueError as exc:
        if "nothing to prepare" in str(exc):  # a stand-in or an embedded dataset
            if partial:
                raise ValueError(f"--partial: {name!r} is generated in memory, not read from files") from None
            return None
        if "strict=False" in str(exc):  # the loaders' advice, in the words of this command
            raise ValueError(f"{exc}; with mtl prepare: --partial") from None
        raise


def prepare(
    dataset: str,
    *,
    root: str | None = None,
    profile: str = "default",
    stamp: str | None = None,
    partial: bool = False,
) -> str:
    """Make a dataset ready: ``mtl_data.prepare`` for real data (counts, values, checksums), or render every
    split of a stand-in into its cache. ``dataset`` is a dataset name or a benchmark key of ``profile``;
    ``partial`` accepts a copy with fewer samples than the official splits (``strict=False`` of the loaders).

    A benchmark's splits are built with its options (what its runs will read); a dataset named directly is
    reported with the counts its files hold (the loaders' split defaults, e.g. Cityscapes' 595 held-out
    validation images, belong to a run config, not to the files)."""
    import mtl_data

    cfg, is_benchmark = _prepare_target(dataset, root, load_profile(profile))
    report = _check_files(cfg["name"], cfg.get("root"), partial, cfg.get("options", {}))
    lines = [str(report)] if report is not None else []
    if report is not None and not is_benchmark:
        counts = dict(report.counts)
    else:
        counts = {}
        for split in ("train", "val", "test"):
            options = {**cfg.get("options", {}), **cfg.get("split_options", {}).get(split, {})}
            counts[split] = len(mtl_data.create(cfg["name"], split=split, root=cfg.get("root"), **options))
    lines.append(f"prepared {cfg['name']}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if stamp:
        io.write_json(stamp, {"dataset": cfg["name"], "counts": counts})
    return "\n".join(lines)
