"""FAMO: fast adaptive multitask optimisation, one backward per step."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_losses, check_positive
from ._registry import WEIGHTINGS
from .base import Weighting


@WEIGHTINGS.register("famo")
class FAMO(Weighting):
    """FAMO (Liu et al. 2023, eq. (5)-(8), Alg. 1).

    With ``z = softmax(xi)`` and ``D_i = L_i - L_i^* + 1e-8``, the step minimises ``sum_i z_i / c log D_i``,
    ``c = sum_i z_i / D_i``: its gradient is that of ``sum_i w_i L_i`` with ``w_i = z_i / (c D_i)`` (detached),
    which is what ``weights`` returns. After the parameter update, ``after_step(new_losses)`` (same batch)
    moves the logits along ``-J_softmax^T delta`` with ``delta_i = log D_i(old) - log D_i(new)`` by one Adam
    step (lr ``w_lr``, weight decay ``gamma``; defaults of the reference code).
    Adam on the K logits is written out so that its state is part of this module's ``state_dict`` and the
    logits never reach the model's optimiser.
    """

    needs_losses_after_step = True

    def __init__(
        self,
        num_tasks: int,
        *,
        w_lr: float = 0.025,
        gamma: float = 0.001,
        min_losses: list[float] | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(num_tasks)
        self.w_lr = check_positive("w_lr", w_lr)
        self.gamma = check_positive("gamma", gamma, allow_zero=True)
        self.eps = check_positive("eps", eps)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0 <= b < 1 for b in betas)):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        mins = torch.zeros(num_tasks) if min_losses is None else torch.as_tensor(min_losses, dtype=torch.float32)
        if mins.shape != (num_tasks,):
            raise ValueError(f"min_losses must hold {num_tasks} numbers, got {min_losses!r}")
        self.register_buffer("min_losses", mins)
        self.register_buffer("logits", torch.zeros(num_tasks))
        self.register_buffer("adam_m", torch.zeros(num_tasks))
        self.register_buffer("adam_v", torch.zeros(num_tasks))
        self.register_buffer("adam_t", torch.zeros((), dtype=torch.long))
        self.register_buffer("prev_losses", torch.zeros(num_tasks))
        self.register_buffer("has_prev", torch.zeros((), dtype=torch.bool))

    def _gaps(self, losses: Tensor) -> Tensor:
        gaps = losses.detach().float().to(self.min_losses.device) - self.min_losses + 1e-8
        if (gaps <= 0).any():
            raise ValueError(
                f"famo needs L_i > min_losses (it takes log(L_i - L_i^*)), got losses {losses.tolist()} "
                f"and min_losses {self.min_losses.tolist()}"
            )
        return gaps

    def weights(self, losses: Tensor) -> Tensor:
        gaps = self._gaps(losses)
        self.prev_losses.copy_(losses.detach().float())
        self.has_prev.fill_(True)
        z = torch.softmax(self.logits, dim=0)
        c = (z / gaps).sum()
        return (z / (c * gaps)).to(device=losses.device, dtype=losses.dtype)

    def after_step(self, losses: Tensor) -> None:
        if not bool(self.has_prev):
            raise RuntimeError("famo.after_step called before the weights of this step were computed")
        losses = check_losses(losses, self.num_tasks)
        delta = torch.log(self._gaps(self.prev_losses)) - torch.log(self._gaps(losses))
        z = torch.softmax(self.logits, dim=0)
        grad = z * (delta - (z * delta).sum())  # J_softmax^T delta, J = diag(z) - z z^T
        grad = grad + self.gamma * self.logits  # Adam's (L2) weight decay, as torch.optim.Adam
        b1, b2 = self.betas
        self.adam_t += 1
        t = int(self.adam_t)
        self.adam_m.mul_(b1).add_(grad, alpha=1 - b1)
        self.adam_v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        m_hat = self.adam_m / (1 - b1**t)
        v_hat = self.adam_v / (1 - b2**t)
        self.logits.sub_(self.w_lr * m_hat / (v_hat.sqrt() + self.eps))
