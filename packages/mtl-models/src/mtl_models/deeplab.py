"""DeepLab heads on a shared dilated ResNet (seed 001's second dense-prediction architecture).

Seed 001 compares SegNet with "DeepLabV3+" (Chen et al., ECCV 2018) and runs the methods through
LibMTL, whose NYUv2/Cityscapes example is a dilated ResNet-50 (output stride 8) shared by all tasks
and, per task, torchvision's DeepLabV3 head: ASPP (rates 12/24/36, 256 channels, image pooling,
dropout 0.5) + 3x3 conv-BN-ReLU + 1x1 classifier, bilinearly up-sampled to the input size. Both
variants are offered:

- ``DeepLabV3`` (``"deeplabv3"``): exactly that LibMTL model; ``encode`` returns the layer4 map.
- ``DeepLabV3Plus`` (``"deeplabv3plus"``): adds the V3+ decoder of Chen et al. 2018 per task (layer1
  features projected to 48 channels, concatenated with the up-sampled ASPP output, two 3x3
  conv-BN-ReLU); ``encode`` returns ``(layer1 map, layer4 map)``.

In both, every decoder parameter is task-specific, hence many more task parameters than SegNet.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPP

from .base import (
    MultiTaskModel,
    Representation,
    check_spatial_multiple,
    scaled,
    seeded,
    unit_vector_task_set,
    validate_positive_int,
    validate_width,
)
from .resnet import ResNetTrunk, backbone_depth, load_pretrained_trunk
from .segnet import dense_output

ATROUS_RATES = (12, 24, 36)  # for output stride 8, as in LibMTL and torchvision
DILATED_BACKBONES = ("resnet50", "resnet101")


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    # LibMTL interpolates to the image size with align_corners=True; sides are exact multiples here.
    size = (x.shape[-2] * factor, x.shape[-1] * factor)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class DeepLabV3Head(nn.Sequential):
    """torchvision's ``DeepLabHead`` with a configurable number of channels."""

    def __init__(self, in_channels: int, channels: int, out_channels: int) -> None:
        super().__init__(
            ASPP(in_channels, list(ATROUS_RATES), out_channels=channels),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, out_channels, kernel_size=1),
        )


class DeepLabV3PlusHead(nn.Module):
    """ASPP on the high-level map plus the DeepLabV3+ decoder that fuses the low-level map."""

    def __init__(self, high_channels: int, low_channels: int, channels: int, low_proj: int, out_channels: int) -> None:
        super().__init__()
        self.aspp = ASPP(high_channels, list(ATROUS_RATES), out_channels=channels)
        self.project_low = nn.Sequential(
            nn.Conv2d(low_channels, low_proj, kernel_size=1, bias=False), nn.BatchNorm2d(low_proj), nn.ReLU()
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(channels + low_proj, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        self.classifier = nn.Conv2d(channels, out_channels, kernel_size=1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        context = F.interpolate(self.aspp(high), size=low.shape[-2:], mode="bilinear", align_corners=True)
        return self.classifier(self.fuse(torch.cat((context, self.project_low(low)), dim=1)))


class _DilatedResNetModel(MultiTaskModel):
    """Shared dilated ResNet trunk (output stride 8), optional local ImageNet weights."""

    name = ""

    def __init__(
        self,
        tasks: Mapping[str, int],
        width: float,
        backbone: str,
        in_channels: int,
        pretrained_weights: str | os.PathLike[str] | None,
        unit_vector_tasks: Iterable[str] | None,
    ) -> None:
        super().__init__(tasks)
        self.width = validate_width(width)
        self.depth = backbone_depth(backbone, DILATED_BACKBONES)
        self.in_channels = validate_positive_int("in_channels", in_channels)
        self.pretrained_weights = pretrained_weights
        self.unit_vector_tasks = unit_vector_task_set(self.tasks, unit_vector_tasks)

    def _build_trunk(self) -> ResNetTrunk:
        return ResNetTrunk(self.depth, self.width, self.in_channels, stem="imagenet", output_stride=8)

    def _load_weights(self) -> None:
        if self.pretrained_weights is not None:
            load_pretrained_trunk(self.encoder, self.pretrained_weights, self.width)

    def _check_input(self, x: torch.Tensor) -> None:
        check_spatial_multiple(self.name, x, 8, self.in_channels)


class DeepLabV3(_DilatedResNetModel):
    """Dilated ResNet-50 shared + per-task DeepLabV3 (ASPP) heads, as in LibMTL's NYUv2 example.

    Args:
        tasks: ``{task: output channels}``.
        width: channel multiplier of trunk and heads (1.0 = reference).
        backbone: ``"resnet50"`` (seed 001) or ``"resnet101"``.
        in_channels: input image channels.
        pretrained_weights: local path of a torchvision ImageNet checkpoint of the backbone (never
            downloaded; ``None`` = random initialisation).
        unit_vector_tasks: tasks whose output is L2-normalised (default: ``"normal"`` if present).
        seed: seed of the parameter initialisation.
    """

    name = "DeepLabV3"

    def __init__(
        self,
        tasks: Mapping[str, int],
        width: float = 1.0,
        backbone: str = "resnet50",
        in_channels: int = 3,
        pretrained_weights: str | os.PathLike[str] | None = None,
        unit_vector_tasks: Iterable[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(tasks, width, backbone, in_channels, pretrained_weights, unit_vector_tasks)
        with seeded(seed):
            self.encoder = self._build_trunk()
            channels = scaled(256, self.width)
            self.heads = nn.ModuleDict(
                {t: DeepLabV3Head(self.encoder.out_channels, channels, d) for t, d in self.tasks.items()}
            )
        self._load_weights()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.encoder(x)

    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        if not isinstance(z, torch.Tensor) or z.dim() != 4:
            raise ValueError(f"DeepLabV3.decode expects the (B, C, H, W) layer4 map, got {type(z).__name__}")
        return {
            t: dense_output(upsample(self.heads[t](z), 8), t in self.unit_vector_tasks)
            for t in self.selected_tasks(tasks)
        }


class DeepLabV3Plus(_DilatedResNetModel):
    """Dilated ResNet-50 shared + per-task DeepLabV3+ heads (ASPP and low-level decoder).

    Same arguments as :class:`DeepLabV3`. ``encode`` returns ``(layer1 map, layer4 map)``.
    """

    name = "DeepLabV3Plus"

    def __init__(
        self,
        tasks: Mapping[str, int],
        width: float = 1.0,
        backbone: str = "resnet50",
        in_channels: int = 3,
        pretrained_weights: str | os.PathLike[str] | None = None,
        unit_vector_tasks: Iterable[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(tasks, width, backbone, in_channels, pretrained_weights, unit_vector_tasks)
        with seeded(seed):
            self.encoder = self._build_trunk()
            channels, low_proj = scaled(256, self.width), scaled(48, self.width)
            self.heads = nn.ModuleDict(
                {
                    t: DeepLabV3PlusHead(
                        self.encoder.out_channels, self.encoder.low_level_channels, channels, low_proj, d
                    )
                    for t, d in self.tasks.items()
                }
            )
        self._load_weights()

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_input(x)
        return self.encoder.forward_stages(x)

    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        if not isinstance(z, tuple | list) or len(z) != 2:
            raise ValueError("DeepLabV3Plus.decode expects the tuple (layer1 map, layer4 map) from encode")
        low, high = z
        # layer1 is at stride 4 of the input.
        return {
            t: dense_output(upsample(self.heads[t](low, high), 4), t in self.unit_vector_tasks)
            for t in self.selected_tasks(tasks)
        }
