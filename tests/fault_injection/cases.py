# ruff: noqa: E501  (the table keeps one bad input per line, as the issue asks)
"""The fault-injection table: one bad input per line (see ``harness.py`` for the columns and how rows run).

Columns: ``Case(id, given, exit, words, keep=("*",), item=...)``. ``given`` is built by a helper:

- ``config(field, value, ...)``: ``good.yaml`` with fields set (dotted paths; ``DROP`` removes), trained
  with ``mtl train bad.yaml --run-dir runs/new`` (``run_dir=None``: the default run directory);
- ``config_text(text)``: ``bad.yaml`` with exactly this content;
- ``manifest(field, value, ...)``: the good job manifest with fields set (paths as tuples), ``mtl train --job``;
- ``data(edit, argv)``: the Cityscapes copy under ``data/cityscapes`` edited, then a command;
- ``command(*argv)``: a command line on the untouched workspace.

``keep`` lists what must be byte-identical afterwards (``"*"``: the whole workspace, nothing added).
Words are matched case-insensitively against stdout + stderr. Items refer to issue 15.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from harness import CITY_ROOT, GOOD_CONFIG, Case, Given, good_manifest

DROP = object()  # a field value: remove the field
NAN, INF = float("nan"), float("inf")
BAD_TRAIN = ("train", "bad.yaml", "--run-dir", "runs/new", "--quiet")
CITY_TRAIN = ("train", "city.yaml", "--run-dir", "runs/city", "--quiet")


def _set(data: Any, path: Sequence[Any], value: Any, ws: Path) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {}) if isinstance(data, dict) else data[key]
    if value is DROP:
        del data[path[-1]]
    else:
        data[path[-1]] = value.format(ws=ws) if isinstance(value, str) else value


def config(*pairs: Any, run_dir: str | None = "runs/new") -> Given:
    """``good.yaml`` with ``field, value`` pairs applied (``"optimizer.lr", NAN``), as ``bad.yaml``."""

    def setup(ws: Path) -> None:
        data = copy.deepcopy(GOOD_CONFIG)
        for field, value in zip(pairs[::2], pairs[1::2]):
            _set(data, field.split("."), value, ws)
        (ws / "bad.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    argv = BAD_TRAIN if run_dir is not None else ("train", "bad.yaml", "--quiet")
    return Given(argv if run_dir in (None, "runs/new") else (*BAD_TRAIN[:3], run_dir, "--quiet"), setup)


def config_text(text: str | bytes) -> Given:
    def setup(ws: Path) -> None:
        (ws / "bad.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())

    return Given(BAD_TRAIN, setup)


def manifest(*pairs: Any, command: str = "train") -> Given:
    """The good job manifest with ``(path tuple), value`` pairs applied, as ``jobs/bad.yaml``."""

    def setup(ws: Path) -> None:
        data = good_manifest()
        for path, value in zip(pairs[::2], pairs[1::2]):
            _set(data, path, value, ws)
        (ws / "jobs" / "bad.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    return Given((command, "--job", "jobs/bad.yaml"), setup)


def manifest_text(text: str | bytes) -> Given:
    def setup(ws: Path) -> None:
        (ws / "jobs" / "bad.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())

    return Given(("train", "--job", "jobs/bad.yaml"), setup)


def data(edit: Callable[[Path], None], argv: Sequence[str] = CITY_TRAIN) -> Given:
    return Given(tuple(argv), lambda ws: edit(ws / CITY_ROOT))


def command(*argv: str, subprocess: bool = False, close_stdout: bool = False) -> Given:
    return Given(tuple(argv), None, subprocess, close_stdout)


# ------------------------------------------------------------------------------- edits of the data copy
def nan_in(rel: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        array = np.load(root / rel)
        array.flat[7] = np.nan
        np.save(root / rel, array)  # same size: only the values (and the SHA-256) change

    return edit


def truncate(rel: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / rel
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return edit


def reshape(rel: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        np.save(root / rel, np.zeros((64, 64, 3), dtype=np.float32))

    return edit


def perturb(rel: str) -> Callable[[Path], None]:
    """Finite, same shape and size, different bytes: only the checksum manifest can tell."""

    def edit(root: Path) -> None:
        array = np.load(root / rel)
        np.save(root / rel, (array * 0.5).astype(array.dtype))

    return edit


def remove(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).unlink()


def unprepared(edit: Callable[[Path], None]) -> Callable[[Path], None]:
    """``edit`` on a copy that never went through ``mtl prepare`` (no checksum manifest to catch the change
    first): what the loader itself says about the file."""

    def both(root: Path) -> None:
        (root / "mtl_data_manifest.json").unlink()
        edit(root)

    return both


CITY_LEFT = ("data/", "runs/done/", "good.yaml", "city.yaml")  # a data fault stops a run mid-way: inputs kept

# fmt: off
ROWS: list[Case] = [
    # -- issue 15 item 3: names and run ids that would write outside their root
    Case("name-dotdot", config("name", "../../escaped", run_dir=None), 2, ("bad.yaml", "name", "'../../escaped'", "valid"), item="3"),
    Case("name-absolute", config("name", "{ws}/escaped", run_dir=None), 2, ("bad.yaml", "name", "/escaped'", "not a valid name"), item="3"),
    Case("name-slash", config("name", "a/b", run_dir=None), 2, ("name", "'a/b'", "no '/'"), item="3"),
    Case("name-hidden", config("name", ".hidden", run_dir=None), 2, ("name", "'.hidden'", "starting with a letter or digit"), item="3"),
    Case("name-empty", config("name", "", run_dir=None), 2, ("name", "''", "not a valid name"), item="3"),
    Case("name-shell", config("name", "x$(touch pwned)", run_dir=None), 2, ("name", "x$(touch pwned)", "not a valid name"), item="3"),
    Case("job-run-id-dotdot", manifest(("runs", 0, "id"), "../../x"), 2, ("jobs/bad.yaml", "runs[0].id", "'../../x'"), item="3"),
    Case("job-run-id-absolute", manifest(("runs", 1, "id"), "{ws}/abs"), 2, ("jobs/bad.yaml", "runs[1].id", "/abs'"), item="3"),
    Case("job-run-id-slash", manifest(("runs", 0, "id"), "a/b"), 2, ("runs[0].id", "'a/b'", "valid"), item="3"),
    Case("job-run-id-empty", manifest(("runs", 0, "id"), ""), 2, ("runs[0].id", "''", "not a valid name"), item="3"),
    Case("job-stl-dotdot", manifest(("runs", 0, "stl"), ["../x"]), 2, ("runs[0].stl[0]", "'../x'"), item="3"),
    Case("job-id-dotdot", manifest(("job",), "../job"), 2, ("jobs/bad.yaml", "job", "'../job'"), item="3"),
    Case("evaluate-job-run-id-dotdot", manifest(("runs", 0, "id"), "../../x", command="evaluate"), 2, ("runs[0].id", "'../../x'"), item="3"),
    # -- item 4: option values checked before anything is written, naming file, field, value and range
    Case("job-bad-config-in-second-run", manifest(("runs", 1, "config", "optimizer", "lr"), NAN), 2, ("jobs/bad.yaml", "runs[1]", "optimizer.lr", "nan"), item="4"),
    Case("lr-nan", config("optimizer.lr", NAN), 2, ("bad.yaml", "optimizer.lr", "nan", "finite"), item="4"),
    Case("lr-inf", config("optimizer.lr", INF), 2, ("bad.yaml", "optimizer.lr", "inf", "finite"), item="4"),
    Case("weight-decay-minus-inf", config("optimizer.weight_decay", -INF), 2, ("optimizer.weight_decay", "-inf", "finite"), item="4"),
    Case("sam-rho-negative", config("method.name", "sam+ls", "method.options", {"rho": -1}), 2, ("bad.yaml", "method.options.rho", "-1", ">= 0"), item="4"),
    Case("samo-alpha-2", config("method.name", "samo+ls", "method.options", {"samo.alpha": 2}), 2, ("method.options.samo.alpha", "2", "[0.0, 1.0]"), item="4"),
    Case("cagrad-c-negative", config("method.name", "exact+cagrad", "method.options", {"c": -1}), 2, ("bad.yaml", "method.options.c", "-1", ">= 0"), item="4"),
    Case("famo-gamma-nan", config("method.name", "famo", "method.options", {"gamma": NAN}), 2, ("method.options.gamma", "nan", "finite"), item="4"),
    Case("method-seed-huge", config("method.name", "exact+pcgrad", "method.options", {"seed": 2**70}), 2, ("method.options.seed", str(2**70), "0..4294967295"), item="4"),
    Case("width-negative", config("model.options.width", -1), 2, ("bad.yaml", "model.options.width", "-1", "positive"), item="4"),
    Case("width-zero", config("model.options.width", 0), 2, ("model.options.width", "positive"), item="4"),
    Case("width-nan", config("model.options.width", NAN), 2, ("model.options.width", "nan", "finite"), item="4"),
    Case("model-seed-negative", config("model.options.seed", -1), 2, ("model.options.seed", "-1", "0..4294967295"), item="4"),
    Case("seed-2-pow-70", config("train.seed", 2**70), 2, ("bad.yaml", "train.seed", str(2**70), "maximum of 4294967295"), item="4"),
    # -- item 11: schema gaps
    Case("epochs-1e30-float", config("train.epochs", 1e30), 2, ("bad.yaml", "train.epochs", "1e+30", "integer"), item="11"),
    Case("epochs-huge-int", config("train.epochs", 10**9), 2, ("train.epochs", "1000000000", "maximum of 100000"), item="11"),
    Case("last-k-over-epochs", config("eval.last_k", 5), 2, ("bad.yaml", "eval.last_k", "5", "1..1"), item="11"),
    Case("train-on-test", config("dataset.splits", {"train": "test"}), 2, ("dataset.splits.train", "'test'", "never train on the test split"), item="11"),
    Case("select-on-test", config("dataset.splits", {"val": "test"}, "eval.selection", "best_val"), 2, ("dataset.splits.val", "best_val", "test split"), item="11"),
    Case("config-not-utf8", config_text(b"name: x\n\xff\xfe: 1\n"), 2, ("bad.yaml", "not utf-8", "byte 8"), item="11"),
    Case("config-directory", command("train", "runs", "--run-dir", "runs/new"), 2, ("runs", "is a directory"), item="11"),
    Case("list-closed-pipe", command("list", "methods", subprocess=True, close_stdout=True), 0, (), item="11"),
    Case("job-not-utf8", manifest_text(b"job: x\n\xff: 1\n"), 2, ("jobs/bad.yaml", "not utf-8"), item="11"),
    Case("job-directory", command("train", "--job", "jobs"), 2, ("jobs", "is a directory"), item="11"),
    # -- item 10: data faults name the file; prepare takes the flags its messages advise
    Case("npy-nan-sample", data(unprepared(nan_in("train/depth/1.npy"))), 2, ("data/cityscapes/train/depth/1.npy", "nan"), CITY_LEFT, item="10"),
    Case("npy-inf-image", data(unprepared(lambda root: np.save(root / "train/image/0.npy", np.full((128, 256, 3), np.inf, np.float32)))), 2, ("train/image/0.npy", "infinite"), CITY_LEFT, item="10"),
    Case("npy-nan-after-prepare", data(nan_in("train/depth/0.npy")), 2, ("train/depth/0.npy",), CITY_LEFT, item="10"),
    Case("npy-changed-after-prepare", data(perturb("train/image/2.npy")), 2, ("train/image/2.npy", "sha-256"), CITY_LEFT, item="10"),
    Case("prepare-partial-advice", command("prepare", "cityscapes", "--root", CITY_ROOT), 2, ("2975", "--partial"), item="10"),
    Case("prepare-unavailable-benchmark", command("prepare", "multi_fashion"), 2, ("multi_fashion", "root"), item="10"),
    Case("prepare-standin-partial", command("prepare", "nyuv2", "--partial"), 2, ("--partial", "nyuv2_standin", "generated in memory"), item="10"),
    Case("prepare-changed-file", data(perturb("val/depth/0.npy"), ("prepare", "cityscapes", "--root", CITY_ROOT, "--partial")), 2, ("val/depth/0.npy", "sha-256"), item="10"),
    # -- already answered clearly before issue 15 (kept true by this table)
    Case("seed-negative", config("train.seed", -1), 2, ("train.seed", "-1", "minimum of 0")),
    Case("seed-float", config("train.seed", 1.5), 2, ("train.seed", "1.5", "integer")),
    Case("epochs-1e30-text", config_text(yaml.safe_dump(GOOD_CONFIG).replace("epochs: 1", "epochs: 1e30")), 2, ("train.epochs", "'1e30'", "integer")),
    Case("epochs-fraction", config("train.epochs", 2.5), 2, ("train.epochs", "2.5", "integer")),
    Case("job-runs-root-missing", manifest(("runs_root",), DROP), 2, ("jobs/bad.yaml", "runs_root")),
    Case("npy-truncated", data(unprepared(truncate("train/image/1.npy"))), 2, ("train/image/1.npy", "truncated"), CITY_LEFT),
    Case("npy-wrong-shape", data(unprepared(reshape("train/image/1.npy"))), 2, ("train/image/1.npy", "shape", "128x256x3"), CITY_LEFT),
    Case("npy-missing", data(remove("train/depth/2.npy")), 2, ("depth", "2.npy", "missing"), CITY_LEFT),
    Case("prepare-nan-file", data(nan_in("val/image/0.npy"), ("prepare", "cityscapes", "--root", CITY_ROOT, "--partial")), 2, ("val/image/0.npy", "nan"), item="10"),
    Case("prepare-missing-root", command("prepare", "cityscapes", "--root", "data/nowhere"), 2, ("data/nowhere", "does not exist"), item="10"),
    Case("prepare-unknown", command("prepare", "imagenet"), 2, ("imagenet", "unknown dataset", "valid")),
    Case("method-typo", config("method.name", "pcgard"), 2, ("bad.yaml", "method.name", "'pcgard'", "valid choices")),
    Case("aggregator-without-estimator", config("method.name", "pcgrad"), 2, ("method.name", "'pcgrad'", "exact+pcgrad")),
    Case("dataset-typo", config("dataset.name", "cityscape"), 2, ("dataset.name", "'cityscape'", "cityscapes")),
    Case("model-typo", config("model.name", "mtann"), 2, ("model.name", "'mtann'", "mtan")),
    Case("model-option-typo", config("model.options", {"widht": 1}), 2, ("model.options.widht", "width")),
    Case("method-option-unknown", config("method.options", {"beta": 1}), 2, ("method.options", "'beta'", "valid")),
    Case("method-option-ambiguous", config("method.name", "samo+fairgrad", "method.options", {"alpha": 0.5}), 2, ("alpha", "ambiguous", "samo.alpha")),
    Case("stl-two-tasks", config("method.name", "stl"), 2, ("dataset.tasks", "exactly one task")),
    Case("dataset-task-unknown", config("dataset.tasks", ["colour"]), 2, ("dataset.tasks", "colour", "valid tasks")),
    Case("dataset-option-unknown", config("dataset.options.resolutoin", [32, 64]), 2, ("resolutoin", "valid options")),
    Case("epochs-zero", config("train.epochs", 0), 2, ("train.epochs", "minimum of 1")),
    Case("batch-size-zero", config("train.batch_size", 0), 2, ("train.batch_size", "minimum of 1")),
    Case("batch-size-bool", config("train.batch_size", True), 2, ("train.batch_size", "true", "integer")),
    Case("eval-batch-size-zero", config("eval.batch_size", 0), 2, ("eval.batch_size", "minimum of 1")),
    Case("threads-zero", config("train.threads", 0), 2, ("train.threads", "minimum of 1")),
    Case("diagnostics-negative", config("train.diagnostics_every", -1), 2, ("train.diagnostics_every", "minimum of 0")),
    Case("lr-zero", config("optimizer.lr", 0), 2, ("optimizer.lr", "0", "less than or equal to the minimum")),
    Case("lr-text", config("optimizer.lr", "fast"), 2, ("optimizer.lr", "'fast'", "number")),
    Case("momentum-one", config("optimizer.momentum", 1), 2, ("optimizer.momentum", "1", "maximum")),
    Case("weight-decay-negative", config("optimizer.weight_decay", -1), 2, ("optimizer.weight_decay", "minimum of 0")),
    Case("optimizer-unknown", config("optimizer.name", "rmsprop"), 2, ("optimizer.name", "'rmsprop'", "adam")),
    Case("schedule-gamma-zero", config("schedule", {"name": "multistep", "milestones": [1], "gamma": 0}), 2, ("schedule.gamma", "minimum")),
    Case("milestones-decreasing", config("schedule", {"name": "multistep", "milestones": [3, 2]}), 2, ("schedule.milestones", "strictly increasing")),
    Case("selection-unknown", config("eval.selection", "best"), 2, ("eval.selection", "'best'", "last_k")),
    Case("corruption-unknown", config("eval.corruptions", {"names": ["rain"], "severities": [3]}), 2, ("eval.corruptions.names[0]", "'rain'", "valid choices")),
    Case("severity-six", config("eval.corruptions", {"names": ["fog"], "severities": [6]}), 2, ("eval.corruptions.severities[0]", "maximum of 5")),
    Case("field-unknown", config("trian", {}), 2, ("bad.yaml", "trian", "valid fields")),
    Case("section-missing", config("train", DROP), 2, ("'train' is a required property",)),
    Case("config-missing", command("train", "nowhere.yaml"), 2, ("nowhere.yaml", "does not exist")),
    Case("config-bad-yaml", config_text("dataset: [\n"), 2, ("bad.yaml", "not valid yaml")),
    Case("config-a-list", config_text("- dataset\n- model\n"), 2, ("bad.yaml", "must be a mapping", "list")),
    Case("config-empty", config_text(""), 2, ("bad.yaml", "must be a mapping", "nonetype")),
    Case("config-python-tag", config_text("!!python/object/apply:os.system ['touch pwned']\n"), 2, ("bad.yaml", "not valid yaml", "constructor")),
    Case("run-dir-of-another-config", config("train.seed", 4, run_dir="runs/done"), 2, ("runs/done", "different config")),
    Case("job-runs-not-a-list", manifest(("runs",), {"a": 1}), 2, ("jobs/bad.yaml", "not a job manifest")),
    Case("job-run-without-config", manifest(("runs", 0, "config"), DROP), 2, ("runs[0]", "'config'")),
    Case("job-missing", command("train", "--job", "jobs/nowhere.yaml"), 2, ("jobs/nowhere.yaml", "does not exist")),
    Case("job-bad-yaml", manifest_text("runs: [\n"), 2, ("jobs/bad.yaml", "not valid yaml")),
    Case("train-nothing", command("train"), 2, ("give either a config file",)),
    Case("train-config-and-job", command("train", "good.yaml", "--job", "jobs/good.yaml"), 2, ("--job", "give no config file")),
    Case("job-params-without-runs-root", command("train", "--job", "j", "--params", "params.yaml"), 2, ("--runs-root",)),
    Case("evaluate-nothing", command("evaluate"), 2, ("give a run directory",)),
    Case("evaluate-a-file", command("evaluate", "good.yaml"), 2, ("good.yaml", "is a file, not a directory")),
    Case("grid-unknown-profile", command("grid", "--profile", "nightly"), 2, ("'nightly'", "valid profiles", "smoke")),
    Case("list-unknown", command("list", "optimizers"), 2, ("invalid choice", "'optimizers'")),
    Case("command-unknown", command("fit", "good.yaml"), 2, ("invalid choice", "'fit'")),
]
# fmt: on
