"""Run configurations: YAML (``yaml.safe_load``) validated against ``schemas/run.schema.json``.

Validation happens before anything runs or is written: the JSON schema checks structure, types and
ranges, and the names of the dataset, model and method are checked against the registries of
``mtl_data``, ``mtl_models`` and ``mtl_core``. Every error names the config path of the bad field
(``method.name``, ``train.epochs``...) and, for names, the valid choices::

    ConfigError: run.yaml: method.name: 'pcgard' is not a valid method; valid choices: ls, uw, ...

Defaults are filled in by :func:`resolve` so that a run directory stores the complete configuration
that produced it (and its hash identifies the run).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mtl_pipelines import methods

__all__ = ["DEFAULTS", "ConfigError", "config_hash", "load", "resolve", "schema", "validate"]


class ConfigError(ValueError):
    """A configuration is invalid: the message names the field path and the valid values."""


#: Values used for every field a config leaves out (complete configs are stored with each run).
DEFAULTS: dict[str, Any] = {
    "dataset": {
        "root": None,
        "options": {},
        "split_options": {},
        "splits": {"train": "train", "val": "val", "test": "test"},
    },
    "model": {"options": {}},
    "method": {"options": {}},
    "optimizer": {"name": "adam", "lr": 1e-4, "weight_decay": 0.0, "momentum": 0.9},
    "schedule": {"name": "constant", "milestones": [], "gamma": 0.5},
    "train": {"batch_size": 8, "seed": 0, "max_steps_per_epoch": None, "diagnostics_every": 0, "threads": 1},
    "eval": {"batch_size": 32, "selection": "last", "last_k": 1, "corruptions": {"names": [], "severities": []}},
}


@cache
def schema() -> dict[str, Any]:
    """The JSON schema of a run config (without the registry enums, see :func:`validate`)."""
    text = resources.files("mtl_pipelines").joinpath("schemas/run.schema.json").read_text()
    return json.loads(text)


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _choices_error(where: str, field: str, value: Any, valid: list[str], what: str) -> ConfigError:
    close = difflib.get_close_matches(str(value), valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"{where}{field}: {value!r} is not a valid {what}{hint}; valid choices: {', '.join(valid)}")


def validate(config: Mapping[str, Any], source: str = "config") -> None:
    """Raise :class:`ConfigError` on the first problem of ``config`` (schema, then registry names)."""
    where = f"{source}: "
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}the config must be a mapping, got {type(config).__name__}")
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(dict(config)), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        error = errors[0]
        message = error.message
        if error.validator == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            message += f"; valid fields: {', '.join(allowed)}"
        elif error.validator == "enum":
            message = f"{error.instance!r} is not valid; valid choices: {', '.join(map(str, error.validator_value))}"
        raise ConfigError(f"{where}{_path(error.absolute_path)}: {message}")

    import mtl_data
    import mtl_models

    dataset = config["dataset"]["name"]
    if dataset not in mtl_data.names():
        raise _choices_error(where, "dataset.name", dataset, mtl_data.names(), "dataset")
    model = config["model"]["name"]
    if model not in mtl_models.names():
        raise _choices_error(where, "model.name", model, mtl_models.names(), "model")
    valid_model_options = mtl_models.options(model)
    for key in config["model"].get("options", {}):
        if key not in valid_model_options:
            raise _choices_error(where, f"model.options.{key}", key, valid_model_options, f"option of {model}")
    method = config["method"]["name"]
    try:
        methods.check(method, config["method"].get("options", {}))
    except methods.UnknownMethod as exc:
        raise _choices_error(where, "method.name", method, methods.names(), "method") from exc
    except ValueError as exc:
        raise ConfigError(f"{where}method.options: {exc}") from exc
    tasks = config["dataset"].get("tasks")
    if method == "stl" and (tasks is None or len(tasks) != 1):
        raise ConfigError(f"{where}dataset.tasks: an STL run trains exactly one task; got {tasks!r}")
    evaluation = config.get("eval", {})
    if evaluation.get("corruptions", {}).get("names"):
        from mtl_data import corruptions

        for i, name in enumerate(evaluation["corruptions"]["names"]):
            if name not in corruptions.names():
                raise _choices_error(where, f"eval.corruptions.names[{i}]", name, corruptions.names(), "corruption")
    milestones = config.get("schedule", {}).get("milestones", [])
    if milestones != sorted(set(milestones)):
        raise ConfigError(f"{where}schedule.milestones: must be strictly increasing, got {milestones}")


_OPAQUE = ("options", "split_options")


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key not in _OPAQUE:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve(config: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate ``config`` and return it with every default filled in."""
    validate(config, source)
    return _merge(DEFAULTS, config)


def load(path: str | Path) -> dict[str, Any]:
    """Read a YAML run config, validate it and fill in defaults (``FileNotFoundError`` if absent)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return resolve(config, str(path))


#: fields that say where a run executes, not what it computes (no default: absent means ``auto``): excluded from
#: its identity, so a run resumes and evaluates on any device
EXECUTION_FIELDS = {"train": ("device",)}


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable short hash of a resolved config (identifies a run; the display ``name`` and the
    :data:`EXECUTION_FIELDS` are excluded). The run layer (:mod:`mtl_pipelines.run`) is its one user per run."""
    payload = {k: v for k, v in config.items() if k != "name"}
    for section, fields in EXECUTION_FIELDS.items():
        if isinstance(payload.get(section), Mapping):
            payload[section] = {k: v for k, v in payload[section].items() if k not in fields}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
