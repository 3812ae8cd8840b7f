"""Protocol facts: what each seed states about each study's experiments, checked against the run grid.

``pipelines/configs/protocol_facts.yaml`` lists, per study, facts such as ``train.epochs: 200`` with their
source: the seed file and the verbatim sentence that states them, or the reference repository and file
where the seed is silent. :func:`check` resolves every run of a profile (the ``paper`` profile is what the
papers ran) and returns one :class:`Mismatch` per fact a run contradicts. A fact the project deliberately
does not follow carries ``deviation`` (the reason) and ``ours`` (what the runs do instead, also checked);
:func:`deviations` returns them for the report to print under the study's table.

Fields a fact can name (``field``):

- a path into a run's resolved config (``train.epochs``, ``schedule.milestones``, ``method.options.rho``);
  a mapping value is compared key by key (the config may hold more keys);
- ``tasks``: the tasks a run trains (its ``dataset.tasks`` or every task the dataset declares);
- ``values:<config path>``: the set of values of that path over the matching runs (a grid: rho, lr);
- ``seeds``: the set of training seeds over the matching runs;
- ``split.train``: the number of training examples a run trains on, from the dataset's declared official
  split sizes and the run's split options (no data is read);
- ``study.<path>`` / ``profile.<path>``: a field of the study file or of the profile (``study.table.delta_m``,
  ``profile.probes.toy_convergence.max_iterations``).

``where`` restricts a fact to some runs: ``benchmark``, ``model`` (key), ``method`` (as in the study),
``stl`` (true/false), ``label``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mtl_pipelines import grid

__all__ = ["Mismatch", "check", "deviations", "facts_path", "load", "quote_found"]

_FACT_FIELDS = {"field", "value", "where", "source", "deviation", "ours", "note"}
_WHERE_FIELDS = {"benchmark", "model", "method", "stl", "label"}


def facts_path() -> Path:
    return grid.configs_root() / "protocol_facts.yaml"


@cache
def load() -> dict[str, Any]:
    """The facts file, checked for structure (ValueError naming the study, fact and field)."""
    path = facts_path()
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, Mapping) or set(data) != {"schema_version", "seeds", "studies"}:
        raise ValueError(f"{path}: expected the keys schema_version, seeds, studies")
    for study_id, facts in data["studies"].items():
        for i, fact in enumerate(facts):
            where = f"{path}: studies.{study_id}[{i}]"
            unknown = sorted(set(fact) - _FACT_FIELDS)
            if unknown or "field" not in fact or "source" not in fact or "value" not in fact:
                raise ValueError(f"{where}: needs field, value, source (and optionally {sorted(_FACT_FIELDS)})")
            if set(fact.get("where", {})) - _WHERE_FIELDS:
                raise ValueError(f"{where}.where: valid keys are {sorted(_WHERE_FIELDS)}")
            source = fact["source"]
            if not (set(source) == {"seed", "quote"} or set(source) == {"repo", "file"}):
                raise ValueError(f"{where}.source: give {{seed, quote}} or {{repo, file}}, got {source}")
            if ("deviation" in fact) != ("ours" in fact):
                raise ValueError(f"{where}: a deviation states both its reason (deviation) and what we run (ours)")
    return dict(data)


def deviations(study_id: str) -> list[dict[str, Any]]:
    """The deliberate deviations of a study from its paper: ``{field, paper, ours, reason, source}`` each."""
    return [
        {
            "field": f["field"],
            "paper": f["value"],
            "ours": f["ours"],
            "reason": f["deviation"],
            "source": f["source"],
        }
        for f in load()["studies"].get(study_id, [])
        if "deviation" in f
    ]


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def quote_found(seed_text: str, quote: str) -> bool:
    """Whether ``quote`` occurs in the seed text, whitespace-normalised."""
    return _normalise(quote) in _normalise(seed_text)


@dataclass(frozen=True)
class Mismatch:
    study: str
    run: str
    field: str
    expected: Any
    found: Any
    source: Mapping[str, Any]

    def __str__(self) -> str:
        src = (
            f"seed {self.source['seed']}: {self.source['quote']!r}"
            if "seed" in self.source
            else f"{self.source['repo']} {self.source['file']}"
        )
        return f"study {self.study}, run {self.run}: {self.field} is {self.found!r}, expected {self.expected!r} ({src})"


def _equal(expected: Any, found: Any) -> bool:
    if found is _MISSING:
        return expected is None  # ``ours: null``: the option does not exist / is not set
    if isinstance(expected, Mapping):
        return isinstance(found, Mapping) and all(k in found and _equal(v, found[k]) for k, v in expected.items())
    if isinstance(expected, list | tuple):
        return isinstance(found, list | tuple) and len(expected) == len(found) and all(map(_equal, expected, found))
    if isinstance(expected, bool) or isinstance(found, bool):
        return expected is found
    if isinstance(expected, int | float) and isinstance(found, int | float):
        return math.isclose(expected, found, rel_tol=1e-12, abs_tol=0.0)
    return expected == found


def _path(config: Mapping[str, Any], dotted: str) -> Any:
    value: Any = config
    for key in dotted.split(".") if dotted else []:
        # option names may contain dots ("samo.alpha"): take the longest key present
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, Mapping) and key in value:
            value = value[key]
        else:
            return _MISSING
    return value


class _Missing:
    def __repr__(self) -> str:
        return "<absent>"


_MISSING = _Missing()


def _config_value(config: Mapping[str, Any], dotted: str) -> Any:
    """``dotted`` into ``config``; a method option whose name has a dot (``samo.alpha``) is addressed as
    ``method.options.samo.alpha``."""
    prefix = "method.options."
    if dotted.startswith(prefix):
        return config["method"]["options"].get(dotted[len(prefix) :], _MISSING)
    return _path(config, dotted)


def _run_tasks(run: grid.RunSpec) -> list[str]:
    import mtl_data

    return list(run.config["dataset"].get("tasks") or mtl_data.task_names(run.config["dataset"]["name"]))


def train_size(config: Mapping[str, Any]) -> int | None:
    """Training examples of a run from the dataset's declared official split sizes (None if undeclared)."""
    dataset = config["dataset"]
    split = dataset.get("splits", {}).get("train", "train")
    options = {**dataset.get("options", {}), **dataset.get("split_options", {}).get(split, {})}
    name = dataset["name"]
    if name in ("nyuv2", "cityscapes"):
        from mtl_data.scenes import CITYSCAPES, NYUV2

        layout = NYUV2 if name == "nyuv2" else CITYSCAPES
        return layout.train_count - int(options.get("val_size", layout.val_holdout))
    if name == "celeba":
        from mtl_data.celeba import OFFICIAL_COUNTS

        return OFFICIAL_COUNTS[split]
    if name == "qm9":
        from mtl_data.qm9 import TRAIN_SIZE

        return int(options.get("train_size", TRAIN_SIZE))
    return None


def _as_set(values: Sequence[Any]) -> list[Any]:
    """Distinct values in a stable order (numbers by value)."""
    distinct = {repr(v): v for v in values}.values()
    return sorted(distinct, key=lambda v: (0, float(v), "") if isinstance(v, int | float) else (1, 0.0, repr(v)))


def _matches(run: grid.RunSpec, where: Mapping[str, Any]) -> bool:
    checks = {
        "benchmark": run.benchmark,
        "model": run.model_key,
        "method": run.method,
        "stl": run.is_stl,
        "label": run.label,
    }
    return all(checks[k] == v for k, v in where.items())


def check(profile: Mapping[str, Any], studies: Mapping[str, Mapping[str, Any]] | None = None) -> list[Mismatch]:
    """Every fact of the facts file that a run of ``profile`` (or a study file) contradicts."""
    studies = studies if studies is not None else grid.load_studies()
    data = load()
    unknown = sorted(set(data["studies"]) - set(studies))
    if unknown:
        raise ValueError(f"{facts_path()}: facts for unknown studies {unknown}")
    plan = grid.plan(profile, studies)
    out: list[Mismatch] = []
    for study_id, facts in data["studies"].items():
        runs = plan.by_study.get(study_id, [])  # as this study names them
        for fact in facts:
            expected = fact["ours"] if "deviation" in fact else fact["value"]
            field, source = fact["field"], fact["source"]
            if field.startswith(("study.", "profile.")):
                kind, _, dotted = field.partition(".")
                found = _path(studies[study_id] if kind == "study" else profile, dotted)
                if not _equal(expected, found):
                    out.append(Mismatch(study_id, f"({kind} file)", field, expected, found, source))
                continue
            chosen = [r for r in runs if _matches(r, fact.get("where", {}))]
            if not chosen:
                out.append(Mismatch(study_id, "(no run)", field, expected, "no run matches", source))
                continue
            if field == "seeds" or field.startswith("values:"):
                found = (
                    [r.seed for r in chosen]
                    if field == "seeds"
                    else [_config_value(r.config, field[7:]) for r in chosen]
                )
                found, expected = _as_set(found), _as_set(expected)
                if not _equal(expected, found):
                    out.append(Mismatch(study_id, "(all matching runs)", field, expected, found, source))
                continue
            for run in chosen:
                if field == "tasks":
                    found: Any = _run_tasks(run)
                elif field == "split.train":
                    found = train_size(run.config)
                else:
                    found = _config_value(run.config, field)
                if not _equal(expected, found):
                    out.append(Mismatch(study_id, run.run_id, field, expected, found, source))
    return out


def seed_files(seeds_dir: Path) -> dict[str, str]:
    """``{seed id: text}`` of the seed files the facts file names."""
    return {key: (seeds_dir / name).read_text() for key, name in load()["seeds"].items()}


def quotes(study_ids: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """``(study, seed id, quote)`` of every fact sourced to a seed sentence."""
    out = []
    for study_id, facts in load()["studies"].items():
        if study_ids is None or study_id in study_ids:
            out += [(study_id, f["source"]["seed"], f["source"]["quote"]) for f in facts if "seed" in f["source"]]
    return out
