"""Base class of the loss weightings: ``weights = w(losses)``, total loss ``sum_i weights_i * L_i``."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from .._checks import check_losses, check_num_tasks


class Weighting(nn.Module):
    """Maps the task losses ``Tensor[K]`` to task weights ``Tensor[K]``.

    ``loss(losses)`` is the scalar to back-propagate: ``sum_i weights_i * L_i`` plus the method's own terms
    (UW's regulariser). Weights that must not carry gradient into the model are detached; learnable
    weightings (UW, IMTL-L) expose their parameters through ``parameters()`` and receive gradient from
    ``loss``. Hooks: ``after_step(new_losses)`` (FAMO's weight update needs the losses after the parameter
    update on the same batch; ``needs_losses_after_step`` tells the step to compute them) and ``end_epoch()``.
    """

    name: ClassVar[str] = ""
    needs_losses_after_step: ClassVar[bool] = False

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        self.num_tasks = check_num_tasks(num_tasks)

    def forward(self, losses: Tensor) -> Tensor:
        losses = check_losses(losses, self.num_tasks)
        return self.weights(losses)

    def weights(self, losses: Tensor) -> Tensor:
        raise NotImplementedError

    def regularizer(self) -> Tensor | float:
        """Extra term of the total loss that does not multiply a task loss (e.g. UW's ``sum log sigma``)."""
        return 0.0

    def loss(self, losses: Tensor) -> Tensor:
        """The scalar objective whose gradient the method prescribes."""
        return (self(losses) * losses).sum() + self.regularizer()

    def after_step(self, losses: Tensor) -> None:
        """Hook called with the new losses (same batch) after the parameter update."""

    def end_epoch(self) -> None:
        """Hook called by the training loop at the end of every epoch."""

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}"
