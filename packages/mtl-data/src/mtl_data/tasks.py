"""Task specifications: what a dataset's task is, how it is trained (loss) and how it is scored (metrics).

A :class:`TaskSpec` bundles, for one task of a multi-task dataset:

- ``name``: the standard task name of the data/model contract (``"segmentation"``, ``"depth"``, ...);
- ``output_dim``: the number of output channels/logits the model head must produce;
- ``loss(prediction, target)``: the training loss of the reference code (a scalar tensor);
- ``metrics``: the metrics of the seeds' tables, each a :class:`Metric` with ``higher_is_better``
  and a unit (percentages are in [0, 100]);
- ``meter()``: a fresh :class:`~mtl_data.metrics.Meter` that accumulates the metrics over a whole split.

Usage (the pipeline, and every dataset, real or stand-in)::

    from mtl_data.tasks import SegmentationTask, DepthTask, NormalTask, scene_tasks
    tasks = scene_tasks(num_classes=13, normals=True)  # {"segmentation": ..., "depth": ..., "normal": ...}
    loss = tasks["depth"].loss(pred, target)  # pred Bx1xHxW, target Bx1xHxW (0 = missing)
    meter = tasks["depth"].meter()
    meter.update(pred, target)  # once per batch of the split
    meter.compute()  # {"abs_err": ..., "rel_err": ...}

Tensor layouts (data/model contract): segmentation logits BxCxHxW vs int64 labels BxHxW (-1 = ignore);
depth/disparity Bx1xHxW (target 0 = missing); normals Bx3xHxW (target all-zero = missing); instance
offsets Bx2xHxW (target NaN = pixel of no instance); binary attribute logits B or Bx1 vs float 0/1
labels B; class logits BxC vs int64 labels B; regression B or Bx1 vs float B.

Losses follow the reference training code: pixel-wise cross-entropy with ignore label; L1 over valid
depth pixels; ``1 - mean <p, t>`` over valid normal pixels (AvivNavon/nash-mtl ``calc_loss``, MTAN);
binary cross-entropy with logits per attribute; cross-entropy for classes; MSE on normalised QM9 targets
(Nash-MTL); masked L1 for instance offsets and disparity (SamsungLabs/MTL ``cityscapes_three``).
A batch with no valid target gives a zero loss that is still connected to the graph (the reference
divides by zero and produces NaN, which would poison every optimiser state).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mtl_data.metrics import (
    AccuracyMeter,
    BinaryErrorMeter,
    ConfusionMatrixMeter,
    DepthErrorMeter,
    DisparityMSEMeter,
    InstanceL1Meter,
    Meter,
    NormalAngleMeter,
    RegressionMAEMeter,
    scalar_predictions,
)

__all__ = [
    "BinaryAttributeTask",
    "ClassificationTask",
    "DepthTask",
    "DisparityTask",
    "InstanceTask",
    "Metric",
    "NormalTask",
    "RegressionTask",
    "SegmentationTask",
    "TaskSpec",
    "scene_tasks",
]

IGNORE_LABEL = -1


@dataclass(frozen=True)
class Metric:
    """One reported metric of a task: its key in ``meter().compute()``, direction and unit."""

    name: str
    higher_is_better: bool
    unit: str = ""


def _zero_loss(prediction: Tensor) -> Tensor:
    # Keeps the graph (and the device/dtype) while contributing nothing.
    return prediction.sum() * 0.0


def _check_same_shape(task: str, prediction: Tensor, target: Tensor) -> None:
    if prediction.shape != target.shape:
        raise ValueError(
            f"task {task!r}: prediction shape {tuple(prediction.shape)} does not match target shape "
            f"{tuple(target.shape)}"
        )


class TaskSpec(ABC):
    """Base class of a task specification (see module docstring). Subclasses fix loss and metrics."""

    kind: str = ""
    metrics: tuple[Metric, ...] = ()

    def __init__(self, name: str, output_dim: int) -> None:
        if not name:
            raise ValueError("task name must be a non-empty string")
        if output_dim < 1:
            raise ValueError(f"task {name!r}: output_dim must be >= 1, got {output_dim}")
        self.name = name
        self.output_dim = int(output_dim)

    @abstractmethod
    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Training loss of one batch (scalar tensor, differentiable w.r.t. ``prediction``)."""

    @abstractmethod
    def meter(self) -> Meter:
        """A fresh split-level accumulator of this task's metrics."""

    @property
    def higher_is_better(self) -> dict[str, bool]:
        """``{metric name: True if a higher value is better}`` in table order."""
        return {m.name: m.higher_is_better for m in self.metrics}

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def evaluate(self, prediction: Tensor, target: Tensor) -> dict[str, float]:
        """Metrics of a single batch (convenience; use :meth:`meter` to score a split)."""
        meter = self.meter()
        meter.update(prediction, target)
        return meter.compute()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, output_dim={self.output_dim})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


class SegmentationTask(TaskSpec):
    """Semantic segmentation: pixel-wise cross-entropy (ignore label -1); mIoU and pixel accuracy."""

    kind = "segmentation"
    metrics = (Metric("mIoU", True, "%"), Metric("pix_acc", True, "%"))

    def __init__(self, name: str = "segmentation", num_classes: int = 13) -> None:
        super().__init__(name, num_classes)
        self.num_classes = int(num_classes)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.dim() != 4 or prediction.shape[1] != self.num_classes:
            raise ValueError(
                f"task {self.name!r}: expected logits Bx{self.num_classes}xHxW, got {tuple(prediction.shape)}"
            )
        if target.shape != prediction.shape[:1] + prediction.shape[2:]:
            raise ValueError(
                f"task {self.name!r}: labels {tuple(target.shape)} do not match logits {tuple(prediction.shape)}"
            )
        target = target.long()
        if not bool((target != IGNORE_LABEL).any()):
            return _zero_loss(prediction)
        return F.cross_entropy(prediction, target, ignore_index=IGNORE_LABEL)

    def meter(self) -> Meter:
        return ConfusionMatrixMeter(self.num_classes)


class DepthTask(TaskSpec):
    """Depth regression: L1 over valid pixels (target != 0); absolute and relative error."""

    kind = "depth"
    metrics = (Metric("abs_err", False), Metric("rel_err", False))

    def __init__(self, name: str = "depth") -> None:
        super().__init__(name, 1)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        _check_same_shape(self.name, prediction, target)
        valid = target != 0
        if not bool(valid.any()):
            return _zero_loss(prediction)
        return (prediction[valid] - target[valid]).abs().mean()

    def meter(self) -> Meter:
        return DepthErrorMeter()


class NormalTask(TaskSpec):
    """Surface normals: ``1 - mean <p, t>`` over valid pixels; angle mean/median and % within thresholds.

    A pixel is valid when its target vector is non-zero (MTAN tests ``sum over channels != 0``, which
    also drops the measure-zero set of valid normals whose components sum to exactly 0).
    """

    kind = "normal"
    metrics = (
        Metric("mean_angle", False, "deg"),
        Metric("median_angle", False, "deg"),
        Metric("within_11.25", True, "%"),
        Metric("within_22.5", True, "%"),
        Metric("within_30", True, "%"),
    )

    def __init__(self, name: str = "normal") -> None:
        super().__init__(name, 3)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        _check_same_shape(self.name, prediction, target)
        if prediction.dim() != 4 or prediction.shape[1] != 3:
            raise ValueError(f"task {self.name!r}: expected Bx3xHxW normals, got {tuple(prediction.shape)}")
        valid = target.abs().sum(dim=1) != 0
        if not bool(valid.any()):
            return _zero_loss(prediction)
        dots = (prediction * target).sum(dim=1)
        return 1.0 - dots[valid].mean()

    def meter(self) -> Meter:
        return NormalAngleMeter()


class BinaryAttributeTask(TaskSpec):
    """One binary attribute (CelebA): BCE with logits; error in % (F-MTL) and F1 in % (FAMO/SAMO/ConsMTL).

    Studies that tabulate only one of the two pick it by name from ``metrics``.
    """

    kind = "binary"
    metrics = (Metric("error", False, "%"), Metric("f1", True, "%"))

    def __init__(self, name: str) -> None:
        super().__init__(name, 1)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        prediction = scalar_predictions(f"task {self.name!r}", prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target.reshape(-1).to(prediction.dtype))

    def meter(self) -> Meter:
        return BinaryErrorMeter()


class ClassificationTask(TaskSpec):
    """Multi-class classification (Multi-MNIST, Office): cross-entropy; accuracy in %."""

    kind = "classification"
    metrics = (Metric("accuracy", True, "%"),)

    def __init__(self, name: str, num_classes: int) -> None:
        super().__init__(name, num_classes)
        self.num_classes = int(num_classes)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.dim() != 2 or prediction.shape[1] != self.num_classes or target.shape != prediction.shape[:1]:
            raise ValueError(
                f"task {self.name!r}: expected logits (B, {self.num_classes}) and labels (B,), got "
                f"{tuple(prediction.shape)} and {tuple(target.shape)}"
            )
        return F.cross_entropy(prediction, target.long())

    def meter(self) -> Meter:
        return AccuracyMeter()


class RegressionTask(TaskSpec):
    """Scalar regression on a normalised target (QM9): MSE loss; MAE in reference units.

    ``scale`` converts an error on the normalised target back to the reference unit
    (training-split std times the unit factor, e.g. 1000 for eV -> meV); ``unit`` names that unit.
    """

    kind = "regression"

    def __init__(self, name: str, scale: float = 1.0, unit: str = "") -> None:
        super().__init__(name, 1)
        if not scale > 0:
            raise ValueError(f"task {name!r}: scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.unit = unit
        self.metrics = (Metric("mae", False, unit),)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        prediction = scalar_predictions(f"task {self.name!r}", prediction, target)
        return F.mse_loss(prediction, target.reshape(-1).to(prediction.dtype))

    def meter(self) -> Meter:
        return RegressionMAEMeter(self.scale)


class InstanceTask(TaskSpec):
    """Instance segmentation as centroid regression (Cityscapes 3-task, seed 003 / Kendall et al.).

    Prediction and target are Bx2xHxW (y, x) offsets from each pixel to its instance centroid, in
    pixels; target NaN marks pixels of no instance. Masked L1 loss; L1 [px] metric.
    """

    kind = "instance"
    metrics = (Metric("l1", False, "px"),)

    def __init__(self, name: str = "instance") -> None:
        super().__init__(name, 2)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        _check_same_shape(self.name, prediction, target)
        valid = torch.isfinite(target)
        if not bool(valid.any()):
            return _zero_loss(prediction)
        return (prediction[valid] - target[valid]).abs().mean()

    def meter(self) -> Meter:
        return InstanceL1Meter()


class DisparityTask(TaskSpec):
    """Disparity (Cityscapes 3-task): L1 over valid pixels (target > 0) for training; MSE metric."""

    kind = "disparity"
    metrics = (Metric("mse", False),)

    def __init__(self, name: str = "disparity") -> None:
        super().__init__(name, 1)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        _check_same_shape(self.name, prediction, target)
        valid = target > 0
        if not bool(valid.any()):
            return _zero_loss(prediction)
        return (prediction[valid] - target[valid]).abs().mean()

    def meter(self) -> Meter:
        return DisparityMSEMeter()


def scene_task_names(normals: bool) -> tuple[str, ...]:
    """Task names of the scene-understanding benchmarks: NYUv2 (``normals=True``) or Cityscapes 2-task."""
    return ("segmentation", "depth", "normal") if normals else ("segmentation", "depth")


#: Cityscapes 3-task (seed 003 sec. 6.2) and its stand-in, in table order.
CITYSCAPES3_TASK_NAMES: tuple[str, ...] = ("segmentation", "instance", "disparity")


def scene_tasks(num_classes: int, normals: bool) -> dict[str, TaskSpec]:
    """The scene-understanding tasks of the contract, in table order.

    NYUv2 (and its stand-in): ``scene_tasks(13, normals=True)``; Cityscapes 2-task (and its stand-in):
    ``scene_tasks(7, normals=False)``.
    """
    specs = {"segmentation": SegmentationTask("segmentation", num_classes), "depth": DepthTask("depth")}
    if normals:
        specs["normal"] = NormalTask("normal")
    return {name: specs[name] for name in scene_task_names(normals)}


def binary_attribute_tasks(names: Sequence[str]) -> dict[str, TaskSpec]:
    """One :class:`BinaryAttributeTask` per attribute name, in the given order (CelebA and its stand-in)."""
    if len(set(names)) != len(names):
        raise ValueError(f"attribute names must be unique, got {list(names)}")
    return {name: BinaryAttributeTask(name) for name in names}


def classification_tasks(names: Sequence[str], num_classes: int) -> dict[str, TaskSpec]:
    """One :class:`ClassificationTask` per name (Multi-MNIST left/right, Office domains, digit domains)."""
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique, got {list(names)}")
    return {name: ClassificationTask(name, num_classes) for name in names}


__all__ += [
    "CITYSCAPES3_TASK_NAMES",
    "IGNORE_LABEL",
    "binary_attribute_tasks",
    "classification_tasks",
    "scene_task_names",
]
