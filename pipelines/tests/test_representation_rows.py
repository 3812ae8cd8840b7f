"""Per-task gradients w.r.t. the shared representation z of a training step (seed 004 Fig. 2), taken from the
step's own first forward (mtl_pipelines.representation): equal to an independent autograd computation, and
the step's update is the same with and without them."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn

import mtl_core
from mtl_pipelines.representation import RepresentationRows

TASKS = ("a", "b", "c")


class TwoLayer(nn.Module):
    """encode: linear + tanh (with dropout: a second forward would draw differently); decode: linear heads."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.3), nn.Tanh())
        self.heads = nn.ModuleDict({t: nn.Linear(6, 1) for t in TASKS})
        self.tasks = list(TASKS)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor, tasks=None) -> dict[str, torch.Tensor]:
        return {t: self.heads[t](z).squeeze(-1) for t in (tasks or TASKS)}

    def forward(self, x: torch.Tensor, tasks=None) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x), tasks)

    def shared_parameters(self):
        return list(self.encoder.parameters())

    def task_parameters(self, task: str):
        return list(self.heads[task].parameters())


def _setup(method: str):
    torch.manual_seed(0)
    model = TwoLayer()
    step = mtl_core.MTLStep(model, method, functools.partial(torch.optim.SGD, lr=0.1))
    x = torch.randn(5, 4, dtype=torch.float32)
    y = {t: torch.randn(5) for t in TASKS}
    return model, step, x, y


@pytest.mark.parametrize("method", ["ls", "exact+mgda", "sam+ls"])
def test_rows_wrt_z_are_the_gradients_of_the_steps_own_forward_and_change_nothing(method: str) -> None:
    model, step, x, y = _setup(method)
    twin = copy.deepcopy(model)
    twin_step = mtl_core.MTLStep(twin, method, functools.partial(torch.optim.SGD, lr=0.1))
    rows = RepresentationRows()

    def closure(m, tasks=None):
        names = list(TASKS) if tasks is None else list(tasks)
        with rows.capture(m, full=tasks is None):
            predictions = m(x) if tasks is None else m(x, tasks=names)
        losses = {t: ((predictions[t] - y[t]) ** 2).mean() for t in names}
        rows.compute(losses)
        return losses

    torch.manual_seed(1)  # the same dropout draws in both steps
    rows.arm()
    step.step(closure)
    # independent: re-run the first forward's computation with the same dropout draw, grads w.r.t. z by autograd
    torch.manual_seed(1)
    reference = copy.deepcopy(twin)
    z = reference.encode(x)
    expected = torch.stack(
        [torch.autograd.grad(((reference.decode(z)[t] - y[t]) ** 2).mean(), z)[0].flatten() for t in TASKS]
    )
    assert rows.rows is not None and rows.rows.shape == (3, 5 * 6)
    torch.testing.assert_close(rows.rows, expected)

    def plain(m, tasks=None):
        names = list(TASKS) if tasks is None else list(tasks)
        predictions = m(x) if tasks is None else m(x, tasks=names)
        return {t: ((predictions[t] - y[t]) ** 2).mean() for t in names}

    torch.manual_seed(1)
    twin_step.step(plain)
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q)  # the update is that of a step without the rows


def test_unarmed_captures_nothing() -> None:
    model, step, x, y = _setup("ls")
    rows = RepresentationRows()

    def closure(m, tasks=None):
        with rows.capture(m):
            predictions = m(x)
        losses = {t: ((predictions[t] - y[t]) ** 2).mean() for t in TASKS}
        rows.compute(losses)
        return losses

    rows.arm(False)
    step.step(closure)
    assert rows.rows is None and "encode" not in vars(model)
