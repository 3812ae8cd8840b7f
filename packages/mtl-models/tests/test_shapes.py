"""Output shapes and dtypes of every model at its benchmark's real input size (reduced width)."""

from __future__ import annotations

import pytest
import torch

from mtl_models.testing import BENCHMARKS, example_input

from .conftest import needs_graph

DENSE = {"segnet_split", "mtan", "deeplabv3", "deeplabv3plus", "pspnet"}
BATCH = 2


@pytest.mark.parametrize("key", sorted(BENCHMARKS))
def test_output_shapes_and_dtypes_at_the_benchmark_input_size(key: str) -> None:
    cfg = BENCHMARKS[key]
    needs_graph(cfg)
    model = cfg.create(width=0.0625 if cfg.model in DENSE else 0.25).eval()
    batch = 1 if cfg.model in DENSE else BATCH  # eval mode: one image suffices for the dense models
    x = example_input(cfg, batch, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        predictions = model(x)
    assert list(predictions) == list(cfg.tasks)
    for task, out_dim in cfg.tasks.items():
        y = predictions[task]
        assert y.dtype == torch.float32, task
        assert torch.isfinite(y).all(), task
        if cfg.model in DENSE:
            _, h, w = cfg.input_shape
            if cfg.options.get("output_resolution") == "feature":
                h, w = h // 8, w // 8
            assert y.shape == (batch, out_dim, h, w), task
        else:
            assert y.shape == ((BATCH,) if out_dim == 1 else (BATCH, out_dim)), task
    if "normal" in predictions:
        norms = predictions["normal"].norm(dim=1)
        torch.testing.assert_close(norms, torch.ones_like(norms))


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("segnet_split/cityscapes", [(2, 4, 128, 256)]),
        ("mtan/cityscapes", [(2, 4, 128, 256)] * 2),
        ("deeplabv3/cityscapes", [(2, 128, 16, 32)]),
        ("deeplabv3plus/cityscapes", [(2, 16, 32, 64), (2, 128, 16, 32)]),
        ("pspnet/nyuv2", [(2, 128, 36, 48)]),
        ("resnet18_office/office31", [(2, 32)] * 3),
        ("celeba_cnn/celeba", [(2, 32)]),
        ("resnet18_celeba/celeba", [(2, 128)]),
    ],
)
def test_representation_layout(key: str, expected: list[tuple[int, ...]]) -> None:
    cfg = BENCHMARKS[key]
    model = cfg.create(width=0.0625).eval()
    with torch.no_grad():
        z = model.encode(example_input(cfg, BATCH))
    shapes = [tuple(t.shape) for t in z] if isinstance(z, tuple) else [tuple(z.shape)]
    assert shapes == expected
