"""Tiny models satisfying the step's model protocol, loss closures and a call-counting wrapper.

Shared by test_step*.py, test_estimators*.py and test_consmtl*.py (no tests here).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine the thread pool's
    spin-waiting makes every op tens of times slower: run these tests on one thread, then restore."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyMTL(nn.Module):
    """Conv encoder (optionally with BatchNorm / dropout) and one linear head per task; float64 by default."""

    def __init__(self, k: int = 3, *, seed: int = 0, bn: bool = True, dropout: float = 0.0, width: int = 4):
        super().__init__()
        torch.manual_seed(seed)
        self.tasks = [f"t{i}" for i in range(k)]
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1)]
        if bn:
            layers.append(nn.BatchNorm2d(width))
        layers += [nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(4 * width, 6))
        self.encoder = nn.Sequential(*layers)
        self.heads = nn.ModuleDict({t: nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1)) for t in self.tasks})
        self.double()

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z, tasks=None):
        return {t: head(z).squeeze(-1) for t, head in self.heads.items() if tasks is None or t in tasks}

    def forward(self, x, tasks=None):
        z = self.encode(x)  # subclasses in the tests override decode(z) without tasks
        return self.decode(z) if tasks is None else self.decode(z, tasks)

    def shared_parameters(self):
        return self.encoder.parameters()

    def task_parameters(self, task):
        return self.heads[task].parameters()


def batch(k: int = 3, n: int = 6, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 5, 5, generator=g, dtype=torch.float64)
    y = torch.randn(n, k, generator=g, dtype=torch.float64)
    return x, y


def closure_for(x, y, scales=None):
    """``closure(model) -> Tensor[K]``: squared error of every task, optionally scaled per task."""

    def closure(model):
        preds = model(x)
        losses = torch.stack([((preds[t] - y[:, i]) ** 2).mean() for i, t in enumerate(model.tasks)])
        return losses if scales is None else losses * torch.as_tensor(scales, dtype=losses.dtype)

    return closure


def restricted_closure_for(x, y, log=None):
    """``closure(model, tasks=None) -> {task: loss}`` through the requested heads only; logs each call's tasks."""

    def closure(model, tasks=None):
        if log is not None:
            log.append(tasks)
        preds = model(x, tasks)
        return {t: ((preds[t] - y[:, i]) ** 2).mean() for i, t in enumerate(model.tasks) if t in preds}

    return closure


def params_of(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


class Counter:
    """Counts forwards (with / without grad) through ``model.encode`` and backward passes reaching the encoder.

    A backward pass is counted when it computes the gradient of the encoder's first weight, i.e. when it
    runs through the whole encoder; passes through the heads only are not counted.
    """

    def __init__(self, model: TinyMTL):
        self.grad_forwards = 0
        self.nograd_forwards = 0
        self.backwards = 0
        original = type(model).encode

        def encode(x):
            if torch.is_grad_enabled():
                self.grad_forwards += 1
            else:
                self.nograd_forwards += 1
            return original(model, x)

        model.encode = encode
        first = next(iter(model.encoder.parameters()))
        first.register_hook(self._on_backward)

    def _on_backward(self, grad):
        self.backwards += 1

    def counts(self) -> tuple[int, int, int]:
        return self.grad_forwards, self.nograd_forwards, self.backwards
