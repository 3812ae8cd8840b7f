"""Random scale-and-crop + horizontal flip of the MTAN/CAGrad/Nash-MTL scene-understanding code.

Reference: lorenmt/mtan issue #34 ``RandomScaleCrop`` as used in Cranial-XIX/CAGrad and AvivNavon/nash-mtl
``create_dataset.py``/``data.py``: pick a scale s in {1.0, 1.2, 1.5}, crop a random (H/s)x(W/s) window,
resize it back to HxW (image and normals bilinearly with ``align_corners=True``, labels and depth with
nearest neighbour), divide depth by s (the scene looks s times closer); then flip horizontally with
probability 1/2, negating the x component of the normals.
Random numbers come from torch's generator (seeded by ``torch.manual_seed`` and by ``DataLoader`` per
worker), so runs are reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

SCALES = (1.0, 1.2, 1.5)

# How each target kind is resized and flipped.
_BILINEAR = {"normal"}
_DIVIDE_BY_SCALE = {"depth"}  # as the reference (MTAN's Cityscapes "depth" is inverse depth; kept as is)
_MULTIPLY_BY_SCALE = {"instance"}  # pixel offsets grow with the zoom


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in [low, high] (inclusive, like ``random.randint``)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def random_scale_crop(
    image: Tensor,
    targets: dict[str, Tensor],
    scales: Sequence[float] = SCALES,
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Apply the reference augmentation to a CxHxW image and its dense targets (all of size HxW).

    Targets: ``"segmentation"`` HxW (nearest), ``"depth"`` 1xHxW (nearest, divided by the scale),
    ``"normal"`` 3xHxW (bilinear, x negated on flip), ``"instance"`` 2xHxW (y, x) pixel offsets
    (nearest, multiplied by the scale, x negated on flip); any other key is treated like a label map
    (nearest, flipped).
    """
    height, width = image.shape[-2:]
    scale = scales[_randint(0, len(scales) - 1, generator)]
    h, w = int(height / scale), int(width / scale)
    top = _randint(0, height - h, generator)
    left = _randint(0, width - w, generator)

    def resize(x: Tensor, bilinear: bool) -> Tensor:
        squeeze = x.dim() == 2
        window = x[None, None] if squeeze else x[None]
        window = window[..., top : top + h, left : left + w]
        if bilinear:
            out = F.interpolate(window.float(), size=(height, width), mode="bilinear", align_corners=True)
        else:
            out = F.interpolate(window.float(), size=(height, width), mode="nearest").to(x.dtype)
        return out[0, 0] if squeeze else out[0]

    image = resize(image, bilinear=True)
    out: dict[str, Tensor] = {}
    for name, target in targets.items():
        resized = resize(target, bilinear=name in _BILINEAR)
        if name in _DIVIDE_BY_SCALE:
            resized = resized / scale
        elif name in _MULTIPLY_BY_SCALE:
            resized = resized * scale
        out[name] = resized

    if flip and float(torch.rand(1, generator=generator)) < 0.5:
        image = image.flip(-1)
        out = {name: t.flip(-1) for name, t in out.items()}
        if "normal" in out:
            out["normal"] = out["normal"].clone()
            out["normal"][0] = -out["normal"][0]
        if "instance" in out:  # x offsets (channel 1) change sign under a horizontal flip
            out["instance"] = out["instance"].clone()
            out["instance"][1] = -out["instance"][1]
    return image, out
