"""Top Hessian eigenvalues from Hessian-vector products against a dense Hessian (seed 002 Table 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from mtl_core import analysis


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_problem(seed: int = 0):
    """A 2-4-3 tanh MLP (35 parameters, float64) with an MSE loss on fixed data, in two equal batches."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(16, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(16, 3, generator=gen, dtype=torch.float64)
    return model, x, y


def dense_hessian(model, x, y) -> np.ndarray:
    """The Hessian by torch.autograd.functional.hessian over the flattened parameters (the reference)."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(v):
        params = {n: c.view(s) for n, c, s in zip(names, v.split(sizes), shapes)}
        return ((functional_call(model, params, (x,)) - y) ** 2).mean()

    return torch.autograd.functional.hessian(loss, flat).numpy()


def test_lanczos_matches_the_dense_hessian():
    model, x, y = tiny_problem()
    ref = np.sort(np.linalg.eigvalsh(dense_hessian(model, x, y)))[::-1]

    def loss():
        return ((model(x) - y) ** 2).mean()

    top = analysis.hessian_eigenvalues(loss, model.parameters(), k=5)
    np.testing.assert_allclose(top, ref[:5], rtol=1e-8, atol=1e-12)
    dense = analysis.hessian_eigenvalues(loss, model.parameters(), k=5, method="dense")
    np.testing.assert_allclose(dense, ref[:5], rtol=1e-10, atol=1e-12)
    s = analysis.sharpness(loss, model.parameters())
    assert s.lambda_max == pytest.approx(ref[0], rel=1e-8)
    assert s.ratio == pytest.approx(ref[0] / ref[4], rel=1e-7)


def test_power_iteration_finds_the_largest_magnitudes():
    model, x, y = tiny_problem()
    ref = np.linalg.eigvalsh(dense_hessian(model, x, y))
    by_magnitude = ref[np.argsort(-np.abs(ref))]

    def loss():
        return ((model(x) - y) ** 2).mean()

    top = analysis.hessian_eigenvalues(
        loss, model.parameters(), k=3, method="power", which="LM", tol=1e-12, max_iter=5000
    )
    np.testing.assert_allclose(top, by_magnitude[:3], rtol=1e-5)
    lanczos = analysis.hessian_eigenvalues(loss, model.parameters(), k=3, which="LM")
    np.testing.assert_allclose(lanczos, by_magnitude[:3], rtol=1e-8)


def test_batches_average_the_hessian_over_the_data_set():
    model, x, y = tiny_problem(seed=3)
    ref = np.sort(np.linalg.eigvalsh(dense_hessian(model, x, y)))[::-1]
    batches = [(x[:8], y[:8]), (x[8:], y[8:])]  # equal sizes: the mean of batch means is the full mean
    hvp_calls = []

    def loss(batch):
        hvp_calls.append(1)
        bx, by = batch
        return ((model(bx) - by) ** 2).mean()

    top = analysis.hessian_eigenvalues(loss, model.parameters(), k=2, batches=batches)
    np.testing.assert_allclose(top, ref[:2], rtol=1e-8, atol=1e-12)
    assert len(hvp_calls) % 2 == 0  # every product visits both batches


def test_quadratic_has_the_eigenvalues_of_its_matrix_and_is_deterministic():
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=gen, dtype=torch.float64))
    spectrum = torch.tensor([9.0, 7.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.0, -0.5, -1.0, -2.0], dtype=torch.float64)
    a = q @ torch.diag(spectrum) @ q.T
    w = torch.randn(12, generator=gen, dtype=torch.float64, requires_grad=True)

    def loss():
        return 0.5 * w @ a @ w

    top = analysis.hessian_eigenvalues(loss, [w], k=5)
    np.testing.assert_allclose(top, [9, 7, 5, 4, 3], rtol=1e-9)
    assert np.array_equal(top, analysis.hessian_eigenvalues(loss, [w], k=5))
    assert analysis.sharpness(loss, [w]).ratio == pytest.approx(3.0, rel=1e-9)


def test_linear_loss_has_a_zero_hessian():
    w = torch.ones(4, requires_grad=True, dtype=torch.float64)
    top = analysis.hessian_eigenvalues(lambda: w.sum(), [w], k=2, method="dense")
    np.testing.assert_array_equal(top, [0.0, 0.0])


def test_bad_arguments():
    w = torch.ones(4, requires_grad=True, dtype=torch.float64)

    def loss():
        return (w**4).sum()

    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 4\]"):
        analysis.hessian_eigenvalues(loss, [w], k=5)
    with pytest.raises(ValueError, match="method"):
        analysis.hessian_eigenvalues(loss, [w], k=2, method="arnoldi")
    with pytest.raises(ValueError, match="which"):
        analysis.hessian_eigenvalues(loss, [w], k=2, which="SA")
    with pytest.raises(ValueError, match="requires_grad"):
        analysis.hessian_eigenvalues(loss, [torch.ones(4)], k=2)
    with pytest.raises(ValueError, match="scalar"):
        analysis.hessian_eigenvalues(lambda: w * 2, [w], k=2)
    with pytest.raises(ValueError, match="batches is empty"):
        analysis.hessian_eigenvalues(lambda b: loss(), [w], k=2, batches=[])
