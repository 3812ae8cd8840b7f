"""The training step: method parsing, parameter groups, combiners, heads, optimisers, hooks, state."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from test_step_models import (  # noqa: F401
    Counter,
    TinyMTL,
    batch,
    closure_for,
    params_of,
    restricted_closure_for,
    single_thread,
)
from torch import nn

import mtl_core
from mtl_core import MTLStep, aggregators, weightings
from mtl_core.step import frozen_norm_stats, method_hparams, parse_method

SGD = functools.partial(torch.optim.SGD, lr=0.1)


def shared_flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.shared_parameters()])


def manual_rows(model, losses):
    shared = list(model.shared_parameters())
    return torch.stack(
        [torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, shared, retain_graph=True)]) for loss in losses]
    )


# ------------------------------------------------------------------------------------------------ parsing
def test_method_strings_parse_into_their_components():
    assert parse_method("ls").kind == "weighting"
    m = parse_method("samo+fairgrad", {"rho": 0.01, "samo.alpha": 0.3, "fairgrad.alpha": 2.0})
    assert (m.kind, m.estimator, m.combiner) == ("gradient", "samo", "fairgrad")
    assert m.estimator_hparams == {"rho": 0.01, "alpha": 0.3}
    assert m.combiner_hparams == {"alpha": 2.0}
    m = parse_method("exact+cagrad", {"c": 0.5})
    assert m.combiner_hparams == {"c": 0.5} and m.estimator_hparams == {}
    m = parse_method("consmtl", {"lambda_": 50.0})
    assert (m.kind, m.estimator, m.combiner, m.lower_hparams) == (
        "consmtl",
        "exact",
        "consmtl",
        {"lambda_": 50.0},
    )
    assert method_hparams("fmtl+pcgrad")["fmtl"]["variant"] == "decomposed"
    assert set(method_hparams("consmtl")["consmtl"]) == {"lambda_", "extra_clip"}


@pytest.mark.parametrize(
    ("method", "hparams", "message"),
    [
        ("pcgrad", {}, r"exact\+pcgrad"),
        ("nope", {}, "unknown method 'nope'"),
        ("adam+pcgrad", {}, "unknown estimator 'adam'"),
        ("sam+nope", {}, "unknown combiner 'nope'"),
        ("", {}, "non-empty"),
        ("samo+fairgrad", {"alpha": 0.5}, "ambiguous"),
        ("samo+fairgrad", {"rhoo": 0.5}, "unknown hyper-parameter 'rhoo'"),
        ("sam+mgda", {"mgda.rho": 0.5}, r"unknown hyper-parameter .mgda\.rho."),
        ("ls", {"rho": 0.1}, "unknown hyper-parameter 'rho'"),
    ],
)
def test_bad_methods_and_hparams_raise_naming_the_valid_choices(method, hparams, message):
    with pytest.raises(ValueError, match=message):
        parse_method(method, hparams)


def test_step_reports_bad_options_with_the_valid_ones():
    model = TinyMTL(2)
    with pytest.raises(ValueError, match="step options"):
        MTLStep(model, "sam+mgda", SGD, max_grad_nrom=1.0)
    with pytest.raises(ValueError, match="rho must be a finite number >= 0"):
        MTLStep(model, "sam+mgda", SGD, rho=-1.0)
    with pytest.raises(ValueError, match="head_weights"):
        MTLStep(model, "ls", SGD, head_weights="some")
    with pytest.raises(ValueError, match="jacobian_mode"):
        MTLStep(model, "exact+mgda", SGD, jacobian_mode="fast")
    with pytest.raises(ValueError, match="max_grad_norm"):
        MTLStep(model, "ls", SGD, max_grad_norm=0)
    with pytest.raises(ValueError, match="optimizer is required"):
        MTLStep(model, "ls")
    with pytest.raises(ValueError, match="per_task_optimizers=True needs an optimizer factory"):
        MTLStep(model, "ls", torch.optim.SGD(model.parameters(), lr=0.1), per_task_optimizers=True)
    with pytest.raises(ValueError, match="gradient aggregator"):
        MTLStep(model, "exact+pcgrad", SGD, per_task_optimizers=True)
    with pytest.raises(ValueError, match="features"):
        MTLStep(model, "features+ls", SGD, per_task_optimizers=True)
    with pytest.raises(ValueError, match="exact\\+uw"):
        MTLStep(model, "uw", SGD, head_weights="unit")
    with pytest.raises(ValueError, match="head_weights='combiner' is undefined"):
        MTLStep(model, "fmtl+mgda", SGD, head_weights="combiner")


# ------------------------------------------------------------------------------------- model protocol
class NoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)
        self.b = nn.Linear(2, 1)
        self.tasks = ["x", "y"]

    def encode(self, x):
        return self.a(x)

    def decode(self, z):
        return {"x": self.b(z), "y": self.b(z)}

    def shared_parameters(self):
        return self.a.parameters()

    def task_parameters(self, task):
        return self.b.parameters() if task == "x" else iter(())


def test_parameter_groups_are_checked():
    with pytest.raises(ValueError, match="lacks the protocol method"):
        MTLStep(nn.Linear(2, 2), "ls", SGD, tasks=["a"])
    with pytest.raises(ValueError, match="pass tasks="):
        model = TinyMTL(2)
        del model.tasks
        MTLStep(model, "ls", SGD)
    model = NoHeads()
    model.shared_parameters = lambda: [*model.a.parameters(), model.b.weight]  # b.weight: shared and head
    with pytest.raises(ValueError, match="in both shared and task 'x'"):
        MTLStep(model, "ls", SGD)
    model = NoHeads()
    model.task_parameters = lambda task: iter(())  # b is in no group
    with pytest.raises(ValueError, match=r"\['b.weight', 'b.bias'\] are neither"):
        MTLStep(model, "ls", SGD)
    with pytest.raises(ValueError, match="distinct"):
        MTLStep(TinyMTL(2), "ls", SGD, tasks=["t0", "t0"])
    # a task without a head is fine; frozen parameters are ignored
    model = NoHeads()
    model.b.bias.requires_grad_(False)
    step = MTLStep(model, "exact+mgda", SGD)
    assert step.groups.heads[1] == () and len(step.groups.heads[0]) == 1


def test_closure_outputs_are_validated():
    model = TinyMTL(2)
    x, y = batch(2)
    step = MTLStep(model, "ls", SGD)
    good = closure_for(x, y)
    # a {task: loss} mapping and a list of scalars are accepted and ordered by task
    out = step.step(lambda m: dict(reversed(list(zip(m.tasks, good(m))))))
    assert out.losses.shape == (2,)
    step.step(lambda m: list(good(m)))
    with pytest.raises(ValueError, match="Tensor\\[2\\]"):
        step.step(lambda m: good(m)[:1])
    with pytest.raises(ValueError, match="missing \\['t1'\\]"):
        step.step(lambda m: {"t0": good(m)[0]})
    with pytest.raises(ValueError, match="non-finite loss for task\\(s\\) \\['t1'\\]"):
        step.step(lambda m: good(m) * torch.tensor([1.0, float("nan")], dtype=torch.float64))
    with pytest.raises(ValueError, match="closure"):
        step.step(x)
    features = MTLStep(TinyMTL(2), "features+mgda", SGD)
    with pytest.raises(ValueError, match="exactly once"):
        features.step(lambda m: torch.stack([((m.encoder(x).sum(1) - y[:, i]) ** 2).mean() for i in range(2)]))


# ----------------------------------------------------------------------------------------- directions
def test_plain_weighting_is_one_backward_of_its_loss():
    model, ref = TinyMTL(3), TinyMTL(3)
    x, y = batch()
    MTLStep(model, "ls", SGD).step(closure_for(x, y))
    closure_for(x, y)(ref).sum().backward()
    with torch.no_grad():
        for p in ref.parameters():
            p -= 0.1 * p.grad
    torch.testing.assert_close(params_of(model), params_of(ref), rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", ["ls", "uw", "gls", "dwa", "imtl_l", "uw_o"])
def test_exact_with_a_weighting_equals_the_plain_weighting(name):
    x, y = batch()
    models = [TinyMTL(3), TinyMTL(3)]
    steps = [MTLStep(models[0], name, SGD), MTLStep(models[1], f"exact+{name}", SGD)]
    for _ in range(2):
        for step in steps:
            step.step(closure_for(x, y))
    torch.testing.assert_close(params_of(models[0]), params_of(models[1]), rtol=1e-10, atol=1e-12)
    for a, b in zip(steps[0].combiner.parameters(), steps[1].combiner.parameters()):  # UW's log-variances
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["mgda", "pcgrad", "nash_mtl", "imtl", "graddrop"])
def test_exact_gives_the_aggregated_jacobian_to_shared_and_weighted_own_gradients_to_heads(name):
    x, y = batch()
    model = TinyMTL(3)
    before = shared_flat(model)
    reference = TinyMTL(3)
    losses = closure_for(x, y)(reference)
    rows = manual_rows(reference, losses)
    agg = aggregators.create(name, 3)
    direction = agg(rows, losses.detach())
    step = MTLStep(model, f"exact+{name}", torch.optim.SGD(model.parameters(), lr=1.0))
    result = step.step(closure_for(x, y))
    torch.testing.assert_close(before - shared_flat(model), direction, rtol=1e-9, atol=1e-12)
    # heads: w_i * grad of their own loss when the aggregator defines weights, else the plain gradient
    weights = agg.last_weights if agg.last_weights is not None else torch.ones(3, dtype=torch.float64)
    if agg.last_weights is not None:
        torch.testing.assert_close(result.weights, agg.last_weights)
    for i, t in enumerate(model.tasks):
        grads = torch.autograd.grad(losses[i], list(reference.heads[t].parameters()), retain_graph=True)
        for p_new, p_old, g in zip(model.heads[t].parameters(), reference.heads[t].parameters(), grads):
            torch.testing.assert_close(p_old.detach() - p_new.detach(), weights[i] * g, rtol=1e-9, atol=1e-12)


def test_unit_head_weights_give_the_plain_head_gradients():
    x, y = batch()
    model, reference = TinyMTL(3), TinyMTL(3)
    MTLStep(model, "exact+nash_mtl", torch.optim.SGD(model.parameters(), lr=1.0), head_weights="unit").step(
        closure_for(x, y)
    )
    losses = closure_for(x, y)(reference)
    for i, t in enumerate(model.tasks):
        grads = torch.autograd.grad(losses[i], list(reference.heads[t].parameters()), retain_graph=True)
        for p_new, p_old, g in zip(model.heads[t].parameters(), reference.heads[t].parameters(), grads):
            torch.testing.assert_close(p_old.detach() - p_new.detach(), g)


@pytest.mark.parametrize("name", ["mgda", "aligned_mtl", "ls"])
def test_features_mode_backpropagates_the_combined_z_direction_through_the_encoder(name):
    x, y = batch()
    model, reference = TinyMTL(3), TinyMTL(3)
    counter = Counter(model)
    before = shared_flat(model)
    z = reference.encode(x)
    losses = torch.stack([((reference.decode(z)[t] - y[:, i]) ** 2).mean() for i, t in enumerate(reference.tasks)])
    z_rows = torch.stack([torch.autograd.grad(loss, z, retain_graph=True)[0].reshape(-1) for loss in losses])
    if name == "ls":
        d_z = z_rows.sum(0)
    else:
        d_z = aggregators.create(name, 3)(z_rows, losses.detach())
    shared = list(reference.shared_parameters())
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(z, shared, d_z.view_as(z))])
    MTLStep(model, f"features+{name}", torch.optim.SGD(model.parameters(), lr=1.0)).step(closure_for(x, y))
    torch.testing.assert_close(before - shared_flat(model), expected, rtol=1e-9, atol=1e-12)
    assert counter.counts() == (1, 0, 1)  # one forward, one backward through the encoder: the cost of LS


class SharedAfterZ(TinyMTL):
    """Every head reads tanh(z): a node above z that all tasks share and that saves its output."""

    def decode(self, z, tasks=None):
        return super().decode(torch.tanh(z), tasks)


@pytest.mark.parametrize("model_cls", [TinyMTL, SharedAfterZ])
def test_features_mode_with_one_root_per_task_frees_separate_heads_and_keeps_shared_nodes(model_cls):
    """A {task: loss} closure gives one graph root per task: each head's backward frees its head when the
    heads are separate above z, and keeps the graph when they share a node (or the next backward would fail)."""
    x, y = batch()
    model, reference = model_cls(3), model_cls(3)
    before = shared_flat(model)
    z = reference.encode(x)
    preds = reference.decode(z)
    losses = torch.stack([((preds[t] - y[:, i]) ** 2).mean() for i, t in enumerate(reference.tasks)])
    z_rows = torch.stack([torch.autograd.grad(loss, z, retain_graph=True)[0].reshape(-1) for loss in losses])
    d_z = aggregators.create("mgda", 3)(z_rows, losses.detach())
    expected = torch.cat(
        [g.reshape(-1) for g in torch.autograd.grad(z, list(reference.shared_parameters()), d_z.view_as(z))]
    )
    step = MTLStep(model, "features+mgda", torch.optim.SGD(model.parameters(), lr=1.0))
    step.step(restricted_closure_for(x, y))
    torch.testing.assert_close(before - shared_flat(model), expected, rtol=1e-9, atol=1e-12)
    step.step(restricted_closure_for(x, y))  # and again: nothing of the first step's graph is needed


def test_features_mode_with_a_tuple_z_and_a_dict_input():
    class TwoStreams(nn.Module):
        """Multi-input model: encode takes {task: x} and returns the tuple of per-task features."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.tasks = ["a", "b"]
            self.enc = nn.Linear(3, 4)
            self.heads = nn.ModuleDict({t: nn.Linear(4, 1) for t in self.tasks})

        def encode(self, x):
            return tuple(torch.tanh(self.enc(x[t])) for t in self.tasks)

        def decode(self, z):
            return {t: self.heads[t](zt).squeeze(-1) for t, zt in zip(self.tasks, z)}

        def forward(self, x):
            return self.decode(self.encode(x))

        def shared_parameters(self):
            return self.enc.parameters()

        def task_parameters(self, task):
            return self.heads[task].parameters()

    g = torch.Generator().manual_seed(0)
    x = {"a": torch.randn(5, 3, generator=g), "b": torch.randn(7, 3, generator=g)}
    y = {"a": torch.randn(5, generator=g), "b": torch.randn(7, generator=g)}

    def closure(m):
        preds = m(x)
        return {t: ((preds[t] - y[t]) ** 2).mean() for t in m.tasks}

    for method in ("features+mgda", "consmtl", "samo+ls"):
        model = TwoStreams()
        before = params_of(model)
        result = MTLStep(model, method, SGD).step(closure)
        assert torch.isfinite(params_of(model)).all() and not torch.equal(before, params_of(model))
        assert result.losses.shape == (2,)


def test_graph_batches_pass_through_the_closure_untouched():
    pyg = pytest.importorskip("torch_geometric")
    from torch_geometric.data import Batch, Data
    from torch_geometric.nn import GCNConv, global_mean_pool

    class TinyGNN(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.tasks = ["u", "v"]
            self.conv = GCNConv(3, 8)
            self.heads = nn.ModuleDict({t: nn.Linear(8, 1) for t in self.tasks})

        def encode(self, data):
            return global_mean_pool(torch.relu(self.conv(data.x, data.edge_index)), data.batch)

        def decode(self, z):
            return {t: h(z).squeeze(-1) for t, h in self.heads.items()}

        def forward(self, data):
            return self.decode(self.encode(data))

        def shared_parameters(self):
            return self.conv.parameters()

        def task_parameters(self, task):
            return self.heads[task].parameters()

    g = torch.Generator().manual_seed(0)
    graphs = [
        Data(
            x=torch.randn(4, 3, generator=g),
            edge_index=torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]]),
            y=torch.randn(1, 2),
        )
        for _ in range(3)
    ]
    data = Batch.from_data_list(graphs)
    assert pyg is not None

    def closure(m):
        preds = m(data)
        return torch.stack([((preds[t] - data.y[:, i]) ** 2).mean() for i, t in enumerate(m.tasks)])

    for method in (
        "ls",
        "exact+nash_mtl",
        "features+mgda",
        "sam+pcgrad",
        "fmtl+mgda",
        "samo+fairgrad",
        "consmtl",
    ):
        model = TinyGNN()
        before = params_of(model)
        MTLStep(model, method, SGD).step(closure)
        assert torch.isfinite(params_of(model)).all() and not torch.equal(before, params_of(model)), method


# --------------------------------------------------------------------------------------- optimisers
def test_one_adam_per_task_makes_the_whole_network_loss_scale_invariant():
    # seed 001 A1.3: with a separate Adam per task, scaling a loss cancels in every parameter's update;
    # a single Adam is invariant only for the heads (eq. (21)-(23))
    x, y = batch(2)
    adam = functools.partial(torch.optim.Adam, lr=1e-2, eps=1e-30)

    def train(scales, per_task):
        model = TinyMTL(2, bn=False)
        step = MTLStep(model, "ls", adam, per_task_optimizers=per_task)
        for _ in range(3):
            step.step(closure_for(x, y, scales))
        return params_of(model)

    base, scaled = train((1.0, 1.0), True), train((10.0, 0.1), True)
    torch.testing.assert_close(base, scaled, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(train((1.0, 1.0), False), train((10.0, 0.1), False), atol=1e-6)


def test_per_task_sgd_steps_each_task_with_its_own_weighted_gradient():
    # with SGD, one optimiser per task sums the per-task updates: the same as one SGD on sum_i w_i L_i
    x, y = batch(3)
    single, per_task = TinyMTL(3, bn=False), TinyMTL(3, bn=False)
    MTLStep(single, "exact+ls", SGD, task_weights=[1.0, 2.0, 0.5]).step(closure_for(x, y))
    step = MTLStep(per_task, "ls", SGD, task_weights=[1.0, 2.0, 0.5], per_task_optimizers=True)
    assert len(step.optimizers) == 3
    step.step(closure_for(x, y))
    torch.testing.assert_close(params_of(single), params_of(per_task), rtol=1e-10, atol=1e-12)


def test_learnable_weighting_parameters_join_a_given_optimizer():
    model = TinyMTL(2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = MTLStep(model, "exact+uw", opt)
    assert len(opt.param_groups) == 2
    x, y = batch(2)
    step.step(closure_for(x, y))
    log_vars = step.combiner.log_vars.detach()
    losses = closure_for(x, y)(TinyMTL(2)).detach()
    # d/ds_i [1/2 exp(-s_i) L_i + 1/2 s_i] at s = 0 is (1 - L_i) / 2
    torch.testing.assert_close(log_vars, (-0.1 * (1 - losses) / 2).float())


def test_gradient_clipping_caps_the_update_norm():
    x, y = batch()
    model, reference = TinyMTL(3), TinyMTL(3)
    before = params_of(model)
    MTLStep(model, "exact+pcgrad", torch.optim.SGD(model.parameters(), lr=1.0), max_grad_norm=1e-3).step(
        closure_for(x, y)
    )
    MTLStep(reference, "exact+pcgrad", torch.optim.SGD(reference.parameters(), lr=1.0)).step(closure_for(x, y))
    clipped, full = before - params_of(model), before - params_of(reference)
    torch.testing.assert_close(clipped.norm(), torch.tensor(1e-3, dtype=torch.float64), rtol=1e-5, atol=0)
    torch.testing.assert_close(clipped / clipped.norm(), full / full.norm())


# -------------------------------------------------------------------------------------------- hooks
def test_nash_mtl_reuses_its_weights_without_a_jacobian():
    x, y = batch()
    model = TinyMTL(3)
    counter = Counter(model)
    step = MTLStep(model, "exact+nash_mtl", torch.optim.SGD(model.parameters(), lr=1.0), update_weights_every=2)
    first = step.step(closure_for(x, y))
    assert counter.backwards == 3
    reference = TinyMTL(3)
    reference.load_state_dict(model.state_dict())
    losses = closure_for(x, y)(reference)
    alpha = step.combiner.alpha.clone()  # the Nash solution of step 1, before its max_norm clip
    assert not torch.allclose(alpha, first.weights)  # step 1 was clipped: the reported weights include the clip
    direction = alpha @ manual_rows(reference, losses)
    factor = min(1.0, 1.0 / float(direction.norm()))  # Nash-MTL's max_norm = 1
    before = shared_flat(model)
    second = step.step(closure_for(x, y))
    assert counter.backwards == 4  # one backward of sum_i w_i L_i instead of K
    torch.testing.assert_close(second.weights, alpha * factor)
    direction = direction * factor
    # the heads get the clipped weights too, as on a step that computes the Jacobian
    head_before = [p.detach().clone() for p in reference.heads["t1"].parameters()]
    head_grads = torch.autograd.grad(losses[1], list(reference.heads["t1"].parameters()), retain_graph=True)
    for p, b, g in zip(model.heads["t1"].parameters(), head_before, head_grads):
        torch.testing.assert_close(b - p.detach(), second.weights[1] * g, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(before - shared_flat(model), direction, rtol=1e-9, atol=1e-12)
    step.step(closure_for(x, y))
    assert counter.backwards == 7  # the third step recomputes the weights


def test_famo_updates_its_logits_with_the_losses_after_the_step():
    x, y = batch()
    model = TinyMTL(3)
    counter = Counter(model)
    bn = model.encoder[1]
    step = MTLStep(model, "famo", SGD)
    step.step(closure_for(x, y))
    assert counter.counts() == (1, 1, 1)  # one extra gradient-free forward on the same batch
    assert int(bn.num_batches_tracked) == 1
    # the same update by hand
    reference, ref_model = weightings.create("famo", 3), TinyMTL(3)
    opt = torch.optim.SGD(ref_model.parameters(), lr=0.1)
    reference.loss(closure_for(x, y)(ref_model)).backward()
    opt.step()
    with torch.no_grad(), frozen_norm_stats(ref_model):
        reference.after_step(closure_for(x, y)(ref_model))
    torch.testing.assert_close(step.combiner.logits, reference.logits)
    assert not torch.equal(step.combiner.logits, torch.zeros(3))
    torch.testing.assert_close(bn.running_mean, ref_model.encoder[1].running_mean)


def test_end_epoch_reaches_the_combiner_and_the_estimators_extra_combiners():
    x, y = batch()
    step = MTLStep(TinyMTL(3), "dwa", SGD)
    for _ in range(3):
        step.step(closure_for(x, y))
        step.end_epoch()
    assert int(step.combiner.epochs_done) == 3
    seen = []
    step = MTLStep(TinyMTL(3), "fmtl+mgda", SGD)
    step.estimator.flat_combiner.end_epoch = lambda: seen.append("flat")
    step.end_epoch()
    assert seen == ["flat"]


def test_state_dict_round_trips_combiner_estimator_and_optimizers():
    x, y = batch()
    adam = functools.partial(torch.optim.Adam, lr=1e-2)

    def run(method, **hp):
        model = TinyMTL(3)
        step = MTLStep(model, method, adam, **hp)
        for _ in range(2):
            step.step(closure_for(x, y))
        saved_model, saved_step = copy.deepcopy(model.state_dict()), copy.deepcopy(step.state_dict())
        for _ in range(2):
            step.step(closure_for(x, y))
        resumed_model = TinyMTL(3)
        resumed_model.load_state_dict(saved_model)
        resumed = MTLStep(resumed_model, method, adam, **hp)
        resumed.load_state_dict(saved_step)
        assert resumed.step_count == 2
        for _ in range(2):
            resumed.step(closure_for(x, y))
        torch.testing.assert_close(params_of(model), params_of(resumed_model), rtol=0, atol=0)
        return step

    run("samo+moco")  # SAMO's SPSA generator, MoCo's tracked gradients
    run("fmtl+gradvac", variant="each-aggre")  # one GradVac state per (loss, flat) pair
    run("exact+nash_mtl", update_weights_every=3)
    run("uw")
    step = MTLStep(TinyMTL(3), "samo+moco", adam)
    with pytest.raises(ValueError, match="does not fit"):
        step.load_state_dict({**step.state_dict(), "method": "sam+moco"})
    with pytest.raises(ValueError, match="not an MTLStep state"):
        step.load_state_dict({"combiner": {}})


def test_public_names():
    assert mtl_core.estimators.names() == ["exact", "features", "fmtl", "lsam", "sam", "samo"]
    assert mtl_core.MTLStep is MTLStep
    with pytest.raises(ValueError, match="unknown estimator 'nope'"):
        mtl_core.estimators.create("nope", 2)


def test_per_task_backwards_run_through_their_own_head_only():
    # with the losses returned as separate scalars, task i's backward never enters another task's head
    # (from a stacked tensor, torch.stack's backward would send zero gradients through every head)
    x, y = batch(3)
    stacked = closure_for(x, y)

    def as_dict(model):
        return dict(zip(model.tasks, stacked(model).unbind()))  # still stacked: the slow path

    def separate(model):
        preds = model(x)
        return {t: ((preds[t] - y[:, i]) ** 2).mean() for i, t in enumerate(model.tasks)}

    def count_head_passes(model):
        """calls[i]: backward passes through head i's output (any pass through the head reaches it)."""
        calls = [0] * len(model.tasks)

        def on_forward(module, args, out, i):
            if out.requires_grad:
                out.register_hook(lambda grad: calls.__setitem__(i, calls[i] + 1))

        for i, t in enumerate(model.tasks):
            model.heads[t][-1].register_forward_hook(functools.partial(on_forward, i=i))
        return calls

    def head_passes(method, closure):
        model = TinyMTL(3)
        calls = count_head_passes(model)
        MTLStep(model, method, SGD).step(closure)
        return calls, params_of(model)

    fast, fast_params = head_passes("lsam+mgda", separate)
    slow, slow_params = head_passes("lsam+mgda", as_dict)
    # lsam: one pass per task at theta (Jacobian fused with the heads) and one at its perturbed point
    assert fast == [2, 2, 2]
    assert slow == [6, 6, 6]
    torch.testing.assert_close(fast_params, slow_params, rtol=1e-12, atol=1e-14)
    assert head_passes("features+mgda", separate)[0] == [1, 1, 1]
    # known weights: one backward of sum_i w_i L_i also gives the (weighted) heads, like LS
    assert head_passes("exact+ls", separate)[0] == [1, 1, 1]
    assert head_passes("features+uw", separate)[0] == [1, 1, 1]
    assert head_passes("sam+ls", separate)[0] == [2, 2, 2]  # the ascent gradient, then the perturbed point
    assert head_passes("sam+uw", separate)[0] == [3, 3, 3]  # unit heads with weights != 1: one more pass
    assert head_passes("consmtl", separate)[0] == [2, 2, 2]  # + the lower level's double backward

    # mtl_core.jacobian itself: a list of losses loops over the task roots
    model = TinyMTL(3)
    calls = count_head_passes(model)
    losses = list(separate(model).values())
    rows = mtl_core.jacobian(losses, list(model.shared_parameters()), mode="loop", retain_graph=True)
    assert calls == [1, 1, 1]
    torch.testing.assert_close(
        rows, mtl_core.jacobian(torch.stack(losses), list(model.shared_parameters()), mode="loop")
    )


def test_features_mode_ignores_parts_of_z_without_grad():
    class WithMask(TinyMTL):
        def encode(self, x):
            z = self.encoder(x)
            return z, torch.ones(z.shape[0], dtype=torch.bool)

        def decode(self, zm):
            z, mask = zm
            return {t: head(z[mask]).squeeze(-1) for t, head in self.heads.items()}

    x, y = batch()
    model, reference = WithMask(3), TinyMTL(3)
    MTLStep(model, "features+mgda", torch.optim.SGD(model.parameters(), lr=1.0)).step(closure_for(x, y))
    MTLStep(reference, "features+mgda", torch.optim.SGD(reference.parameters(), lr=1.0)).step(closure_for(x, y))
    torch.testing.assert_close(params_of(model), params_of(reference), rtol=0, atol=1e-14)
    bad = WithMask(3)
    bad.encode = lambda x: {"z": bad.encoder(x)}
    bad.decode = lambda zm: TinyMTL.decode(bad, zm["z"])
    with pytest.raises(ValueError, match="tensor or a tuple of tensors"):
        MTLStep(bad, "features+mgda", SGD).step(closure_for(x, y))
