"""CelebA (40 binary attributes, 64x64 images) models.

- ``CelebACNN``: the 9-layer CNN of the FAMO code (``experiments/celeba/models.py`` of
  Cranial-XIX/FAMO) that seeds 002 and 004 follow: seven 3x3 conv-BN-ReLU layers (64, 128, 128, 256,
  256, 512, 512; max-pooling after the 1st, 3rd and 5th), global average pooling, two linear-BN-ReLU
  layers of 512 units; one linear logit per attribute.
- ``CelebAResNet18``: seed 001's "ResNet-18 backbone with an additional single linear layer for each
  head", i.e. the MGDA-UB CelebA ResNet-18 (CIFAR-style 3x3/1 stem, no max-pooling; the 8x8 layer4 map
  average-pooled to 2x2, giving 2048 features). The reference heads output 2 log-probabilities; here
  each head is one logit (the equivalent binary parametrisation of the contract).
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

_CNN_CHANNELS = (64, 128, 128, 256, 256, 512, 512)
_POOL_AFTER = (0, 2, 4)  # max-pooling follows these conv layers


def _check_images(model: str, x: torch.Tensor, channels: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != channels:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{model} expects images of shape (B, {channels}, H, W), got {shape}")


def _decode_vector(model: MultiTaskModel, z: Representation, tasks: Sequence[str] | None) -> dict[str, torch.Tensor]:
    if not isinstance(z, torch.Tensor) or z.dim() != 2:
        raise ValueError(f"{type(model).__name__}.decode expects a (B, features) tensor, got {type(z).__name__}")
    return {t: scalar_outputs(model.heads[t](z), model.tasks[t]) for t in model.selected_tasks(tasks)}


class _NineLayerCNN(nn.Module):
    def __init__(self, width: float, in_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for i, c in enumerate(_CNN_CHANNELS):
            c = scaled(c, width)
            layers += [
                nn.Conv2d(previous, c, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
            ]
            if i in _POOL_AFTER:
                layers.append(nn.MaxPool2d(2, stride=2))
            previous = c
        hidden = scaled(512, width)
        layers += [
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(previous, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
        ]
        self.layers = nn.Sequential(*layers)
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class CelebACNN(MultiTaskModel):
    """FAMO's 9-layer CNN with one linear logit per attribute (seeds 002/004, CelebA 64x64).

    Args:
        tasks: ``{attribute: 1}`` for the 40 attributes.
        width: channel multiplier (1.0 = reference, 5.18M shared parameters).
        in_channels: image channels.
        seed: seed of the parameter initialisation (PyTorch's default layer initialisation, as the
            reference).
    """

    def __init__(self, tasks: Mapping[str, int], width: float = 1.0, in_channels: int = 3, seed: int = 0) -> None:
        super().__init__(tasks)
        width = validate_width(width)
        self.in_channels = validate_positive_int("in_channels", in_channels)
        with seeded(seed):
            self.encoder = _NineLayerCNN(width, in_channels)
            self.heads = nn.ModuleDict({t: nn.Linear(self.encoder.out_features, d) for t, d in self.tasks.items()})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _check_images("CelebACNN", x, self.in_channels)
        return self.encoder(x)

    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        return _decode_vector(self, z, tasks)


class _CifarResNet18Features(nn.Module):
    def __init__(self, width: float, in_channels: int) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(18, width, in_channels, stem="cifar")
        # MGDA-UB: avg_pool2d(kernel 4) of the 8x8 map of a 64x64 image, i.e. a 2x2 grid; adaptive pooling
        # gives the same features at 64x64 and keeps the feature size fixed at other sizes.
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.out_features = 4 * self.trunk.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.trunk(x)), 1)


class CelebAResNet18(MultiTaskModel):
    """CIFAR-style ResNet-18 + one linear logit per attribute (seed 001's CelebA model, MGDA-UB's).

    Args:
        tasks: ``{attribute: 1}`` for the 40 attributes.
        width: channel multiplier (1.0 = reference).
        in_channels: image channels.
        seed: seed of the parameter initialisation.
    """

    def __init__(self, tasks: Mapping[str, int], width: float = 1.0, in_channels: int = 3, seed: int = 0) -> None:
        super().__init__(tasks)
        width = validate_width(width)
        self.in_channels = validate_positive_int("in_channels", in_channels)
        with seeded(seed):
            self.encoder = _CifarResNet18Features(width, in_channels)
            self.heads = nn.ModuleDict({t: nn.Linear(self.encoder.out_features, d) for t, d in self.tasks.items()})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _check_images("CelebAResNet18", x, self.in_channels)
        return self.encoder(x)

    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        return _decode_vector(self, z, tasks)
