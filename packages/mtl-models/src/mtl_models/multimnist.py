"""Multi-MNIST models: the ResNet-18 of seed 000 (36x36 input) and the classic MultiLeNet.

- ``MultiMNISTResNet18`` follows the Pareto-MTL ResNet-18 (Lin et al., NeurIPS 2019) that F-MTL's
  Multi-MNIST/Fashion experiments use: torchvision ResNet-18 with a 1-channel 7x7/2 stem, its classifier
  replaced by a 512->100 linear layer + ReLU (shared), and one 100->10 linear head per digit.
- ``MultiLeNet`` follows MGDA-UB (Sener & Koltun, NeurIPS 2018) as kept in SamsungLabs/MTL: conv 5x5
  (10) - max-pool - ReLU - conv 5x5 (20) - max-pool - ReLU - linear 50 - ReLU shared, and per task
  linear 50 - ReLU - linear 10. The reference feeds 28x28 images (320 flattened features);
  ``input_size=36`` sizes the linear layer for 36x36 images.
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
from .resnet import ResNetTrunk


def _check_images(model: str, x: torch.Tensor, channels: int, size: int | None = None) -> None:
    if x.dim() != 4 or x.shape[1] != channels or (size is not None and tuple(x.shape[-2:]) != (size, size)):
        expected = f"(B, {channels}, {size or 'H'}, {size or 'W'})"
        hint = "; pass input_size=<side> to create() for other sizes" if size is not None else ""
        raise ValueError(f"{model} expects images of shape {expected}, got {tuple(x.shape)}{hint}")


def _check_vector(model: str, z: Representation) -> torch.Tensor:
    if not isinstance(z, torch.Tensor) or z.dim() != 2:
        raise ValueError(f"{model}.decode expects a (B, features) tensor from encode, got {type(z).__name__}")
    return z


class _ResNet18Features(nn.Module):
    def __init__(self, width: float, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(18, width, in_channels, stem="imagenet")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.trunk.out_channels, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(torch.flatten(self.pool(self.trunk(x)), 1)))


class MultiMNISTResNet18(MultiTaskModel):
    """ResNet-18 with a 100-unit shared layer and one linear head per task (seed 000's Multi-MNIST).

    Args:
        tasks: ``{task: classes}``, e.g. ``{"left": 10, "right": 10}``.
        width: channel multiplier of the ResNet and the shared layer (1.0 = reference).
        in_channels: image channels (1 for Multi-MNIST/Fashion).
        seed: seed of the parameter initialisation.
    """

    def __init__(self, tasks: Mapping[str, int], width: float = 1.0, in_channels: int = 1, seed: int = 0) -> None:
        super().__init__(tasks)
        width = validate_width(width)
        self.in_channels = validate_positive_int("in_channels", in_channels)
        with seeded(seed):
            self.encoder = _ResNet18Features(width, in_channels, scaled(100, width))
            hidden = self.encoder.fc.out_features
            self.heads = nn.ModuleDict({t: nn.Linear(hidden, d) for t, d in self.tasks.items()})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _check_images("MultiMNISTResNet18", x, self.in_channels)
        return self.encoder(x)

    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        z = _check_vector("MultiMNISTResNet18", z)
        return {t: scalar_outputs(self.heads[t](z), self.tasks[t]) for t in self.selected_tasks(tasks)}


class _LeNetFeatures(nn.Module):
    def __init__(self, width: float, in_channels: int, input_size: int) -> None:
        super().__init__()
        c1, c2, hidden = scaled(10, width), scaled(20, width), scaled(50, width)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(c1, c2, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
        )
        side = ((input_size - 4) // 2 - 4) // 2  # two valid 5x5 convs, two 2x2 poolings
        self.fc = nn.Linear(c2 * side * side, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(torch.flatten(self.conv(x), 1)))


class MultiLeNet(MultiTaskModel):
    """MGDA-UB's MultiLeNet: shared LeNet trunk, per-task two-layer MLP heads.

    Args:
        tasks: ``{task: classes}``, e.g. ``{"left": 10, "right": 10}``.
        width: multiplier of conv channels and hidden units (1.0 = reference).
        in_channels: image channels.
        input_size: side of the square input images (28 in the reference; 36 for 36x36 Multi-MNIST).
        seed: seed of the parameter initialisation.
    """

    def __init__(
        self, tasks: Mapping[str, int], width: float = 1.0, in_channels: int = 1, input_size: int = 28, seed: int = 0
    ) -> None:
        super().__init__(tasks)
        width = validate_width(width)
        self.in_channels = validate_positive_int("in_channels", in_channels)
        self.input_size = validate_positive_int("input_size", input_size)
        if input_size < 16:
            raise ValueError(f"MultiLeNet needs input_size >= 16 (two 5x5 convs and two poolings), got {input_size}")
        with seeded(seed):
            self.encoder = _LeNetFeatures(width, in_channels, input_size)
            hidden = self.encoder.fc.out_features
            self.heads = nn.ModuleDict(
                {
                    t: nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d))
                    for t, d in self.tasks.items()
                }
            )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _check_images("MultiLeNet", x, self.in_channels, self.input_size)
        return self.encoder(x)

    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        z = _check_vector("MultiLeNet", z)
        return {t: scalar_outputs(self.heads[t](z), self.tasks[t]) for t in self.selected_tasks(tasks)}
