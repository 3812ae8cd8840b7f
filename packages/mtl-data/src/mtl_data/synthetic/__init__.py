"""Procedural stand-ins for datasets that cannot be downloaded offline (every one is marked ``is_standin``).

- :class:`~mtl_data.synthetic.scenes.IndoorScenes` ("nyuv2_standin"): ray-cast rooms, 13-class
  segmentation, depth and normals, exact by construction;
- :class:`~mtl_data.synthetic.scenes.StreetScenes` ("cityscapes_standin"): ray-cast streets, 7-class
  segmentation and inverse depth;
- :class:`~mtl_data.synthetic.street3.StreetScenes3` ("cityscapes3_standin"): the same streets with
  19-class segmentation, instance centroid offsets and disparity (Cityscapes 3-task, seed 003);
- :class:`~mtl_data.synthetic.attributes.MultiAttributes` ("celeba_standin"): shape images with 40
  correlated binary attributes;
- :class:`~mtl_data.synthetic.digit_domains.DigitDomains` ("digit_domains"): real MNIST digits
  rendered in four styles, one domain (task) per style, the multi-input Office stand-in.

Results obtained on them must be reported as stand-in results, never as the real benchmarks'.
Submodules are imported lazily so that ``import mtl_data.synthetic`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "IndoorScenes": "mtl_data.synthetic.scenes",
    "StreetScenes": "mtl_data.synthetic.scenes",
    "StreetScenes3": "mtl_data.synthetic.street3",
    "MultiAttributes": "mtl_data.synthetic.attributes",
    "DigitDomains": "mtl_data.synthetic.digit_domains",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mtl_data.synthetic' has no attribute {name!r}")
