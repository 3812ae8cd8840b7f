"""SegNet (Badrinarayanan et al., TPAMI 2017) as used for multi-task dense prediction in MTAN's code.

Reference: ``im2im_pred/model_segnet_split.py`` of lorenmt/mtan (Liu et al., CVPR 2019), the "split,
standard" model: a shared 5-level encoder-decoder (filters 64-128-256-512-512, 3x3 conv + BatchNorm +
ReLU blocks, 2x2 max-pooling whose indices drive max-unpooling) and, per task, a prediction head of a
3x3 conv and a 1x1 conv. Used on NYUv2 (seed 001 and the F-MTL/MTAN line) and Cityscapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import (
    MultiTaskModel,
    check_spatial_multiple,
    scaled,
    seeded,
    unit_vector_task_set,
    validate_positive_int,
    validate_width,
)

SEGNET_FILTERS = (64, 128, 256, 512, 512)
#: Five 2x2 poolings: image sides must be multiples of 32 (NYUv2 288x384, Cityscapes 128x256 are).
SEGNET_REDUCTION = 32


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def conv_stack(channels: int, depth: int) -> nn.Sequential:
    return nn.Sequential(*[conv_bn_relu(channels, channels) for _ in range(depth)])


def prediction_head(in_channels: int, out_channels: int) -> nn.Sequential:
    """MTAN's task head: 3x3 conv then 1x1 conv, no non-linearity in between (as in the reference)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1),
        nn.Conv2d(in_channels, out_channels, kernel_size=1),
    )


def xavier_init_(module: nn.Module) -> None:
    """The MTAN code's initialisation: Xavier-normal weights, zero biases, BatchNorm 1/0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def dense_output(logits: torch.Tensor, unit_vector: bool) -> torch.Tensor:
    # Normals are divided by their L2 norm over channels, as MTAN does (eps guards a zero vector).
    return F.normalize(logits, p=2, dim=1) if unit_vector else logits


@dataclass
class SegNetMaps:
    """Intermediate maps of the shared SegNet, per level (0 = full resolution for the encoder,
    0 = coarsest for the decoder), which MTAN's attention modules read."""

    down_entry: list[torch.Tensor]  # output of each encoder level's first conv block
    down_out: list[torch.Tensor]  # output of each encoder level before pooling
    unpooled: list[torch.Tensor]  # input of each decoder level (after max-unpooling)
    up_out: list[torch.Tensor]  # output of each decoder level


class SegNetBackbone(nn.Module):
    """The shared SegNet encoder-decoder; ``forward`` returns all intermediate maps."""

    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        f = [scaled(c, width) for c in SEGNET_FILTERS]
        self.filters = f
        self.in_channels = in_channels
        down_in = [in_channels, *f[:4]]
        self.down_entry = nn.ModuleList(conv_bn_relu(down_in[i], f[i]) for i in range(5))
        self.down_body = nn.ModuleList(conv_stack(f[i], 1 if i < 2 else 2) for i in range(5))
        # Decoder level j reads the f[4-j]-channel unpooled map and outputs up_channels[j].
        self.up_channels = [f[3], f[2], f[1], f[0], f[0]]
        self.up_entry = nn.ModuleList(conv_bn_relu(f[4 - j], self.up_channels[j]) for j in range(5))
        self.up_body = nn.ModuleList(conv_stack(self.up_channels[j], 2 if j < 3 else 1) for j in range(5))
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> SegNetMaps:
        maps = SegNetMaps([], [], [], [])
        indices = []
        h = x
        for entry, body in zip(self.down_entry, self.down_body):
            maps.down_entry.append(entry(h))
            maps.down_out.append(body(maps.down_entry[-1]))
            h, idx = self.pool(maps.down_out[-1])
            indices.append(idx)
        for j, (entry, body) in enumerate(zip(self.up_entry, self.up_body)):
            maps.unpooled.append(self.unpool(h, indices[4 - j], output_size=maps.down_out[4 - j].shape[-2:]))
            h = body(entry(maps.unpooled[-1]))
            maps.up_out.append(h)
        return maps


class SegNetEncoder(nn.Module):
    def __init__(self, width: float, in_channels: int) -> None:
        super().__init__()
        self.backbone = SegNetBackbone(width, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x).up_out[-1]


class SegNetSplit(MultiTaskModel):
    """MTL SegNet "split" (MTAN's code): shared encoder-decoder, per-task 3x3+1x1 conv heads.

    ``encode`` returns the last decoder map (B x 64w x H x W); ``decode`` gives segmentation logits,
    depth, and L2-normalised normals at input resolution. Image sides must be multiples of 32.

    Args:
        tasks: ``{task: output channels}``, e.g. ``{"segmentation": 13, "depth": 1, "normal": 3}``.
        width: channel multiplier (1.0 = reference, 25.06M parameters on NYUv2).
        in_channels: input image channels.
        unit_vector_tasks: tasks whose output is L2-normalised (default: ``"normal"`` if present).
        seed: seed of the parameter initialisation.
    """

    def __init__(
        self,
        tasks: Mapping[str, int],
        width: float = 1.0,
        in_channels: int = 3,
        unit_vector_tasks: Iterable[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(tasks)
        width = validate_width(width)
        validate_positive_int("in_channels", in_channels)
        self.unit_vector_tasks = unit_vector_task_set(self.tasks, unit_vector_tasks)
        with seeded(seed):
            self.encoder = SegNetEncoder(width, in_channels)
            f0 = self.encoder.backbone.filters[0]
            self.heads = nn.ModuleDict({t: prediction_head(f0, d) for t, d in self.tasks.items()})
            xavier_init_(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_spatial_multiple("SegNetSplit", x, SEGNET_REDUCTION, self.encoder.backbone.in_channels)
        return self.encoder(x)

    def decode(self, z: torch.Tensor, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        if not isinstance(z, torch.Tensor) or z.dim() != 4:
            raise ValueError(f"SegNetSplit.decode expects the (B, C, H, W) decoder map, got {type(z).__name__}")
        return {t: dense_output(self.heads[t](z), t in self.unit_vector_tasks) for t in self.selected_tasks(tasks)}
