"""The fault-injection harness: a row of the table (:mod:`cases`) is a bad input, the exit code the ``mtl`` CLI
must answer with, words its message must contain, and the files of the workspace that must come out unchanged.

Each row runs in a fresh copy of a small workspace (:func:`build_workspace`: a valid run config, a finished
run of it, a job manifest, a real-format Cityscapes copy with its checksum manifest), through
``mtl_pipelines.cli.main(argv)`` in-process (fast: imports and the meta-device model checks are paid once),
or through the installed ``mtl`` entry point in a subprocess where the process boundary is the point (a
closed stdout pipe). No row may print a traceback.

To add a row: one line in ``cases.py`` built from the helpers there (:func:`cases.config`,
:func:`cases.manifest`, :func:`cases.command`...). A new kind of input (a damaged checkpoint, a
``final.json`` of another config) is one new ``Given`` helper that edits the workspace copy before the command.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

EVERYTHING = "*"  # ``keep`` entry: every file of the workspace, and no file added


@dataclass(frozen=True)
class Given:
    """A bad input: ``setup`` edits the workspace copy, ``argv`` are the ``mtl`` arguments (``{ws}`` is the
    workspace path). ``subprocess``: run the installed entry point instead of ``main(argv)``;
    ``close_stdout``: the reader of stdout goes away before the command writes (``mtl list | head``)."""

    argv: tuple[str, ...]
    setup: Callable[[Path], None] | None = None
    subprocess: bool = False
    close_stdout: bool = False


@dataclass(frozen=True)
class Case:
    """One row: ``id``, the input, the expected exit code, words the output must contain (case-insensitive),
    workspace paths that must be byte-identical afterwards (files or directories; ``"*"`` = all of it and
    nothing new), and the issue-15 item it belongs to. ``pending``: a known gap, run as a strict xfail with
    the reason (the row turns into a failure the day it passes, to be promoted)."""

    id: str
    given: Given
    exit: int
    words: tuple[str, ...]
    keep: tuple[str, ...] = (EVERYTHING,)
    item: str = ""
    pending: str = ""

    @property
    def clear_error(self) -> bool:
        return self.exit == 2

    @property
    def nothing_lost(self) -> bool:
        return bool(self.keep)


@dataclass
class Outcome:
    code: int
    output: str
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- workspace
GOOD_CONFIG: dict[str, Any] = {
    "name": "good",
    "dataset": {
        "name": "cityscapes_standin",
        "options": {"resolution": [32, 64]},
        "split_options": {"train": {"size": 8}, "val": {"size": 4}, "test": {"size": 4}},
    },
    "model": {"name": "mtan", "options": {"width": 0.0625}},
    "method": {"name": "ls"},
    "optimizer": {"name": "adam", "lr": 0.001},
    "train": {"epochs": 1, "batch_size": 4, "seed": 3},
    "eval": {"batch_size": 4},
}

#: The real-format Cityscapes copy (MTAN .npy layout, 128x256): 3 training and 1 test image.
CITY_ROOT = "data/cityscapes"
CITY_CONFIG: dict[str, Any] = {
    "name": "city",
    "dataset": {"name": "cityscapes", "root": CITY_ROOT, "options": {"val_size": 1, "augment": False}},
    "model": {"name": "mtan", "options": {"width": 0.0625}},
    "method": {"name": "ls"},
    "train": {"epochs": 1, "batch_size": 2, "seed": 0},
    "eval": {"batch_size": 2},
}


def write_cityscapes(root: Path, n_train: int = 3, n_test: int = 1) -> None:
    """A tiny copy in the MTAN ``.npy`` layout that ``mtl_data`` reads (see ``mtl_data/scenes.py``)."""
    rng = np.random.default_rng(0)
    shapes = {"image": (128, 256, 3), "label_7": (128, 256), "depth": (128, 256, 1)}
    for folder, n in (("train", n_train), ("val", n_test)):
        for modality, shape in shapes.items():
            (root / folder / modality).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                if modality == "label_7":
                    array = rng.integers(-1, 7, shape).astype(np.float32)
                else:
                    array = rng.random(shape, dtype=np.float32)
                np.save(root / folder / modality / f"{i}.npy", array)


def good_manifest() -> dict[str, Any]:
    second = copy.deepcopy(GOOD_CONFIG)
    second["train"]["seed"] = 4
    return {
        "job": "good-job",
        "runs_root": "runs",
        "runs": [
            {"id": "good-a", "stl": [], "config": copy.deepcopy(GOOD_CONFIG)},
            {"id": "good-b", "stl": [], "config": second},
        ],
    }


def build_workspace(path: Path) -> Path:
    """The template every row copies: valid inputs and a finished run, made with the real CLI."""
    import mtl_data
    from mtl_pipelines.cli import main

    path.mkdir(parents=True, exist_ok=True)
    (path / "good.yaml").write_text(yaml.safe_dump(GOOD_CONFIG, sort_keys=False))
    (path / "city.yaml").write_text(yaml.safe_dump(CITY_CONFIG, sort_keys=False))
    (path / "jobs").mkdir()
    (path / "jobs" / "good.yaml").write_text(yaml.safe_dump(good_manifest(), sort_keys=False))
    write_cityscapes(path / CITY_ROOT)
    mtl_data.prepare("cityscapes", root=path / CITY_ROOT, strict=False)  # its checksum manifest
    with _cwd(path), contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "good.yaml", "--run-dir", "runs/done", "--quiet"]) == 0
    return path


# ------------------------------------------------------------------------------------------------ running
@contextlib.contextmanager
def _cwd(path: Path):  # type: ignore[no-untyped-def]
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 and mode of every file under ``root`` (what "unchanged" compares)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path.relative_to(root))] = f"{digest} {oct(path.stat().st_mode & 0o777)}"
    return out


def _in_process(argv: list[str]) -> tuple[int, str]:
    from mtl_pipelines.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage errors exit 2 by raising
            code = int(exc.code or 0)
    return code, out.getvalue() + err.getvalue()


def _entry_point() -> list[str]:
    mtl = Path(sys.executable).with_name("mtl")
    return [str(mtl)] if mtl.is_file() else [sys.executable, "-m", "mtl_pipelines.cli"]


def _subprocess(argv: list[str], close_stdout: bool, cwd: Path) -> tuple[int, str]:
    process = subprocess.Popen(
        [*_entry_point(), *argv], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if close_stdout:  # before the interpreter has even imported the CLI: its first write meets a closed pipe
        assert process.stdout is not None
        process.stdout.close()
        _, err = process.communicate(timeout=120)
        return process.returncode, err
    out, err = process.communicate(timeout=120)
    return process.returncode, out + err


def run_case(case: Case, template: Path, workspace: Path) -> Outcome:
    """Copy the template, apply the row's setup, snapshot, run the command, snapshot again."""
    shutil.copytree(template, workspace, symlinks=True)
    given = case.given
    if given.setup is not None:
        given.setup(workspace)
    before = snapshot(workspace)
    argv = [a.format(ws=workspace) for a in given.argv]
    if given.subprocess:
        code, output = _subprocess(argv, given.close_stdout, workspace)
    else:
        with _cwd(workspace):
            code, output = _in_process(argv)
    return Outcome(code, output, before, snapshot(workspace))


def changed_paths(outcome: Outcome, keep: tuple[str, ...]) -> list[str]:
    """Paths the row promised to keep that were changed, removed or (for ``"*"``) added."""

    def under(path: str, prefix: str) -> bool:
        return prefix == EVERYTHING or path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/")

    paths = set(outcome.before) | set(outcome.after)
    bad = []
    for path in sorted(paths):
        if any(under(path, prefix) for prefix in keep) and outcome.before.get(path) != outcome.after.get(path):
            state = "added" if path not in outcome.before else "removed" if path not in outcome.after else "changed"
            bad.append(f"{path} ({state})")
    return bad


def counts(rows: list[Case]) -> Mapping[str, int]:
    """What the README's reliability section reports: rows tried (pending ones excluded), rows answered with
    a clear error (exit 2 naming the problem), rows that checked every promised file unchanged, rows tagged
    with an issue-15 item, pending rows."""
    active = [r for r in rows if not r.pending]
    return {
        "tried": len(active),
        "clear_error": sum(r.clear_error for r in active),
        "nothing_lost": sum(r.nothing_lost for r in active),
        "tagged": sum(bool(r.item) for r in active),  # the rows of issue 15's items: they failed before it
        "pending": len(rows) - len(active),
    }
