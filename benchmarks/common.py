"""The fixed benchmark problem shared by our runner and the peers' runner (no mtl_core import here).

A small conv encoder-decoder with K per-pixel regression heads, batch 32 x 3 x 32 x 32, as described in
the foundation issue: every method is timed on exactly this model, batch and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, padding=1),
            nn.BatchNorm2d(width // 2),
            nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Head(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(width, width // 2, 3, padding=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(width // 2, 1, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Problem:
    """Model, optimiser and one fixed batch for K tasks."""

    def __init__(self, num_tasks: int, device: str = "cpu", batch: int = 32, size: int = 32, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.k = num_tasks
        self.device = torch.device(device)
        self.encoder = Encoder().to(self.device)
        self.heads = nn.ModuleList(Head() for _ in range(num_tasks)).to(self.device)
        self.x = torch.randn(batch, 3, size, size, device=self.device)
        self.targets = torch.randn(num_tasks, batch, 1, size, size, device=self.device)
        self.optimizer = torch.optim.SGD([*self.encoder.parameters(), *self.heads.parameters()], lr=1e-3)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        z, losses = self.forward_list()
        return z, torch.stack(losses)

    def forward_list(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        z = self.encoder(self.x)
        return z, [nn.functional.mse_loss(h(z), t) for h, t in zip(self.heads, self.targets)]


class BenchModel(nn.Module):
    """A problem's encoder and heads behind the model protocol of ``mtl_core.MTLStep`` (encode, decode,
    shared_parameters, task_parameters); ``closure`` gives the step the losses of the problem's batch."""

    def __init__(self, problem: Problem) -> None:
        super().__init__()
        self.problem = problem
        self.encoder = problem.encoder
        self.heads = nn.ModuleDict({f"t{i}": h for i, h in enumerate(problem.heads)})
        self.tasks = list(self.heads)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor, tasks: list[str] | None = None) -> dict[str, torch.Tensor]:
        return {t: h(z) for t, h in self.heads.items() if tasks is None or t in tasks}

    def shared_parameters(self):
        return self.encoder.parameters()

    def task_parameters(self, task: str):
        return self.heads[task].parameters()

    @staticmethod
    def closure(model: BenchModel, tasks: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Task-restricted (``mtl_core.step.LossClosure``): ``tasks`` selects the heads that run."""
        p = model.problem
        out = model.decode(model.encode(p.x), tasks)
        return {t: nn.functional.mse_loss(out[t], target) for t, target in zip(model.tasks, p.targets) if t in out}

    @staticmethod
    def full_closure(model: BenchModel) -> dict[str, torch.Tensor]:
        """The same losses, always all K heads (a closure without ``tasks``)."""
        return BenchModel.closure(model)


def parser(doc: str, out_name: str) -> argparse.ArgumentParser:
    """The options every benchmark script shares (device, K values, repeats, threads, output file)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--ks", type=int, nargs="+", default=[2, 3, 11, 40])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / out_name))
    return p


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm_up_process(device: str = "cpu", seconds: float = 2.0) -> None:
    """Run the problem's steps for a while before any measurement: the first timings of a fresh process are
    slow (thread pool start, allocator growth) and otherwise inflate whatever is timed first."""
    p = Problem(3, device)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        p.optimizer.zero_grad(set_to_none=True)
        p.forward()[1].sum().backward()
        p.optimizer.step()
    sync(p.device)


def time_fn(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_interleaved(
    fns: dict[str, Callable[[], object]], device: torch.device, repeats: int, warmup: int = 2
) -> dict[str, float]:
    """Median wall time of each ``fn`` in seconds, timed in rounds (one run of every ``fn`` per round).

    On a VM whose speed drifts by 2x within minutes, timing one function's repeats back to back and then the
    next puts the drift into their ratio; interleaving spreads it over all of them alike.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    info: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }
    try:
        model = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in model.splitlines():
            if line.startswith("Model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:  # the thread pools next to torch's (mtl_core runs its K x K solves with them on one thread)
        from threadpoolctl import threadpool_info

        info["thread_pools"] = [
            {"library": Path(p["filepath"]).name, "api": p["user_api"], "threads": p["num_threads"]}
            for p in threadpool_info()
        ]
    except ImportError:
        pass
    return info


def write_json(path: str, payload: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(tmp, path)
