"""Issue 15 items 3 and 8: names from untrusted input stay inside their root; files get the umask's mode.

(The command-line forms of item 3, with "nothing written" checked, are rows of tests/fault_injection.)
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mtl_pipelines import config as cfg
from mtl_pipelines import grid, io, jobs


@pytest.mark.parametrize("name", ["../x", "..", ".", "a/b", "/abs", "a\\b", "", " x", "x y", "-x", "é", "a" * 201])
def test_unsafe_names_are_refused_naming_the_value(name: str) -> None:
    with pytest.raises(io.UnsafePathError, match=r"run id: .* is not a valid name; valid: 1-200 characters"):
        io.check_name(name, "run id")


@pytest.mark.parametrize("name", ["tiny", "cityscapes-mtan-exact_pcgrad-0123456789ab", "a.b", "A_1", "a" * 200])
def test_safe_names_pass(name: str) -> None:
    assert io.check_name(name, "run id") == name


def test_schema_name_pattern_is_the_safe_name_of_io() -> None:
    assert cfg.schema()["properties"]["name"]["pattern"] == f"^{io.SAFE_NAME.pattern}$"


@pytest.mark.parametrize(
    ("path", "ok"),
    [("r/runs/a", True), ("r/runs/a/b", True), ("r/runs/../x", False), ("r/runs", False), ("/etc/x", False)],
)
def test_check_within(tmp_path: Path, path: str, ok: bool) -> None:
    root = tmp_path / "r" / "runs"
    target = path if path.startswith("/") else str(tmp_path / path)
    if ok:
        assert io.check_within(target, root, "run directory") == Path(target)
    else:
        with pytest.raises(io.UnsafePathError, match="lies outside its root"):
            io.check_within(target, root, "run directory")


def test_run_dir_and_run_name_stay_under_their_root(tmp_path: Path) -> None:
    profile = {"results_dir": str(tmp_path / "results")}
    assert grid.run_dir(profile, "ok-1") == tmp_path / "results" / "runs" / "ok-1"
    with pytest.raises(io.UnsafePathError, match=r"run id: '\.\./\.\./x'"):
        grid.run_dir(profile, "../../x")
    assert cfg.run_name({"name": "given"}, "dir/x y.yaml") == "given"  # validated by the schema
    assert cfg.run_name({}, "dir/my-run.yaml") == "my-run"
    with pytest.raises(io.UnsafePathError, match=r"x y\.yaml: file name \(the run name\): 'x y'"):
        cfg.run_name({}, "x y.yaml")


def test_job_spec_refuses_escaping_run_ids_however_it_is_built(tmp_path: Path) -> None:
    """The DVC form builds specs without a manifest file: the check lives in JobSpec itself."""
    run = jobs.JobRun("../../x", {}, [])
    with pytest.raises(io.UnsafePathError, match=r"params\.yaml:jobs\.j: runs\[0\]\.id: '\.\./\.\./x'"):
        jobs.JobSpec("j", tmp_path / "runs", [run], "params.yaml:jobs.j")
    with pytest.raises(io.UnsafePathError, match=r"runs\[0\]\.stl\[0\]: '/abs'"):
        jobs.JobSpec("j", tmp_path / "runs", [jobs.JobRun("a", {}, ["/abs"])])
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_get_the_mode_the_umask_gives(tmp_path: Path, umask: int, mode: int) -> None:
    """Item 8: ``tempfile.mkstemp`` made every output 0600, breaking group-shared results (docs/hpc.md)."""
    previous = os.umask(umask)
    try:
        io.write_json(tmp_path / "a.json", {"x": 1})
        with io.atomic_open(tmp_path / "b.pt", "wb") as handle:
            handle.write(b"\0")
    finally:
        os.umask(previous)
    for name in ("a.json", "b.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.pt"]  # no temp file left


def test_a_failed_write_leaves_neither_file_nor_temp(tmp_path: Path) -> None:
    (tmp_path / "keep.json").write_text("old")
    with pytest.raises(RuntimeError), io.atomic_open(tmp_path / "keep.json") as handle:
        handle.write("half")
        raise RuntimeError("killed")
    assert (tmp_path / "keep.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]
