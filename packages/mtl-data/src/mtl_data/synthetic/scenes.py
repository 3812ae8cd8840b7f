"""Procedural ray-cast scene datasets: the NYUv2 stand-in (indoor) and the Cityscapes stand-in (street).

Both render random scenes of boxes, spheres and planes (:mod:`mtl_data.synthetic.raycast`) with
textures, lighting and shadows, and return per-pixel ground truth that is exact by construction: the
class of the object whose surface the pixel's ray hits first, its z-depth and its normal.

:class:`IndoorScenes` (NYUv2 stand-in, tasks ``segmentation`` (13 classes), ``depth``, ``normal``):
a room (floor, ceiling, walls with windows, paintings, a TV) furnished with beds, sofas, tables with
books and objects, chairs and cabinets, seen by a Kinect-like camera (60 degree horizontal field of
view). Classes follow the NYUv2 13-class order of the MTAN data (:data:`NYU_CLASSES`); depth is the
z-depth in metres (as NYUv2); normals are unit vectors in the camera frame (x right, y down,
z forward), facing the camera.

:class:`StreetScenes` (Cityscapes stand-in, tasks ``segmentation`` (7 classes), ``depth``): a straight
street with road and sidewalks, building blocks, poles with signs, trees and grass, pedestrians and
vehicles, under a sun and sky, seen by a car-mounted camera (~50 degree field of view, 1:2 aspect);
optionally the ego-vehicle's bonnet at the bottom (void). Classes are the 7 Cityscapes categories
of the MTAN data (:data:`CITYSCAPES_CLASSES`); like the MTAN Cityscapes depth (which is disparity,
i.e. inverse depth) the depth target is inverse z-depth in 1/m, with 0 (= missing, excluded by the
metric) on sky and void pixels.

The scene generators live in :mod:`mtl_data.synthetic.indoor` and :mod:`mtl_data.synthetic.street`.

Sample layout (data contract): ``(image 3xHxW float32 in [0, 1], {"segmentation": HxW int64
(-1 = ignore), "depth": 1xHxW float32, "normal": 3xHxW float32})``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import torch

from mtl_data.base import Batching, MTLDataset
from mtl_data.synthetic._base import (
    SizedStandin,
    cached_arrays,
    check_resolution,
    check_size,
    check_split,
    item_seed,
    reject_unknown,
)
from mtl_data.synthetic.indoor import (
    BED,
    BOOKS,
    CEILING,
    CHAIR,
    FLOOR,
    FURNITURE,
    NYU_CLASSES,
    OBJECTS,
    PAINTING,
    SOFA,
    TABLE,
    TV,
    WALL,
    WINDOW,
    indoor_scene,
)  # fmt: skip
from mtl_data.synthetic.render import Rendering, Scene, render
from mtl_data.synthetic.street import (
    CITYSCAPES_CLASSES,
    CONSTRUCTION,
    FLAT,
    HUMAN,
    NATURE,
    OBJECT,
    SKY,
    VEHICLE,
    VOID,
    street_scene,
)  # fmt: skip
from mtl_data.synthetic.textures import ValueNoise
from mtl_data.tasks import scene_task_names, scene_tasks

__all__ = [
    "BED", "BOOKS", "CEILING", "CHAIR", "CITYSCAPES_CLASSES", "CONSTRUCTION", "FLAT", "FLOOR", "FURNITURE",
    "HUMAN", "NATURE", "NYU_CLASSES", "OBJECT", "OBJECTS", "PAINTING", "SKY", "SOFA", "TABLE", "TV", "VEHICLE",
    "VOID", "WALL", "WINDOW", "IndoorScenes", "StreetScenes", "indoor_scene", "item_seed", "street_scene",
]  # fmt: skip

#: Bumped whenever generation changes, so that disk caches of older versions are not reused.
GENERATOR_VERSION = 2


class _SceneDataset(SizedStandin, MTLDataset):
    """Renders ``size`` scenes of a split once (or loads them from ``cache_dir``), serves them as tensors."""

    batching = Batching.SINGLE

    is_standin = True
    name = ""
    description = ""
    default_sizes: ClassVar[dict[str, int]] = {}
    default_resolution: tuple[int, int] = (48, 64)
    num_classes = 0
    normals = False

    def __init__(
        self,
        split: str,
        seed: int = 0,
        size: int | None = None,
        resolution: tuple[int, int] | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        shadows: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(check_split(split), scene_tasks(self.num_classes, normals=self.normals), self.description)
        self.seed = seed
        item_seed(self.name, seed, split, 0)  # validates the seed
        self.size = check_size(size, self.default_sizes[split], self.name)
        self.resolution = check_resolution(resolution or self.default_resolution, self.name)
        self.options = self._check_options(options)
        self.shadows = bool(shadows)
        h, w = self.resolution
        expected = {
            "image": ((self.size, 3, h, w), np.dtype(np.float32)),
            "segmentation": ((self.size, h, w), np.dtype(np.int8)),
            "depth": ((self.size, 1, h, w), np.dtype(np.float32)),
        }
        if self.normals:
            expected["normal"] = ((self.size, 3, h, w), np.dtype(np.float32))
        key = {
            "dataset": self.name,
            "version": GENERATOR_VERSION,
            "split": split,
            "seed": seed,
            "size": self.size,
            "resolution": self.resolution,
            "shadows": self.shadows,
            **self.options,
        }
        self._arrays = cached_arrays(cache_dir, key, expected, self._generate)

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        reject_unknown(self.name, options, ["cache_dir", "shadows"])
        return {}

    def render_item(self, index: int) -> Rendering:
        """Render item ``index`` from scratch (full-precision ground truth and the primitive ids)."""
        rng = np.random.default_rng(item_seed(self.name, self.seed, self.split, index))
        scene = self.scene_from_rng(rng)
        return render(scene, ValueNoise(rng))

    def scene_from_rng(self, rng: np.random.Generator) -> Scene:
        raise NotImplementedError

    def _targets_from(self, r: Rendering) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _generate(self) -> dict[str, np.ndarray]:
        h, w = self.resolution
        out = {
            "image": np.empty((self.size, 3, h, w), np.float32),
            "segmentation": np.empty((self.size, h, w), np.int8),
            "depth": np.empty((self.size, 1, h, w), np.float32),
        }
        if self.normals:
            out["normal"] = np.empty((self.size, 3, h, w), np.float32)
        for i in range(self.size):
            r = self.render_item(i)
            out["image"][i] = r.image
            for task, value in self._targets_from(r).items():
                out[task][i] = value
        return out

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.check_index(index)
        a = self._arrays
        targets = {
            "segmentation": torch.from_numpy(a["segmentation"][index].astype(np.int64)),
            "depth": torch.from_numpy(a["depth"][index].copy()),
        }
        if self.normals:
            targets["normal"] = torch.from_numpy(a["normal"][index].copy())
        return torch.from_numpy(a["image"][index].copy()), targets


class IndoorScenes(_SceneDataset):
    """NYUv2 stand-in: rendered rooms with exact 13-class segmentation, z-depth (m) and normals.

    Default sizes follow seed 001 A3.1 (636 train, 159 val, 654 test); default resolution 48x64
    (NYUv2 is 288x384, same 3:4 aspect). ``shadows=False`` renders faster (no shadow rays).
    """

    name = "nyuv2_standin"
    description = (
        "STAND-IN for NYUv2 (not real data): procedurally rendered indoor scenes with exact "
        "13-class segmentation, depth and surface normals"
    )
    default_sizes: ClassVar[dict[str, int]] = {"train": 636, "val": 159, "test": 654}
    default_resolution = (48, 64)
    num_classes = 13
    normals = True
    TASK_NAMES = scene_task_names(normals=True)
    class_names = NYU_CLASSES

    def scene_from_rng(self, rng: np.random.Generator) -> Scene:
        return indoor_scene(rng, *self.resolution, shadows=self.shadows)

    def _targets_from(self, r: Rendering) -> dict[str, np.ndarray]:
        return {"segmentation": r.labels, "depth": r.depth[None], "normal": r.normal}


class StreetScenes(_SceneDataset):
    """Cityscapes stand-in: rendered streets with exact 7-class segmentation and inverse depth (1/m).

    Default sizes follow seed 001 A3.1 (2380 train, 595 val, 500 test); default resolution 32x64
    (Cityscapes is 128x256, same 1:2 aspect). ``ego_vehicle=False`` removes the void bonnet.
    """

    name = "cityscapes_standin"
    description = (
        "STAND-IN for Cityscapes (not real data): procedurally rendered street scenes with exact "
        "7-class segmentation and inverse depth"
    )
    default_sizes: ClassVar[dict[str, int]] = {"train": 2380, "val": 595, "test": 500}
    default_resolution = (32, 64)
    num_classes = 7
    normals = False
    TASK_NAMES = scene_task_names(normals=False)
    class_names = CITYSCAPES_CLASSES

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        ego = options.pop("ego_vehicle", True)
        reject_unknown(self.name, options, ["cache_dir", "shadows", "ego_vehicle"])
        self.ego_vehicle = bool(ego)
        return {"ego_vehicle": self.ego_vehicle}

    def scene_from_rng(self, rng: np.random.Generator) -> Scene:
        return street_scene(rng, *self.resolution, shadows=self.shadows, ego_vehicle=self.ego_vehicle)

    def _targets_from(self, r: Rendering) -> dict[str, np.ndarray]:
        valid = (r.labels != VOID) & (r.depth > 0)
        inverse = np.where(valid, 1.0 / np.where(valid, r.depth, 1.0), 0.0)
        return {"segmentation": r.labels, "depth": inverse[None]}
