"""The tasks' graphs above the shared inputs: separate or shared, freed as they go, captured in one backward."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mtl_core
from mtl_core import task_graphs


def heads_behind(z, k, shared_node=False, seed=3):
    """K scalar losses from z through one small head each; ``shared_node``: all heads read tanh(z), a node
    that saves its output, so a backward that frees it breaks the next head's backward."""
    torch.manual_seed(seed)
    s = torch.tanh(z) if shared_node else z
    heads = [nn.Linear(z.shape[-1], 1).to(z.dtype) for _ in range(k)]
    return [(h(s) ** 2).mean() for h in heads], heads


def loop_rows(roots, inputs):
    """The reference: one backward per root, graph kept, rows concatenated over the inputs."""
    rows = []
    for root in roots:
        grads = torch.autograd.grad(root, inputs, retain_graph=True, allow_unused=True, materialize_grads=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def encoded(dtype=torch.float64):
    torch.manual_seed(0)
    trunk = nn.Linear(5, 6).to(dtype)
    x = torch.randn(4, 5, dtype=dtype)
    return trunk, x, torch.tanh(trunk(x))


def test_task_readers_see_shared_nodes_above_the_inputs_only():
    x = torch.randn(4, 6, requires_grad=True)
    z = (x * 2).relu()
    roots, _ = heads_behind(z, 3)
    assert task_graphs.task_readers(roots, [z]) is not None  # the heads meet only below z
    assert task_graphs.task_readers(roots, [x]) is None  # ... which is above x: relu and mul are shared
    shared, _ = heads_behind(z, 3, shared_node=True)
    assert task_graphs.task_readers(shared, [z]) is None
    # a leaf reached by every root (a parameter used directly) saves nothing: still separate
    p = torch.randn(6, requires_grad=True)
    assert task_graphs.task_readers([(p.sin()).sum(), (p.exp()).sum()], [p]) is not None
    assert task_graphs.task_readers([z.sum(), z[0, 0]], [z[0, 0]]) is None  # a root that is an input


def test_task_readers_are_the_nodes_reading_each_input_and_belong_to_one_task():
    _, _, z = encoded()
    a, b = z[:, :3], z[:, 3:]
    roots = [(a * b).sum(), (a.sin()).sum(), (b**2).sum()]
    readers = task_graphs.task_readers(roots, [a, b])
    assert [sorted(part for _, _, part in r) for r in readers] == [[0, 1], [0], [1]]
    assert len({node for r in readers for node, _, _ in r}) == 3


def test_retain_flags():
    assert task_graphs.retain_flags(3, separate=True, retain_graph=False) == [False, False, False]
    assert task_graphs.retain_flags(3, separate=False, retain_graph=False) == [True, True, False]
    assert task_graphs.retain_flags(3, separate=True, retain_graph=True) == [True, True, True]


def test_one_pass_needs_non_leaf_inputs_on_cpu():
    _, _, z = encoded()
    p = torch.randn(3, requires_grad=True)
    assert task_graphs.one_pass([z]) and not task_graphs.one_pass([z, p])


def test_captured_rows_equal_the_per_task_backwards_and_return_the_heads_gradients():
    _, _, z = encoded()
    a, b = z[:, :2], z[:, 2:]  # two inputs, one read twice by one node (a * a), one unused by task 2
    heads = [nn.Linear(2, 1).double(), nn.Linear(4, 1).double(), nn.Linear(2, 1).double()]
    roots = [(heads[0](a * a) + heads[1](b).tanh()).sum(), (heads[1](b) * a[:, :1]).mean(), heads[2](a).pow(2).sum()]
    expected = loop_rows(roots, [a, b])
    expected_heads = loop_rows([sum(roots)], [p for h in heads for p in h.parameters()])[0]
    readers = task_graphs.task_readers(roots, [a, b])
    assert readers is not None
    out = torch.full_like(expected, float("nan"))
    grads = task_graphs.captured_rows(roots, [a, b], readers, out, [p for h in heads for p in h.parameters()])
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(torch.cat([g.reshape(-1) for g in grads]), expected_heads, rtol=1e-12, atol=1e-14)
    assert (out[2, a.numel() :] == 0).all()  # task 2 never reads b: zeros, not the NaN the buffer held


def test_captured_rows_run_one_backward_free_the_heads_and_keep_the_encoder(monkeypatch):
    trunk, x, z = encoded()
    roots, heads = heads_behind(z, 4)
    calls = []
    grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1) or grad(*a, **k))
    rows = mtl_core.jacobian(roots, z)
    assert len(calls) == 1  # one backward for the four tasks
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match=r"second time|freed"):
        torch.autograd.grad(roots[0], list(heads[0].parameters()))  # the heads were freed
    back = torch.autograd.grad(z, list(trunk.parameters()), grad_outputs=rows.sum(0).view_as(z))  # encoder kept
    z2 = torch.tanh(trunk(x))
    expected = torch.autograd.grad(sum((h(z2) ** 2).mean() for h in heads), list(trunk.parameters()))
    for g, e in zip(back, expected):
        torch.testing.assert_close(g, e)


def test_hooks_are_removed_after_the_pass():
    _, _, z = encoded()
    roots, _ = heads_behind(z, 3)
    rows = mtl_core.jacobian(roots, z, retain_graph=True)
    kept = rows.clone()
    rows.zero_()
    torch.autograd.grad(sum(roots), z)  # the kept graph runs again: no hook may write into the old rows
    assert (rows == 0).all() and kept.abs().sum() > 0


@pytest.mark.parametrize("shared_node", [False, True])
def test_shared_heads_fall_back_to_the_loop_with_the_same_rows(shared_node, monkeypatch):
    _, _, z = encoded()
    roots, _ = heads_behind(z, 3, shared_node=shared_node)
    expected = loop_rows(roots, [z])
    calls = []
    grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1) or grad(*a, **k))
    got = mtl_core.jacobian(roots, z)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    assert len(calls) == (3 if shared_node else 1)


@pytest.mark.parametrize("shared_node", [False, True])
@pytest.mark.parametrize("mode", ["loop", "batched"])
def test_jacobian_through_z_with_separate_or_shared_heads_equals_the_direct_jacobian(shared_node, mode):
    trunk, _, z = encoded()
    roots, _ = heads_behind(z, 3, shared_node=shared_node)
    params = list(trunk.parameters())
    expected = loop_rows(roots, params)
    got = mtl_core.jacobian(roots, params, mode=mode, through=z)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


def test_a_conv_head_reading_a_channels_last_representation():
    torch.manual_seed(0)
    enc = nn.Conv2d(3, 4, 3, padding=1)
    z = enc(torch.randn(2, 3, 6, 6).to(memory_format=torch.channels_last))
    heads = [nn.Conv2d(4, 1, 3) for _ in range(3)]
    roots = [h(z).square().mean() for h in heads]
    expected = loop_rows(roots, [z])
    torch.testing.assert_close(mtl_core.jacobian(roots, z), expected)
