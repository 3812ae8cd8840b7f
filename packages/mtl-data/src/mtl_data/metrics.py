"""Split-level metric meters: accumulate sufficient statistics over every batch of a split, then compute.

Every meter is a *streaming* accumulator: ``update(prediction, target)`` once per batch, ``compute()`` at
the end. Nothing is averaged per batch, so the result does not depend on the batch size or on how the
split is cut into batches (mIoU comes from one confusion matrix of the whole split; depth errors are sums
over all valid pixels divided by the number of valid pixels of the split; ...).

Definitions follow the reference evaluation code of the papers (lorenmt/mtan ``utils.py``,
AvivNavon/nash-mtl ``experiments/nyuv2/utils.py`` and ``experiments/quantum_chemistry/trainer.py``,
SamsungLabs/MTL ``code/evaluation/cityscapes.py``):

- segmentation: confusion matrix over pixels whose label is in ``[0, C)`` (``-1`` = ignore); IoU_c =
  TP / (TP + FP + FN); mIoU = mean over classes whose union is non-empty (a class absent from both the
  labels and the predictions has no defined IoU; MTAN would produce NaN, SamsungLabs uses ``nanmean``:
  identical whenever every class occurs); pixel accuracy = trace / total.
- depth: valid pixels are those whose target is non-zero (0 = missing); abs err = mean |p - t|,
  rel err = mean |p - t| / t, both averaged over valid *pixels* (not per image).
- normals: valid pixels are those whose target vector is non-zero; angle = degrees(acos(clamp(<p, t>)));
  mean, median, and the percentage of valid pixels with angle < 11.25 / 22.5 / 30 degrees.
- binary attributes: error = percentage of samples whose thresholded logit (> 0) differs from the label
  (F-MTL); F1 of the positive class from split-level TP/FP/FN (FAMO, followed by SAMO and ConsMTL).
- classification: accuracy = percentage of correct arg-max predictions.
- regression (QM9): mean absolute error in reference units, ``|p - t| * scale`` where ``scale`` undoes
  the target normalisation and converts units (e.g. eV -> meV).
- instance (Cityscapes 3-task): L1 in pixels over pixels that belong to an instance (target finite);
  as in SamsungLabs/MTL both offsets are truncated to integers before the difference.
- disparity (Cityscapes 3-task): MSE over pixels with non-zero target.

Percentages are reported in ``[0, 100]`` (as the seeds' tables print them).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor

__all__ = [
    "AccuracyMeter",
    "BinaryErrorMeter",
    "ConfusionMatrixMeter",
    "DepthErrorMeter",
    "DisparityMSEMeter",
    "InstanceL1Meter",
    "Meter",
    "NormalAngleMeter",
    "RegressionMAEMeter",
    "scalar_predictions",
]


def _check_same_shape(name: str, prediction: Tensor, target: Tensor) -> None:
    if prediction.shape != target.shape:
        raise ValueError(
            f"{name}: prediction shape {tuple(prediction.shape)} does not match target shape {tuple(target.shape)}"
        )


def scalar_predictions(name: str, prediction: Tensor, target: Tensor) -> Tensor:
    """Flatten a per-sample scalar prediction of shape ``B`` or ``Bx1`` to ``B`` (target has shape ``B``)."""
    if prediction.dim() == 2 and prediction.shape[1] == 1:
        prediction = prediction[:, 0]
    target_shape = target.shape if target.dim() == 1 else target.reshape(-1).shape
    if prediction.dim() != 1 or prediction.shape != target_shape:
        raise ValueError(
            f"{name}: expected a prediction of shape (B,) or (B, 1) matching target shape "
            f"{tuple(target.shape)}, got {tuple(prediction.shape)}"
        )
    return prediction


class Meter(ABC):
    """Accumulates statistics of one task over a whole split; ``compute`` returns ``{metric: value}``."""

    def __init__(self) -> None:
        self.reset()

    @abstractmethod
    def reset(self) -> None:
        """Forget everything seen so far."""

    @abstractmethod
    def update(self, prediction: Tensor, target: Tensor) -> None:
        """Add one batch (a model's prediction and the dataset's target for that batch)."""

    @abstractmethod
    def compute(self) -> dict[str, float]:
        """Metrics of everything seen since the last reset. Raises ``ValueError`` if nothing was counted."""

    def _require(self, count: float) -> None:
        if count <= 0:
            raise ValueError(f"{type(self).__name__}: no valid target was seen; cannot compute metrics")


class ConfusionMatrixMeter(Meter):
    """mIoU and pixel accuracy (in %) from one confusion matrix over the split (MTAN ``ConfMatrix``).

    ``prediction`` is either logits ``BxCxHxW`` (arg-max over C is taken) or labels ``BxHxW``;
    ``target`` is int ``BxHxW`` with ``-1`` (or any value outside ``[0, C)``) meaning *ignore*.
    """

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        super().__init__()

    def reset(self) -> None:
        self.matrix: Tensor | None = None  # rows: target class, columns: predicted class

    def update(self, prediction: Tensor, target: Tensor) -> None:
        n = self.num_classes
        if prediction.dim() == target.dim() + 1:
            if prediction.shape[1] != n:
                raise ValueError(f"segmentation: logits have {prediction.shape[1]} channels, expected {n}")
            prediction = prediction.argmax(dim=1)
        _check_same_shape("segmentation", prediction, target)
        with torch.no_grad():
            target = target.long()
            prediction = prediction.long()
            valid = (target >= 0) & (target < n)
            index = n * target[valid] + prediction[valid].clamp(0, n - 1)
            counts = torch.bincount(index, minlength=n * n).reshape(n, n)
        self.matrix = counts if self.matrix is None else self.matrix + counts.to(self.matrix.device)

    def compute(self) -> dict[str, float]:
        total = 0 if self.matrix is None else int(self.matrix.sum())
        self._require(total)
        h = self.matrix.double()
        tp = torch.diag(h)
        union = h.sum(0) + h.sum(1) - tp
        present = union > 0
        miou = (tp[present] / union[present]).mean().item()
        return {"mIoU": 100.0 * miou, "pix_acc": 100.0 * (tp.sum() / h.sum()).item()}

    def per_class_iou(self) -> Tensor:
        """IoU of each class (NaN where the class never occurs in labels nor predictions)."""
        self._require(0 if self.matrix is None else int(self.matrix.sum()))
        h = self.matrix.double()
        tp = torch.diag(h)
        return tp / (h.sum(0) + h.sum(1) - tp)


class DepthErrorMeter(Meter):
    """Absolute and relative depth error over all valid pixels of the split (target != 0; MTAN/Nash-MTL
    ``depth_error``)."""

    def reset(self) -> None:
        self.abs_sum = 0.0
        self.rel_sum = 0.0
        self.count = 0

    def update(self, prediction: Tensor, target: Tensor) -> None:
        _check_same_shape("depth", prediction, target)
        with torch.no_grad():
            valid = target != 0
            t = target[valid].double()
            err = (prediction[valid].double() - t).abs()
            self.abs_sum += err.sum().item()
            self.rel_sum += (err / t.abs()).sum().item()
            self.count += int(valid.sum())

    def compute(self) -> dict[str, float]:
        self._require(self.count)
        return {"abs_err": self.abs_sum / self.count, "rel_err": self.rel_sum / self.count}


class NormalAngleMeter(Meter):
    """Angular error of surface normals in degrees (MTAN/Nash-MTL ``normal_error``), split-level.

    The median is read from a histogram of the angles with ``bin_degrees`` resolution (default 0.001
    degrees; error at most half a bin): storing every angle of a split (70M for NYUv2) is not
    affordable, and that error is far below the two decimals the tables report. The mean and the
    within-threshold percentages are exact.
    The prediction is L2-normalised over channels first (a no-op for models that already normalise,
    as the contract requires), so the angle is well defined for any prediction.
    """

    THRESHOLDS = (11.25, 22.5, 30.0)

    def __init__(self, bin_degrees: float = 1e-3) -> None:
        if not bin_degrees > 0:
            raise ValueError(f"bin_degrees must be > 0, got {bin_degrees}")
        self.bin_degrees = bin_degrees
        self.num_bins = math.ceil(180.0 / bin_degrees) + 1
        super().__init__()

    def reset(self) -> None:
        self.histogram: Tensor | None = None
        self.angle_sum = 0.0
        self.count = 0
        self.within = [0, 0, 0]

    def update(self, prediction: Tensor, target: Tensor) -> None:
        _check_same_shape("normal", prediction, target)
        if target.dim() != 4 or target.shape[1] != 3:
            raise ValueError(f"normal: expected Bx3xHxW tensors, got {tuple(target.shape)}")
        with torch.no_grad():
            valid = target.abs().sum(dim=1) != 0
            p = torch.nn.functional.normalize(prediction.double(), dim=1)
            cosine = (p * target.double()).sum(dim=1)[valid].clamp(-1.0, 1.0)
            angles = torch.rad2deg(torch.acos(cosine))
            bins = (angles / self.bin_degrees).long().clamp(0, self.num_bins - 1)
            hist = torch.bincount(bins, minlength=self.num_bins)
            self.histogram = hist if self.histogram is None else self.histogram + hist.to(self.histogram.device)
            self.angle_sum += angles.sum().item()
            self.count += angles.numel()
            for i, threshold in enumerate(self.THRESHOLDS):
                self.within[i] += int((angles < threshold).sum())

    def _median(self) -> float:
        # The median of n values is the mean of the order statistics of rank (n-1)//2 and n//2 (0-based),
        # as numpy's; each is located in the histogram and read as its bin centre (error <= bin/2).
        cumulative = torch.cumsum(self.histogram, 0)
        ranks = torch.tensor([(self.count - 1) // 2, self.count // 2], device=cumulative.device)
        bins = torch.searchsorted(cumulative, ranks, right=True)
        return float((bins.double() + 0.5).mean()) * self.bin_degrees

    def compute(self) -> dict[str, float]:
        self._require(self.count)
        result = {"mean_angle": self.angle_sum / self.count, "median_angle": self._median()}
        for threshold, hits in zip(self.THRESHOLDS, self.within):
            result[f"within_{threshold:g}"] = 100.0 * hits / self.count
        return result


class BinaryErrorMeter(Meter):
    """Error and F1 (both in %) of one binary attribute from its logit, split-level.

    error = percentage of samples whose thresholded logit (> 0, i.e. probability > 0.5) differs from the
    label (F-MTL Table 2). F1 = 2 TP / (2 TP + FP + FN) of the positive class, accumulated over the split
    (Cranial-XIX/FAMO ``CelebaMetrics``, the protocol SAMO and ConsMTL follow; 0 when the attribute is
    never predicted nor present).
    """

    def reset(self) -> None:
        self.tp = 0
        self.fp = 0
        self.fn = 0
        self.count = 0

    def update(self, prediction: Tensor, target: Tensor) -> None:
        prediction = scalar_predictions("binary attribute", prediction, target)
        with torch.no_grad():
            predicted = prediction > 0
            actual = target.reshape(-1) > 0.5
            self.tp += int((predicted & actual).sum())
            self.fp += int((predicted & ~actual).sum())
            self.fn += int((~predicted & actual).sum())
            self.count += target.numel()

    def compute(self) -> dict[str, float]:
        self._require(self.count)
        denominator = 2 * self.tp + self.fp + self.fn
        f1 = 2 * self.tp / denominator if denominator else 0.0
        return {"error": 100.0 * (self.fp + self.fn) / self.count, "f1": 100.0 * f1}


class AccuracyMeter(Meter):
    """Top-1 accuracy (in %) from class logits ``BxC`` and int labels ``B``."""

    def reset(self) -> None:
        self.correct = 0
        self.count = 0

    def update(self, prediction: Tensor, target: Tensor) -> None:
        if prediction.dim() != 2 or target.dim() != 1 or prediction.shape[0] != target.shape[0]:
            raise ValueError(
                f"classification: expected logits (B, C) and labels (B,), got {tuple(prediction.shape)} "
                f"and {tuple(target.shape)}"
            )
        with torch.no_grad():
            self.correct += int((prediction.argmax(dim=1) == target).sum())
            self.count += target.numel()

    def compute(self) -> dict[str, float]:
        self._require(self.count)
        return {"accuracy": 100.0 * self.correct / self.count}


class RegressionMAEMeter(Meter):
    """Mean absolute error in reference units: ``mean |p - t| * scale`` (Nash-MTL QM9 ``evaluate``).

    ``scale`` is the training-split standard deviation used to normalise the target times the unit
    factor of the reference tables (1000 for eV -> meV).
    """

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = float(scale)
        super().__init__()

    def reset(self) -> None:
        self.abs_sum = 0.0
        self.count = 0

    def update(self, prediction: Tensor, target: Tensor) -> None:
        prediction = scalar_predictions("regression", prediction, target)
        with torch.no_grad():
            self.abs_sum += (prediction.double() - target.reshape(-1).double()).abs().sum().item()
            self.count += target.numel()

    def compute(self) -> dict[str, float]:
        self._require(self.count)
        return {"mae": self.scale * self.abs_sum / self.count}


class InstanceL1Meter(Meter):
    """Instance centroid-offset L1 in pixels over instance pixels (finite targets), split-level.

    As SamsungLabs/MTL ``CityScapesEvaluator``, both offsets are truncated towards zero to integer pixels
    before taking the difference (the published numbers were produced that way).
    """

    def reset(self) -> None:
        self.abs_sum = 0.0
        self.count = 0

    def update(self, prediction: Tensor, target: Tensor) -> None:
        _check_same_shape("instance", prediction, target)
        with torch.no_grad():
            valid = torch.isfinite(target)
            diff = torch.trunc(prediction[valid].double()) - torch.trunc(target[valid].double())
            self.abs_sum += diff.abs().sum().item()
            self.count += int(valid.sum())

    def compute(self) -> dict[str, float]:
        self._require(self.count)
        return {"l1": self.abs_sum / self.count}


class DisparityMSEMeter(Meter):
    """Disparity mean squared error over pixels with non-zero target (SamsungLabs/MTL), split-level."""

    def reset(self) -> None:
        self.sq_sum = 0.0
        self.count = 0

    def update(self, prediction: Tensor, target: Tensor) -> None:
        _check_same_shape("disparity", prediction, target)
        with torch.no_grad():
            valid = target != 0
            self.sq_sum += ((prediction[valid].double() - target[valid].double()) ** 2).sum().item()
            self.count += int(valid.sum())

    def compute(self) -> dict[str, float]:
        self._require(self.count)
        return {"mse": self.sq_sum / self.count}
