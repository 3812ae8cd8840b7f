"""Local ImageNet weights: loaded exactly, never downloaded, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

import mtl_models
from mtl_models.testing import OFFICE31_TASKS


@pytest.fixture(scope="module")
def resnet18_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def dilated_resnet50(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torchvision.models.ResNet]:
    torch.manual_seed(4)
    reference = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True]).eval()
    # Non-trivial BatchNorm statistics, so that a wrongly loaded buffer would show in the outputs.
    with torch.no_grad():
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("weights") / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    return path, reference


def test_office_trunk_gets_exactly_the_checkpoint(resnet18_checkpoint: Path) -> None:
    model = mtl_models.create("resnet18_office", tasks=OFFICE31_TASKS, pretrained_weights=resnet18_checkpoint)
    saved = torch.load(resnet18_checkpoint, weights_only=True)
    trunk = model.encoder.trunk.state_dict()
    assert set(trunk) == {k for k in saved if not k.startswith("fc.")}
    assert all(torch.equal(trunk[k], saved[k]) for k in trunk)


def test_dilated_trunk_equals_torchvision_dilated_resnet50(
    dilated_resnet50: tuple[Path, torchvision.models.ResNet],
) -> None:
    """Same weights, same dilation rule: the layer4 maps of torchvision's dilated ResNet-50 and ours agree
    (DeepLab and PSPNet share this trunk)."""
    path, reference = dilated_resnet50
    model = mtl_models.create("deeplabv3", tasks={"depth": 1}, pretrained_weights=path).eval()
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        expected = torch.nn.Sequential(*list(reference.children())[:-2])(x)
        torch.testing.assert_close(model.encode(x), expected)
    assert expected.shape[-2:] == (6, 8)  # output stride 8


def test_missing_file_is_a_file_not_found_error(tmp_path: Path) -> None:
    missing = tmp_path / "resnet50-0676ba61.pth"
    with pytest.raises(FileNotFoundError, match=r"resnet50-0676ba61\.pth.*Nothing is downloaded"):
        mtl_models.create("deeplabv3", tasks={"depth": 1}, width=0.0625, pretrained_weights=missing)


def test_weights_need_the_reference_width(resnet18_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match=r"width=1\.0"):
        mtl_models.create("resnet18_office", tasks=OFFICE31_TASKS, width=0.5, pretrained_weights=resnet18_checkpoint)


def test_weights_of_another_architecture_are_rejected(resnet18_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match=r"does not match this ResNet trunk \(missing: \['layer1\.0\.bn3"):
        mtl_models.create("pspnet", tasks={"depth": 1}, pretrained_weights=resnet18_checkpoint)


def test_truncated_and_foreign_files_are_rejected(tmp_path: Path, resnet18_checkpoint: Path) -> None:
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(resnet18_checkpoint.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"cannot read .*truncated\.pth as a torch checkpoint"):
        mtl_models.create("resnet18_office", tasks=OFFICE31_TASKS, pretrained_weights=truncated)
    not_a_state_dict = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_a_state_dict)
    with pytest.raises(ValueError, match="does not hold a state dict"):
        mtl_models.create("resnet18_office", tasks=OFFICE31_TASKS, pretrained_weights=not_a_state_dict)
