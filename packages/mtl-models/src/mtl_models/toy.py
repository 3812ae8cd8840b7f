"""The two-head MLP of seed 001's loss-scale invariance toy experiment (Appendix A2).

"A shared backbone (two layers with LeakyReLU as non-linearity and 20 neurons per hidden layer) and
two heads for the two tasks, each consisting again of two layers": Linear(in, 20) - LeakyReLU -
Linear(20, 20) - LeakyReLU shared; per task Linear(20, 20) - LeakyReLU - Linear(20, out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .base import (
    MultiTaskModel,
    Representation,
    scalar_outputs,
    scaled,
    seeded,
    validate_positive_int,
    validate_width,
)


class ToyMLP(MultiTaskModel):
    """Shared two-layer LeakyReLU trunk and two-layer heads (scalar regression by default).

    Args:
        tasks: ``{task: outputs}``, e.g. ``{"depth_dm": 1, "depth_cm": 1}``.
        width: multiplier of the 20 hidden units (1.0 = reference).
        in_features: input size (1: a scalar sampled uniformly, in the seed).
        seed: seed of the parameter initialisation.
    """

    def __init__(self, tasks: Mapping[str, int], width: float = 1.0, in_features: int = 1, seed: int = 0) -> None:
        super().__init__(tasks)
        hidden = scaled(20, validate_width(width))
        self.in_features = validate_positive_int("in_features", in_features)
        with seeded(seed):
            self.encoder = nn.Sequential(
                nn.Linear(in_features, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU()
            )
            self.heads = nn.ModuleDict(
                {
                    t: nn.Sequential(nn.Linear(hidden, hidden), nn.LeakyReLU(), nn.Linear(hidden, d))
                    for t, d in self.tasks.items()
                }
            )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.in_features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"ToyMLP expects inputs of shape (B, {self.in_features}), got {shape}")
        return self.encoder(x)

    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        if not isinstance(z, torch.Tensor) or z.dim() != 2:
            raise ValueError(f"ToyMLP.decode expects a (B, features) tensor, got {type(z).__name__}")
        return {t: scalar_outputs(self.heads[t](z), self.tasks[t]) for t in self.selected_tasks(tasks)}
