"""No profile value escapes into a shell (issue 15 item 2), with Snakemake and with `mtl dvc`.

Two lines of defence, each tested on its own:
- a profile whose path-like values or names hold shell syntax (``results/x$(touch pwned)``) is refused when
  it is loaded (exit 2 from ``mtl``, an error from Snakemake), naming the file, field and value, and the
  command never runs;
- legal values with spaces and punctuation, and (for ``mtl dvc``, which also takes a profile as a mapping)
  even hostile ones, reach the commands as single, unchanged arguments: the commands are executed through
  the shell with a stand-in ``python`` that records its argv.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mtl_pipelines import dvc, grid, safe_paths

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOSTILE = 'results/x$(touch pwned)`touch pwned2`; touch pwned3 "q" it\'s'
# A legal path with every punctuation character the safe pattern allows (and a space).
AWKWARD = "results/with space,a+b@c=d:e~f_g.h"

RECORDER = """\
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if "--stamp" in args:  # what the workflow tools expect the command to leave behind
    stamp = Path(args[args.index("--stamp") + 1])
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text("{}")
"""


def _fake_python(tmp: Path) -> dict[str, str]:
    """An environment whose ``python`` records its arguments (one JSON list per call) in ``$ARGV_LOG``."""
    bin_dir = tmp / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "recorder.py").write_text(RECORDER)
    fake = bin_dir / "python"
    fake.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(bin_dir / "recorder.py"))} "$@"\n')
    fake.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ARGV_LOG": str(tmp / "argv.jsonl"),
    }


def _calls(tmp: Path) -> list[list[str]]:
    log = tmp / "argv.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _no_pwned(root: Path) -> None:
    found = [p for p in root.rglob("pwned*") if p.is_file()]
    assert not found, f"a profile value ran as a command: {found}"


def _configs_with(tmp: Path, changes: dict[str, Any]) -> Path:
    """A copy of pipelines/configs whose smoke profile has ``changes`` (dotted keys) applied."""
    import shutil

    root = tmp / "configs"
    shutil.copytree(REPO / "pipelines" / "configs", root)
    path = root / "profiles" / "smoke.yaml"
    profile = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = profile
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return root


# --- the safe pattern -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "results/x$(touch pwned)",
        "results/`id`",
        "results/a;b",
        "results/a|b",
        "results/a&b",
        "results/a>b",
        "results/{wildcard}",
        "results/${var}",
        "results/a\nb",
        "results/a\tb",
        "results/it's",
        'results/"q"',
        "results/a*b",
        "results/a\\b",
        "-rf",
        "results/--x",
        " results",
        "",
    ],
)
def test_unsafe_paths_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="results_dir"):
        safe_paths.check_path(value, "p.yaml: field 'results_dir'")


@pytest.mark.parametrize("value", ["results/default", AWKWARD, "/scratch/u1/mtl results", "~/data/nyuv2", "données/é"])
def test_legal_paths_pass(value: str) -> None:
    assert safe_paths.check_path(value, "x") == value


def test_every_path_like_field_of_a_profile_is_found() -> None:
    profile = grid.load_profile("smoke")
    fields = dict(safe_paths.path_like_fields(profile))
    assert fields["results_dir"] == "results/smoke" and fields["reports_dir"] == "reports/smoke"
    assert fields["benchmarks.cityscapes.dataset.options.cache_dir"] == "data/standin/cityscapes"
    nested = {"benchmarks": {"b": {"dataset": {"root": "/d", "data_root": "x", "options": {"path": "y"}}}}}
    assert dict(safe_paths.path_like_fields(nested)) == {
        "benchmarks.b.dataset.root": "/d",
        "benchmarks.b.dataset.data_root": "x",
        "benchmarks.b.dataset.options.path": "y",
    }


@pytest.mark.parametrize(
    "field",
    ["results_dir", "reports_dir", "benchmarks.cityscapes.dataset.options.cache_dir", "benchmarks.nyuv2.dataset.root"],
)
def test_mtl_refuses_a_profile_with_shell_syntax(tmp_path: Path, field: str) -> None:
    """`mtl dvc` and `mtl grid` stop with exit 2 naming the file, field and value; nothing is written."""
    configs = _configs_with(tmp_path, {field: "results/x$(touch pwned)"})
    env = {**os.environ, grid.CONFIGS_ENV: str(configs)}
    out = tmp_path / "out"
    out.mkdir()
    for argv in (["dvc", "--profile", "smoke", "--root", str(out)], ["grid", "--profile", "smoke", "--write"]):
        done = subprocess.run(
            [str(BIN / "mtl"), *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2, done.stderr
        assert "smoke.yaml" in done.stderr and repr(field) in done.stderr and "$(touch pwned)" in done.stderr
    assert list(out.iterdir()) == [] and not (tmp_path / "results").exists()
    _no_pwned(tmp_path)


def test_profile_names_and_benchmark_keys_are_plain_tokens(tmp_path: Path) -> None:
    configs = _configs_with(tmp_path, {})
    path = configs / "profiles" / "smoke.yaml"
    profile = yaml.safe_load(path.read_text())
    profile["benchmarks"]["x;rm -rf ~"] = profile["benchmarks"].pop("nyuv2")
    path.write_text(yaml.safe_dump(profile))
    os.environ[grid.CONFIGS_ENV] = str(configs)
    try:
        with pytest.raises(ValueError, match=r"benchmark key: 'x;rm -rf ~' is not a valid name"):
            grid.load_profile("smoke")
    finally:
        del os.environ[grid.CONFIGS_ENV]


# --- Snakemake ----------------------------------------------------------------------------------------------


def _shell_strings(text: str) -> list[str]:
    """The shell command strings of a rule file (every string literal after a ``shell:`` directive)."""
    out = []
    for block in re.findall(r"^\s*shell:\s*\n((?:\s*(?:#.*|\".*\")\s*\n?)+)", text, flags=re.M):
        out += re.findall(r'"((?:[^"\\]|\\.)*)"', block)
    return out


def test_every_snakemake_shell_interpolation_is_quoted() -> None:
    """Every ``{placeholder}`` in a rule's shell command is ``{placeholder:q}`` (Snakemake's shlex.quote)."""
    commands = [c for f in sorted((REPO / "pipelines" / "rules").glob("*.smk")) for c in _shell_strings(f.read_text())]
    assert len(commands) >= 5
    for command in commands:
        placeholders = re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", command)
        assert placeholders, command
        unquoted = [p for p in placeholders if not p.endswith(":q")]
        assert not unquoted, f"unquoted {unquoted} in: {command}"


def _snakemake(work: Path, env: dict[str, str], target: str, *config: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "snakemake"), "--cores", "1", target, "--config", "profile=smoke", *config],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_snakemake_refuses_a_profile_with_shell_syntax(tmp_path: Path, workflow_copy) -> None:
    work = workflow_copy(tmp_path / "wf")
    configs = _configs_with(tmp_path, {"results_dir": "results/x$(touch pwned)"})
    env = {**_fake_python(tmp_path), grid.CONFIGS_ENV: str(configs)}
    done = _snakemake(work, env, "results/smoke/prepared/cityscapes.json")
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "results_dir" in out and "$(touch pwned)" in out and "smoke.yaml" in out, out[-2000:]
    assert _calls(tmp_path) == []
    _no_pwned(tmp_path)


def test_snakemake_passes_awkward_paths_as_single_arguments(tmp_path: Path, workflow_copy) -> None:
    """The prepare rule runs through the shell (a stand-in ``python`` on PATH: ``container_image`` set and no
    ``--sdm`` makes the rules call ``python``): the stamp and log paths arrive unchanged, in one argument."""
    work = workflow_copy(tmp_path / "wf")
    configs = _configs_with(tmp_path, {"results_dir": AWKWARD, "reports_dir": AWKWARD.replace("results", "reports")})
    env = {**_fake_python(tmp_path), grid.CONFIGS_ENV: str(configs)}
    stamp = f"{AWKWARD}/prepared/cityscapes.json"
    done = _snakemake(work, env, stamp, "container_image=unused.sif")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    argv = ["-m", "mtl_pipelines.cli", "prepare", "cityscapes", "--profile", "smoke", "--stamp", stamp]
    assert _calls(tmp_path) == [argv]
    assert (work / stamp).is_file() and (work / AWKWARD / "logs" / "prepare" / "cityscapes.log").is_file()


# --- mtl dvc ------------------------------------------------------------------------------------------------


def _expanded_stages(root: Path) -> dict[str, Any]:
    """The stages DVC expands from dvc.yaml + params.yaml under ``root``, by name."""
    from dvc.repo import Repo

    subprocess.run([str(BIN / "dvc"), "init", "--no-scm", "-q"], cwd=root, check=True, timeout=120)
    repo = Repo(str(root))
    try:
        return {stage.name: stage for stage in repo.index.stages}
    finally:
        repo.close()


def test_dvc_commands_quote_any_path(tmp_path: Path) -> None:
    """Even a profile that bypasses the loader's check (``render_profile`` takes a mapping) cannot inject:
    every command DVC expands, run through the shell, passes the hostile paths as single arguments."""
    profile = grid.load_profile("smoke")
    profile["results_dir"] = HOSTILE
    profile["reports_dir"] = HOSTILE.replace("results", "reports")
    dvc_text, params_text, _ = dvc.render_profile(profile)
    root = tmp_path / "repo"
    root.mkdir()
    (root / "dvc.yaml").write_text(dvc_text)
    (root / "params.yaml").write_text(params_text)
    stages = _expanded_stages(root)
    env = _fake_python(tmp_path)
    kinds = {}
    for name, stage in stages.items():
        kinds.setdefault(name.split("@")[0], stage)
    assert set(kinds) >= {"render", "train", "evaluate", "run", "report", "index"}
    expected = {
        "render": ["prepare", "cityscapes", "--profile", "smoke", "--stamp", f"{HOSTILE}/prepared/cityscapes.json"],
        "train": ["train", "--params", "params.yaml", "--job"],
        "evaluate": ["evaluate", "--params", "params.yaml", "--job"],
        "report": ["report"],
        "index": ["report", "index", "--profile", "smoke"],
    }
    for kind, stage in kinds.items():
        commands = stage.cmd if isinstance(stage.cmd, list) else [stage.cmd]
        for command in commands:
            subprocess.run(["sh", "-c", command], cwd=root, env=env, capture_output=True, timeout=60)
        if kind in expected:
            argv = _calls(tmp_path)[-len(commands)]
            assert argv[:2] == ["-m", "mtl_pipelines.cli"] and argv[2 : 2 + len(expected[kind])] == expected[kind]
        if kind in ("train", "evaluate"):
            job = name_of(stage)
            argv = _calls(tmp_path)[-1]
            assert argv[argv.index("--runs-root") + 1] == f"{HOSTILE}/runs"
            assert argv[argv.index("--stamp") + 1].startswith(f"{HOSTILE}/dvc/") and job in argv
    # the run stage's `test -s` checks are shell builtins: they ran, found nothing and injected nothing
    _no_pwned(tmp_path)
    assert (root / HOSTILE / "prepared" / "cityscapes.json").is_file()


def name_of(stage: Any) -> str:
    return stage.name.split("@", 1)[1]


def test_dvc_refuses_ids_that_are_not_plain_tokens() -> None:
    profile = grid.load_profile("smoke")
    profile["name"] = "smoke;id"
    with pytest.raises(ValueError, match="profile name"):
        dvc.render_profile(profile)
