"""Parameter counts at the reference size equal those of the reference implementations.

The reference numbers were obtained by instantiating the reference code (lorenmt/mtan,
Cranial-XIX/FAMO, SamsungLabs/MTL, median-research-group/LibMTL, AvivNavon/nash-mtl, Pareto-MTL's
ResNet-18) and counting; the models are built on the meta device, so no memory is allocated.
"""

from __future__ import annotations

import pytest
import torch

import mtl_models
from mtl_models.testing import BENCHMARKS, CELEBA_TASKS, MULTIMNIST_TASKS

# key -> (shared parameters, {task: task parameters}) of the reference code. MTAN/SegNet totals exclude
# the 3 uncertainty-weighting log-variances the lorenmt/mtan scripts keep inside the model.
REFERENCE = {
    "segnet_split/nyuv2": (24_943_296, {"segmentation": 37_773, "depth": 36_993, "normal": 37_123}),
    "segnet_split/cityscapes": (24_943_296, {"segmentation": 37_383, "depth": 36_993}),
    "mtan/nyuv2": (44_117_184, {"segmentation": 37_773, "depth": 36_993, "normal": 37_123}),
    "mtan/cityscapes": (41_132_608, {"segmentation": 37_383, "depth": 36_993}),
    "deeplabv3/nyuv2": (23_508_032, {"segmentation": 16_128_781, "depth": 16_125_697, "normal": 16_126_211}),
    "deeplabv3/cityscapes": (23_508_032, {"segmentation": 16_127_239, "depth": 16_125_697}),
    "pspnet/nyuv2": (23_508_032, {"segmentation": 23_080_461, "depth": 23_074_305, "normal": 23_075_331}),
    "pspnet/cityscapes3": (23_508_032, {"segmentation": 23_083_539, "instance": 23_074_818, "disparity": 23_074_305}),
    "resnet18_multimnist/multimnist": (11_221_540, {"left": 1_010, "right": 1_010}),
    "resnet18_office/office31": (11_440_192, {"amazon": 15_903, "dslr": 15_903, "webcam": 15_903}),
    "resnet18_office/officehome": (11_440_192, dict.fromkeys(("Art", "Clipart", "Product", "Real_World"), 33_345)),
    "celeba_cnn/celeba": (5_176_640, dict.fromkeys(CELEBA_TASKS, 513)),
    "mpnn/qm9": (616_960, dict.fromkeys(BENCHMARKS["mpnn/qm9"].tasks, 65)),
    # Derived from the seed's text (no code): 1->20->20 LeakyReLU trunk, 20->20->1 heads.
    "toy_mlp/toy": (460, {"depth_a": 441, "depth_b": 441}),
}


def _counts(model: mtl_models.MultiTaskModel) -> tuple[int, dict[str, int]]:
    shared = sum(p.numel() for p in model.shared_parameters())
    return shared, {t: sum(p.numel() for p in model.task_parameters(t)) for t in model.tasks}


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_reference_parameter_counts(key: str) -> None:
    cfg = BENCHMARKS[key]
    if cfg.model == "mpnn":
        pytest.importorskip("torch_geometric")
    with torch.device("meta"):
        model = cfg.create()
    assert _counts(model) == REFERENCE[key]


def test_multilenet_matches_mgda_ub_at_28x28() -> None:
    with torch.device("meta"):
        model = mtl_models.create("multilenet", tasks=MULTIMNIST_TASKS)
    assert _counts(model) == (21_330, {"left": 3_060, "right": 3_060})


def test_celeba_resnet18_trunk_matches_mgda_ub() -> None:
    # MGDA-UB's CIFAR-style ResNet-18: 11,168,832 parameters; its heads are 2048->2 (4,098), ours 2048->1.
    with torch.device("meta"):
        model = mtl_models.create("resnet18_celeba", tasks=CELEBA_TASKS)
    assert _counts(model) == (11_168_832, dict.fromkeys(CELEBA_TASKS, 2_049))
