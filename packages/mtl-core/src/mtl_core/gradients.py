"""Per-task gradients: the K x n Jacobian of the task losses w.r.t. shared parameters or features.

Two engines compute the same matrix:

* ``"loop"``: one ``torch.autograd.grad`` per task (K backward passes through the graph); on CPU, when the
  tasks' graphs above the inputs are separate (one head per task behind ``z``), a single backward whose
  hooks capture each task's gradient at the nodes reading the inputs (:mod:`mtl_core.task_graphs`);
* ``"batched"``: a single vmapped backward (``is_grads_batched=True``) with the K unit vectors as
  batched ``grad_outputs``.

``"auto"`` picks per device from measurements (``benchmarks/README.md``, :func:`choose_mode`). The choice is
a fixed rule, not a per-run timing, so the same seed gives bit-identical numbers run after run.

Rows are written straight into one preallocated ``[K, n]`` buffer on the parameters' device with
``torch.cat(..., out=row)``: one copy per gradient block, no host round trip.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import TypeVar

import torch
from torch import Tensor

from .task_graphs import captured_rows, one_pass, retain_flags, task_readers

MODES = ("auto", "loop", "batched")

T = TypeVar("T")

_batched_fallback_warned = False


def _as_loss_vector(losses: Tensor | Sequence[Tensor]) -> Tensor:
    if isinstance(losses, Tensor):
        if losses.dim() != 1:
            raise ValueError(f"losses must be a 1-D tensor of K task losses, got shape {tuple(losses.shape)}")
        return losses
    losses = list(losses)
    if not losses:
        raise ValueError("losses is empty: need at least one task loss")
    for i, loss in enumerate(losses):
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError(f"losses[{i}] must be a scalar tensor, got {loss!r}")
    return torch.stack([loss.reshape(()) for loss in losses])


def _as_inputs(params: Tensor | Iterable[Tensor]) -> list[Tensor]:
    inputs = [params] if isinstance(params, Tensor) else list(params)
    if not inputs:
        raise ValueError("params is empty: need at least one tensor to differentiate")
    for i, p in enumerate(inputs):
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise ValueError(f"params[{i}] must be a tensor with requires_grad=True, got {type(p).__name__}")
    return inputs


def choose_mode(device: torch.device, num_tasks: int, *, through: bool = False) -> str:
    """The engine ``mode="auto"`` uses for K tasks on ``device`` (see ``benchmarks/README.md``).

    Measured on a conv encoder-decoder at K = 2..40: on CPU the loop is fastest in every case (the vmapped
    backward is 1.4-23x slower); on CUDA the batched engine wins only through the representation (one
    vmapped encoder backward, 0.9-0.8x the loop's time), while batching the whole graph re-runs every head
    for every row and is up to 4x slower than the loop.
    """
    if num_tasks > 1 and through and device.type == "cuda":
        return "batched"
    return "loop"


def jacobian(
    losses: Tensor | Sequence[Tensor],
    params: Tensor | Iterable[Tensor],
    *,
    mode: str = "auto",
    retain_graph: bool = False,
    out: Tensor | None = None,
    through: Tensor | Sequence[Tensor] | None = None,
) -> Tensor:
    """Return ``J`` with ``J[i] = d losses[i] / d params`` flattened and concatenated: ``Tensor[K, n]``.

    ``params`` are shared parameters (the exact estimator) or the shared representation ``z`` (a tensor or
    tuple of tensors: the features mode used by MGDA-UB / Aligned-MTL-UB and ConsMTL's lower level,
    seed 003 sec. 5.2, seed 004 eq. (6)). Inputs a loss does not depend on get zero gradient.
    ``retain_graph=True`` keeps the graph for a later backward (e.g. task heads).

    Pass the K scalar losses as a sequence where you have them: the loop then starts each backward at task
    ``i``'s own loss, so it runs through head ``i`` only. Indexing a stacked ``Tensor[K]`` starts it at
    ``torch.stack``, whose backward sends (zero) gradients into every task's head: K times the head work.

    ``through=z`` (the encoder output, when the losses depend on ``params`` only through ``z``) uses the chain
    rule ``J = J_z dz/dparams``: the K gradients w.r.t. ``z`` first (each backward crosses one head only),
    then K vector-Jacobian products through the encoder alone, batched into one vmapped backward in
    ``"batched"`` mode. The batched engine otherwise runs every head for every row (K^2 head passes).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    roots = None if isinstance(losses, Tensor) else list(losses)
    losses = _as_loss_vector(losses)
    inputs = _as_inputs(params)
    k = losses.shape[0]
    ref = inputs[0]
    out = jacobian_out(k, inputs, out)
    if mode == "auto":
        mode = choose_mode(ref.device, k, through=through is not None)
    if through is not None:
        feats = _as_inputs(through)
        # the z stage runs only the heads (nodes above z), so it may free them: the encoder stays for the VJPs
        jz, _ = looped_rows(losses if roots is None else roots, feats, retain_graph=retain_graph)
        return _encoder_vjps(feats, jz, inputs, out, retain_graph, batched=mode == "batched")
    if mode == "batched":
        try:
            return _vmapped_rows(losses, inputs, torch.eye(k, dtype=losses.dtype, device=losses.device), out)
        except RuntimeError as err:  # an op without a vmap batching rule for its backward
            _warn_fallback(err)
    return looped_rows(losses if roots is None else roots, inputs, out, retain_graph=retain_graph)[0]


def jacobian_out(k: int, inputs: Sequence[Tensor], out: Tensor | None = None) -> Tensor:
    """The ``[K, n]`` buffer the rows w.r.t. ``inputs`` are written into: ``out`` once checked, else a new one."""
    numel = sum(p.numel() for p in inputs)
    if out is None:
        return torch.empty(k, numel, dtype=inputs[0].dtype, device=inputs[0].device)
    if out.shape != (k, numel) or not out.is_contiguous():
        raise ValueError(f"out must be a contiguous tensor of shape {(k, numel)}, got {tuple(out.shape)}")
    return out


def _warn_fallback(err: RuntimeError) -> None:
    """Say once per process that the batched engine fell back to the per-task loop (same result, slower)."""
    global _batched_fallback_warned
    if not _batched_fallback_warned:
        warnings.warn(
            f"batched Jacobian failed ({str(err).splitlines()[0][:200]}); falling back to one backward per task",
            RuntimeWarning,
            stacklevel=3,
        )
        _batched_fallback_warned = True


def looped_rows(
    losses: Tensor | Sequence[Tensor],
    inputs: Sequence[Tensor],
    out: Tensor | None = None,
    *,
    retain_graph: bool = False,
    heads: Sequence[Sequence[Tensor]] = (),
) -> tuple[Tensor, list[list[Tensor]]]:
    """The loop engine: ``out[i] = d losses[i] / d inputs`` by one backward per task, or by one backward for
    all when the tasks' graphs above ``inputs`` are separate (:mod:`mtl_core.task_graphs`).

    ``heads`` (one parameter list per task, optional) adds each task's gradient w.r.t. its own head, taken in
    the same passes; returned as the second element (empty lists without ``heads``).
    """
    k = len(losses)
    out = jacobian_out(k, inputs, out)
    readers = None if isinstance(losses, Tensor) else task_readers(losses, inputs)  # a stacked tensor: shared
    if readers is not None and one_pass(inputs):
        grads = captured_rows(losses, inputs, readers, out, [p for h in heads for p in h], retain_graph=retain_graph)
        return out, split_by_groups(grads, heads) if heads else [[] for _ in range(k)]
    head_grads = []
    for i, retain in enumerate(retain_flags(k, readers is not None, retain_graph)):
        own = list(heads[i]) if heads else []
        grads = torch.autograd.grad(
            losses[i], [*inputs, *own], retain_graph=retain, allow_unused=True, materialize_grads=True
        )
        torch.cat([g.reshape(-1) for g in grads[: len(inputs)]], out=out[i])
        head_grads.append(list(grads[len(inputs) :]))
    return out, head_grads


def split_by_groups(values: Sequence[T], groups: Sequence[Sequence[object]]) -> list[list[T]]:
    """``values`` (one per member of ``groups``, concatenated) cut back into one list per group."""
    parts, start = [], 0
    for group in groups:
        parts.append(list(values[start : start + len(group)]))
        start += len(group)
    return parts


def _encoder_vjps(
    feats: list[Tensor], jz: Tensor, inputs: list[Tensor], out: Tensor, retain_graph: bool, batched: bool
) -> Tensor:
    """Rows ``jz[i] @ dz/dparams``: the second stage of ``jacobian(..., through=z)``."""
    k = jz.shape[0]
    cotangents = [c.view(k, *f.shape) for c, f in zip(jz.split([f.numel() for f in feats], dim=1), feats)]
    if batched:
        try:
            return _vmapped_rows(feats, inputs, cotangents, out)
        except RuntimeError as err:  # no batching rule: the loop below runs on the retained graph
            _warn_fallback(err)
    for i in range(k):
        grads = torch.autograd.grad(
            feats,
            inputs,
            grad_outputs=[c[i] for c in cotangents],
            retain_graph=retain_graph or i < k - 1,
            allow_unused=True,
            materialize_grads=True,
        )
        torch.cat([g.reshape(-1) for g in grads], out=out[i])
    return out


def _vmapped_rows(
    outputs: Tensor | list[Tensor], inputs: list[Tensor], grad_outputs: Tensor | list[Tensor], out: Tensor
) -> Tensor:
    """One backward batched over the K cotangents (leading dimension of ``grad_outputs``), rows written into
    ``out``. The graph is kept so that the per-task loop can still run on it if an op has no batching rule."""
    grads = torch.autograd.grad(
        outputs,
        inputs,
        grad_outputs=grad_outputs,
        retain_graph=True,
        is_grads_batched=True,
        allow_unused=True,
        materialize_grads=True,
    )
    torch.cat([g.reshape(out.shape[0], -1) for g in grads], dim=1, out=out)
    return out


def unflatten_like(vector: Tensor, tensors: Sequence[Tensor]) -> list[Tensor]:
    """Split a flat vector into views shaped like ``tensors`` (the inverse of one Jacobian row)."""
    sizes = [t.numel() for t in tensors]
    if vector.dim() != 1 or vector.numel() != sum(sizes):
        raise ValueError(f"vector of {vector.numel()} entries does not match tensors of {sum(sizes)} entries")
    return [chunk.view_as(t) for chunk, t in zip(vector.split(sizes), tensors)]


# Float64 work on a [K, n] matrix runs over column chunks of at most 2^20 float64 entries (8 MiB). Besides
# bounding memory, the size matters for speed on CPU: glibc serves allocations above its mmap threshold
# (at most 32 MiB) with fresh pages that fault in again on every call. Measured on the 2-core CI VM
# (benchmarks/README.md): at K = 40, n = 262,144 the Gramian took 43-52 ms with one 84 MB chunk and 19-23 ms
# with 8 MiB chunks, ``w @ G`` 28-46 ms and 4-5 ms.
_CHUNK_ENTRIES = 1 << 20


def column_chunks(grads: Tensor) -> tuple[Tensor, ...]:
    """Column slices of a ``[K, n]`` matrix of at most ``_CHUNK_ENTRIES`` entries each (for float64 temporaries)."""
    return grads.split(max(1, _CHUNK_ENTRIES // max(1, grads.shape[0])), dim=1)


def gramian(grads: Tensor) -> Tensor:
    """``G G^T`` of a ``[K, n]`` Jacobian, accumulated in float64 (all K x K numerics are float64).

    Computed over column chunks so that a float32 Jacobian is never copied whole to float64.
    """
    k = grads.shape[0]
    out = torch.zeros(k, k, dtype=torch.float64, device=grads.device)
    for chunk in column_chunks(grads):
        c = chunk.to(torch.float64)
        out.addmm_(c, c.T)
    return out


def combine(weights: Tensor, grads: Tensor) -> Tensor:
    """``weights @ grads`` accumulated in float64 and returned in ``grads.dtype``.

    Weights of the fixed-point methods can be large with cancelling contributions (nearly dependent
    gradients), where a float32 product loses the direction.
    """
    w = weights.to(device=grads.device, dtype=torch.float64)
    out = torch.empty(grads.shape[1], dtype=grads.dtype, device=grads.device)
    start = 0
    for chunk in column_chunks(grads):
        out[start : start + chunk.shape[1]] = w @ chunk.to(torch.float64)
        start += chunk.shape[1]
    return out
