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

Batching. Every dataset class declares how it is batched in one line, ``batching = Batching.<KIND>``
(:class:`Batching`: single input, multi-input, graph), and :class:`Loader` batches any of them into
``(x, {task: target})``: the one loader of the package (the pipelines and ``mtl_data.throughput`` use it).

Reproducible loading with worker processes. Randomness inside ``__getitem__`` (the augmentations of
:mod:`mtl_data.augment`, the Cityscapes flip) draws from torch's global generator. :class:`Loader` computes
every item under its own seed, drawn with the epoch's order from the epoch's generator
(:class:`SeededSampler`, :class:`SeededItems`): an item's augmentation is a function of (generator, epoch
position) only, the same with 0 or N worker processes, with persistent workers (whose own RNG states would
otherwise carry over from the epoch they started in) and in a run resumed at an epoch boundary; loading never
draws from the caller's global generator. Datasets must draw item randomness from torch (not NumPy's or
Python's global generators).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from mtl_data.tasks import TaskSpec

SPLITS = ("train", "val", "test")


def check_split(split: str, valid: tuple[str, ...] = SPLITS) -> str:
    if split not in valid:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(valid)}")
    return split


class Batching(str, enum.Enum):
    """How a dataset is batched (each dataset class declares it: ``batching = Batching.SINGLE``)."""

    #: items ``(x, {task: target})`` of tensors, stacked by torch's default collate
    SINGLE = "single"
    #: one ``Dataset`` of ``(image, label)`` per task in ``.domains``, zipped by :class:`MultiInputLoader`
    MULTI_INPUT = "multi_input"
    #: items PyG ``Data`` with targets ``y[1, K]`` in task order, batched by ``torch_geometric``'s loader
    GRAPH = "graph"


def batching_of(dataset: Any) -> Batching:
    """The declared :class:`Batching` of ``dataset`` (``TypeError`` when it declares none)."""
    kind = getattr(dataset, "batching", None)
    if kind is None:
        raise TypeError(
            f"{type(dataset).__name__} does not declare how it is batched: give the class a "
            f"`batching = mtl_data.base.Batching.<KIND>` attribute (one of {[b.name for b in Batching]})"
        )
    return Batching(kind)


class MTLDataset(Dataset):
    """Base class of the single-input datasets (see the module docstring for the attributes)."""

    is_standin: bool = False
    #: declared by each concrete class (``batching_of`` refuses a dataset that declares nothing)
    batching: Batching | None = None

    def __init__(self, split: str, tasks: Mapping[str, TaskSpec], description: str) -> None:
        self.split = split
        self.tasks: dict[str, TaskSpec] = dict(tasks)
        self.description = description

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, n={len(self)}, tasks={list(self.tasks)})"


class MultiInputDataset:
    """One dataset per task, each yielding ``(image, int label)`` (Office, digit domains)."""

    is_standin: bool = False
    batching = Batching.MULTI_INPUT

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
        options: LoaderOptions | None = None,
    ) -> MultiInputLoader:
        """Batches ``({task: images}, {task: labels})``; defaults follow the split (train: shuffle, cycle,
        drop_last; val/test: none of them). See :class:`MultiInputLoader`; ``options`` (worker processes,
        pinned memory) override ``num_workers``."""
        training = self.split == "train"
        return MultiInputLoader(
            self.domains,
            batch_size=batch_size,
            shuffle=training if shuffle is None else shuffle,
            cycle=training if cycle is None else cycle,
            seed=seed,
            drop_last=training if drop_last is None else drop_last,
            options=options if options is not None else LoaderOptions(num_workers=num_workers),
        )

    def __repr__(self) -> str:
        sizes = {task: len(d) for task, d in self.domains.items()}
        return f"{type(self).__name__}(split={self.split!r}, sizes={sizes})"


# ------------------------------------------------------------------------------------------------ loading
@dataclass(frozen=True)
class LoaderOptions:
    """How batches are produced (not which: the batches are the same for every setting).

    ``num_workers``: worker processes (0: in the calling process); ``pin_memory``: page-locked batches for
    asynchronous host-to-GPU copies; ``persistent_workers``: keep the workers between epochs (only with
    ``num_workers > 0``)."""

    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.num_workers, int) or isinstance(self.num_workers, bool) or self.num_workers < 0:
            raise ValueError(f"num_workers must be an integer >= 0, got {self.num_workers!r}")

    def dataloader_kwargs(self) -> dict[str, Any]:
        workers = self.num_workers
        return {
            "num_workers": workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers and workers > 0,
        }


_FIXED_ORDER_SEED = 0  # generator of the item seeds of an unshuffled loader (evaluation)


class SeededSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, item seed)`` pairs: the epoch's order (a random permutation drawn from ``generator``
    when shuffling, else ``0..n-1``) and one 63-bit seed per item drawn after it from the same generator.

    Set :attr:`generator` before each epoch (:meth:`Loader.epoch`); without one (evaluation) a fixed
    generator is used, so the items are the same on every pass."""

    def __init__(self, size: int, shuffle: bool) -> None:
        self.size = size
        self.shuffle = shuffle
        self.generator: torch.Generator | None = None

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = self.generator or torch.Generator().manual_seed(_FIXED_ORDER_SEED)
        order = torch.randperm(self.size, generator=generator) if self.shuffle else torch.arange(self.size)
        seeds = torch.randint(0, 2**63 - 1, (self.size,), generator=generator)
        return zip(order.tolist(), seeds.tolist())


class SeededItems(Dataset):
    """``dataset`` indexed by ``(index, seed)``: the item is computed with torch's global generator seeded
    ``seed`` (restored afterwards) and one intra-op thread, so it depends on nothing else: not on the process
    computing it (a worker's own seed, which persistent workers carry over from the epoch they started in),
    and not on the thread count (CPU kernels such as bilinear interpolation round differently with more
    threads; torch runs its workers with one). This replaces per-worker seeding (``worker_init_fn``)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        threads = torch.get_num_threads()
        if threads != 1:
            torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                # the CPU generator only: it is the one fork_rng(devices=[]) restores, and torch.manual_seed
                # would also queue a seed for every lazily initialised device (CUDA, XPU, MTIA), each call
                # recording a stack trace: 1.5 ms per item, 60% of a Multi-MNIST epoch on 2 CPU cores
                torch.default_generator.manual_seed(seed)
                return self.dataset[index]
        finally:
            if threads != 1:
                torch.set_num_threads(threads)


def _dataloader(
    dataset: Any, batch_size: int, shuffle: bool, drop_last: bool, options: LoaderOptions, *, graph: bool = False
) -> DataLoader:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    sampler = SeededSampler(len(dataset), shuffle)
    kwargs: dict[str, Any] = {
        "batch_size": batch_size,
        "sampler": sampler,
        "drop_last": drop_last,
        # the workers' base seed is drawn from this generator, never from the caller's global one
        "generator": torch.Generator().manual_seed(_FIXED_ORDER_SEED),
        **options.dataloader_kwargs(),
    }
    if graph:
        from torch_geometric.loader import DataLoader as GraphLoader

        return GraphLoader(SeededItems(dataset), **kwargs)
    return DataLoader(SeededItems(dataset), **kwargs)


def _set_generator(loader: DataLoader, generator: torch.Generator | None) -> None:
    loader.sampler.generator = generator  # type: ignore[union-attr]


class Loader:
    """The batches ``(x, {task: target})`` of a dataset of any :class:`Batching` kind; build it once and call
    :meth:`epoch` once per epoch (worker processes persist across epochs with ``persistent_workers``).

    Single input: ``x`` a tensor; multi-input: ``x = {task: images}`` (:class:`MultiInputLoader`; ``cycle``
    defaults to ``shuffle``); graph: ``x`` a PyG ``Batch`` and the targets its ``y`` columns in task order.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        *,
        shuffle: bool,
        drop_last: bool = False,
        options: LoaderOptions | None = None,
        cycle: bool | None = None,
    ) -> None:
        self.dataset = dataset
        self.batching = batching_of(dataset)
        options = options or LoaderOptions()
        self._multi: MultiInputLoader | None = None
        self._loader: DataLoader | None = None
        if self.batching is Batching.MULTI_INPUT:
            self._multi = MultiInputLoader(
                dataset.domains,
                batch_size,
                shuffle=shuffle,
                cycle=shuffle if cycle is None else cycle,
                drop_last=drop_last,
                options=options,
            )
        else:
            graph = self.batching is Batching.GRAPH
            self._loader = _dataloader(dataset, batch_size, shuffle, drop_last, options, graph=graph)
        self.tasks = list(dataset.tasks)

    def __len__(self) -> int:
        return len(self._multi) if self._multi is not None else len(self._loader)  # type: ignore[arg-type]

    def epoch(self, generator: torch.Generator | None = None) -> Iterator[tuple[Any, dict[str, Tensor]]]:
        """One pass over the data in the order (and with the item seeds) drawn from ``generator``. Without
        one: single-input and graph data in a fixed order with fixed item seeds; multi-input data continues
        its domains' own streams (seeded by :class:`MultiInputLoader`'s ``seed``)."""
        if self._multi is not None:
            yield from self._multi.epoch(generator)
            return
        assert self._loader is not None
        _set_generator(self._loader, generator)
        if self.batching is Batching.GRAPH:
            for batch in self._loader:
                yield batch, {task: batch.y[:, i] for i, task in enumerate(self.tasks)}
        else:
            yield from self._loader

    def __iter__(self) -> Iterator[tuple[Any, dict[str, Tensor]]]:
        return self.epoch()


class MultiInputLoader:
    """Zips one ``DataLoader`` per task into ``({task: images}, {task: labels})`` batches.

    ``cycle=True`` (training, as LibMTL): an epoch has as many batches as the longest domain; shorter
    domains restart (reshuffled) when exhausted, so every batch holds every task.
    ``cycle=False`` (evaluation): every image is seen exactly once; once a domain is exhausted it is
    simply absent from the later batches' dicts (so per-task metrics count each test image once).
    Shuffling is seeded per domain (``seed``; :meth:`epoch` reseeds from a generator), hence deterministic;
    items are computed under their own seeds (:class:`SeededItems`).
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
        options: LoaderOptions | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        options = options if options is not None else LoaderOptions(num_workers=num_workers)
        self.domains = dict(domains)
        self.cycle = cycle
        self.seed = seed
        self.epoch_count = 0
        self._loaders: dict[str, DataLoader] = {
            task: _dataloader(domain, batch_size, shuffle, drop_last, options) for task, domain in self.domains.items()
        }
        self._generators = self._seeded(seed)
        empty = [task for task, loader in self._loaders.items() if len(loader) == 0]
        if empty:
            raise ValueError(f"domains {empty} yield no batch (fewer images than batch_size with drop_last)")

    def _seeded(self, seed: int) -> dict[str, torch.Generator]:
        return {task: torch.Generator().manual_seed(seed * 1000 + i) for i, task in enumerate(self.domains)}

    def __len__(self) -> int:
        return max(len(loader) for loader in self._loaders.values())

    def epoch(self, generator: torch.Generator | None = None) -> Iterator[tuple[dict[str, Tensor], dict[str, Tensor]]]:
        """One epoch; with ``generator``, the domains are reseeded from one number drawn from it first."""
        if generator is not None:
            self._generators = self._seeded(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        for task, loader in self._loaders.items():
            _set_generator(loader, self._generators[task])
        return self._batches()

    def __iter__(self) -> Iterator[tuple[dict[str, Tensor], dict[str, Tensor]]]:
        return self.epoch()

    def _batches(self) -> Iterator[tuple[dict[str, Tensor], dict[str, Tensor]]]:
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
        self.epoch_count += 1


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
