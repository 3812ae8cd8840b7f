"""Cityscapes 3-task stand-in (seed 003, Aligned-MTL Table 1): 19-class segmentation, instance, disparity.

STAND-IN (not real data) for :class:`mtl_data.cityscapes3.Cityscapes3` (registry name ``cityscapes3``),
registered as ``cityscapes3_standin``. It renders the streets of the 2-task stand-in
(:func:`mtl_data.synthetic.street.street_scene_parts`: road, sidewalks, buildings, low walls, poles
with traffic signs/lights, trees, grass, pedestrians, cars, buses, the ego vehicle's bonnet) and builds
the targets of the real loader from the exact per-pixel primitive ids of the ray caster, with the same
task specs, shapes, dtypes and missing-value conventions:

- ``segmentation`` (HxW int64, 19 classes, -1 = void): every primitive kind has a fixed Cityscapes
  label id (:data:`LABEL_IDS`), mapped to its train id by the real loader's :data:`VALID_CLASSES`
  order (:data:`TRAIN_IDS`)::

      road 0, sidewalk 1, building 2, wall 3, pole 5, traffic light 6, traffic sign 7, vegetation 8
      (tree trunks and crowns), terrain 9 (grass strips), sky 10 (rays that hit nothing), person 11,
      car 13, bus 15; ego vehicle -> void (-1).

  fence (4), rider (12), truck (14), train (16), motorcycle (17) and bicycle (18) never occur.
- ``instance`` (2xHxW float32): the "thing" objects are those whose label id the real loader treats
  as instances (not void, not in :data:`~mtl_data.cityscapes3.NO_INSTANCE_CLASSES`): here persons,
  cars and buses (a car's body, cabin and tyres are one object); poles, signs and lights are stuff
  in Cityscapes and stay so. The Cityscapes-style label and instance-id maps (``label*1000 + k`` for
  things) go through the real loader's :func:`~mtl_data.cityscapes3.instance_offsets`, so each
  instance pixel holds ``(y, x) - centroid`` of its object's visible mask (same sign and order as the
  real loader), NaN on every other pixel. As the real loader's, the unit is full-resolution
  Cityscapes pixels (1024x2048, :data:`FULL_RESOLUTION`): offsets computed on the rendered
  ``resolution`` grid are multiplied by ``1024 / H`` (y) and ``2048 / W`` (x). (The real loader
  computes them at full resolution and then picks one full-resolution pixel per output pixel by
  nearest neighbour; the stand-in's are exact at its own resolution.)
- ``disparity`` (1xHxW float32, 0 = missing): the disparity a Cityscapes stereo rig would measure,
  ``d = f * B / z`` pixels, with ``z`` the exact z-depth of the hit, ``B`` the Cityscapes baseline
  (0.209313 m) and ``f`` the stand-in camera's focal length at the full 2048-pixel width; encoded
  as the official 16-bit PNG (``p = round(256 d) + 1``, clipped to 65535) and divided by the real
  loader's :data:`~mtl_data.cityscapes3.DISPARITY_SCALE`, exactly what the real loader reads from
  such a PNG. Sky and the ego vehicle are 0 (missing).

No augmentation is applied (each item is already a new random scene); ``shadows`` and ``ego_vehicle``
are the options of the 2-task stand-in. Sizes default to seed 001 A3.1's (2380 / 595 / 500) and the
resolution to 32x64; item ``i`` of a split depends only on ``(seed, split, i)``; ``cache_dir`` stores
each split once as an ``.npz`` (:func:`mtl_data.synthetic._base.cached_arrays`).
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from mtl_data.base import Batching, MTLDataset
from mtl_data.cityscapes3 import DISPARITY_SCALE, NO_INSTANCE_CLASSES, VALID_CLASSES, instance_offsets
from mtl_data.synthetic import scenes as _scenes
from mtl_data.synthetic._base import (
    SizedStandin,
    cached_arrays,
    check_resolution,
    check_size,
    check_split,
    item_seed,
    reject_unknown,
)
from mtl_data.synthetic.raycast import Camera
from mtl_data.synthetic.render import Rendering, render
from mtl_data.synthetic.street import PART_KINDS, Part, street_scene_parts
from mtl_data.synthetic.textures import ValueNoise
from mtl_data.tasks import CITYSCAPES3_TASK_NAMES, DisparityTask, InstanceTask, SegmentationTask

__all__ = [
    "BASELINE",
    "FULL_RESOLUTION",
    "LABEL_IDS",
    "THING_KINDS",
    "TRAIN_IDS",
    "StreetSample",
    "StreetScenes3",
    "encode",
    "label_maps",
]

#: Bumped whenever the targets change (the street generator's own version is part of the cache key too).
GENERATOR_VERSION = 1
#: Cityscapes' full image size (height, width): the unit of the instance offsets and of the disparity.
FULL_RESOLUTION = (1024, 2048)
#: Stereo baseline of the Cityscapes camera rig (m), from its calibration files.
BASELINE = 0.209313
#: Cityscapes label id of every primitive kind of a street scene, and of the sky (no hit).
LABEL_IDS: dict[str, int] = {
    "road": 7,
    "sidewalk": 8,
    "building": 11,
    "wall": 12,
    "pole": 17,
    "traffic light": 19,
    "traffic sign": 20,
    "vegetation": 21,
    "terrain": 22,
    "sky": 23,
    "person": 24,
    "car": 26,
    "bus": 28,
    "ego vehicle": 1,
}
#: Train id (0..18, -1 = void) of every kind, in the real loader's class order.
TRAIN_IDS: dict[str, int] = {k: VALID_CLASSES.index(v) if v in VALID_CLASSES else -1 for k, v in LABEL_IDS.items()}
#: Kinds whose objects are instances (the real loader's rule: a valid class that is not stuff).
THING_KINDS: tuple[str, ...] = tuple(
    k for k, v in LABEL_IDS.items() if v in VALID_CLASSES and v not in NO_INSTANCE_CLASSES
)
_SKY_ID = LABEL_IDS["sky"]
_TRAIN_ID = np.full(256, -1, dtype=np.int64)
_TRAIN_ID[list(VALID_CLASSES)] = np.arange(len(VALID_CLASSES))

if set(LABEL_IDS) != set(PART_KINDS) | {"sky"}:  # pragma: no cover - import-time consistency check
    raise ImportError(f"LABEL_IDS {sorted(LABEL_IDS)} must cover the street part kinds {sorted(PART_KINDS)}")


class StreetSample(NamedTuple):
    """One rendered scene: the rendering, what each primitive is, and the camera."""

    rendering: Rendering
    parts: list[Part]
    camera: Camera


def label_maps(rendering: Rendering, parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    """Cityscapes-style ``(labelIds, instanceIds)`` HxW int64 maps of a rendered street.

    ``labelIds``: the label id of the kind of the primitive hit (:data:`LABEL_IDS`; sky where nothing
    is hit). ``instanceIds``: ``label * 1000 + k`` on the pixels of the ``k``-th thing object (in scene
    order), the label id elsewhere, as in the official ``gtFine_instanceIds`` PNGs.
    """
    kind_label = np.array([LABEL_IDS[p.kind] for p in parts] + [_SKY_ID], dtype=np.int64)
    hit = rendering.hit_index  # -1 (nothing hit) indexes the trailing sky entry
    label_ids = kind_label[hit]
    objects = sorted({p.instance for p in parts if p.kind in THING_KINDS})
    if len(objects) >= 1000:
        raise ValueError(f"{len(objects)} thing objects in one scene; instance ids hold at most 1000")
    rank = {obj: k for k, obj in enumerate(objects)}
    thing = np.array([rank.get(p.instance, -1) if p.kind in THING_KINDS else -1 for p in parts] + [-1])
    k = thing[hit]
    instance_ids = np.where(k >= 0, label_ids * 1000 + k, label_ids)
    return label_ids, instance_ids


def encode(sample: StreetSample) -> dict[str, np.ndarray]:
    """Image and the three targets of one rendered scene (see the module docstring)."""
    r, camera = sample.rendering, sample.camera
    h, w = r.labels.shape
    label_ids, instance_ids = label_maps(r, sample.parts)
    offsets = instance_offsets(label_ids, instance_ids).astype(np.float64)
    offsets[0] *= FULL_RESOLUTION[0] / h
    offsets[1] *= FULL_RESOLUTION[1] / w
    valid = (_TRAIN_ID[label_ids] >= 0) & (label_ids != _SKY_ID) & (r.depth > 0)
    focal = FULL_RESOLUTION[1] / (2.0 * math.tan(math.radians(camera.hfov) / 2.0))
    pixels = focal * BASELINE / np.where(valid, r.depth, 1.0)
    raw = np.clip(np.round(256.0 * pixels) + 1.0, 1.0, 65535.0)  # the official uint16 disparity PNG
    disparity = np.where(valid, raw.astype(np.float32) / DISPARITY_SCALE, 0.0)
    return {
        "image": r.image.astype(np.float32),
        "segmentation": _TRAIN_ID[label_ids].astype(np.int8),
        "instance": offsets.astype(np.float32),
        "disparity": disparity[None].astype(np.float32),
    }


class StreetScenes3(SizedStandin, MTLDataset):
    """Cityscapes 3-task stand-in: rendered streets with 19-class segmentation, instance offsets, disparity.

    Constructor as the other scene stand-ins: ``(split, seed=0, size=None, resolution=(32, 64), *,
    cache_dir=None, shadows=True, ego_vehicle=True)``. Item: ``(image 3xHxW float32 in [0, 1],
    {"segmentation": int64 HxW, "instance": float32 2xHxW, "disparity": float32 1xHxW})``, as
    :class:`mtl_data.cityscapes3.Cityscapes3`.
    """

    batching = Batching.SINGLE

    is_standin = True
    name = "cityscapes3_standin"
    TASK_NAMES = CITYSCAPES3_TASK_NAMES
    description = (
        "STAND-IN for Cityscapes 3-task (not real data): procedurally rendered street scenes with exact "
        "19-class segmentation, instance centroid offsets and disparity"
    )
    default_sizes: ClassVar[dict[str, int]] = {"train": 2380, "val": 595, "test": 500}
    default_resolution = (32, 64)

    def __init__(
        self,
        split: str,
        seed: int = 0,
        size: int | None = None,
        resolution: tuple[int, int] | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        shadows: bool = True,
        ego_vehicle: bool = True,
        **options: Any,
    ) -> None:
        reject_unknown(self.name, options, ["cache_dir", "shadows", "ego_vehicle"])
        specs = (SegmentationTask("segmentation", 19), InstanceTask("instance"), DisparityTask("disparity"))
        tasks = {spec.name: spec for spec in specs}
        super().__init__(check_split(split), tasks, self.description)
        item_seed(self.name, seed, split, 0)  # validates the seed
        self.seed = seed
        self.size = check_size(size, self.default_sizes[split], self.name)
        self.resolution = check_resolution(resolution or self.default_resolution, self.name)
        self.shadows = bool(shadows)
        self.ego_vehicle = bool(ego_vehicle)
        n, (h, w) = self.size, self.resolution
        expected = {
            "image": ((n, 3, h, w), np.dtype(np.float32)),
            "segmentation": ((n, h, w), np.dtype(np.int8)),
            "instance": ((n, 2, h, w), np.dtype(np.float32)),
            "disparity": ((n, 1, h, w), np.dtype(np.float32)),
        }
        key = {
            "dataset": self.name,
            "version": GENERATOR_VERSION,
            "street_version": _scenes.GENERATOR_VERSION,
            "split": split,
            "seed": seed,
            "size": self.size,
            "resolution": self.resolution,
            "shadows": self.shadows,
            "ego_vehicle": self.ego_vehicle,
        }
        self._arrays = cached_arrays(cache_dir, key, expected, self._generate)

    def render_item(self, index: int) -> StreetSample:
        """Render item ``index`` from scratch: rendering (with primitive ids), parts and camera."""
        rng = np.random.default_rng(item_seed(self.name, self.seed, self.split, index))
        scene, parts = street_scene_parts(rng, *self.resolution, shadows=self.shadows, ego_vehicle=self.ego_vehicle)
        return StreetSample(render(scene, ValueNoise(rng)), parts, scene.camera)

    def _generate(self) -> dict[str, np.ndarray]:
        items = [encode(self.render_item(i)) for i in range(self.size)]
        return {key: np.stack([item[key] for item in items]) for key in items[0]}

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.check_index(index)
        a = self._arrays
        targets = {
            "segmentation": torch.from_numpy(a["segmentation"][index].astype(np.int64)),
            "instance": torch.from_numpy(a["instance"][index].copy()),
            "disparity": torch.from_numpy(a["disparity"][index].copy()),
        }
        return torch.from_numpy(a["image"][index].copy()), targets
