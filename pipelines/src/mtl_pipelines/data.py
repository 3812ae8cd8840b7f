"""Datasets and loaders of a run: one interface over single-input, multi-input (Office) and graph (QM9) data.

Batches are ``(x, {task: target})`` for every kind: QM9 graphs are PyG ``Batch`` objects whose targets
are read from ``batch.y[:, i]`` (data contract); multi-input datasets give ``x = {task: images}``.
Training order is a function of ``(seed, epoch)`` only (a fresh generator per epoch), so a run resumed at
an epoch boundary sees exactly the batches of an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

__all__ = ["Split", "batch_size_of", "build_split", "epoch_generator", "move"]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that orders epoch ``epoch`` of a run seeded ``seed``."""
    return torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))


def _is_graph(dataset: Any) -> bool:
    return getattr(dataset, "graph_data", False) or type(dataset).__name__ == "QM9"


class Split:
    """One split of a dataset with the tasks a run trains (``tasks``, a subset in dataset order)."""

    def __init__(self, dataset: Any, tasks: Sequence[str]) -> None:
        self.dataset = dataset
        self.tasks = list(tasks)
        self.all_tasks = list(dataset.tasks)
        self.multi_input = hasattr(dataset, "domains")
        self.graph = _is_graph(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(
        self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None, drop_last: bool = False
    ) -> Iterable[tuple[Any, dict[str, Tensor]]]:
        """Batches ``(x, {task: target})`` restricted to :attr:`tasks`."""
        if self.multi_input:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) if generator is not None else 0
            loader = self.dataset.loader(batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
            return _select_multi(loader, self.tasks)
        if self.graph:
            from torch_geometric.loader import DataLoader as GraphLoader

            loader = GraphLoader(
                self.dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last
            )
            return _graph_batches(loader, self.all_tasks, self.tasks)
        loader = DataLoader(
            self.dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last
        )
        return _select(loader, self.tasks)


def _select(loader: Iterable[Any], tasks: list[str]) -> Iterator[tuple[Any, dict[str, Tensor]]]:
    for x, targets in loader:
        yield x, {t: targets[t] for t in tasks}


def _select_multi(loader: Iterable[Any], tasks: list[str]) -> Iterator[tuple[Any, dict[str, Tensor]]]:
    for x, targets in loader:
        yield {t: x[t] for t in tasks if t in x}, {t: targets[t] for t in tasks if t in targets}


def _graph_batches(loader: Iterable[Any], all_tasks: list[str], tasks: list[str]) -> Iterator[tuple[Any, dict]]:
    index = {t: all_tasks.index(t) for t in tasks}
    for batch in loader:
        yield batch, {t: batch.y[:, i] for t, i in index.items()}


def build_split(dataset_cfg: Mapping[str, Any], split: str, tasks: Sequence[str] | None) -> Split:
    """Create split ``split`` of the configured dataset, restricted to ``tasks`` (all when None)."""
    import mtl_data

    options = {**dataset_cfg.get("options", {}), **dataset_cfg.get("split_options", {}).get(split, {})}
    dataset = mtl_data.create(dataset_cfg["name"], split=split, root=dataset_cfg.get("root"), **options)
    chosen = list(tasks) if tasks else list(dataset.tasks)
    unknown = [t for t in chosen if t not in dataset.tasks]
    if unknown:
        raise ValueError(
            f"dataset.tasks: {unknown} are not tasks of {dataset_cfg['name']!r}; valid tasks: {list(dataset.tasks)}"
        )
    ordered = [t for t in dataset.tasks if t in chosen]
    return Split(dataset, ordered)


def move(x: Any, device: torch.device) -> Any:
    if isinstance(x, Tensor) or hasattr(x, "to"):
        return x.to(device)
    if isinstance(x, dict):
        return {k: move(v, device) for k, v in x.items()}
    return x


def batch_size_of(x: Any) -> int:
    if isinstance(x, dict):
        return sum(batch_size_of(v) for v in x.values())
    if hasattr(x, "num_graphs"):
        return int(x.num_graphs)
    return int(x.shape[0])
