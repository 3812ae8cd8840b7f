"""BatchNorm running statistics during the extra forward passes of a training step."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


def norm_layers_with_running_stats(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` that update running statistics in training mode.

    Duck-typed on ``track_running_stats`` / ``running_mean`` / ``momentum`` so that every BatchNorm and
    InstanceNorm flavour (and wrappers such as PyG's ``BatchNorm``, which hold a torch BatchNorm) is found.
    """
    return [
        m
        for m in model.modules()
        if getattr(m, "track_running_stats", False)
        and isinstance(getattr(m, "running_mean", None), torch.Tensor)
        and hasattr(m, "momentum")
    ]


@contextmanager
def frozen_norm_stats(model_or_layers: nn.Module | Iterable[nn.Module]) -> Iterator[None]:
    """Forward passes inside this context do not change BatchNorm running statistics.

    A SAM-family step runs extra forwards of the same batch (at perturbed weights, SPSA forwards, FAMO's
    post-update forward); only the step's first forward may update the running mean/variance, or they would
    move several times per step and towards statistics of perturbed weights. As in the SAM and SAMO
    reference codes (``disable_running_stats``) the momentum is set to 0 (the update ``(1 - m) r + m x``
    then leaves ``r`` exactly unchanged, even for ``momentum=None``), and ``num_batches_tracked`` is restored
    too. The layers stay in training mode: the forward still normalises with the batch statistics, so the
    perturbed losses are those of the same training objective.
    """
    layers = (
        norm_layers_with_running_stats(model_or_layers)
        if isinstance(model_or_layers, nn.Module)
        else list(model_or_layers)
    )
    saved = []
    for m in layers:
        tracked = getattr(m, "num_batches_tracked", None)
        saved.append((m, m.momentum, None if tracked is None else tracked.clone()))
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
