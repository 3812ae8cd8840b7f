"""Metric meters against values computed by hand, and split-level accumulation properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_data.metrics import (
    AccuracyMeter,
    BinaryErrorMeter,
    ConfusionMatrixMeter,
    DepthErrorMeter,
    DisparityMSEMeter,
    InstanceL1Meter,
    NormalAngleMeter,
    RegressionMAEMeter,
)


def test_confusion_matrix_hand_computed():
    # 3 classes; labels and predictions of 8 pixels, one ignored (-1).
    target = torch.tensor([[[0, 0, 1, 1], [2, 2, 1, -1]]])
    pred = torch.tensor([[[0, 1, 1, 1], [2, 0, 2, 2]]])
    meter = ConfusionMatrixMeter(3)
    meter.update(pred, target)
    # class 0: TP=1, FP=1 (pixel 5), FN=1 (pixel 1) -> 1/3
    # class 1: TP=2, FP=1 (pixel 1), FN=1 (pixel 6) -> 2/4
    # class 2: TP=1, FP=1 (pixel 6), FN=1 (pixel 5) -> 1/3
    expected_miou = (1 / 3 + 2 / 4 + 1 / 3) / 3
    result = meter.compute()
    assert result["mIoU"] == pytest.approx(100 * expected_miou)
    assert result["pix_acc"] == pytest.approx(100 * 4 / 7)


def test_confusion_matrix_accepts_logits_and_is_batch_invariant():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, 7, 9, generator=g)
    target = torch.randint(-1, 5, (6, 7, 9), generator=g)
    whole = ConfusionMatrixMeter(5)
    whole.update(logits, target)
    parts = ConfusionMatrixMeter(5)
    for i in range(0, 6, 2):
        parts.update(logits[i : i + 2], target[i : i + 2])
    assert whole.compute() == pytest.approx(parts.compute())
    # mIoU is not the mean of per-batch mIoUs in general: the split-level value must differ from it here.
    per_batch = []
    for i in range(6):
        m = ConfusionMatrixMeter(5)
        m.update(logits[i : i + 1], target[i : i + 1])
        per_batch.append(m.compute()["mIoU"])
    assert whole.compute()["mIoU"] != pytest.approx(float(np.mean(per_batch)), abs=1e-9)


def test_confusion_matrix_skips_classes_absent_everywhere():
    target = torch.tensor([[0, 0, 1]])
    pred = torch.tensor([[0, 1, 1]])
    meter = ConfusionMatrixMeter(4)  # classes 2 and 3 never occur
    meter.update(pred, target)
    assert meter.compute()["mIoU"] == pytest.approx(100 * (1 / 2 + 1 / 2) / 2)
    assert torch.isnan(meter.per_class_iou()[2:]).all()


def test_depth_errors_hand_computed_and_mask_zero():
    target = torch.tensor([[[[2.0, 0.0], [4.0, 1.0]]]])
    pred = torch.tensor([[[[1.0, 9.0], [5.0, 1.5]]]])
    meter = DepthErrorMeter()
    meter.update(pred, target)
    result = meter.compute()
    assert result["abs_err"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert result["rel_err"] == pytest.approx((1 / 2 + 1 / 4 + 0.5 / 1) / 3)


def test_depth_errors_are_pixel_weighted_over_the_split():
    # Batch 1 has 1 valid pixel, batch 2 has 3: the split value weights pixels, not batches.
    meter = DepthErrorMeter()
    meter.update(torch.tensor([[[[3.0, 7.0]]]]), torch.tensor([[[[1.0, 0.0]]]]))
    meter.update(torch.tensor([[[[1.0, 1.0, 1.0]]]]), torch.tensor([[[[1.0, 1.0, 1.0]]]]))
    assert meter.compute()["abs_err"] == pytest.approx(2.0 / 4)


def test_normal_angles_hand_computed():
    # Four valid pixels at known angles 0, 10, 25, 90 degrees, plus one missing (zero) target.
    angles = [0.0, 10.0, 25.0, 90.0]
    target = torch.zeros(1, 3, 1, 5)
    pred = torch.zeros(1, 3, 1, 5)
    for i, a in enumerate(angles):
        target[0, :, 0, i] = torch.tensor([0.0, 0.0, 1.0])
        r = math.radians(a)
        pred[0, :, 0, i] = torch.tensor([math.sin(r), 0.0, math.cos(r)]) * 3.0  # unnormalised on purpose
    pred[0, :, 0, 4] = torch.tensor([1.0, 0.0, 0.0])
    meter = NormalAngleMeter()
    meter.update(pred, target)
    result = meter.compute()
    assert result["mean_angle"] == pytest.approx(np.mean(angles), abs=1e-6)
    assert result["median_angle"] == pytest.approx(np.median(angles), abs=2e-3)
    assert result["within_11.25"] == pytest.approx(50.0)
    assert result["within_22.5"] == pytest.approx(50.0)
    assert result["within_30"] == pytest.approx(75.0)


def test_normal_median_matches_numpy_on_random_split():
    g = torch.Generator().manual_seed(1)
    target = torch.nn.functional.normalize(torch.randn(3, 3, 8, 8, generator=g), dim=1)
    pred = torch.nn.functional.normalize(target + 0.5 * torch.randn(3, 3, 8, 8, generator=g), dim=1)
    meter = NormalAngleMeter()
    for i in range(3):
        meter.update(pred[i : i + 1], target[i : i + 1])
    cos = (pred.double() * target.double()).sum(1).clamp(-1, 1)
    angles = np.degrees(np.arccos(cos.numpy())).ravel()
    result = meter.compute()
    assert result["median_angle"] == pytest.approx(np.median(angles), abs=2e-3)
    assert result["mean_angle"] == pytest.approx(angles.mean(), abs=1e-5)
    assert result["within_22.5"] == pytest.approx(100 * np.mean(angles < 22.5))


def test_binary_error_and_accuracy():
    meter = BinaryErrorMeter()
    meter.update(torch.tensor([2.0, -1.0, 0.5, -3.0]), torch.tensor([1.0, 1.0, 0.0, 0.0]))
    meter.update(torch.tensor([[1.0]]), torch.tensor([1.0]))
    # predicted: 1 0 1 0 1 ; actual: 1 1 0 0 1 -> TP=2, FP=1, FN=1
    assert meter.compute()["error"] == pytest.approx(100 * 2 / 5)
    assert meter.compute()["f1"] == pytest.approx(100 * 4 / 6)
    acc = AccuracyMeter()
    acc.update(torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), torch.tensor([1, 1, 1]))
    assert acc.compute()["accuracy"] == pytest.approx(100 * 2 / 3)


def test_regression_mae_in_reference_units():
    meter = RegressionMAEMeter(scale=2.0 * 1000)  # std 2 eV, reported in meV
    meter.update(torch.tensor([0.1, -0.2]), torch.tensor([0.0, 0.0]))
    meter.update(torch.tensor([[0.5]]), torch.tensor([0.2]))
    assert meter.compute()["mae"] == pytest.approx(2000 * (0.1 + 0.2 + 0.3) / 3)


def test_instance_l1_truncates_and_ignores_nan():
    target = torch.tensor([[[[1.7, float("nan")]], [[-2.2, float("nan")]]]])
    pred = torch.tensor([[[[3.9, 100.0]], [[-0.5, 100.0]]]])
    meter = InstanceL1Meter()
    meter.update(pred, target)
    assert meter.compute()["l1"] == pytest.approx((abs(3 - 1) + abs(0 - (-2))) / 2)


def test_disparity_mse():
    meter = DisparityMSEMeter()
    meter.update(torch.tensor([[[[1.0, 5.0, 2.0]]]]), torch.tensor([[[[0.5, 0.0, 4.0]]]]))
    assert meter.compute()["mse"] == pytest.approx((0.25 + 4.0) / 2)


@pytest.mark.parametrize(
    "meter",
    [ConfusionMatrixMeter(3), DepthErrorMeter(), NormalAngleMeter(), BinaryErrorMeter(), AccuracyMeter()],
)
def test_empty_meter_raises(meter):
    with pytest.raises(ValueError, match="no valid target"):
        meter.compute()


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="does not match"):
        DepthErrorMeter().update(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))
    with pytest.raises(ValueError, match="channels"):
        ConfusionMatrixMeter(3).update(torch.zeros(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
