"""The K tasks' backward graphs above the shared inputs: are they separate, and their gradients in one pass.

With one head per task behind a shared representation ``z``, the graph from task ``i``'s loss down to ``z``
is head ``i``'s alone. Two things follow, both used by the per-task gradient engines:

* a backward from one loss to ``z`` may free the nodes it runs (``retain_graph=False``) without breaking the
  next task's backward, and never touches the encoder below ``z`` (:func:`retain_flags`);
* the K rows ``d L_i / d z`` can come out of *one* backward of ``sum_i L_i``: every node that reads ``z``
  belongs to exactly one task, so a hook on it sees exactly that task's contribution (:func:`captured_rows`).

Autograd offers neither directly (``retain_graph`` is all or nothing; ``is_grads_batched`` vmaps K
backwards, which on CPU is the slower engine), hence this walk over ``grad_fn.next_functions``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# A reader: (node, slot, part): ``node.next_functions[slot]`` is the edge into input ``part``.
Reader = tuple[object, int, int]


def task_readers(roots: Sequence[Tensor], inputs: Sequence[Tensor]) -> list[list[Reader]] | None:
    """Per root, the nodes of its graph that read one of ``inputs`` directly; ``None`` if two roots share a node.

    The walk starts at each root's ``grad_fn`` and stops at the inputs' own nodes and at leaves
    (``AccumulateGrad`` saves nothing, so a leaf reached from two roots does not count as shared). It is
    conservative: every node a root reaches counts, including paths that bypass the inputs. A root that is
    itself one of the inputs gives ``None`` too (its gradient is not read by any node).
    """
    edges = {(t.grad_fn, t.output_nr): part for part, t in enumerate(inputs) if t.grad_fn is not None}
    boundary = {node for node, _ in edges}
    owner: dict[object, int] = {}
    readers: list[list[Reader]] = []
    for i, root in enumerate(roots):
        if (root.grad_fn, root.output_nr) in edges:
            return None
        mine: list[Reader] = []
        stack = [root.grad_fn]
        while stack:
            node = stack.pop()
            if node is None or node in boundary or hasattr(node, "variable"):  # variable: an AccumulateGrad
                continue
            if node in owner:
                if owner[node] != i:
                    return None
                continue
            owner[node] = i
            for slot, (child, output_nr) in enumerate(node.next_functions):
                part = edges.get((child, output_nr))
                if part is not None:
                    mine.append((node, slot, part))
                stack.append(child)
        readers.append(mine)
    return readers


def retain_flags(num_tasks: int, separate: bool, retain_graph: bool) -> list[bool]:
    """``retain_graph`` for each of the K per-task backwards to the inputs.

    Every backward but the last keeps the graph unless the tasks' graphs above the inputs are ``separate``:
    then each frees its own nodes as it goes, as one backward of ``sum_i L_i`` does. That matters for speed on
    CPU: kept activations make every later backward allocate fresh memory (benchmarks/README.md: the 40 head
    backwards of the benchmark took 155 ms keeping the graph, 99 ms freeing it). A backward that stops at
    the inputs never runs, so never frees, the nodes below them (the encoder below ``z``).
    """
    if retain_graph:
        return [True] * num_tasks
    return [not separate and i < num_tasks - 1 for i in range(num_tasks)]


def one_pass(inputs: Sequence[Tensor]) -> bool:
    """Whether :func:`captured_rows` replaces the K per-task backwards for these inputs (given separate graphs).

    Its readers are the nodes reading a non-leaf input, so every input needs a ``grad_fn``. Measured faster
    on CPU only; on CUDA the per-task backwards stay until measured there. On CPU autograd runs every node
    on the calling thread, so the hooks write the rows in order, without locks.
    """
    return all(t.grad_fn is not None and t.device.type == "cpu" for t in inputs)


def captured_rows(
    roots: Sequence[Tensor],
    inputs: Sequence[Tensor],
    readers: list[list[Reader]],
    out: Tensor,
    extra: Sequence[Tensor] = (),
    *,
    retain_graph: bool = False,
) -> tuple[Tensor, ...]:
    """Write ``out[i] = d roots[i] / d inputs`` (flattened, concatenated) from one backward of ``sum_i roots[i]``.

    ``readers`` is :func:`task_readers`'s answer for the same roots and inputs. A post-hook on every reader
    copies (or adds, for a second read) the gradient it sends to an input into task ``i``'s row and drops it
    from the pass, so nothing accumulates into the inputs and the graph below them never runs. Returns the
    gradients of ``sum_i roots[i]`` w.r.t. ``extra`` (the heads' parameters: each head's own loss's gradient
    when no other task reads it). Measured on CPU at K = 40 (benchmarks/README.md): 115 ms against 134 ms
    for the K per-task backwards, which pay autograd's per-call cost K times.
    """
    sizes = [t.numel() for t in inputs]
    starts = [sum(sizes[:part]) for part in range(len(sizes))]
    written: set[tuple[int, int]] = set()

    def reader_hook(task: int, slots: list[tuple[int, int]]):
        def hook(grad_inputs: tuple[Tensor | None, ...], _grad_outputs: tuple[Tensor | None, ...]):
            grads = list(grad_inputs)
            for slot, part in slots:
                grad = grads[slot]
                if grad is not None:
                    dst = out[task, starts[part] : starts[part] + sizes[part]].view(inputs[part].shape)
                    if (task, part) in written:
                        dst.add_(grad)
                    else:
                        dst.copy_(grad)
                        written.add((task, part))
                grads[slot] = None
            return tuple(grads)

        return hook

    handles = []
    try:
        for task, task_readers_ in enumerate(readers):
            slots_of: dict[object, list[tuple[int, int]]] = {}
            for node, slot, part in task_readers_:
                slots_of.setdefault(node, []).append((slot, part))
            handles += [node.register_hook(reader_hook(task, slots)) for node, slots in slots_of.items()]
        grads = torch.autograd.grad(
            list(roots), [*inputs, *extra], retain_graph=retain_graph, allow_unused=True, materialize_grads=True
        )
    finally:
        for handle in handles:  # a kept graph must not write into these rows again
            handle.remove()
    for task in range(len(roots)):
        for part in range(len(inputs)):
            if (task, part) not in written:  # the task does not read this input
                out[task, starts[part] : starts[part] + sizes[part]].zero_()
    return grads[len(inputs) :]
