"""Every code snippet of README.md, packages/*/README.md and pipelines/README.md works as written.

- ``python`` blocks: all blocks of one README run in order in one fresh interpreter (a reader's session:
  later blocks use the names earlier ones defined, e.g. the set-up block of the mtl-core README), in an empty
  working directory; a failure names the README line of the block.
- ``bash`` blocks: every command is checked against what it names. Install commands are run in a form that
  changes nothing: ``pip install <path>[extras]`` as a ``--dry-run`` without dependencies or an index (the
  package builds; the extras exist), ``pip wheel <path>`` for real into a temporary directory; a package name
  that is not a path is an error (nothing of ours is published on a package index). The long-running entry
  points (bootstrap, Snakemake, pytest) are checked for the script, flags, targets and profiles they name.
  A command no rule knows fails the test: add a rule rather than leaving it unchecked.
- ``yaml`` blocks are parsed; a run config is validated against the run schema.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent
READMES = [ROOT / "README.md", *sorted((ROOT / "packages").glob("*/README.md")), ROOT / "pipelines" / "README.md"]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
SHELLS = {"bash", "sh", "shell", "console"}


def blocks(readme: Path, languages: set[str]) -> list[tuple[int, str]]:
    """(line of the first code line, code) of each fenced block in one of ``languages``."""
    text = readme.read_text()
    return [
        (text[: m.start()].count("\n") + 2, m.group(2)) for m in FENCE.finditer(text) if m.group(1).lower() in languages
    ]


def _id(readme: Path) -> str:
    return str(readme.relative_to(ROOT))


# ------------------------------------------------------------------------------------------------ python
_RUNNER = """
import json, sys
namespace = {"__name__": "__main__"}
for name, line, code in json.load(sys.stdin):
    # blank lines pad the code so that a traceback names the README's own line numbers
    exec(compile("\\n" * (line - 1) + code, name, "exec"), namespace)
"""


@pytest.mark.parametrize("readme", [r for r in READMES if blocks(r, {"python"})], ids=_id)
def test_python_snippets_run_as_written(readme: Path, tmp_path: Path) -> None:
    code = [(_id(readme), line, text) for line, text in blocks(readme, {"python"})]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps(code),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, f"a snippet of {_id(readme)} fails:\n{done.stderr[-4000:]}"


# ------------------------------------------------------------------------------------------------ shell
def _commands(code: str) -> list[list[str]]:
    """The commands of a shell block: lines joined at ``\\``, comments dropped, split at ``&&``, ``||``, ``;``."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "||", ";"):
                if command:
                    out.append(command)
                command = []
            else:
                command.append(word)
    return out


def _local_package(spec: str, where: str) -> tuple[Path, set[str]]:
    """The package directory and extras of a ``path[extra,...]`` install argument (AssertionError otherwise)."""
    found = re.fullmatch(r"([^\[\]]+)(?:\[([\w,-]+)\])?", spec)
    assert found, f"{where}: cannot read the install argument {spec!r}"
    path = ROOT / found.group(1)
    assert (path / "pyproject.toml").is_file(), (
        f"{where}: `{spec}` is not a directory of this repository with a pyproject.toml; our packages are not "
        "published on a package index: install them from the repository (pip install packages/<name>)"
    )
    extras = set(found.group(2).split(",")) if found.group(2) else set()
    declared = set(tomllib.loads((path / "pyproject.toml").read_text())["project"].get("optional-dependencies", {}))
    assert extras <= declared, f"{where}: {spec}: extras {sorted(extras - declared)} not in {sorted(declared)}"
    return path, extras


def _pip(args: list[str], where: str, tmp_path: Path) -> None:
    verb, rest = args[0], args[1:]
    options = {"-c", "--constraint", "-r", "--requirement", "-w", "--wheel-dir"}
    targets, skip = [], False
    for word in rest:
        if skip:
            skip = False
        elif word in options:
            skip = True
        elif not word.startswith("-"):
            targets.append(word)
    assert targets, f"{where}: pip {verb} without a package"
    for spec in targets:
        if spec.startswith(("git+", "http://", "https://")):
            pytest.fail(f"{where}: {spec}: a URL cannot be checked offline; give the repository path instead")
        path, _ = _local_package(spec, where)
        if verb == "install":  # builds the metadata, resolves nothing, installs nothing
            check = ["install", "--dry-run", "--no-deps", "--no-index", "--no-build-isolation", "--quiet", spec]
        else:  # pip wheel: really builds the wheel, into a temporary directory
            check = ["wheel", "--no-deps", "--no-index", "--no-build-isolation", "--quiet", "-w", str(tmp_path), spec]
        done = subprocess.run(
            [sys.executable, "-m", "pip", *check], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{where}: pip {' '.join(check)} fails:\n{done.stderr[-2000:]}"
        if verb == "wheel":
            name = tomllib.loads((path / "pyproject.toml").read_text())["project"]["name"].replace("-", "_")
            assert list(tmp_path.glob(f"{name}-*.whl")), f"{where}: no wheel of {name} in {tmp_path}"


def _rules() -> set[str]:
    sources = [ROOT / "Snakefile", *(ROOT / "pipelines" / "rules").glob("*.smk")]
    return {m.group(1) for s in sources for m in re.finditer(r"^rule (\w+):", s.read_text(), re.M)}


def _snakemake(args: list[str], where: str) -> None:
    words = iter(args)
    for word in words:
        if word == "--profile":
            profile = next(words)
            assert (ROOT / profile).is_dir(), f"{where}: snakemake profile {profile} does not exist"
        elif word == "--config":
            for item in next(words).split():
                key, _, value = item.partition("=")
                if key == "profile":
                    assert (ROOT / "pipelines" / "configs" / "profiles" / f"{value}.yaml").is_file(), (
                        f"{where}: --config profile={value}: no such profile"
                    )
        elif word in ("--cores", "-c", "--jobs", "-j", "--sdm", "--software-deployment-method"):
            next(words)
        elif not word.startswith("-"):
            assert word in _rules(), f"{where}: snakemake target {word!r} is not a rule (rules: {sorted(_rules())})"


def _check_command(command: list[str], where: str, tmp_path: Path) -> None:
    program, args = command[0], command[1:]
    base = Path(program).name
    if base in ("pip", "pip3") or (base.startswith("python") and args[:2] == ["-m", "pip"]):
        _pip(args[2:] if args[:2] == ["-m", "pip"] else args, where, tmp_path)
    elif base == "bash" and args and args[0].startswith("scripts/"):
        script = ROOT / args[0]
        assert script.is_file(), f"{where}: {args[0]} does not exist"
        for flag in (a for a in args[1:] if a.startswith("--")):
            assert flag in script.read_text(), f"{where}: {args[0]} does not take {flag}"
    elif base == "snakemake":
        _snakemake(args, where)
    elif base.startswith("python") and args[:2] == ["-m", "pytest"]:
        for path in (a for a in args[2:] if not a.startswith("-")):
            assert (ROOT / path.split("::")[0]).exists(), f"{where}: pytest path {path} does not exist"
    elif program.startswith(".venv/bin/") and base == "mtl":
        done = subprocess.run([sys.executable, "-m", "mtl_pipelines.cli", *args, "--help"], capture_output=True)
        assert done.returncode == 0, f"{where}: `mtl {' '.join(args)}` is not a command"
    else:
        pytest.fail(f"{where}: no rule checks `{' '.join(command)}`: add one to {Path(__file__).name}")


@pytest.mark.parametrize("readme", [r for r in READMES if blocks(r, SHELLS)], ids=_id)
def test_shell_snippets_name_what_exists_and_install_commands_work(readme: Path, tmp_path: Path) -> None:
    for line, code in blocks(readme, SHELLS):
        for command in _commands(code):
            _check_command(command, f"{_id(readme)}:{line}", tmp_path)


def test_no_readme_offers_an_install_from_a_package_index() -> None:
    """Inline code too: `pip install mtl-core` (nothing is published) is not offered anywhere."""
    for readme in READMES:
        for found in re.finditer(r"pip install ([\"']?)([\w.\-\[\],/]+)\1", readme.read_text()):
            spec = found.group(2)
            if spec.startswith("-"):
                continue
            assert "/" in spec or spec in ("snakemake-executor-plugin-slurm",), (
                f"{_id(readme)}: `pip install {spec}` installs from a package index; our packages are not "
                "published: install from the repository (pip install packages/<name>)"
            )


# ------------------------------------------------------------------------------------------------ yaml
@pytest.mark.parametrize("readme", [r for r in READMES if blocks(r, {"yaml", "yml"})], ids=_id)
def test_yaml_snippets_parse_and_run_configs_are_valid(readme: Path) -> None:
    import jsonschema

    schema = json.loads((ROOT / "pipelines" / "src" / "mtl_pipelines" / "schemas" / "run.schema.json").read_text())
    for line, code in blocks(readme, {"yaml", "yml"}):
        data = yaml.safe_load(code)
        if isinstance(data, dict) and {"dataset", "model", "method"} <= set(data):
            errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]
            assert not errors, f"{_id(readme)}:{line}: the run config is not valid: {errors}"
