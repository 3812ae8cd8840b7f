"""Multi-input ResNet-18 for Office-31 / Office-Home (seed 002, Table 7).

Reference: ``examples/office/main.py`` of LibMTL (Lin & Zhang), which SAMO follows: an ImageNet
ResNet-18 trunk, global average pooling and a shared hidden layer (linear 512->512, BatchNorm, ReLU,
dropout 0.5; weights N(0, 0.005), biases 0.1), then a linear classifier per domain. Each domain is a
task with its own images: ``encode({task: images})`` runs the shared encoder on every domain's batch
separately (as LibMTL's multi-input mode does, so BatchNorm statistics are per domain) and returns the
tuple of features in task order.
"""

from __future__ import annotations

import os
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
from .resnet import ResNetTrunk, load_pretrained_trunk


class _OfficeEncoder(nn.Module):
    def __init__(self, width: float, in_channels: int) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(18, width, in_channels, stem="imagenet")
        self.pool = nn.AdaptiveAvgPool2d(1)
        hidden = scaled(512, width)
        self.hidden = nn.Sequential(
            nn.Linear(self.trunk.out_channels, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.5)
        )
        nn.init.normal_(self.hidden[0].weight, 0.0, 0.005)
        nn.init.constant_(self.hidden[0].bias, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(torch.flatten(self.pool(self.trunk(x)), 1))


class OfficeResNet18(MultiTaskModel):
    """ResNet-18 + shared hidden layer + one linear classifier per domain (multi-input).

    Args:
        tasks: ``{domain: classes}``, e.g. ``{"amazon": 31, "dslr": 31, "webcam": 31}``.
        width: channel multiplier (1.0 = reference).
        in_channels: image channels.
        pretrained_weights: local path of torchvision's ResNet-18 ImageNet checkpoint (the reference is
            ImageNet-pretrained; never downloaded; ``None`` = random initialisation).
        seed: seed of the parameter initialisation.
    """

    def __init__(
        self,
        tasks: Mapping[str, int],
        width: float = 1.0,
        in_channels: int = 3,
        pretrained_weights: str | os.PathLike[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(tasks)
        width = validate_width(width)
        self.in_channels = validate_positive_int("in_channels", in_channels)
        with seeded(seed):
            self.encoder = _OfficeEncoder(width, in_channels)
            hidden = self.encoder.hidden[0].out_features
            self.heads = nn.ModuleDict({t: nn.Linear(hidden, d) for t, d in self.tasks.items()})
        if pretrained_weights is not None:
            load_pretrained_trunk(self.encoder.trunk, pretrained_weights, width)

    def encode(self, x: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if not isinstance(x, Mapping) or set(x) != set(self.tasks):
            got = sorted(x) if isinstance(x, Mapping) else type(x).__name__
            raise ValueError(
                f"OfficeResNet18.encode expects a dict {{task: images}} with exactly the tasks "
                f"{list(self.tasks)}, got {got}; use predict_task() for a single domain"
            )
        return tuple(self._features(t, x[t]) for t in self.task_names)

    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        features = dict(zip(self.task_names, self._per_task(z)))
        return {t: scalar_outputs(self.heads[t](features[t]), self.tasks[t]) for t in self.selected_tasks(tasks)}

    def predict_task(self, task: str, images: torch.Tensor) -> torch.Tensor:
        """Logits of one domain's images (evaluation domain by domain)."""
        self._check_task(task)
        return scalar_outputs(self.heads[task](self._features(task, images)), self.tasks[task])

    def _features(self, task: str, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != self.in_channels:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images of task {task!r} must have shape (B, {self.in_channels}, H, W), got {shape}")
        return self.encoder(images)
