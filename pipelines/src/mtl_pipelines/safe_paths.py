"""Profile values that end up in shell commands: path-like values match a safe pattern, ids are plain tokens.

Snakemake and ``mtl dvc`` paste the results and reports directories, data roots, cache directories, the
profile name and the run, job, study and benchmark ids into shell commands. Every interpolation is quoted
(``{output:q}`` in the rules, :func:`shlex.quote` in :mod:`mtl_pipelines.dvc`); this module is the second
line of defence: a profile whose path-like values contain anything a shell, Snakemake (``{`` ``}``: its
wildcards) or DVC (``${``: its templating) would interpret is refused before anything runs, with the file,
field, value and what is valid (issue 15 item 2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["PATH_PUNCTUATION", "TOKEN_CHARS", "check_path", "check_profile", "check_token", "path_like_fields"]

# Letters and digits (any script), and . / _ - + , @ = : ~ and the space. No quotes, $, `, \, ;, &, |, <, >,
# parentheses, braces, brackets, globs (* ? !), # or % and no control characters (newline, tab).
PATH_PUNCTUATION = "./_+,@=:~-"
_PATH = re.compile(rf"[\w {re.escape(PATH_PUNCTUATION)}]+")
# Names that also become file names and words of commands (profile, run, job, study and benchmark ids).
TOKEN_CHARS = "A-Za-z0-9_.+-"
_TOKEN = re.compile(rf"[{TOKEN_CHARS}]+")
# Keys whose values are paths: results_dir, reports_dir, cache_dir, root, data_root, ...
_PATH_KEY = re.compile(r"(?:.+_)?(?:dir|root|path)")


def check_path(value: Any, where: str) -> str:
    """``value`` if it is a safe path (ValueError naming ``where``, the value and the valid characters)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {value!r} is not a path (a non-empty string)")
    bad = sorted({c for c in value if not _PATH.fullmatch(c)})
    if bad:
        raise ValueError(
            f"{where}: {value!r} contains {''.join(bad)!r}; a path may contain letters, digits, spaces and "
            f"{' '.join(PATH_PUNCTUATION)} only (it is pasted into shell commands)"
        )
    if value != value.strip() or value.startswith("-") or any(p.startswith("-") for p in value.split("/")):
        raise ValueError(
            f"{where}: {value!r} starts or ends with a space or has a part starting with '-' "
            "(it would be read as an option)"
        )
    return value


def check_token(value: Any, where: str) -> str:
    """``value`` if it is a plain token ``[A-Za-z0-9_.+-]+`` not starting with '-' or '.' (ValueError)."""
    if not isinstance(value, str) or not _TOKEN.fullmatch(value) or value[0] in "-.":
        raise ValueError(f"{where}: {value!r} is not a valid name; use letters, digits and _ . + - (not first: - or .)")
    return value


def path_like_fields(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every ``(dotted field, value)`` of ``data`` whose key names a path (``*_dir``, ``*root``, ``*path``)."""
    out: list[tuple[str, Any]] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            field = f"{prefix}.{key}" if prefix else str(key)
            if _PATH_KEY.fullmatch(str(key)) and (value is not None and not isinstance(value, (Mapping, list))):
                out.append((field, value))
            else:
                out += path_like_fields(value, field)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += path_like_fields(value, f"{prefix}[{i}]")
    return out


def check_profile(profile: Mapping[str, Any], where: str) -> None:
    """Refuse a profile (``where``: its file) whose name, benchmark keys or path-like values are unsafe."""
    check_token(profile.get("name"), f"{where}: field 'name'")
    for key in profile.get("benchmarks") or {}:
        check_token(key, f"{where}: benchmark key")
    for field, value in path_like_fields(profile):
        check_path(value, f"{where}: field {field!r}")
