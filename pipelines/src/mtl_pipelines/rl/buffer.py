"""The replay buffer of multi-task SAC: one ring per task, every environment step adds one transition per task.

The reference (facebookresearch/mtrl ``mtrl/replay_buffer.py``) keeps one ring of capacity 1M and samples the
batch uniformly, so each task's share of a batch of 1280 is 128 on average; here each task has its ring of
``capacity / K`` and a batch takes exactly ``batch_size / K`` of each task (the per-task losses are then means
over equally many samples, and a task never misses from a batch at small scale). Sampling draws from torch's
global generator (seeded and checkpointed by the run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["Batch", "TaskReplayBuffer"]

_FIELDS = ("obs", "action", "reward", "next_obs", "not_done")


@dataclass
class Batch:
    """A sampled batch: ``task[b]`` is the task index of transition ``b``."""

    obs: Tensor
    action: Tensor
    reward: Tensor
    next_obs: Tensor
    not_done: Tensor
    task: Tensor

    def to(self, device: torch.device) -> Batch:
        return Batch(*(getattr(self, f).to(device) for f in (*_FIELDS, "task")))


class TaskReplayBuffer:
    """``capacity`` transitions in all (``capacity // num_tasks`` per task), on the CPU."""

    def __init__(self, num_tasks: int, capacity: int, obs_dim: int, action_dim: int) -> None:
        if capacity < num_tasks:
            raise ValueError(f"buffer capacity {capacity} is smaller than the number of tasks {num_tasks}")
        self.num_tasks = num_tasks
        self.per_task = capacity // num_tasks
        k, c = num_tasks, self.per_task
        self.obs = torch.zeros(k, c, obs_dim)
        self.action = torch.zeros(k, c, action_dim)
        self.reward = torch.zeros(k, c)
        self.next_obs = torch.zeros(k, c, obs_dim)
        self.not_done = torch.zeros(k, c)
        self.position = 0  # next slot (the same in every task's ring)
        self.size = 0

    def add(self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor, not_done: Tensor) -> None:
        """One transition per task (leading axis: the task)."""
        i = self.position
        for name, value in zip(_FIELDS, (obs, action, reward, next_obs, not_done)):
            getattr(self, name)[:, i] = torch.as_tensor(value, dtype=torch.float32)
        self.position = (i + 1) % self.per_task
        self.size = min(self.size + 1, self.per_task)

    def sample(self, batch_size: int) -> Batch:
        """``batch_size / K`` transitions of each task, uniformly with replacement from what it holds."""
        if batch_size % self.num_tasks:
            raise ValueError(f"batch size {batch_size} is not a multiple of the number of tasks {self.num_tasks}")
        if self.size == 0:
            raise ValueError("the replay buffer is empty")
        per_task = batch_size // self.num_tasks
        index = torch.randint(self.size, (self.num_tasks, per_task))
        task = torch.arange(self.num_tasks).unsqueeze(1).expand(-1, per_task)
        fields = [getattr(self, name)[task, index].flatten(0, 1) for name in _FIELDS]
        return Batch(*fields, task=task.flatten())

    def state_dict(self) -> dict[str, Any]:
        """The filled part of each ring and the write position (tensors and ints: a safe checkpoint)."""
        return {"position": self.position, "size": self.size} | {
            name: getattr(self, name)[:, : self.size].clone() for name in _FIELDS
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        size = int(state["size"])
        if not 0 <= size <= self.per_task or not 0 <= int(state["position"]) < self.per_task:
            raise ValueError(f"replay buffer state of size {size} does not fit a ring of {self.per_task}")
        for name in _FIELDS:
            saved = state[name]
            target = getattr(self, name)
            if tuple(saved.shape) != (self.num_tasks, size, *target.shape[2:]):
                raise ValueError(f"replay buffer field {name}: shape {tuple(saved.shape)} does not fit this buffer")
            target[:, :size] = saved
        self.size, self.position = size, int(state["position"])
