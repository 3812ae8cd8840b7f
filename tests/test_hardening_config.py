"""Issue 15 items 4 and 11: the whole resolved config is validated before anything is written.

Refused values name the file, the field path, the value and the valid range (the table of
tests/fault_injection holds one row per bad value); here: what validation must not break.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from tiny_configs import scenes_config

from mtl_pipelines import config as cfg
from mtl_pipelines import grid
from mtl_pipelines.cli import main

TINY = scenes_config(
    "tiny", {"name": "exact+cagrad", "options": {"c": 0.4}}, train={"epochs": 1, "seed": 0}, sizes=(4, 4, 4)
)


def test_a_refused_value_writes_nothing_so_the_corrected_config_trains_in_that_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the run directory got config.yaml before the method refused c=-1, then refused the fix."""
    bad = copy.deepcopy(TINY)
    bad["method"]["options"]["c"] = -1
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(bad))
    run_dir = tmp_path / "run"
    assert main(["train", str(path), "--run-dir", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: method.options.c = -1: c must be a finite number >= 0, got -1.0" in err
    assert not run_dir.exists()
    path.write_text(yaml.safe_dump(TINY))
    assert main(["train", str(path), "--run-dir", str(run_dir), "--quiet"]) == 0
    assert json.loads((run_dir / "final.json").read_text())["method"] == "exact+cagrad"


def test_an_estimator_option_refused_by_mtl_core_is_named() -> None:
    config = copy.deepcopy(TINY)
    config["method"] = {"name": "fmtl+imtl", "options": {"variant": "bogus"}}
    with pytest.raises(cfg.ConfigError, match=r"x\.yaml: method\.options\.variant = 'bogus'"):
        cfg.validate(config, "x.yaml")


def test_integers_must_be_integers_but_floats_may_be_written_as_integers() -> None:
    config = copy.deepcopy(TINY)
    config["optimizer"]["lr"] = 1  # a number field takes an int
    config["train"]["epochs"] = 3
    cfg.validate(config)
    config["train"]["epochs"] = 3.0
    with pytest.raises(cfg.ConfigError, match=r"train\.epochs: 3\.0 is not of type 'integer'"):
        cfg.validate(config)


def test_last_k_equal_to_epochs_is_valid() -> None:
    config = copy.deepcopy(TINY)
    config["train"]["epochs"], config["eval"]["last_k"] = 3, 3
    cfg.validate(config)


def test_every_profile_run_still_validates() -> None:
    """The meta-device checks accept every run the smoke and default profiles plan (no false refusal); a run of
    another kind (MT10 SAC: no dataset, no model to build) is validated by its kind's own resolver."""
    from mtl_pipelines import kinds

    for name in ("smoke", "default"):
        runs = grid.expand(grid.load_profile(name))
        assert runs
        for run in runs.values():
            if kinds.kind_of(run.config) == kinds.SUPERVISED:
                cfg.validate(run.config, run.run_id)
            else:
                kinds.resolve(run.config, run.run_id)


def test_a_directory_or_binary_config_is_named(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match=r"is a directory; give a YAML run config file"):
        cfg.load(tmp_path)
    binary = tmp_path / "x.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(cfg.ConfigError, match=r"x\.yaml: not UTF-8 text \(byte 0"):
        cfg.load(binary)
