"""Datasets and loaders of a run: one interface over single-input, multi-input (Office) and graph (QM9) data.

Batches are ``(x, {task: target})`` for every kind the dataset declares (``batching``,
:class:`mtl_data.base.Batching`; nothing is guessed here): QM9 graphs are PyG ``Batch`` objects whose targets
are the columns of ``batch.y``; multi-input datasets give ``x = {task: images}``. Batches are produced by
:class:`mtl_data.base.Loader`, built once per split and batch size (worker processes persist across epochs).

Training order is a function of ``(seed, epoch)`` only (a fresh generator per epoch, :func:`epoch_generator`)
and every item is computed under a seed drawn from that generator, so a run resumed at an epoch boundary sees
exactly the batches (augmentations included) of an uninterrupted run, with any number of worker processes:
``train.loader`` (:func:`loader_options`) says how batches are produced, never which.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["LOADER_DEFAULTS", "Split", "batch_size_of", "build_split", "epoch_generator", "loader_options"]

#: ``train.loader`` fields a config leaves out. 0 workers: on the 2-core machines of the default profile a
#: worker process costs more than it saves (pipelines/README.md, "Data loading"); the paper profile sets more.
LOADER_DEFAULTS: dict[str, Any] = {"num_workers": 0, "pin_memory": "auto", "persistent_workers": True}


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that orders (and seeds the items of) epoch ``epoch`` of a run seeded ``seed``."""
    return torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))


def loader_options(train_config: Mapping[str, Any], device: torch.device) -> Any:
    """The :class:`mtl_data.base.LoaderOptions` of ``train.loader`` (defaults :data:`LOADER_DEFAULTS`):
    ``pin_memory: auto`` pins on a CUDA device only (pinned host memory lets the copies overlap compute)."""
    from mtl_data.base import LoaderOptions

    options = {**LOADER_DEFAULTS, **train_config.get("loader", {})}
    pin = options["pin_memory"]
    return LoaderOptions(
        num_workers=int(options["num_workers"]),
        pin_memory=device.type == "cuda" if pin == "auto" else bool(pin),
        persistent_workers=bool(options["persistent_workers"]),
    )


class Split:
    """One split of a dataset with the tasks a run trains (``tasks``, a subset in dataset order)."""

    def __init__(self, dataset: Any, tasks: Sequence[str], options: Any = None) -> None:
        from mtl_data.base import LoaderOptions, batching_of

        self.dataset = dataset
        self.tasks = list(tasks)
        self.batching = batching_of(dataset)
        self.options = options if options is not None else LoaderOptions()
        self._loaders: dict[tuple[int, bool, bool], Any] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(
        self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None, drop_last: bool = False
    ) -> Iterator[tuple[Any, dict[str, Tensor]]]:
        """One pass of batches ``(x, {task: target})`` restricted to :attr:`tasks`, ordered by ``generator``
        (a fixed order without one)."""
        from mtl_data.base import Batching, Loader

        key = (batch_size, shuffle, drop_last)
        if key not in self._loaders:
            self._loaders[key] = Loader(
                self.dataset, batch_size, shuffle=shuffle, drop_last=drop_last, options=self.options
            )
        multi = self.batching is Batching.MULTI_INPUT
        for x, targets in self._loaders[key].epoch(generator):
            if multi:  # a multi-input batch holds the tasks whose domain still has images
                x = {t: x[t] for t in self.tasks if t in x}
            yield x, {t: targets[t] for t in self.tasks if t in targets}


def build_split(dataset_cfg: Mapping[str, Any], split: str, tasks: Sequence[str] | None, options: Any = None) -> Split:
    """Create split ``split`` of the configured dataset (real data verified against its ``prepare`` manifest,
    :func:`mtl_data.manifest.verify_dataset`), restricted to ``tasks`` (all when None), batched with ``options``
    (:func:`loader_options`; default: in this process)."""
    import mtl_data
    from mtl_data.manifest import verify_dataset

    merged = {**dataset_cfg.get("options", {}), **dataset_cfg.get("split_options", {}).get(split, {})}
    dataset = mtl_data.create(dataset_cfg["name"], split=split, root=dataset_cfg.get("root"), **merged)
    # prepared real data: its files still match the checksum manifest (size + mtime cache, full hash on change);
    # a changed file stops the run naming it (ValueError: exit 2) before anything is trained
    verify_dataset(dataset)
    chosen = list(tasks) if tasks else list(dataset.tasks)
    unknown = [t for t in chosen if t not in dataset.tasks]
    if unknown:
        raise ValueError(
            f"dataset.tasks: {unknown} are not tasks of {dataset_cfg['name']!r}; valid tasks: {list(dataset.tasks)}"
        )
    ordered = [t for t in dataset.tasks if t in chosen]
    return Split(dataset, ordered, options)


def batch_size_of(x: Any) -> int:
    """Number of samples in a batch input (a tensor, a PyG ``Batch``, or ``{task: images}``)."""
    if isinstance(x, dict):
        return sum(batch_size_of(v) for v in x.values())
    if hasattr(x, "num_graphs"):
        return int(x.num_graphs)
    return int(x.shape[0])
