"""Third-party requirements of the monorepo's four distributions, read from their pyproject.toml files.

The container image installs the pinned stack in a layer of its own (cached until a dependency list or the
lock changes), before the project's source is copied in; that layer needs the dependency list without the
source, so this script reads it from the pyproject.toml files (PEP 621 `dependencies` plus the extras the
README install uses). The same list drives `pip download` of the offline wheelhouse on the host, so the
image and the README install resolve against the same lock file (requirements/constraints.txt).

    python containers/requirements.py [--root DIR]        # one requirement per line on stdout
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser is the `tomli` package
    import tomli as tomllib

# Distribution directory -> extras installed with it: those of scripts/bootstrap.sh (a test checks it), plus
# DVC for `dvc repro` inside the image.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "packages/mtl-core": (),
    "packages/mtl-data": ("all",),
    "packages/mtl-models": ("graph",),
    "pipelines": ("dvc", "rl"),
}
# Always pinned exactly, in the image as in scripts/bootstrap.sh.
TORCH_PINS = ("torch==2.14.1", "torchvision==0.29.1")
# Needed to build the project's own distributions without build isolation inside the image.
BUILD_REQUIREMENTS = ("setuptools>=69", "wheel")

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_requirements(root: Path, distributions: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """Requirements of `distributions` (default DISTRIBUTIONS: dir -> extras), minus the monorepo's own.

    Raises FileNotFoundError for a missing pyproject.toml and ValueError for an extra it does not define.
    """
    own: set[str] = set()
    projects = []
    for rel, extras in (DISTRIBUTIONS if distributions is None else distributions).items():
        path = root / rel / "pyproject.toml"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (distributions expected: {sorted(DISTRIBUTIONS)})")
        project = tomllib.loads(path.read_text())["project"]
        own.add(_canonical(project["name"]))
        optional = project.get("optional-dependencies", {})
        for extra in extras:
            if extra not in optional:
                raise ValueError(f"{path}: extra {extra!r} not defined; defined extras: {sorted(optional)}")
        projects.append((project.get("dependencies", []), [r for e in extras for r in optional[e]]))
    seen: dict[str, None] = {}
    for deps, extra_deps in projects:
        for req in [*deps, *extra_deps]:
            match = _NAME.match(req)
            if match is None:
                raise ValueError(f"cannot parse requirement {req!r}")
            # torch/torchvision get their exact pins; our own distributions are installed from source.
            if _canonical(match.group(1)) in own | {"torch", "torchvision"}:
                continue
            seen.setdefault(req.strip(), None)
    return [*TORCH_PINS, *BUILD_REQUIREMENTS, *seen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    sys.stdout.write("".join(f"{r}\n" for r in third_party_requirements(args.root)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
