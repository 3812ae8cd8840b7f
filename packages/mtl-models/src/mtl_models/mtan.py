"""MTAN: Multi-Task Attention Network on SegNet (Liu, Johns & Davison, CVPR 2019).

Reference: ``im2im_pred/model_segnet_mtan.py`` of lorenmt/mtan (NYUv2, 3 tasks) and its 2-task
Cityscapes copies in the CAGrad / Nash-MTL / FAMO code that seeds 002, 003 and 004 follow. Each task
owns a soft-attention module per encoder and decoder level (1x1 conv-BN-ReLU, 1x1 conv-BN-sigmoid)
that masks the shared SegNet maps; the convs that carry the attended features from level to level are
shared by all tasks.

Parameter split, as in every reference (``shared_parameters`` = all parameters not named "pred"): the
attention modules belong to the shared encoder, and ``encode`` returns the tuple of the K attended
task features (each B x 64w x H x W, in task order); the task heads are the 3x3+1x1 prediction convs.
A task's loss therefore has exactly zero gradient w.r.t. the other tasks' attention parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import (
    MultiTaskModel,
    Representation,
    check_spatial_multiple,
    seeded,
    unit_vector_task_set,
    validate_positive_int,
    validate_width,
)
from .segnet import (
    SEGNET_REDUCTION,
    SegNetBackbone,
    conv_bn_relu,
    dense_output,
    prediction_head,
    xavier_init_,
)


def attention_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """MTAN's attention mask: 1x1 conv-BN-ReLU, 1x1 conv-BN-sigmoid."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.BatchNorm2d(out_channels),
        nn.Sigmoid(),
    )


class MTANEncoder(nn.Module):
    """Shared SegNet plus the per-task attention paths; returns one attended map per task."""

    def __init__(self, task_names: tuple[str, ...], width: float, in_channels: int) -> None:
        super().__init__()
        self.task_names = task_names
        self.backbone = SegNetBackbone(width, in_channels)
        f = self.backbone.filters
        up = self.backbone.up_channels
        # Shared convs of the attention path. Encoder level i maps f[i] -> next level's width (the last
        # keeps f[4]); decoder level j maps the previous attended map to the level's width.
        down_out = [f[1], f[2], f[3], f[4], f[4]]
        self.down_conv = nn.ModuleList(conv_bn_relu(f[i], down_out[i]) for i in range(5))
        up_in = [f[4], *up[:4]]
        up_out = [f[4], f[2], f[1], f[0], f[0]]
        self.up_conv = nn.ModuleList(conv_bn_relu(up_in[j], up_out[j]) for j in range(5))
        # Per-task attention masks. Encoder level 0 reads the level's first map only; deeper levels
        # read it concatenated with the previous attended map. Decoder level j reads the unpooled map
        # (f[4-j] channels) concatenated with the up-converted attended map.
        down_att_in = [f[0]] + [2 * f[i] for i in range(1, 5)]
        up_att_in = [f[4 - j] + up_out[j] for j in range(5)]
        self.down_attention = nn.ModuleDict(
            {t: nn.ModuleList(attention_block(down_att_in[i], f[i]) for i in range(5)) for t in task_names}
        )
        self.up_attention = nn.ModuleDict(
            {t: nn.ModuleList(attention_block(up_att_in[j], up[j]) for j in range(5)) for t in task_names}
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        maps = self.backbone(x)
        features = []
        for task in self.task_names:
            a = None
            for i, mask in enumerate(self.down_attention[task]):
                gate_in = maps.down_entry[i] if a is None else torch.cat((maps.down_entry[i], a), dim=1)
                a = F.max_pool2d(self.down_conv[i](mask(gate_in) * maps.down_out[i]), kernel_size=2, stride=2)
            for j, mask in enumerate(self.up_attention[task]):
                a = self.up_conv[j](F.interpolate(a, scale_factor=2, mode="bilinear", align_corners=True))
                a = mask(torch.cat((maps.unpooled[j], a), dim=1)) * maps.up_out[j]
            features.append(a)
        return tuple(features)


class MTAN(MultiTaskModel):
    """SegNet-MTAN (seed 002/003/004's dense-prediction model).

    Args:
        tasks: ``{task: output channels}``, e.g. ``{"segmentation": 7, "depth": 1}`` for Cityscapes.
        width: channel multiplier (1.0 = reference: 44.23M parameters with NYUv2's 3 tasks).
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
            self.encoder = MTANEncoder(self.task_names, width, in_channels)
            f0 = self.encoder.backbone.filters[0]
            self.heads = nn.ModuleDict({t: prediction_head(f0, d) for t, d in self.tasks.items()})
            xavier_init_(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        check_spatial_multiple("MTAN", x, SEGNET_REDUCTION, self.encoder.backbone.in_channels)
        return self.encoder(x)

    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        features = dict(zip(self.task_names, self._per_task(z)))
        return {
            t: dense_output(self.heads[t](features[t]), t in self.unit_vector_tasks) for t in self.selected_tasks(tasks)
        }
