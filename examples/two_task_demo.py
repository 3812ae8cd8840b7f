"""Train a two-task model with a few mtl_core methods and print their final losses.

The data is the two-task toy of seed 001 A2 (scalar inputs, both tasks are scalings of the input, L1
losses, one task in a 10x larger unit), built in memory: no download. A shared trunk of two layers of 20
units (LeakyReLU) and one two-layer head per task, Adam, 300 steps, seed 0.
"""

from __future__ import annotations

import time

import torch
from torch import nn

import mtl_core
from mtl_core import aggregators, weightings

METHODS = ["ls", "uw_o", "exact+mgda", "exact+pcgrad", "exact+cagrad", "exact+nash_mtl", "features+aligned_mtl"]


def make_model() -> tuple[nn.Module, nn.ModuleList]:
    trunk = nn.Sequential(nn.Linear(1, 20), nn.LeakyReLU(), nn.Linear(20, 20), nn.LeakyReLU())
    heads = nn.ModuleList(nn.Sequential(nn.Linear(20, 20), nn.LeakyReLU(), nn.Linear(20, 1)) for _ in range(2))
    return trunk, heads


def train(method: str, steps: int = 300, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    trunk, heads = make_model()
    x = torch.rand(256, 1)
    targets = [3.0 * x, 10.0 * (-2.0 * x)]  # task 2 is measured in a 10x smaller unit
    opt = torch.optim.Adam([*trunk.parameters(), *heads.parameters()], lr=1e-2)
    kind, _, name = method.rpartition("+")
    combiner = (weightings if not kind else aggregators).create(name, num_tasks=2)
    shared = list(trunk.parameters())
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        z = trunk(x)
        losses = torch.stack([nn.functional.l1_loss(h(z), t) for h, t in zip(heads, targets)])
        if not kind:
            combiner.loss(losses).backward()
        else:
            head_grads = torch.autograd.grad(losses.sum(), list(heads.parameters()), retain_graph=True)
            if kind == "features":  # combine in the representation space, back-propagate through the trunk
                z.backward(combiner(mtl_core.jacobian(losses, z, retain_graph=True), losses.detach()).view_as(z))
            else:
                d = combiner(mtl_core.jacobian(losses, shared), losses.detach())
                for p, g in zip(shared, mtl_core.unflatten_like(d, shared)):
                    p.grad = g
            for p, g in zip(heads.parameters(), head_grads):
                p.grad = g
        opt.step()
    with torch.no_grad():
        z = trunk(x)
        return torch.stack([nn.functional.l1_loss(h(z), t) for h, t in zip(heads, targets)])


def main() -> None:
    print(f"{'method':<22} {'loss task 1':>12} {'loss task 2':>12} {'seconds':>8}")
    for method in METHODS:
        start = time.perf_counter()
        losses = train(method)
        print(f"{method:<22} {losses[0]:>12.4f} {losses[1]:>12.4f} {time.perf_counter() - start:>8.2f}")


if __name__ == "__main__":
    main()
