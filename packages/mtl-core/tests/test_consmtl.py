"""ConsMTL: upper level on the shared parameters, lower-level head loss -lambda <d l_i / d z, d_z> (seed 004)."""

from __future__ import annotations

import functools

import pytest
import torch
from test_step_models import Counter, TinyMTL, batch, closure_for, params_of, single_thread  # noqa: F401
from torch import nn

from mtl_core import MTLStep, aggregators

LR = 1.0


class TinyMTAN(TinyMTL):
    """MTAN's shape: a shared trunk plus per-task attention masks (shared parameters, as in MTAN), and
    ``encode`` returning one representation per task; head ``t_i`` reads ``z[i]`` only."""

    def __init__(self, k: int = 3, *, seed: int = 0, width: int = 4):
        super().__init__(k, seed=seed, width=width)
        torch.manual_seed(seed + 1)
        self.attention = nn.ModuleList([nn.Linear(6, 6) for _ in range(k)]).double()

    def encode(self, x):
        f = self.encoder(x)
        return tuple(f * torch.sigmoid(att(f)) for att in self.attention)

    def decode(self, z, tasks=None):
        return {
            t: head(z[i]).squeeze(-1) for i, (t, head) in enumerate(self.heads.items()) if tasks is None or t in tasks
        }

    def shared_parameters(self):
        return [*self.encoder.parameters(), *self.attention.parameters()]


MODELS = {"shared_z": TinyMTL, "per_task_z": TinyMTAN}


def step_once(method, model=None, **hp):
    model = TinyMTL(3) if model is None else model
    x, y = batch()
    before = [p.detach().clone() for p in model.parameters()]
    MTLStep(model, method, functools.partial(torch.optim.SGD, lr=LR), **hp).step(closure_for(x, y))
    return model, [(b - p.detach()) / LR for b, p in zip(before, model.parameters())]


def by_hand(model, lambda_, extra_clip):
    """Seed 004 Alg. 1 with eq. (5), Prop. 3.1 and eq. (7)-(8), written out with plain autograd.

    Shared z: ``delta_i = d l_i / d z``. Per-task z (a tuple, head i reading z[i]): ``delta_i = d l_i / d z_i``,
    ``d_z = sum_i a_i delta_i`` element-wise (jianke0604/MTLlib ConsMTL, "for nyuv2 and cityscapes").
    """
    x, y = batch()
    z = model.encode(x)
    per_task = isinstance(z, tuple)
    preds = model.decode(z)
    losses = torch.stack([((preds[t] - y[:, i]) ** 2).mean() for i, t in enumerate(model.tasks)])
    shared = list(model.shared_parameters())
    rows = torch.stack(
        [torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, shared, retain_graph=True)]) for loss in losses]
    )
    upper = aggregators.create("consmtl", 3)
    d = upper(rows)
    a = upper.last_weights
    own_z = list(z) if per_task else [z] * 3
    deltas = [torch.autograd.grad(loss, zi, retain_graph=True, create_graph=True)[0] for loss, zi in zip(losses, own_z)]
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
    if not per_task:  # Prop. 3.1: d_z is the z-space image of d: (d_z)^T dz/dtheta_s = d
        via_z = torch.cat([g.reshape(-1) for g in torch.autograd.grad(z, shared, d_z)])
        torch.testing.assert_close(via_z, d, rtol=1e-9, atol=1e-12)
    return d, heads


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize(("lambda_", "extra_clip"), [(0.5, None), (50.0, 0.1)])
def test_lower_level_head_gradients_match_the_paper_by_hand(kind, lambda_, extra_clip):
    d, heads = by_hand(MODELS[kind](3), lambda_, extra_clip)
    model, deltas = step_once("consmtl", MODELS[kind](3), lambda_=lambda_, extra_clip=extra_clip)
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


def test_per_task_representations_of_different_shapes_fall_back_to_the_shared_form():
    class Ragged(TinyMTAN):
        def encode(self, x):
            z = super().encode(x)
            return (z[0], z[1], torch.cat([z[2], z[2]], dim=-1))

        def decode(self, z, tasks=None):
            z = (*z[:2], z[2][..., :6])
            return super().decode(z, tasks)

    with pytest.warns(RuntimeWarning, match="different shapes"):
        step_once("consmtl", Ragged(3))


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
