"""Task specs: losses against hand-computed values, metric directions, validation of shapes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mtl_data.tasks import (
    BinaryAttributeTask,
    ClassificationTask,
    DepthTask,
    DisparityTask,
    InstanceTask,
    NormalTask,
    RegressionTask,
    SegmentationTask,
    binary_attribute_tasks,
    classification_tasks,
    scene_tasks,
)


def test_scene_tasks_follow_the_contract():
    nyu = scene_tasks(13, normals=True)
    assert list(nyu) == ["segmentation", "depth", "normal"]
    assert [t.output_dim for t in nyu.values()] == [13, 1, 3]
    city = scene_tasks(7, normals=False)
    assert list(city) == ["segmentation", "depth"] and city["segmentation"].output_dim == 7


def test_metric_directions():
    assert SegmentationTask(num_classes=3).higher_is_better == {"mIoU": True, "pix_acc": True}
    assert DepthTask().higher_is_better == {"abs_err": False, "rel_err": False}
    assert NormalTask().higher_is_better == {
        "mean_angle": False,
        "median_angle": False,
        "within_11.25": True,
        "within_22.5": True,
        "within_30": True,
    }
    assert BinaryAttributeTask("Smiling").higher_is_better == {"error": False, "f1": True}
    assert ClassificationTask("left", 10).higher_is_better == {"accuracy": True}
    assert RegressionTask("homo", scale=2.0, unit="meV").metrics[0].unit == "meV"
    # Every metric a meter computes is declared, and vice versa.
    for task in [*scene_tasks(13, True).values(), InstanceTask(), DisparityTask()]:
        assert task.metric_names  # declared
    meter_keys = NormalTask().evaluate(torch.ones(1, 3, 1, 1), torch.ones(1, 3, 1, 1)).keys()
    assert list(meter_keys) == NormalTask().metric_names


def test_segmentation_loss_ignores_minus_one():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 5.0]]]])  # 1x2x1x2
    target = torch.tensor([[[0, -1]]])
    expected = -F.log_softmax(torch.tensor([2.0, 0.0]), 0)[0]
    assert SegmentationTask(num_classes=2).loss(logits, target) == pytest.approx(float(expected))
    all_ignored = SegmentationTask(num_classes=2).loss(logits.requires_grad_(), torch.full((1, 1, 2), -1))
    assert all_ignored.item() == 0.0 and all_ignored.requires_grad


def test_depth_loss_is_masked_l1():
    pred = torch.tensor([[[[1.0, 9.0, 3.0]]]])
    target = torch.tensor([[[[2.0, 0.0, 1.0]]]])
    assert float(DepthTask().loss(pred, target)) == pytest.approx((1 + 2) / 2)


def test_normal_loss_is_one_minus_mean_cosine_over_valid_pixels():
    t = torch.zeros(1, 3, 1, 3)
    t[0, 2, 0, :2] = 1.0
    p = torch.zeros(1, 3, 1, 3)
    p[0, 2, 0, 0] = 1.0
    p[0, :, 0, 1] = torch.tensor([1.0, 0.0, 0.0])
    p[0, :, 0, 2] = torch.tensor([0.0, 1.0, 0.0])  # missing target: ignored
    assert float(NormalTask().loss(p, t)) == pytest.approx(1 - (1 + 0) / 2)


def test_binary_classification_and_regression_losses():
    logit = torch.tensor([[0.3], [-1.2]])
    label = torch.tensor([1.0, 0.0])
    expected = -(math.log(torch.sigmoid(torch.tensor(0.3))) + math.log(1 - torch.sigmoid(torch.tensor(-1.2))))
    assert float(BinaryAttributeTask("a").loss(logit, label)) == pytest.approx(expected / 2, rel=1e-6)
    assert float(RegressionTask("mu").loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0]))) == 2.5
    logits = torch.tensor([[1.0, 2.0, 0.5]])
    assert float(ClassificationTask("left", 3).loss(logits, torch.tensor([1]))) == pytest.approx(
        float(-F.log_softmax(logits, 1)[0, 1])
    )


def test_instance_and_disparity_losses():
    nan = float("nan")
    pred = torch.tensor([[[[1.0, 5.0]], [[2.0, 5.0]]]])
    target = torch.tensor([[[[0.0, nan]], [[4.0, nan]]]])
    assert float(InstanceTask().loss(pred, target)) == pytest.approx((1 + 2) / 2)
    assert float(DisparityTask().loss(torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[0.0, 3.0]]]]))) == 1.0


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="expected logits"):
        SegmentationTask(num_classes=3).loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="does not match"):
        DepthTask().loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 2))
    with pytest.raises(ValueError, match=r"\(B,\) or \(B, 1\)"):
        BinaryAttributeTask("a").loss(torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="output_dim"):
        ClassificationTask("x", 0)
    with pytest.raises(ValueError, match="unique"):
        binary_attribute_tasks(["a", "a"])
    with pytest.raises(ValueError, match="scale"):
        RegressionTask("mu", scale=0.0)


def test_task_factories_and_equality():
    tasks = classification_tasks(["left", "right"], 10)
    assert list(tasks) == ["left", "right"] and tasks["left"] == ClassificationTask("left", 10)
    assert tasks["left"] != ClassificationTask("left", 9)
    assert len(binary_attribute_tasks([f"a{i}" for i in range(40)])) == 40
