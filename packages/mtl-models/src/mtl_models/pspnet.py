"""PSPNet-style MTL model (Zhao et al., CVPR 2017), seed 003's second architecture.

Reference: ``code/models/nyu2.py`` and ``code/models/cityscapes.py`` of SamsungLabs/MTL (Aligned-MTL),
inherited from the MGDA-UB code: a dilated ResNet-50 (output stride 8) shared by all tasks and, per
task, a pyramid-pooling decoder: average pooling to 1x1, 2x2, 3x3, 6x6, each 1x1 conv to 512 channels +
BN + ReLU, bilinearly up-sampled and concatenated with the trunk map, then 3x3 conv (512) + BN + ReLU
and a 1x1 classifier. On NYUv2 the reference up-samples the output 8x (nearest); on 3-task Cityscapes
it predicts at 1/8 resolution (the labels are resized to 1/8), hence ``output_resolution``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Representation, scaled, seeded, validate_choice
from .deeplab import _DilatedResNetModel
from .segnet import dense_output

POOL_SCALES = (1, 2, 3, 6)


class PyramidPoolingHead(nn.Module):
    """PSPNet's pyramid pooling module and classifier (one per task)."""

    def __init__(self, in_channels: int, channels: int, out_channels: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(scale),
                nn.Conv2d(in_channels, channels, kernel_size=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            )
            for scale in POOL_SCALES
        )
        self.classifier = nn.Sequential(
            nn.Conv2d(in_channels + len(POOL_SCALES) * channels, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, out_channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pyramid = [x] + [
            F.interpolate(branch(x), size=size, mode="bilinear", align_corners=False) for branch in self.branches
        ]
        return self.classifier(torch.cat(pyramid, dim=1))


class PSPNet(_DilatedResNetModel):
    """Dilated ResNet-50 shared + per-task pyramid-pooling heads.

    Args:
        tasks: ``{task: output channels}``, e.g. ``{"segmentation": 19, "instance": 2, "disparity": 1}``.
        width: channel multiplier of trunk and heads (1.0 = reference).
        backbone: ``"resnet50"`` (reference) or ``"resnet101"``.
        in_channels: input image channels.
        pretrained_weights: local path of a torchvision ImageNet checkpoint of the backbone (the reference
            starts from ImageNet weights; never downloaded; ``None`` = random initialisation).
        output_resolution: ``"input"`` (up-sample 8x to the image size, NYUv2 reference) or ``"feature"``
            (keep the 1/8 map, 3-task Cityscapes reference).
        upsample_mode: interpolation of the 8x up-sampling (``"nearest"`` as the reference, or
            ``"bilinear"``).
        unit_vector_tasks: tasks whose output is L2-normalised (default: ``"normal"`` if present).
        seed: seed of the parameter initialisation.
    """

    name = "PSPNet"

    def __init__(
        self,
        tasks: Mapping[str, int],
        width: float = 1.0,
        backbone: str = "resnet50",
        in_channels: int = 3,
        pretrained_weights: str | os.PathLike[str] | None = None,
        output_resolution: str = "input",
        upsample_mode: str = "nearest",
        unit_vector_tasks: Iterable[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(tasks, width, backbone, in_channels, pretrained_weights, unit_vector_tasks)
        self.output_resolution = validate_choice("output_resolution", output_resolution, ("input", "feature"))
        self.upsample_mode = validate_choice("upsample_mode", upsample_mode, ("nearest", "bilinear"))
        with seeded(seed):
            self.encoder = self._build_trunk()
            channels = scaled(512, self.width)
            self.heads = nn.ModuleDict(
                {t: PyramidPoolingHead(self.encoder.out_channels, channels, d) for t, d in self.tasks.items()}
            )
        self._load_weights()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.encoder(x)

    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        if not isinstance(z, torch.Tensor) or z.dim() != 4:
            raise ValueError(f"PSPNet.decode expects the (B, C, H, W) layer4 map, got {type(z).__name__}")
        out = {}
        for task in self.selected_tasks(tasks):
            y = self.heads[task](z)
            if self.output_resolution == "input":
                y = F.interpolate(
                    y,
                    scale_factor=8,
                    mode=self.upsample_mode,
                    align_corners=False if self.upsample_mode == "bilinear" else None,
                )
            out[task] = dense_output(y, task in self.unit_vector_tasks)
        return out
