"""``MTLStep.step(closure, rows=True)``: the exact per-task gradients of the shared parameters at the weights
before the update, from the step's own forward (what the pipeline's gradient diagnostics read)."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from test_step_models import TinyMTL, batch, restricted_closure_for, single_thread  # noqa: F401

from mtl_core import MTLStep

ADAM = functools.partial(torch.optim.Adam, lr=1e-2)


@pytest.mark.parametrize("method", ["ls", "exact+pcgrad", "features+mgda", "sam+ls", "exact+nash_mtl"])
def test_rows_are_the_jacobian_before_the_update_and_change_nothing(method: str) -> None:
    x, y = batch()
    model = TinyMTL(bn=True, dropout=0.3)
    twin = copy.deepcopy(model)
    # independent: the Jacobian of the same batch at the same weights by K autograd.grad calls, with dropout's
    # draw and BatchNorm's batch statistics reproduced (same RNG state, a copy of the model in train mode)
    probe = copy.deepcopy(model)
    torch.manual_seed(7)
    preds = probe(x)
    shared = list(probe.shared_parameters())
    losses = [((preds[t] - y[:, i]) ** 2).mean() for i, t in enumerate(probe.tasks)]
    grads = [torch.autograd.grad(loss, shared, retain_graph=True) for loss in losses]
    expected = torch.stack([torch.cat([g.reshape(-1) for g in row]) for row in grads])
    torch.manual_seed(7)
    with_rows = MTLStep(model, method, ADAM).step(restricted_closure_for(x, y), rows=True)
    torch.manual_seed(7)
    without = MTLStep(twin, method, ADAM).step(restricted_closure_for(x, y))
    assert without.rows is None
    torch.testing.assert_close(with_rows.rows, expected, rtol=1e-12, atol=1e-12)
    # the update, the BatchNorm statistics and the losses are those of a step that did not ask for rows
    assert torch.equal(with_rows.losses, without.losses)
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), name
