"""What every dataset of ``mtl_data`` exposes, and the loader of multi-input datasets.

Single-input datasets (scene understanding, CelebA, Multi-MNIST, QM9) are ``torch.utils.data.Dataset``
objects whose item is ``(x, {task: target})`` (QM9: a PyG ``Data``), with the attributes

- ``tasks``: ordered ``{task name: TaskSpec}`` (:mod:`mtl_data.tasks`), in table order;
- ``is_standin``: ``True`` when the data is not the benchmark's own (procedural or reduced);
- ``description``: one human-readable line naming the data, split and protocol (printed in reports);
- ``split``: ``"train"``, ``"val"`` or ``"test"``.

Multi-input datasets (Office-31, Office-Home, the digit-domain stand-in) are :class:`MultiInputDataset`:
one ``Dataset`` of ``(image, label)`` per task in ``domains``, the same attributes, and
:meth:`MultiInputDataset.loader`, which yields ``({task: images}, {task: labels})`` batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from mtl_data.tasks import TaskSpec

SPLITS = ("train", "val", "test")


def check_split(split: str, valid: tuple[str, ...] = SPLITS) -> str:
    if split not in valid:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(valid)}")
    return split


class MTLDataset(Dataset):
    """Base class of the single-input datasets (see the module docstring for the attributes)."""

    is_standin: bool = False

    def __init__(self, split: str, tasks: Mapping[str, TaskSpec], description: str) -> None:
        self.split = split
        self.tasks: dict[str, TaskSpec] = dict(tasks)
        self.description = description

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, n={len(self)}, tasks={list(self.tasks)})"


class MultiInputDataset:
    """One dataset per task, each yielding ``(image, int label)`` (Office, digit domains)."""

    is_standin: bool = False

    def __init__(
        self, split: str, domains: Mapping[str, Dataset], tasks: Mapping[str, TaskSpec], description: str
    ) -> None:
        if list(domains) != list(tasks):
            raise ValueError(f"domains {list(domains)} and tasks {list(tasks)} must name the same tasks in order")
        self.split = split
        self.domains: dict[str, Dataset] = dict(domains)
        self.tasks: dict[str, TaskSpec] = dict(tasks)
        self.description = description

    def __len__(self) -> int:
        """Total number of images over all domains."""
        return sum(len(d) for d in self.domains.values())

    def loader(
        self,
        batch_size: int,
        shuffle: bool | None = None,
        cycle: bool | None = None,
        seed: int = 0,
        num_workers: int = 0,
        drop_last: bool | None = None,
    ) -> MultiInputLoader:
        """Batches ``({task: images}, {task: labels})``; defaults follow the split (train: shuffle, cycle,
        drop_last; val/test: none of them). See :class:`MultiInputLoader`."""
        training = self.split == "train"
        return MultiInputLoader(
            self.domains,
            batch_size=batch_size,
            shuffle=training if shuffle is None else shuffle,
            cycle=training if cycle is None else cycle,
            seed=seed,
            num_workers=num_workers,
            drop_last=training if drop_last is None else drop_last,
        )

    def __repr__(self) -> str:
        sizes = {task: len(d) for task, d in self.domains.items()}
        return f"{type(self).__name__}(split={self.split!r}, sizes={sizes})"


class MultiInputLoader:
    """Zips one ``DataLoader`` per task into ``({task: images}, {task: labels})`` batches.

    ``cycle=True`` (training, as LibMTL): an epoch has as many batches as the longest domain; shorter
    domains restart (reshuffled) when exhausted, so every batch holds every task.
    ``cycle=False`` (evaluation): every image is seen exactly once; once a domain is exhausted it is
    simply absent from the later batches' dicts (so per-task metrics count each test image once).
    Shuffling is seeded per domain and per epoch, hence deterministic.
    """

    def __init__(
        self,
        domains: Mapping[str, Dataset],
        batch_size: int,
        shuffle: bool,
        cycle: bool,
        seed: int = 0,
        num_workers: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.domains = dict(domains)
        self.cycle = cycle
        self.seed = seed
        self.epoch = 0
        self._loaders: dict[str, DataLoader] = {}
        self._generators: dict[str, torch.Generator] = {}
        for i, (task, dataset) in enumerate(self.domains.items()):
            generator = torch.Generator().manual_seed(seed * 1000 + i)
            self._generators[task] = generator
            self._loaders[task] = DataLoader(
                dataset,
                batch_size=batch_size,
                shuffle=shuffle,
                drop_last=drop_last,
                num_workers=num_workers,
                generator=generator,
                persistent_workers=num_workers > 0,
            )
        empty = [task for task, loader in self._loaders.items() if len(loader) == 0]
        if empty:
            raise ValueError(f"domains {empty} yield no batch (fewer images than batch_size with drop_last)")

    def __len__(self) -> int:
        return max(len(loader) for loader in self._loaders.values())

    def __iter__(self) -> Iterator[tuple[dict[str, Tensor], dict[str, Tensor]]]:
        iterators = {task: iter(loader) for task, loader in self._loaders.items()}
        for _ in range(len(self)):
            images: dict[str, Tensor] = {}
            labels: dict[str, Tensor] = {}
            for task in list(iterators):
                try:
                    x, y = next(iterators[task])
                except StopIteration:
                    if not self.cycle:
                        del iterators[task]
                        continue
                    iterators[task] = iter(self._loaders[task])
                    x, y = next(iterators[task])
                images[task], labels[task] = x, y
            yield images, labels
        self.epoch += 1


@dataclass
class PrepareReport:
    """What ``prepare`` checked: per-split counts, the manifest and whether it was just written."""

    dataset: str
    root: Path
    counts: dict[str, int]
    manifest: Path | None
    manifest_created: bool
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        counts = ", ".join(f"{k}: {v}" for k, v in self.counts.items())
        state = "written" if self.manifest_created else "verified"
        lines = [f"{self.dataset} at {self.root}: {counts}"]
        if self.manifest is not None:
            lines.append(f"checksum manifest {state}: {self.manifest}")
        return "\n".join(lines + self.notes)


def as_path(root: Any, name: str, hint: str) -> Path:
    """The dataset root as a ``Path``; ``None`` raises a ``ValueError`` that says where to get the data."""
    if root is None:
        raise ValueError(f"dataset {name!r} reads files from disk: pass root=<directory>. {hint}")
    return Path(root).expanduser()
