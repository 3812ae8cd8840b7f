"""Data loading of a run (``train.loader``): worker processes change how batches are produced, never which. A
run with two worker processes killed (SIGKILL, workers included) and resumed ends bit-identical to an
uninterrupted run in one process, on augmented data; the loader options and the determinism setting are
validated and are not part of the run's identity."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from tiny_configs import scenes_config

from mtl_pipelines import config as cfg
from mtl_pipelines import run as runmod
from mtl_pipelines.data import loader_options
from mtl_pipelines.train import train

sys.path.insert(0, str(Path(__file__).parent))
from run_helpers import kill_after_first_checkpoint


def _config(workers: int, cache: Path | None = None) -> dict[str, Any]:
    """Augmented batches are compared across worker processes in packages/mtl-data/tests/test_loader.py (a
    model on the 128x256 augmented Cityscapes fixture costs seconds per step here); this run uses stand-in
    images."""
    return scenes_config(
        "workers",
        train={
            "epochs": 3,
            "seed": 2,
            "max_steps_per_epoch": 1,
            "threads": 2,
            "loader": {"num_workers": workers, "persistent_workers": True},
        },
        dataset_options={"cache_dir": str(cache)} if cache else None,
    )


def _without_seconds(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in runmod.MEASURED_FIELDS}


@pytest.mark.slow
def test_a_run_with_workers_killed_and_resumed_equals_an_uninterrupted_run_in_one_process(tmp_path: Path) -> None:
    """Slow (~40 s on 2 shared cores): three trainings (reference, killed, resumed), two start 6 workers."""
    cache = tmp_path / "standin"
    reference = train(_config(workers=0, cache=cache), tmp_path / "reference", progress=False)

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_config(workers=2, cache=cache)))
    run_dir = tmp_path / "killed"
    assert kill_after_first_checkpoint(path, run_dir) in (1, 2)  # killed in epoch 2 or 3

    resumed = train(_config(workers=2, cache=cache), run_dir, progress=False)
    assert _without_seconds(resumed) == _without_seconds(reference)
    a = torch.load(run_dir / runmod.CHECKPOINT, weights_only=True)["model"]
    b = torch.load(tmp_path / "reference" / runmod.CHECKPOINT, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    json.loads((run_dir / runmod.FINAL).read_text())


def test_loader_options_and_determinism_are_validated_and_not_part_of_the_identity(tmp_path: Path) -> None:
    base = _config(workers=0)
    other = copy.deepcopy(base)
    other["train"]["loader"] = {"num_workers": 3, "pin_memory": True, "persistent_workers": False}
    other["train"]["deterministic"] = "strict"
    assert cfg.config_hash(other) == cfg.config_hash(base)
    for field, value, words in [
        ("loader", {"num_workers": -1}, r"train\.loader\.num_workers: -1 is less than the minimum of 0"),
        ("loader", {"pin_memory": "yes"}, r"train\.loader\.pin_memory: 'yes' is not valid; valid choices: auto"),
        ("loader", {"workers": 2}, r"train\.loader: .*'workers'.*valid fields: num_workers, persistent_workers"),
        ("deterministic", "fast", r"train\.deterministic: 'fast' is not valid; valid choices: True, False, strict"),
    ]:
        bad = copy.deepcopy(base)
        bad["train"][field] = value
        with pytest.raises(cfg.ConfigError, match=words):
            cfg.validate(bad, "run.yaml")


def test_pinned_memory_follows_the_device_unless_set() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert loader_options({}, cuda).pin_memory and not loader_options({}, cpu).pin_memory
    assert not loader_options({"loader": {"pin_memory": False}}, cuda).pin_memory
    options = loader_options({"loader": {"num_workers": 2}}, cpu).dataloader_kwargs()
    assert options == {"num_workers": 2, "pin_memory": False, "persistent_workers": True}
    assert loader_options({}, cpu).dataloader_kwargs()["persistent_workers"] is False  # needs workers


@pytest.mark.parametrize("setting", [True, False, "strict"])
def test_the_determinism_setting_sets_the_torch_flags(setting: Any) -> None:
    try:
        runmod.set_determinism(setting, torch.device("cpu"))
        on = setting is not False
        assert torch.backends.cudnn.deterministic is on and torch.backends.cudnn.benchmark is not on
        assert torch.are_deterministic_algorithms_enabled() is on
        assert torch.is_deterministic_algorithms_warn_only_enabled() is (setting is True)
    finally:
        runmod.set_determinism(True, torch.device("cpu"))
    with pytest.raises(cfg.ConfigError, match=r"train\.deterministic: 'x'"):
        runmod.set_determinism("x", torch.device("cpu"))


def test_a_profile_loader_reaches_every_run_without_changing_its_identity() -> None:
    """`loader:` of a pipeline profile (the paper profile sets 4 workers) is each run's train.loader; the run
    ids (config hashes) are those of the profile without it."""
    from mtl_pipelines import grid, kinds

    profile = grid.load_profile("smoke")
    assert "loader" not in profile  # the smoke and default profiles use the defaults (0 workers, measured)
    plain = grid.expand(profile)
    with_workers = grid.expand({**profile, "loader": {"num_workers": 3, "pin_memory": "auto"}})
    assert sorted(with_workers) == sorted(plain)
    supervised = [r for r in with_workers.values() if kinds.kind_of(r.config) == kinds.SUPERVISED]
    assert supervised  # MT10 SAC runs (another kind) collect their data from simulators: no loader
    assert all(r.config["train"]["loader"] == {"num_workers": 3, "pin_memory": "auto"} for r in supervised)
    paper = yaml.safe_load((Path(__file__).parents[1] / "pipelines/configs/profiles/paper.yaml").read_text())
    assert paper["loader"]["num_workers"] > 0 and paper["loader"]["pin_memory"] == "auto"
