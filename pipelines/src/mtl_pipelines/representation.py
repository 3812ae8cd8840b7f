"""Per-task gradients with respect to the shared representation ``z = model.encode(x)`` at a training step, for
the diagnostics of seed 004 Fig. 2 ("the cosine similarity matrix of gradients for shared representation z").

The step's own diagnostic rows (:meth:`mtl_core.step.MTLStep.step` with ``rows=True``) are the gradients of
the shared *parameters*. The rows w.r.t. ``z`` are taken from the same first forward of the step, so training
is unchanged: while armed, the loss closure's first full forward shadows ``model.encode`` (as the ``features``
estimator captures ``z``), and once the losses exist ``mtl_core.jacobian(losses, z, retain_graph=True)``
back-propagates each task's loss through its own head to ``z`` only: the graph is kept for the step, no
parameter's ``.grad`` is touched, no extra forward runs (BatchNorm statistics and dropout draws are those of
the step without it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from torch import Tensor

__all__ = ["RepresentationRows"]


class RepresentationRows:
    """Arm before a step (:meth:`arm`); in the closure, run the forward inside :meth:`capture` and pass the
    losses to :meth:`compute`; :attr:`rows` is then the ``[K, numel(z)]`` matrix of ``d L_i / d z`` (batch
    summed over, as ``z`` is the batch's representation), or None when not armed."""

    def __init__(self) -> None:
        self.rows: Tensor | None = None
        self._armed = False
        self._z: tuple[Tensor, ...] | None = None

    def arm(self, on: bool = True) -> None:
        """Capture at the next full forward (``on``), else nothing."""
        self.rows, self._z, self._armed = None, None, on

    @contextmanager
    def capture(self, model: Any, full: bool = True) -> Iterator[None]:
        """Record ``z`` of a full forward (``full``: every task, not a per-task pass of the SAM family)."""
        if not (self._armed and full and self._z is None):
            yield
            return
        captured: list[Any] = []
        had_own = "encode" in vars(model)
        original = model.encode

        def encode(*args: Any, **kwargs: Any) -> Any:
            z = original(*args, **kwargs)
            captured.append(z)
            return z

        model.encode = encode  # shadowed on the instance: forward -> self.encode -> here
        try:
            yield
        finally:
            if had_own:
                model.encode = original
            else:
                del model.encode
        if len(captured) == 1:
            z = captured[0]
            self._z = (z,) if isinstance(z, Tensor) else tuple(z)

    def compute(self, losses: Mapping[str, Tensor]) -> None:
        """``d L_i / d z`` of the captured forward (once per arming), keeping the graph for the step."""
        if not self._armed or self._z is None or self.rows is not None:
            return
        from mtl_core import jacobian

        self.rows = jacobian(list(losses.values()), self._z, retain_graph=True).detach()
        self._armed = False
