"""Run configurations: YAML (``yaml.safe_load``) validated against ``schemas/run.schema.json``.

Validation happens before anything runs or is written: the JSON schema checks structure, types and
ranges, and the names of the dataset, model and method are checked against the registries of
``mtl_data``, ``mtl_models`` and ``mtl_core``. Every error names the config path of the bad field
(``method.name``, ``train.epochs``...) and, for names, the valid choices::

    ConfigError: run.yaml: method.name: 'pcgard' is not a valid method; valid choices: ls, uw, ...

Beyond the schema, :func:`validate` checks what JSON schema cannot say (every number finite, integers not
written as floats, ``eval.last_k <= train.epochs``, no training on the test split) and builds the model and
the method on the meta device, so an option value the model or method refuses (``width: -1``, ``rho: -1``,
``samo.alpha: 2``) is reported with its field path before anything is written::

    ConfigError: run.yaml: method.options.c: c must be a finite number >= 0, got -1.0

Defaults are filled in by :func:`resolve` so that a run directory stores the complete configuration
that produced it (and its hash identifies the run).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mtl_pipelines import io, methods

__all__ = [
    "DEFAULTS",
    "VALIDATION_SELECTIONS",
    "ConfigError",
    "config_hash",
    "load",
    "resolve",
    "run_name",
    "schema",
    "validate",
]


class ConfigError(ValueError):
    """A configuration is invalid: the message names the field path and the valid values."""


#: the ``eval.selection`` rules that read the validation split (so it must not be the test split)
VALIDATION_SELECTIONS = ("best_val", "best_val_loss")

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


#: JSON schema's "integer" accepts 3.0 and 1e30 (floats with an integral value); a config must write integers
#: as integers (``range(1e30)`` fails deep inside training otherwise).
_STRICT_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
)
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_STRICT_TYPES)

#: ``seed`` options of models and methods seed ``torch.Generator`` (64-bit) and NumPy (32-bit): the range of
#: ``train.seed`` in the schema.
SEED_RANGE = (0, 2**32 - 1)


def _schema_error(where: str, error: jsonschema.ValidationError) -> ConfigError:
    message = error.message
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        message += f"; valid fields: {', '.join(allowed)}"
    elif error.validator == "enum":
        message = f"{error.instance!r} is not valid; valid choices: {', '.join(map(str, error.validator_value))}"
    elif error.validator == "pattern":
        message = f"{error.instance!r} is not a valid name; valid: {io.SAFE_NAME_HELP}"
    return ConfigError(f"{where}{_path(error.absolute_path)}: {message}")


def _non_finite(value: Any, parts: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], float] | None:
    """The path and value of the first NaN/Inf anywhere in ``value`` (options included), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return parts, value
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, (*parts, key))
        if found is not None:
            return found
    return None


def _check_seed_options(where: str, section: str, options: Mapping[str, Any]) -> None:
    for key, value in options.items():
        if key == "seed" or key.endswith(".seed"):
            low, high = SEED_RANGE
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(
                    f"{where}{section}.options.{key}: {value!r} is not a valid seed; valid: integers {low}..{high}"
                )


def _refusal(build: Any, options: Mapping[str, Any]) -> tuple[str | None, str] | None:
    """None if ``build(options)`` succeeds, else ``(option, message)``: the first option that fails alone
    (its field path names the error), or None when only the combination fails."""
    try:
        build(dict(options))
    except (ValueError, TypeError) as together:
        for key, value in options.items():
            try:
                build({key: value})
            except (ValueError, TypeError) as alone:
                return key, str(alone)
        return None, str(together)
    return None


@cache
def _model_error(name: str, options_json: str, num_tasks: int) -> tuple[str | None, str] | None:
    """Build model ``name`` on the meta device (no memory, no weights); ``(option, message)`` if it refuses.
    Cached: a grid resolves hundreds of configs sharing a few models."""
    import torch

    import mtl_models

    options = json.loads(options_json)
    options.pop("pretrained_weights", None)  # a local file read at build time: checked when the run starts
    tasks = {f"task{i}": 1 for i in range(num_tasks)}

    def build(opts: Mapping[str, Any]) -> None:
        with torch.device("meta"):
            mtl_models.create(name, tasks=tasks, **opts)

    return _refusal(build, options)


def _sgd(params: list[Any]) -> Any:
    import torch

    return torch.optim.SGD(params, lr=0.1)


@cache
def _method_error(name: str, options_json: str, num_tasks: int) -> tuple[str | None, str] | None:
    """Build the training step of method ``name`` (:class:`mtl_core.MTLStep`: estimator, combiner, routing of
    the options) over a tiny meta-device model; ``(option, message)`` if it refuses."""
    import torch

    import mtl_models
    from mtl_core import MTLStep

    options = json.loads(options_json)
    tasks = [f"task{i}" for i in range(num_tasks)]
    with torch.device("meta"):
        model = mtl_models.create("toy_mlp", tasks=dict.fromkeys(tasks, 1))

    def build(opts: Mapping[str, Any]) -> None:
        # plain SGD: the run's optimizer ranges are the schema's; only the method's options are checked here
        MTLStep(model, "ls" if name == "stl" else name, _sgd, tasks=tasks, hparams=dict(opts))

    return _refusal(build, options)


def _check_buildable(where: str, config: Mapping[str, Any]) -> None:
    """Model and method options the model / method refuse (value ranges live with the code that uses them)."""
    tasks = config["dataset"].get("tasks")
    num_tasks = len(tasks) if tasks else 2
    model, method = config["model"], config["method"]
    for section, spec, check in (("model", model, _model_error), ("method", method, _method_error)):
        options = dict(spec.get("options", {}))
        _check_seed_options(where, section, options)
        error = check(spec["name"], json.dumps(options, sort_keys=True), num_tasks)
        if error is not None:
            key, message = error
            field = f"{section}.options.{key}" if key is not None else f"{section}.options"
            value = f" = {options[key]!r}" if key is not None else ""
            raise ConfigError(f"{where}{field}{value}: {message} ({section} {spec['name']!r})")


def _check_consistency(where: str, config: Mapping[str, Any]) -> None:
    """Relations between fields that the schema cannot state."""
    epochs = config["train"]["epochs"]
    last_k = config.get("eval", {}).get("last_k", DEFAULTS["eval"]["last_k"])
    if last_k > epochs:
        raise ConfigError(
            f"{where}eval.last_k: {last_k} is larger than train.epochs ({epochs}): the mean of the last "
            f"{last_k} epochs does not exist; valid: 1..{epochs}"
        )
    splits = {**DEFAULTS["dataset"]["splits"], **config["dataset"].get("splits", {})}
    if splits["train"] == "test":
        raise ConfigError(f"{where}dataset.splits.train: 'test' is refused: never train on the test split")
    selection = config.get("eval", {}).get("selection", DEFAULTS["eval"]["selection"])
    if selection in VALIDATION_SELECTIONS and splits["val"] == "test":
        raise ConfigError(
            f"{where}dataset.splits.val: 'test' is refused with eval.selection {selection}: never select a model "
            "on the test split; use val (or last / last_k selection)"
        )


def validate(config: Mapping[str, Any], source: str = "config") -> None:
    """Raise :class:`ConfigError` on the first problem of ``config``: schema, non-finite numbers, registry
    names, relations between fields, then the model and method built on the meta device."""
    where = f"{source}: "
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}the config must be a mapping, got {type(config).__name__}")
    bad_number = _non_finite(dict(config))
    if bad_number is not None:
        parts, value = bad_number
        raise ConfigError(f"{where}{_path(parts)}: {value!r} is not a finite number; valid: a finite number")
    errors = sorted(
        _Validator(schema()).iter_errors(dict(config)),
        key=lambda e: (list(e.absolute_path), e.validator != "type", e.message),  # a wrong type says most
    )
    if errors:
        raise _schema_error(where, errors[0])

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
    _check_consistency(where, config)
    _check_buildable(where, config)


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


def load(path: str | Path, resolver: Callable[[Any, str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Read a YAML run config, validate it and fill in defaults (``FileNotFoundError`` if absent, ``ConfigError``
    for a directory, a file that is not UTF-8 text or not YAML, naming the file). ``resolver`` validates it
    (default :func:`resolve`, a supervised run; ``mtl train`` passes :func:`mtl_pipelines.kinds.resolve`)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; give a YAML run config file")
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); give a YAML run config") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return (resolver or resolve)(config, str(path))


def run_name(config: Mapping[str, Any], config_path: str | Path) -> str:
    """The name of a run in its default directory ``<root>/<name>-<hash>``: ``name`` of the config (validated
    by the schema), else the config file's stem, checked here to be one safe path component."""
    return config.get("name") or io.check_name(Path(config_path).stem, f"{config_path}: file name (the run name)")


#: fields that say where and how a run executes, not what it computes (no defaults here: absent means ``auto``,
#: the loader defaults, deterministic): excluded from its identity, so a run resumes and evaluates on any device,
#: with any loader workers and determinism setting (mtl_pipelines.run, mtl_pipelines.data)
EXECUTION_FIELDS = {"train": ("device", "loader", "deterministic")}


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable short hash of a resolved config (identifies a run; the display ``name`` and the
    :data:`EXECUTION_FIELDS` are excluded). The run layer (:mod:`mtl_pipelines.run`) is its one user per run."""
    payload = {k: v for k, v in config.items() if k != "name"}
    for section, fields in EXECUTION_FIELDS.items():
        if isinstance(payload.get(section), Mapping):
            payload[section] = {k: v for k, v in payload[section].items() if k not in fields}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
