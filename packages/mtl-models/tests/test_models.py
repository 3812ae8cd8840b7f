"""Behaviour specific to single architectures (attention routing, multi-input, input checks...)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mtl_models
from mtl_models.testing import BENCHMARKS, CITYSCAPES3_TASKS, NYUV2_TASKS, OFFICEHOME_TASKS, example_input


def test_mtan_task_losses_only_reach_their_own_attention_modules() -> None:
    model = mtl_models.create("mtan", tasks=NYUV2_TASKS, width=0.0625)
    x = torch.randn(2, 3, 32, 32)
    predictions = model(x)
    for task in NYUV2_TASKS:
        loss = (predictions[task] * torch.randn_like(predictions[task])).mean()
        model.zero_grad()
        loss.backward(retain_graph=True)
        for other in NYUV2_TASKS:
            attention = [
                *model.encoder.down_attention[other].parameters(),
                *model.encoder.up_attention[other].parameters(),
            ]
            grads = [p.grad for p in attention]
            if other == task:
                assert all(g is not None and g.abs().sum() > 0 for g in grads[::2])
            else:
                assert all(g is None or g.abs().sum() == 0 for g in grads)


@pytest.mark.parametrize("name", ["segnet_split", "mtan"])
def test_segnet_models_need_sides_divisible_by_32(name: str) -> None:
    model = mtl_models.create(name, tasks=NYUV2_TASKS, width=0.0625)
    with pytest.raises(ValueError, match="divisible by 32, got 40x64"):
        model(torch.randn(2, 3, 40, 64))
    with pytest.raises(ValueError, match=r"images of shape \(B, 3, H, W\), got \(2, 1, 32, 64\)"):
        model(torch.randn(2, 1, 32, 64))


@pytest.mark.parametrize("name", ["deeplabv3", "deeplabv3plus", "pspnet"])
def test_dilated_models_need_sides_divisible_by_8(name: str) -> None:
    model = mtl_models.create(name, tasks=NYUV2_TASKS, width=0.0625)
    with pytest.raises(ValueError, match="divisible by 8, got 36x48"):
        model(torch.randn(2, 3, 36, 48))


def test_pspnet_input_resolution_is_the_8x_upsampled_feature_resolution() -> None:
    full = mtl_models.create("pspnet", tasks=CITYSCAPES3_TASKS, width=0.0625, seed=5).eval()
    coarse = mtl_models.create("pspnet", tasks=CITYSCAPES3_TASKS, width=0.0625, seed=5, output_resolution="feature")
    coarse.eval()
    x = torch.randn(2, 3, 32, 64)
    with torch.no_grad():
        a, b = full(x), coarse(x)
    for task in CITYSCAPES3_TASKS:
        assert b[task].shape[-2:] == (4, 8)
        torch.testing.assert_close(a[task], F.interpolate(b[task], scale_factor=8, mode="nearest"))


def test_office_encodes_each_domain_separately() -> None:
    """Per-domain batches go through the encoder one by one (per-domain BatchNorm statistics)."""
    cfg = BENCHMARKS["resnet18_office/officehome"]
    model = cfg.create(width=0.0625).train()
    model.encoder.hidden[3].eval()  # switch dropout off to compare two forward passes
    x = example_input(cfg, 3, (3, 32, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = model.encode(x)
        for i, task in enumerate(OFFICEHOME_TASKS):
            torch.testing.assert_close(z[i], model.encoder(x[task]))
    model.eval()
    with torch.no_grad():
        joint = model(x)
        for task in OFFICEHOME_TASKS:
            torch.testing.assert_close(model.predict_task(task, x[task]), joint[task])


def test_office_requires_every_domain() -> None:
    model = mtl_models.create("resnet18_office", tasks=OFFICEHOME_TASKS, width=0.0625)
    images = {t: torch.randn(2, 3, 32, 32) for t in ("Art", "Clipart", "Product")}
    with pytest.raises(ValueError, match=r"exactly the tasks \['Art', 'Clipart', 'Product', 'Real_World'\]"):
        model.encode(images)
    with pytest.raises(ValueError, match="unknown task 'Sketch'"):
        model.predict_task("Sketch", images["Art"])


def test_multilenet_checks_its_input_size() -> None:
    model = mtl_models.create("multilenet", tasks={"left": 10, "right": 10})
    assert model(torch.randn(2, 1, 28, 28))["left"].shape == (2, 10)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\), got \(2, 1, 36, 36\); pass input_size"):
        model(torch.randn(2, 1, 36, 36))


def test_celeba_resnet18_features_are_mgda_ub_pooling_at_64x64() -> None:
    model = mtl_models.create("resnet18_celeba", tasks={"Smiling": 1}, width=0.125).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        trunk = model.encoder.trunk(x)
        assert trunk.shape[-2:] == (8, 8)
        torch.testing.assert_close(model.encode(x), torch.flatten(F.avg_pool2d(trunk, 4), 1))


def test_toy_mlp_checks_its_input() -> None:
    model = mtl_models.create("toy_mlp", tasks={"a": 1, "b": 1})
    assert model(torch.rand(5, 1))["b"].shape == (5,)
    with pytest.raises(ValueError, match=r"inputs of shape \(B, 1\), got \(5,\)"):
        model(torch.rand(5))
