"""The QM9 protocol's ReduceLROnPlateau schedule (AvivNavon/nash-mtl experiments/quantum_chemistry/trainer.py:
factor 0.7, patience 5, min lr 1e-5, stepped with the validation Delta_m) as a run-config schedule."""

from __future__ import annotations

import pytest
import torch

from mtl_data.tasks import RegressionTask
from mtl_pipelines.config import ConfigError, resolve
from mtl_pipelines.run import _schedule
from mtl_pipelines.train import _validation_delta_m

CONFIG = {
    "dataset": {"name": "cityscapes_standin"},
    "model": {"name": "mtan"},
    "method": {"name": "ls"},
    "train": {"epochs": 3},
}


def test_plateau_needs_patience_and_min_lr() -> None:
    with pytest.raises(ConfigError, match=r"schedule: .(min_lr|patience). is a required property"):
        resolve({**CONFIG, "schedule": {"name": "plateau", "gamma": 0.7}})
    with pytest.raises(ConfigError, match=r"schedule\.gamma"):
        resolve({**CONFIG, "schedule": {"name": "plateau", "gamma": 1.5, "patience": 5, "min_lr": 1e-5}})
    cfg = resolve({**CONFIG, "schedule": {"name": "plateau", "gamma": 0.7, "patience": 5, "min_lr": 1e-5}})
    assert cfg["schedule"]["patience"] == 5


def test_validation_delta_m_against_the_first_epoch() -> None:
    specs = {"a": RegressionTask("a"), "b": RegressionTask("b")}
    history = [{"val": {"a": {"mae": 2.0}, "b": {"mae": 4.0}}}, {"val": {"a": {"mae": 1.0}, "b": {"mae": 5.0}}}]
    # lower is better: a improves by 50 %, b worsens by 25 % -> Delta_m = (-50 + 25) / 2
    assert _validation_delta_m(history, specs) == pytest.approx(-12.5)


def test_plateau_reduces_the_lr_after_patience_epochs_without_improvement() -> None:
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    scheduler = _schedule({"name": "plateau", "gamma": 0.7, "patience": 5, "min_lr": 1e-5}, optimizer, 300)
    lrs = []
    for value in [0.0] + [1.0] * 12:  # one improvement, then a plateau
        scheduler.step(value)
        lrs.append(optimizer.param_groups[0]["lr"])
    # epochs 2..6 are the 5 tolerated bad epochs; the 6th bad epoch (7th step) cuts the lr by 0.7
    assert lrs[:6] == [1e-3] * 6 and lrs[6] == pytest.approx(7e-4)
    assert lrs[12] == pytest.approx(4.9e-4)  # and again after 6 more (cooldown 0)
