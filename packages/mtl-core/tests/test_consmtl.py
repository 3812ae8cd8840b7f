"""ConsMTL: upper level on the shared parameters, lower-level head loss -lambda <d l_i / d z, d_z> (seed 004)."""

from __future__ import annotations

import functools

import pytest
import torch
from test_step_models import Counter, TinyMTL, batch, closure_for, params_of, single_thread  # noqa: F401

from mtl_core import MTLStep, aggregators

LR = 1.0


def step_once(method, model=None, **hp):
    model = TinyMTL(3) if model is None else model
    x, y = batch()
    before = [p.detach().clone() for p in model.parameters()]
    MTLStep(model, method, functools.partial(torch.optim.SGD, lr=LR), **hp).step(closure_for(x, y))
    return model, [(b - p.detach()) / LR for b, p in zip(before, model.parameters())]


def by_hand(lambda_, extra_clip):
    """Seed 004 Alg. 1 with eq. (5), Prop. 3.1 and eq. (7)-(8), written out with plain autograd."""
    model = TinyMTL(3)
    x, y = batch()
    z = model.encode(x)
    preds = model.decode(z)
    losses = torch.stack([((preds[t] - y[:, i]) ** 2).mean() for i, t in enumerate(model.tasks)])
    shared = list(model.shared_parameters())
    rows = torch.stack(
        [torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, shared, retain_graph=True)]) for loss in losses]
    )
    upper = aggregators.create("consmtl", 3)
    d = upper(rows)
    a = upper.last_weights
    deltas = [torch.autograd.grad(loss, z, retain_graph=True, create_graph=True)[0] for loss in losses]
    d_z = sum(float(a[i]) * deltas[i].detach() for i in range(3))
    heads = {}
    for i, t in enumerate(model.tasks):
        head = list(model.task_parameters(t))
        g1 = torch.autograd.grad(losses[i], head, retain_graph=True)
        g2 = torch.autograd.grad(-lambda_ * (deltas[i] * d_z).sum(), head, retain_graph=True)
        n1 = torch.cat([g.reshape(-1) for g in g1]).norm()
        n2 = torch.cat([g.reshape(-1) for g in g2]).norm()
        coeff = 1.0 if extra_clip is None else min(1.0, float(extra_clip * n1 / (n2 + 1e-6)))
        heads[t] = [a_ + coeff * b_ for a_, b_ in zip(g1, g2)]
        heads[t + "/ratio"] = float(coeff * n2 / n1)
    # Prop. 3.1: d_z is the z-space image of d: (d_z)^T dz/dtheta_s = d
    via_z = torch.cat([g.reshape(-1) for g in torch.autograd.grad(z, shared, d_z)])
    torch.testing.assert_close(via_z, d, rtol=1e-9, atol=1e-12)
    return model, d, heads


@pytest.mark.parametrize(("lambda_", "extra_clip"), [(0.5, None), (50.0, 0.1)])
def test_lower_level_head_gradients_match_the_paper_by_hand(lambda_, extra_clip):
    _, d, heads = by_hand(lambda_, extra_clip)
    model, deltas = step_once("consmtl", lambda_=lambda_, extra_clip=extra_clip)
    by_param = dict(zip([id(p) for p in model.parameters()], deltas))
    shared_update = torch.cat([by_param[id(p)].reshape(-1) for p in model.shared_parameters()])
    torch.testing.assert_close(shared_update, d, rtol=1e-9, atol=1e-12)
    for t in model.tasks:
        for p, expected in zip(model.task_parameters(t), heads[t]):
            torch.testing.assert_close(by_param[id(p)], expected, rtol=1e-9, atol=1e-12)
        if extra_clip is not None:  # the reference's clip: ||grad L_extra|| <= 0.1 ||grad l_i||
            assert heads[t + "/ratio"] <= extra_clip + 1e-9
    if extra_clip is not None:
        assert any(abs(heads[t + "/ratio"] - extra_clip) < 1e-6 for t in model.tasks)  # the clip was active


def test_lambda_zero_is_the_upper_level_alone():
    consmtl, _ = step_once("consmtl", lambda_=0.0)
    upper, _ = step_once("exact+consmtl", head_weights="unit")
    torch.testing.assert_close(params_of(consmtl), params_of(upper), rtol=0, atol=1e-14)
    lower, _ = step_once("consmtl", lambda_=5.0, extra_clip=None)
    assert not torch.allclose(params_of(lower), params_of(upper))


def test_the_lower_level_never_backpropagates_through_the_encoder():
    model = TinyMTL(4)
    counter = Counter(model)
    x, y = batch(4)
    step = MTLStep(model, "consmtl", functools.partial(torch.optim.SGD, lr=0.1), lambda_=10.0, extra_clip=None)
    step.step(closure_for(x, y))
    assert counter.counts() == (1, 0, 4)  # the K backwards of the upper level's Jacobian, nothing more
    # and the shared update does not depend on lambda
    _, small = step_once("consmtl", lambda_=0.1, extra_clip=None)
    big_model, big = step_once("consmtl", lambda_=100.0, extra_clip=None)
    n_shared = len(list(big_model.shared_parameters()))
    for a, b in zip(small[:n_shared], big[:n_shared]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_consmtl_hparams_are_checked():
    with pytest.raises(ValueError, match="lambda_"):
        MTLStep(TinyMTL(2), "consmtl", torch.optim.SGD, lambda_=-1.0)
    with pytest.raises(ValueError, match="extra_clip"):
        MTLStep(TinyMTL(2), "consmtl", torch.optim.SGD, extra_clip=0.0)
    with pytest.raises(ValueError, match="unknown hyper-parameter 'lam'"):
        MTLStep(TinyMTL(2), "consmtl", torch.optim.SGD, lam=1.0)
