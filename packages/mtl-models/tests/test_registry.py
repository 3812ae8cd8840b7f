"""The factory: names, options, errors on bad names, options and values."""

from __future__ import annotations

import math

import pytest
import torch

import mtl_models
from mtl_models.testing import BENCHMARKS, NYUV2_TASKS

EXPECTED_NAMES = [
    "celeba_cnn", "deeplabv3", "deeplabv3plus", "mpnn", "mtan", "multilenet", "pspnet", "resnet18_celeba",
    "resnet18_multimnist", "resnet18_office", "segnet_split", "toy_mlp",
]  # fmt: skip


def test_names_are_sorted_and_complete() -> None:
    assert mtl_models.names() == EXPECTED_NAMES
    assert {b.model for b in BENCHMARKS.values()} == set(EXPECTED_NAMES)


def test_every_model_class_is_exported() -> None:
    from mtl_models.registry import MODELS

    for cls in MODELS.values():
        assert getattr(mtl_models, cls.__name__) is cls
        assert issubclass(cls, mtl_models.MultiTaskModel)


def test_create_returns_the_registered_class() -> None:
    model = mtl_models.create("toy_mlp", tasks={"a": 1, "b": 1})
    assert type(model) is mtl_models.ToyMLP
    assert model.task_names == ("a", "b")


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'segnet'.*mtan.*segnet_split"):
        mtl_models.create("segnet", tasks=NYUV2_TASKS)


def test_unknown_option_lists_valid_options() -> None:
    with pytest.raises(ValueError, match=r"\['depth'\].*valid options: \['width', 'in_channels'"):
        mtl_models.create("mtan", tasks=NYUV2_TASKS, depth=3)
    assert mtl_models.options("pspnet") == [
        "width", "backbone", "in_channels", "pretrained_weights", "output_resolution", "upsample_mode",
        "unit_vector_tasks", "seed",
    ]  # fmt: skip


@pytest.mark.parametrize("width", [0, -0.5, math.nan, math.inf, "0.5", True, None])
def test_invalid_width(width: object) -> None:
    with pytest.raises(ValueError, match="width must be a positive finite number"):
        mtl_models.create("toy_mlp", tasks={"a": 1}, width=width)


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ({}, "non-empty mapping"),
        (["segmentation"], "non-empty mapping"),
        ({"seg.mentation": 13}, "without '.'"),
        ({"": 13}, "non-empty strings"),
        ({"depth": 0}, "positive int"),
        ({"depth": 1.0}, "positive int"),
        ({"depth": True}, "positive int"),
    ],
)
def test_invalid_tasks(tasks: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mtl_models.create("segnet_split", tasks=tasks, width=0.0625)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("pspnet", {"backbone": "resnet18"}, r"invalid backbone 'resnet18'; valid choices: 'resnet50', 'resnet101'"),
        ("deeplabv3", {"backbone": "vgg16"}, "invalid backbone"),
        ("pspnet", {"output_resolution": "half"}, "invalid output_resolution 'half'"),
        ("pspnet", {"upsample_mode": "bicubic"}, "invalid upsample_mode"),
        ("mtan", {"unit_vector_tasks": ["normals"]}, r"unit_vector_tasks \['normals'\] are not tasks"),
        ("mtan", {"unit_vector_tasks": "normal"}, "collection of task names"),
        ("mtan", {"seed": 1.5}, "seed must be an int"),
        ("mtan", {"in_channels": 0}, "in_channels must be a positive int"),
        ("multilenet", {"input_size": 12}, "input_size >= 16"),
        ("mpnn", {"node_features": 0}, "node_features must be a positive int"),
    ],
)
def test_invalid_option_values(name: str, options: dict, message: str) -> None:
    if name == "mpnn":
        pytest.importorskip("torch_geometric")
    tasks = {"segmentation": 13, "normal": 3} if name in ("mtan", "pspnet", "deeplabv3") else {"a": 10}
    with pytest.raises(ValueError, match=message):
        mtl_models.create(name, tasks=tasks, width=0.0625, **options)


def test_unit_vector_task_needs_several_channels() -> None:
    with pytest.raises(ValueError, match="unit-vector task 'normal' needs an output dimension >= 2"):
        mtl_models.create("segnet_split", tasks={"normal": 1}, width=0.0625)


def test_unknown_task_in_task_parameters() -> None:
    model = mtl_models.create("toy_mlp", tasks={"a": 1, "b": 1})
    with pytest.raises(ValueError, match=r"unknown task 'c'; tasks of this model: \['a', 'b'\]"):
        model.task_parameters("c")


def test_width_knob_shrinks_the_model() -> None:
    def count(width: float) -> int:
        with torch.device("meta"):
            model = mtl_models.create("segnet_split", tasks=NYUV2_TASKS, width=width)
        return sum(p.numel() for p in model.parameters())

    full, half, quarter = count(1.0), count(0.5), count(0.25)
    # 3x3 convolutions dominate: parameters scale with width^2.
    assert 0.24 < half / full < 0.26
    assert 0.06 < quarter / full < 0.07
