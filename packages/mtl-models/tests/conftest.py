"""Shared fixtures: every benchmark configuration at a tiny size for the contract tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from mtl_models import MultiTaskModel
from mtl_models.testing import BENCHMARKS, Benchmark, example_input


@dataclass(frozen=True)
class Tiny:
    """A benchmark shrunk for fast CPU tests: width multiplier and one sample's input shape."""

    width: float
    input_shape: tuple[int, ...]
    batch_size: int = 2  # > 1: BatchNorm on pooled 1x1 maps needs two values per channel in training


TINY = {
    "segnet_split": Tiny(0.0625, (3, 32, 64)),
    "mtan": Tiny(0.0625, (3, 32, 64)),
    "deeplabv3": Tiny(0.0625, (3, 32, 48)),
    "deeplabv3plus": Tiny(0.0625, (3, 32, 48)),
    "pspnet": Tiny(0.0625, (3, 32, 48)),
    "resnet18_multimnist": Tiny(0.125, (1, 36, 36)),
    "multilenet": Tiny(0.5, (1, 36, 36)),
    "resnet18_office": Tiny(0.0625, (3, 32, 32)),
    "celeba_cnn": Tiny(0.0625, (3, 32, 32)),
    "resnet18_celeba": Tiny(0.0625, (3, 32, 32)),
    "mpnn": Tiny(0.25, ()),
    "toy_mlp": Tiny(1.0, (1,)),
}


@pytest.fixture(autouse=True)
def _native_cpu_convolutions() -> Iterator[None]:
    """Use PyTorch's native CPU convolutions during these tests.

    oneDNN compiles a kernel the first time it meets a convolution shape (tens of milliseconds each);
    these tests run hundreds of tiny shapes once each, which the native kernels do far faster. Function
    scope keeps the switch from leaking into other packages' tests.
    """
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = previous


def needs_graph(benchmark: Benchmark) -> None:
    if benchmark.model == "mpnn":
        pytest.importorskip("torch_geometric")


# One configuration per model (the datasets of a model differ only in their task sets at these tiny
# sizes), plus PSPNet's 1/8-resolution Cityscapes variant.
CONTRACT_KEYS = [*sorted({b.model: key for key, b in reversed(BENCHMARKS.items())}.values()), "pspnet/cityscapes3"]


@pytest.fixture(params=CONTRACT_KEYS, ids=str)
def benchmark_cfg(request: pytest.FixtureRequest) -> Benchmark:
    cfg = BENCHMARKS[request.param]
    needs_graph(cfg)
    return cfg


def tiny_model(cfg: Benchmark, seed: int = 0) -> MultiTaskModel:
    return cfg.create(width=TINY[cfg.model].width, seed=seed)


def tiny_input(cfg: Benchmark, seed: int = 0) -> Any:
    tiny = TINY[cfg.model]
    return example_input(cfg, tiny.batch_size, tiny.input_shape, generator=torch.Generator().manual_seed(seed))


def weighted_losses(predictions: dict[str, torch.Tensor], seed: int = 1) -> dict[str, torch.Tensor]:
    """One scalar per task that depends on every output entry (random weights: a plain sum of squares
    would be constant for L2-normalised normals)."""
    g = torch.Generator().manual_seed(seed)
    return {t: (p * torch.randn(p.shape, generator=g)).mean() for t, p in predictions.items()}
