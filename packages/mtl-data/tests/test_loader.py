"""The one loader (mtl_data.base.Loader): every dataset declares its batching; batches, augmentations
included, are the same with 0 or N worker processes, persistent or not, and never draw from the caller's
global generator; an epoch depends only on its generator."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
import torch
from mtl_data_fixtures import write_scene_npy

import mtl_data
from mtl_data.base import Batching, Loader, LoaderOptions, MTLDataset, MultiInputDataset, batching_of


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def test_every_dataset_class_declares_its_batching() -> None:
    for module in pkgutil.walk_packages(mtl_data.__path__, "mtl_data."):
        if module.name not in ("mtl_data._qm9_rdkit", "mtl_data.throughput"):
            importlib.import_module(module.name)
    classes = [c for c in _subclasses(MTLDataset) + _subclasses(MultiInputDataset) if not c.__name__.startswith("_")]
    assert len(classes) >= 8
    declared = {c.__name__: batching_of(c) for c in classes}
    assert declared["QM9"] is Batching.GRAPH and declared["CelebA"] is Batching.SINGLE
    assert declared["DigitDomains"] is Batching.MULTI_INPUT and declared["Office"] is Batching.MULTI_INPUT

    class Undeclared(torch.utils.data.Dataset):
        pass

    with pytest.raises(TypeError, match="Undeclared does not declare how it is batched"):
        batching_of(Undeclared())


def _epochs(loader: Loader, seed: int, epochs: int = 2) -> list[list[Any]]:
    out = []
    for epoch in range(epochs):
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        out.append([(x.clone(), {k: v.clone() for k, v in t.items()}) for x, t in loader.epoch(generator)])
    return out


def _same(a: list[list[Any]], b: list[list[Any]]) -> bool:
    pairs = [(x, y) for ea, eb in zip(a, b, strict=True) for x, y in zip(ea, eb, strict=True)]
    return all(torch.equal(p[0], q[0]) and all(torch.equal(p[1][k], q[1][k]) for k in p[1]) for p, q in pairs)


@pytest.fixture(scope="module")
def augmented(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Cityscapes in the MTAN .npy layout: the training split applies the reference scale-crop + flip."""
    root = tmp_path_factory.mktemp("cityscapes")
    write_scene_npy(root, "cityscapes", n_train=8, n_test=2)
    return mtl_data.create("cityscapes", split="train", root=root, val_size=2)


def test_augmented_batches_do_not_depend_on_worker_processes(augmented: Any) -> None:
    """Workers (one thread each, seeded by torch per worker) and the calling process with two intra-op threads
    (bilinear resizing rounds differently with more threads) give bit-identical augmented batches."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        in_process = _epochs(Loader(augmented, 2, shuffle=True), seed=3)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    before = torch.get_rng_state()
    assert _same(_epochs(Loader(augmented, 2, shuffle=True), seed=3), in_process)
    assert torch.equal(torch.get_rng_state(), before)  # loading never draws from the global generator
    workers = Loader(augmented, 2, shuffle=True, options=LoaderOptions(num_workers=2, persistent_workers=True))
    assert _same(_epochs(workers, seed=3), in_process)
    # a run resumed at epoch 2 builds a fresh loader (fresh workers): epoch 2 is the same
    resumed = Loader(augmented, 2, shuffle=True, options=LoaderOptions(num_workers=2, persistent_workers=True))
    generator = torch.Generator().manual_seed(3 * 1000 + 1)
    second = [(x, t) for x, t in resumed.epoch(generator)]
    assert _same([second], [in_process[1]])
    # the augmentation is really random: another seed gives other crops of the same images
    assert not _same(_epochs(Loader(augmented, 2, shuffle=True), seed=4), in_process)


def test_an_unshuffled_loader_gives_the_same_items_on_every_pass(augmented: Any) -> None:
    loader = Loader(augmented, 3, shuffle=False)
    assert _same([list(loader)], [list(loader.epoch())])
    assert len(loader) == 2  # 6 images (8 - 2 held out), batches of 3


def test_the_throughput_script_uses_the_loader(augmented: Any) -> None:
    from mtl_data.throughput import measure

    assert measure(augmented, 2, 2, workers=0)["batches"] == 2


def test_an_item_seeds_only_the_cpu_generator(augmented: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An item's seed goes to the CPU generator, the one ``fork_rng(devices=[])`` restores: seeding every
    device (``torch.manual_seed``) would leave the CUDA generators seeded by the last item loaded, and on a
    machine without a GPU queues a lazy call with its stack trace per item (60% of a Multi-MNIST epoch)."""
    seeded: list[str] = []
    for name in ("cuda", "xpu", "mtia"):
        module = getattr(torch, name)
        monkeypatch.setattr(module, "manual_seed_all", lambda seed, name=name: seeded.append(name))
        monkeypatch.setattr(module, "manual_seed", lambda seed, name=name: seeded.append(name))
    batches = _epochs(Loader(augmented, 2, shuffle=True), seed=3, epochs=1)
    assert sum(len(x) for x, _ in batches[0]) == 6
    assert seeded == []
