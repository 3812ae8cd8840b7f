"""STL-vs-MTL gradient similarity (seed 001 sec. 4.2) against per-sample gradients computed independently."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from mtl_core import analysis


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny matmuls: avoid OpenMP oversubscription on the shared CI cores
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class TinyMTL(nn.Module):
    """A protocol model: shared trunk, one linear head per task; optional BatchNorm in the trunk."""

    def __init__(self, num_tasks: int, batchnorm: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        layers: list[nn.Module] = [nn.Linear(3, 6)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(6))
        layers.append(nn.Tanh())
        self.trunk = nn.Sequential(*layers).double()
        self.heads = nn.ModuleDict({f"t{i}": nn.Linear(6, 1).double() for i in range(num_tasks)})

    def encode(self, x):
        return self.trunk(x)

    def decode(self, z):
        return {t: h(z).squeeze(-1) for t, h in self.heads.items()}

    def shared_parameters(self):
        return list(self.trunk.parameters())

    def task_parameters(self, task):
        return list(self.heads[task].parameters())


def per_sample_mse(predictions, batch):
    _, targets = batch
    return {t: (p - targets[t]) ** 2 for t, p in predictions.items()}


def make_batch(batch_size: int, num_tasks: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, generator=gen, dtype=torch.float64)
    targets = {f"t{i}": torch.randn(batch_size, generator=gen, dtype=torch.float64) for i in range(num_tasks)}
    return x, targets


def single_sample_grad(model, batch, task, i):
    """One sample's loss gradient from a forward on that sample alone (independent of the batch code)."""
    x, targets = batch
    pred = model.decode(model.encode(x[i : i + 1]))[task][0]
    loss = (pred - targets[task][i]) ** 2
    grads = torch.autograd.grad(loss, model.shared_parameters())
    return torch.cat([g.reshape(-1) for g in grads])


def test_pairs_match_independent_per_sample_gradients():
    model, batch = TinyMTL(3), make_batch(5, 3)
    pairs = analysis.stl_mtl_gradient_pairs(model, batch, per_sample_mse)
    assert pairs.samples == [0, 1, 2, 3, 4] and pairs.tasks == ["t0", "t1", "t2"]
    g = {(t, i): single_sample_grad(model, batch, t, i) for t in pairs.tasks for i in range(5)}

    def cos(a, b):
        return float(a @ b / (a.norm() * b.norm()))

    def mag(a, b):
        return float(2 * a.norm() * b.norm() / (a.norm() ** 2 + b.norm() ** 2))

    stl = [(g[t, i], g[t, j]) for t in pairs.tasks for i, j in itertools.combinations(range(5), 2)]
    mtl = [(g[a, i], g[b, i]) for i in range(5) for a, b in itertools.combinations(pairs.tasks, 2)]
    for got, ref in ((pairs.stl, stl), (pairs.mtl, mtl)):
        assert {k: v.shape for k, v in got.items()} == {m: (len(ref),) for m in analysis.similarity.MEASURES}
        np.testing.assert_allclose(got["cosine"], [cos(a, b) for a, b in ref], rtol=1e-10)
        np.testing.assert_allclose(got["magnitude"], [mag(a, b) for a, b in ref], rtol=1e-10)
        np.testing.assert_allclose(got["dot"], [float(a @ b) for a, b in ref], rtol=1e-10)
        np.testing.assert_allclose(
            got["conflicting_parameters"], [float(((a * b) < 0).double().mean()) for a, b in ref], rtol=0
        )


def test_subsamples_eight_samples_and_tasks_reproducibly():
    model, batch = TinyMTL(10), make_batch(20, 10)

    def draw(seed):
        return analysis.stl_mtl_gradient_pairs(
            model, batch, per_sample_mse, generator=torch.Generator().manual_seed(seed)
        )

    a, b, c = draw(0), draw(0), draw(1)
    assert len(a.samples) == 8 and len(a.tasks) == 8 and len(set(a.tasks)) == 8
    assert a.samples == sorted(a.samples) and all(0 <= i < 20 for i in a.samples)
    assert len(a.stl["cosine"]) == 8 * 28 and len(a.mtl["cosine"]) == 8 * 28
    assert a.samples == b.samples and a.tasks == b.tasks
    np.testing.assert_array_equal(a.stl["cosine"], b.stl["cosine"])
    assert (a.samples, a.tasks) != (c.samples, c.tasks)


def test_batchnorm_statistics_and_mode_are_left_untouched():
    model, batch = TinyMTL(2, batchnorm=True), make_batch(6, 2)
    model.train()
    bn = model.trunk[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    pairs = analysis.stl_mtl_gradient_pairs(model, batch, per_sample_mse)
    assert model.training
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert int(bn.num_batches_tracked) == before[2]
    # in eval mode each sample's gradient is its own: equal to a single-sample forward
    model.eval()
    ref = [single_sample_grad(model, batch, "t0", i) for i in range(2)]
    expected = float(ref[0] @ ref[1] / (ref[0].norm() * ref[1].norm()))
    assert pairs.stl["cosine"][0] == pytest.approx(expected, rel=1e-10)


def test_summarize_hand_values():
    s = analysis.summarize([4.0, 1.0, 3.0, 2.0])
    assert s["mean"] == 2.5 and s["std"] == pytest.approx(math.sqrt(1.25)) and s["count"] == 4
    assert s["p2.5"] == pytest.approx(1.075) and s["p97.5"] == pytest.approx(3.925)
    with pytest.raises(ValueError, match="empty"):
        analysis.summarize([])
    with pytest.raises(ValueError, match="NaN"):
        analysis.summarize([1.0, float("nan")])


def test_monitor_measures_every_fifth_step_and_summarises_per_epoch():
    model = TinyMTL(3)
    monitor = analysis.GradientSimilarityMonitor(per_sample_mse, every=5, seed=3)
    results = [monitor.step(model, make_batch(4, 3, seed=s)) for s in range(10)]
    measured = [r for r in results if r is not None]
    assert [r is not None for r in results] == [s % 5 == 0 for s in range(10)]
    summary = monitor.end_epoch()
    assert set(summary) == {"stl", "mtl"}
    stl_cos = np.concatenate([r.stl["cosine"] for r in measured])
    assert summary["stl"]["cosine"]["count"] == 2 * 3 * 6  # 2 measurements x 3 tasks x C(4, 2)
    assert summary["stl"]["cosine"]["mean"] == pytest.approx(stl_cos.mean())
    assert summary["mtl"]["magnitude"]["count"] == 2 * 4 * 3  # 2 x 4 samples x C(3, 2)
    assert monitor.history == [summary]
    with pytest.raises(ValueError, match="no measurement"):
        monitor.end_epoch()


def test_protocol_and_shape_errors():
    model, batch = TinyMTL(2), make_batch(4, 2)
    with pytest.raises(ValueError, match="protocol"):
        analysis.stl_mtl_gradient_pairs(nn.Linear(3, 1), batch, per_sample_mse)
    with pytest.raises(ValueError, match="at least two tasks"):
        analysis.stl_mtl_gradient_pairs(model, batch, per_sample_mse, tasks=["t0"])
    with pytest.raises(ValueError, match="not among"):
        analysis.stl_mtl_gradient_pairs(model, batch, per_sample_mse, tasks=["t0", "depth"])
    with pytest.raises(ValueError, match="1-D loss vector"):
        analysis.stl_mtl_gradient_pairs(model, batch, lambda p, b: {t: v.mean() for t, v in p.items()})
    with pytest.raises(ValueError, match="at least two samples"):
        analysis.stl_mtl_gradient_pairs(model, make_batch(1, 2), per_sample_mse)
    with pytest.raises(ValueError, match="max_items"):
        analysis.stl_mtl_gradient_pairs(model, batch, per_sample_mse, max_items=1)
    with pytest.raises(ValueError, match="every"):
        analysis.GradientSimilarityMonitor(per_sample_mse, every=0)
