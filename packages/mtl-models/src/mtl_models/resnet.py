"""ResNet trunks (He et al., CVPR 2016) with a width knob, dilation and local ImageNet weights.

torchvision's ``ResNet`` class fixes its stage widths to 64-128-256-512, so the width multiplier needs
the stem and stages assembled here; the residual blocks themselves are torchvision's ``BasicBlock`` and
``Bottleneck``, and module names match torchvision's so its ImageNet checkpoints load unchanged.
Dilation follows torchvision's ``replace_stride_with_dilation`` rule, which is identical to the
``_nostride_dilate`` rewrite of the MTL reference code (SamsungLabs/MTL, LibMTL): at output stride 8,
layer3 gets dilation 2 and layer4 dilation 4 (their first blocks keep the previous dilation).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from .base import scaled, validate_choice, validate_positive_int

_ARCHS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}
_DILATE_STAGES = {32: (False, False, False), 16: (False, False, True), 8: (False, True, True)}
BACKBONES = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101}


class ResNetTrunk(nn.Module):
    """ResNet without average pooling and classifier: returns the layer4 feature map.

    Args:
        depth: 18, 34, 50 or 101.
        width: channel multiplier of every stage (1.0 = torchvision's ResNet).
        in_channels: input image channels.
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool) or ``"cifar"`` (3x3/1 conv, no pooling, as the
            ResNet-18 of the MGDA-UB CelebA code).
        output_stride: 32 (plain), 16 or 8 (dilated, bottleneck blocks only, as DeepLab/PSPNet use).
    """

    def __init__(
        self, depth: int, width: float = 1.0, in_channels: int = 3, stem: str = "imagenet", output_stride: int = 32
    ) -> None:
        super().__init__()
        if depth not in _ARCHS:
            raise ValueError(f"unsupported ResNet depth {depth!r}; valid: {sorted(_ARCHS)}")
        validate_positive_int("in_channels", in_channels)
        validate_choice("stem", stem, ("imagenet", "cifar"))
        if output_stride not in _DILATE_STAGES:
            raise ValueError(f"output_stride must be one of {sorted(_DILATE_STAGES)}, got {output_stride!r}")
        block, layers = _ARCHS[depth]
        if output_stride != 32 and block is BasicBlock:
            raise ValueError(f"ResNet-{depth} (basic blocks) cannot be dilated; use resnet50 or resnet101")

        self.inplanes = scaled(64, width)
        self.dilation = 1
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        dilate = _DILATE_STAGES[output_stride]
        planes = [scaled(c, width) for c in (64, 128, 256, 512)]
        self.layer1 = self._make_stage(block, planes[0], layers[0], stride=1, dilate=False)
        self.layer2 = self._make_stage(block, planes[1], layers[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_stage(block, planes[2], layers[2], stride=2, dilate=dilate[1])
        self.layer4 = self._make_stage(block, planes[3], layers[3], stride=2, dilate=dilate[2])
        self.low_level_channels = planes[0] * block.expansion
        self.out_channels = planes[3] * block.expansion
        # total down-sampling factor of the layer4 map (the cifar stem does not down-sample)
        self.reduction = output_stride if stem == "imagenet" else output_stride // 4

        # torchvision's initialisation (He normal, fan-out; BatchNorm 1/0), also used by the MTL references.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_stage(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int, dilate: bool
    ) -> nn.Sequential:
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        modules = [block(self.inplanes, planes, stride, downsample, dilation=previous_dilation)]
        self.inplanes = planes * block.expansion
        modules += [block(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(layer1 output, layer4 output): the low-level and high-level maps DeepLabV3+ reads."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        low = self.layer1(x)
        return low, self.layer4(self.layer3(self.layer2(low)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[1]


def backbone_depth(backbone: str, allowed: tuple[str, ...]) -> int:
    return BACKBONES[validate_choice("backbone", backbone, allowed)]


def load_pretrained_trunk(trunk: ResNetTrunk, path: str | os.PathLike[str], width: float) -> None:
    """Load a torchvision ImageNet checkpoint (e.g. ``resnet50-0676ba61.pth``) into ``trunk``.

    Never downloads: the file must exist locally. The classifier (``fc.*``) is dropped; any other
    missing, unexpected or mis-shaped tensor is an error (a silent partial load would train a different
    model than the paper's).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights file not found: {path}. Nothing is downloaded; fetch the torchvision "
            "ImageNet checkpoint (e.g. resnet50-0676ba61.pth, resnet18-f37072fd.pth) on a machine with "
            "internet access and pass its local path as pretrained_weights=..."
        )
    if width != 1.0:
        raise ValueError(f"pretrained_weights need the reference size width=1.0, got width={width}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise ValueError(f"cannot read {path} as a torch checkpoint: {error}") from error
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors (a torchvision ResNet checkpoint)")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = trunk.state_dict()
    missing = sorted(own.keys() - state.keys())
    unexpected = sorted(state.keys() - own.keys())
    mismatched = sorted(k for k in own.keys() & state.keys() if own[k].shape != state[k].shape)
    if missing or unexpected or mismatched:
        details = "; ".join(
            f"{label}: {keys[:5]}{' ...' if len(keys) > 5 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched))
            if keys
        )
        raise ValueError(f"{path} does not match this ResNet trunk ({details})")
    trunk.load_state_dict(state, strict=True)
