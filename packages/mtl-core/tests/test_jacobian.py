"""The Jacobian engine: both modes agree with per-task autograd, features mode, fallback, bad input."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import mtl_core
from mtl_core import gradients as jac_module


class TwoHead(nn.Module):
    def __init__(self, k: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3))
        self.heads = nn.ModuleList(nn.Linear(8 * 6 * 6, 1) for _ in range(k))

    def encode(self, x):
        return self.trunk(x)

    def losses(self, x):
        z = self.encode(x)
        return z, torch.stack([(h(z.flatten(1)) ** 2).mean() for h in self.heads])


def manual_rows(losses, params):
    rows = []
    for i in range(losses.shape[0]):
        grads = torch.autograd.grad(losses[i], params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)]))
    return torch.stack(rows)


@pytest.mark.parametrize("mode", ["loop", "batched", "auto"])
@pytest.mark.parametrize("k", [1, 3])
def test_jacobian_rows_are_the_per_task_gradients(mode, k):
    model = TwoHead(k)
    _, losses = model.losses(torch.randn(4, 3, 8, 8))
    params = list(model.trunk.parameters())
    expected = manual_rows(losses, params)
    got = mtl_core.jacobian(losses, params, mode=mode)
    assert got.shape == (k, sum(p.numel() for p in params))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_jacobian_writes_into_a_preallocated_buffer_and_accepts_a_list_of_losses():
    model = TwoHead(3)
    _, losses = model.losses(torch.randn(4, 3, 8, 8))
    params = list(model.trunk.parameters())
    out = torch.full((3, sum(p.numel() for p in params)), float("nan"))
    got = mtl_core.jacobian(list(losses), params, out=out)
    assert got.data_ptr() == out.data_ptr() and torch.isfinite(out).all()


def test_unused_parameters_get_zero_rows():
    a = torch.randn(3, requires_grad=True)
    b = torch.randn(2, requires_grad=True)
    losses = torch.stack([(a**2).sum(), a.sum()])
    j = mtl_core.jacobian(losses, [a, b], mode="loop")
    torch.testing.assert_close(j[:, 3:], torch.zeros(2, 2))
    torch.testing.assert_close(j[0, :3], 2 * a.detach())


def test_features_mode_and_the_chain_rule_back_to_parameters():
    model = TwoHead(3)
    z, losses = model.losses(torch.randn(4, 3, 8, 8))
    jz = mtl_core.jacobian(losses, z, retain_graph=True)
    assert jz.shape == (3, z.numel())
    # pushing a z-space combination back through the encoder equals the same combination of parameter rows
    params = list(model.trunk.parameters())
    jp = mtl_core.jacobian(losses, params, retain_graph=True)
    w = torch.tensor([0.2, -1.0, 0.5])
    back = torch.autograd.grad(z, params, grad_outputs=mtl_core.unflatten_like(w @ jz, [z])[0])
    torch.testing.assert_close(torch.cat([g.reshape(-1) for g in back]), w @ jp, rtol=1e-5, atol=1e-6)


def test_features_mode_accepts_a_tuple_of_representations():
    x = torch.randn(5, requires_grad=True)
    z1, z2 = x * 2, x**2
    losses = torch.stack([z1.sum(), (z1 * z2).sum()])
    j = mtl_core.jacobian(losses, (z1, z2))
    torch.testing.assert_close(j[0], torch.cat([torch.ones(5), torch.zeros(5)]))
    torch.testing.assert_close(j[1], torch.cat([z2.detach(), z1.detach()]))


class NotBatchable(torch.autograd.Function):
    """Backward reads a Python scalar from its gradient: impossible under vmap."""

    @staticmethod
    def forward(ctx, x):
        return x * 3.0

    @staticmethod
    def backward(ctx, grad):
        return grad * 3.0 if grad.sum().item() != 12345.0 else grad


def test_batched_mode_falls_back_to_the_loop_when_an_op_cannot_be_vmapped(monkeypatch):
    monkeypatch.setattr(jac_module, "_batched_fallback_warned", False)
    p = torch.randn(4, requires_grad=True)
    y = NotBatchable.apply(p)
    losses = torch.stack([y.sum(), (y**2).sum()])
    with pytest.warns(RuntimeWarning, match="falling back"):
        j = mtl_core.jacobian(losses, [p], mode="batched")
    torch.testing.assert_close(j[0], torch.full((4,), 3.0))
    torch.testing.assert_close(j[1], 18.0 * p.detach())


def test_batched_through_z_falls_back_to_the_loop_with_the_same_warning(monkeypatch):
    monkeypatch.setattr(jac_module, "_batched_fallback_warned", False)
    p = torch.randn(4, requires_grad=True)
    z = NotBatchable.apply(p)  # the encoder: its backward cannot be vmapped
    losses = [z.sum(), (z**2).sum()]
    with pytest.warns(RuntimeWarning, match="falling back"):
        j = mtl_core.jacobian(losses, [p], mode="batched", through=z)
    torch.testing.assert_close(j[0], torch.full((4,), 3.0))
    torch.testing.assert_close(j[1], 18.0 * p.detach())


def test_retain_graph_false_frees_the_graph():
    p = torch.randn(3, requires_grad=True)
    losses = torch.stack([(p.exp()).sum(), (p.sin()).sum()])
    mtl_core.jacobian(losses, [p], mode="loop")
    with pytest.raises(RuntimeError, match=r"second time|freed"):
        losses.sum().backward()


def test_auto_mode_rule():
    assert mtl_core.choose_mode(torch.device("cpu"), 3) == "loop"
    assert mtl_core.choose_mode(torch.device("cpu"), 3, through=True) == "loop"
    assert mtl_core.choose_mode(torch.device("cuda"), 3) == "loop"
    assert mtl_core.choose_mode(torch.device("cuda"), 3, through=True) == "batched"
    assert mtl_core.choose_mode(torch.device("cuda"), 1, through=True) == "loop"


def test_bad_inputs():
    p = torch.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="mode must be one of"):
        mtl_core.jacobian(torch.stack([p.sum()]), [p], mode="vmap")
    with pytest.raises(ValueError, match="requires_grad"):
        mtl_core.jacobian(torch.stack([p.sum()]), [torch.randn(3)])
    with pytest.raises(ValueError, match="1-D"):
        mtl_core.jacobian(p.sum(), [p])
    with pytest.raises(ValueError, match="empty"):
        mtl_core.jacobian(torch.stack([p.sum()]), [])
    with pytest.raises(ValueError, match="out must be"):
        mtl_core.jacobian(torch.stack([p.sum()]), [p], out=torch.empty(2, 3))


@pytest.mark.parametrize("k", [3, 40])
def test_gramian_and_combine_chunks_are_bounded_and_cover_every_column(k):
    g = torch.randn(k, 100_000)
    chunks = jac_module.column_chunks(g)
    assert all(c.numel() <= jac_module._CHUNK_ENTRIES for c in chunks)
    assert sum(c.shape[1] for c in chunks) == g.shape[1]
    assert (len(chunks) > 1) == (k * g.shape[1] > jac_module._CHUNK_ENTRIES)


def test_gramian_and_combine_are_float64_accurate():
    g = torch.randn(3, 2_500_000)  # spans several float64 chunks
    m = mtl_core.gramian(g)
    assert m.dtype == torch.float64
    torch.testing.assert_close(m, g.double() @ g.double().T)
    w = torch.tensor([1e6, -1e6, 1.0], dtype=torch.float64)
    torch.testing.assert_close(mtl_core.combine(w, g), (w @ g.double()).float())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["loop", "batched"])
def test_jacobian_on_cuda_matches_cpu(mode):
    model = TwoHead(3)
    x = torch.randn(4, 3, 8, 8)
    _, losses = model.losses(x)
    expected = mtl_core.jacobian(losses, list(model.trunk.parameters()))
    model = model.cuda()
    _, losses = model.losses(x.cuda())
    got = mtl_core.jacobian(losses, list(model.trunk.parameters()), mode=mode)
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-4, atol=1e-5)


def test_no_warning_in_the_normal_path():
    model = TwoHead(2)
    _, losses = model.losses(torch.randn(2, 3, 8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mtl_core.jacobian(losses, list(model.trunk.parameters()), mode="batched")


@pytest.mark.parametrize("mode", ["loop", "batched"])
def test_jacobian_through_the_representation_equals_the_direct_jacobian(mode):
    model = TwoHead(3)
    z, losses = model.losses(torch.randn(4, 3, 8, 8))
    params = list(model.trunk.parameters())
    expected = manual_rows(losses, params)
    got = mtl_core.jacobian(list(losses), params, mode=mode, through=z)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
