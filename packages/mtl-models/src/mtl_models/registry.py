"""Model names and the ``create`` factory (the package's public entry point)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from .base import MultiTaskModel
from .celeba import CelebACNN, CelebAResNet18
from .deeplab import DeepLabV3, DeepLabV3Plus
from .mpnn import MPNN
from .mtan import MTAN
from .multimnist import MultiLeNet, MultiMNISTResNet18
from .office import OfficeResNet18
from .pspnet import PSPNet
from .segnet import SegNetSplit
from .toy import ToyMLP

MODELS: dict[str, type[MultiTaskModel]] = {
    "segnet_split": SegNetSplit,
    "mtan": MTAN,
    "deeplabv3": DeepLabV3,
    "deeplabv3plus": DeepLabV3Plus,
    "pspnet": PSPNet,
    "resnet18_multimnist": MultiMNISTResNet18,
    "multilenet": MultiLeNet,
    "resnet18_office": OfficeResNet18,
    "celeba_cnn": CelebACNN,
    "resnet18_celeba": CelebAResNet18,
    "mpnn": MPNN,
    "toy_mlp": ToyMLP,
}


def names() -> list[str]:
    """Names accepted by :func:`create`, sorted."""
    return sorted(MODELS)


def options(name: str) -> list[str]:
    """Keyword options accepted by model ``name`` besides ``tasks`` (all have defaults)."""
    cls = _lookup(name)
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p not in ("self", "tasks")]


def create(name: str, tasks: Mapping[str, int], **opts: Any) -> MultiTaskModel:
    """Build model ``name`` with one head per task: ``create("mtan", tasks={"segmentation": 13, ...})``.

    Unknown names and options raise ``ValueError`` listing the valid ones; option values are checked by
    the model (e.g. ``width`` must be positive).
    """
    valid = options(name)
    unknown = sorted(set(opts) - set(valid))
    if unknown:
        raise ValueError(f"invalid option(s) {unknown} for model {name!r}; valid options: {valid}")
    return MODELS[name](tasks=tasks, **opts)


def _lookup(name: str) -> type[MultiTaskModel]:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(names())}")
    return MODELS[name]
