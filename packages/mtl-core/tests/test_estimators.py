"""Sharpness-aware estimators: reduction at rho = 0, perturbation geometry, F-MTL by hand, SPSA, costs, BN."""

from __future__ import annotations

import functools
import math

import numpy as np
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

from mtl_core import MTLStep, aggregators, estimators
from mtl_core.estimators import normalize_local, spsa_gradient
from mtl_core.step import frozen_norm_stats

SGD = functools.partial(torch.optim.SGD, lr=0.1)


def run(method, k=3, *, lr=0.1, steps=1, model=None, closure=None, **hp):
    model = TinyMTL(k) if model is None else model
    x, y = batch(k)
    step = MTLStep(model, method, functools.partial(torch.optim.SGD, lr=lr), **hp)
    for _ in range(steps):
        step.step(closure or closure_for(x, y))
    return model, step


def recording(x, y, log):
    base = closure_for(x, y)

    def closure(model):
        log.append([p.detach().clone() for p in model.parameters()])
        return base(model)

    return closure


def groups(model, tensors):
    """Split a list aligned with model.parameters() into (shared flat, [head flat per task])."""
    ids = [id(p) for p in model.parameters()]
    by_id = dict(zip(ids, tensors))
    shared = torch.cat([by_id[id(p)].reshape(-1) for p in model.shared_parameters()])
    heads = [torch.cat([by_id[id(p)].reshape(-1) for p in model.task_parameters(t)]) for t in model.tasks]
    return shared, heads


def exact_grads(model, x, y):
    """(shared rows [K, n], head grads [K flat], global shared grad, global head grads) at the current weights."""
    losses = closure_for(x, y)(model)
    shared = list(model.shared_parameters())
    rows = torch.stack(
        [torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, shared, retain_graph=True)]) for loss in losses]
    )
    heads = [
        torch.cat(
            [g.reshape(-1) for g in torch.autograd.grad(losses[i], list(model.task_parameters(t)), retain_graph=True)]
        )
        for i, t in enumerate(model.tasks)
    ]
    k = len(model.tasks)
    return rows, heads, rows.mean(0), [h / k for h in heads]


def unit(v):
    return v / v.norm()


# --------------------------------------------------------------------------------------- registry
def test_registry_and_bad_hparams():
    assert estimators.names() == ["exact", "features", "fmtl", "lsam", "sam", "samo"]
    for name, hp, message in [
        ("sam", {"rho": -1.0}, "rho"),
        ("lsam", {"adaptive": "yes"}, "adaptive"),
        ("samo", {"alpha": 1.5}, "alpha"),
        ("samo", {"mu": 0.0}, "mu"),
        ("samo", {"normalization": "batch"}, "normalization"),
        ("samo", {"seed": -1}, "seed"),
        ("fmtl", {"variant": "both"}, "variant"),
        ("fmtl", {"rho": 0.1}, "unknown hyper-parameter"),
    ]:
        with pytest.raises(ValueError, match=message):
            estimators.create(name, 3, **hp)
    with pytest.raises(ValueError, match="needs a gradient aggregator"):
        MTLStep(TinyMTL(2), "fmtl+ls", SGD, variant="second-aggre")
    with pytest.raises(ValueError, match="needs losses"):
        MTLStep(TinyMTL(2), "fmtl+moco", SGD, variant="each-aggre")


# ---------------------------------------------------------------------------------- rho = 0 reduces
@pytest.mark.parametrize(
    ("estimator", "hp", "combiner"),
    [
        ("sam", {"rho": 0.0}, "mgda"),
        ("sam", {"rho": 0.0}, "ls"),
        ("sam", {"rho": 0.0, "adaptive": True}, "nash_mtl"),
        ("lsam", {"rho": 0.0}, "pcgrad"),
        ("lsam", {"rho": 0.0}, "uw"),
        ("fmtl", {"rho_sh": 0.0, "rho_ns": 0.0}, "mgda"),
        ("fmtl", {"rho_sh": 0.0, "rho_ns": 0.0}, "pcgrad"),
        ("fmtl", {"rho_sh": 0.0, "rho_ns": 0.0, "variant": "direct"}, "fairgrad"),
        # the flat set is zero: no finite Nash-MTL / FairGrad aggregate, MGDA's min-norm point of {d, 0} is 0
        ("fmtl", {"rho_sh": 0.0, "rho_ns": 0.0}, "nash_mtl"),
        ("fmtl", {"rho_sh": 0.0, "rho_ns": 0.0}, "fairgrad"),
        ("fmtl", {"rho_sh": 0.0, "rho_ns": 0.0, "variant": "second-aggre"}, "mgda"),
        ("fmtl", {"rho_sh": 0.0, "rho_ns": 0.0, "variant": "each-aggre"}, "mgda"),
        ("samo", {"rho": 0.0}, "fairgrad"),
        ("samo", {"rho": 0.0}, "ls"),
    ],
)
def test_rho_zero_reduces_exactly_to_the_base_method(estimator, hp, combiner):
    # the perturbed forward at theta + 0 is the first forward again (BatchNorm uses the same batch
    # statistics), so every per-task gradient, and the update, is the exact method's
    sam_model, _ = run(f"{estimator}+{combiner}", steps=2, **hp)
    exact_model, _ = run(f"exact+{combiner}", steps=2, head_weights="unit")
    torch.testing.assert_close(params_of(sam_model), params_of(exact_model), rtol=0, atol=1e-13)


# ------------------------------------------------------------------------------ perturbation geometry
@pytest.mark.parametrize("adaptive", [False, True])
def test_gsam_perturbs_once_along_the_average_loss_gradient(adaptive):
    rho = 0.05
    x, y = batch()
    model = TinyMTL(3)
    log = []
    _, _, global_shared, global_heads = exact_grads(TinyMTL(3), x, y)
    run("sam+mgda", model=model, closure=recording(x, y, log), lr=0.0, rho=rho, adaptive=adaptive)
    assert len(log) == 2  # the step's forward at theta, one forward at theta + eps
    theta_sh, theta_heads = groups(model, log[0])
    pert_sh, pert_heads = groups(model, log[1])
    parts = [(pert_sh - theta_sh, global_shared, theta_sh)] + [
        (ph - th, g, th) for ph, th, g in zip(pert_heads, theta_heads, global_heads)
    ]
    for eps, g, theta in parts:
        if adaptive:  # ASAM: eps = rho T^2 g / ||T g|| with T = |theta|, so ||eps / T|| = rho
            moved = theta != 0  # BatchNorm's zero-initialised biases do not move under ASAM
            assert torch.equal(eps[~moved], torch.zeros_like(eps[~moved]))
            torch.testing.assert_close((eps[moved] / theta[moved].abs()).norm(), torch.tensor(rho, dtype=eps.dtype))
            torch.testing.assert_close(unit(eps), unit(theta**2 * g))
        else:
            torch.testing.assert_close(eps.norm(), torch.tensor(rho, dtype=eps.dtype))
            torch.testing.assert_close(unit(eps), unit(g))
    # lr = 0: the weights are restored bit for bit after the step
    assert torch.equal(params_of(model), torch.cat([t.reshape(-1) for t in log[0]]))


def test_lsam_perturbs_each_task_along_its_own_gradient_and_nothing_else():
    rho = 0.02
    x, y = batch()
    model = TinyMTL(3)
    log = []
    rows, heads, _, _ = exact_grads(TinyMTL(3), x, y)
    run("lsam+pcgrad", model=model, closure=recording(x, y, log), lr=0.0, rho=rho)
    assert len(log) == 4  # theta, then one perturbed point per task
    theta_sh, theta_heads = groups(model, log[0])
    for i in range(3):
        sh, hs = groups(model, log[1 + i])
        torch.testing.assert_close(sh - theta_sh, rho * unit(rows[i]))
        for j in range(3):
            if j == i:
                torch.testing.assert_close(hs[j] - theta_heads[j], rho * unit(heads[i]))
            else:
                assert torch.equal(hs[j], theta_heads[j])
    assert torch.equal(params_of(model), torch.cat([t.reshape(-1) for t in log[0]]))


def test_samo_spsa_pairs_are_symmetric_and_its_perturbation_has_norm_rho():
    rho, mu = 0.03, 1e-2
    x, y = batch(2)
    model = TinyMTL(2)
    log = []
    _, _, global_shared, global_heads = exact_grads(TinyMTL(2), x, y)
    run("samo+mgda", 2, model=model, closure=recording(x, y, log), lr=0.0, rho=rho, mu=mu)
    assert len(log) == 1 + 2 * 3  # theta; per task: theta + mu z, theta - mu z, theta + eps_i
    theta_sh, theta_heads = groups(model, log[0])
    for i in range(2):
        plus, minus, pert = (groups(model, log[1 + 3 * i + j]) for j in range(3))
        torch.testing.assert_close(plus[0] - theta_sh, -(minus[0] - theta_sh))
        assert (plus[0] - theta_sh).norm() / mu > 1  # a Gaussian direction of norm ~ sqrt(n)
        assert all(torch.equal(h, t) for h, t in zip(plus[1] + minus[1], theta_heads + theta_heads))
        eps_sh = pert[0] - theta_sh
        torch.testing.assert_close(eps_sh.norm(), torch.tensor(rho, dtype=eps_sh.dtype))
        assert torch.nn.functional.cosine_similarity(eps_sh, global_shared, dim=0) > 0.3  # alpha = 0.5 of it
        torch.testing.assert_close(pert[1][i] - theta_heads[i], rho * unit(global_heads[i]))
    assert torch.equal(params_of(model), torch.cat([t.reshape(-1) for t in log[0]]))


def test_samo_with_alpha_one_is_gsam():
    samo_model, _ = run("samo+pcgrad", rho=0.05, alpha=1.0, steps=2)
    sam_model, _ = run("sam+pcgrad", rho=0.05, steps=2)
    torch.testing.assert_close(params_of(samo_model), params_of(sam_model), rtol=0, atol=1e-13)


def test_lsam_is_fmtl_direct_with_equal_radii():
    lsam_model, _ = run("lsam+imtl", rho=0.05, steps=2)
    fmtl_model, _ = run("fmtl+imtl", rho_sh=0.05, rho_ns=0.05, variant="direct", steps=2)
    torch.testing.assert_close(params_of(lsam_model), params_of(fmtl_model), rtol=0, atol=1e-13)


# ----------------------------------------------------------------------------------------- F-MTL by hand
def sam_rows_by_hand(model, x, y, rho_sh, rho_ns):
    """seed 000 Alg. 1 lines 1-6, written out: (g_loss [K, n], g_flat [K, n], head SAM grads)."""
    rows, heads, _, _ = exact_grads(model, x, y)
    shared = list(model.shared_parameters())
    sam_rows, sam_heads = [], []
    for i, t in enumerate(model.tasks):
        head = list(model.task_parameters(t))
        params = shared + head
        eps = torch.cat([rho_sh * unit(rows[i]), rho_ns * unit(heads[i])])
        saved = [p.detach().clone() for p in params]
        with torch.no_grad():
            offset = 0
            for p in params:
                p += eps[offset : offset + p.numel()].view_as(p)
                offset += p.numel()
        with frozen_norm_stats(model):
            loss = closure_for(x, y)(model)[i]
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
        sam_rows.append(torch.cat([g.reshape(-1) for g in grads[: len(shared)]]))
        sam_heads.append(torch.cat([g.reshape(-1) for g in grads[len(shared) :]]))
    sam_rows = torch.stack(sam_rows)
    return rows, sam_rows - rows, sam_heads


@pytest.mark.parametrize("variant", ["decomposed", "direct", "second-aggre", "each-aggre"])
def test_fmtl_shared_update_matches_alg1_by_hand(variant):
    rho_sh, rho_ns = 0.05, 0.02
    x, y = batch()
    loss_rows, flat_rows, sam_heads = sam_rows_by_hand(TinyMTL(3), x, y, rho_sh, rho_ns)

    def mgda(g):
        return aggregators.create("mgda", g.shape[0])(g)

    if variant == "decomposed":  # Alg. 1 lines 7-8
        expected = mgda(loss_rows) + mgda(flat_rows)
    elif variant == "direct":  # Table 5
        expected = mgda(loss_rows + flat_rows)
    elif variant == "second-aggre":  # Table 6
        expected = mgda(torch.stack([mgda(loss_rows), mgda(flat_rows)]))
    else:  # Table 6, each-aggre
        expected = mgda(torch.stack([mgda(torch.stack([loss_rows[i], flat_rows[i]])) for i in range(3)]))
    model = TinyMTL(3)
    before_sh, before_heads = groups(model, [p.detach().clone() for p in model.parameters()])
    run("fmtl+mgda", model=model, lr=1.0, rho_sh=rho_sh, rho_ns=rho_ns, variant=variant)
    after_sh, after_heads = groups(model, [p.detach() for p in model.parameters()])
    torch.testing.assert_close(before_sh - after_sh, expected, rtol=1e-9, atol=1e-12)
    for i in range(3):  # heads: their own SAM gradients
        torch.testing.assert_close(before_heads[i] - after_heads[i], sam_heads[i], rtol=1e-9, atol=1e-12)
    assert flat_rows.norm() > 1e-3 * loss_rows.norm()  # the flat part is not negligible here


def fixed_point_by_least_squares(gram, power):
    """``w > 0`` with ``M w = w^(-power)``, by scipy's least squares in ``log w`` (independent of the Newton
    solver of mtl_core.solvers)."""
    from scipy.optimize import least_squares

    m = gram.double().numpy()
    sol = least_squares(lambda u: m @ np.exp(u) - np.exp(-power * u), np.zeros(len(m)), xtol=1e-15, ftol=1e-15)
    return torch.from_numpy(np.exp(sol.x))


@pytest.mark.parametrize(("combiner", "power", "cap"), [("nash_mtl", 1.0, 1.0), ("fairgrad", 0.5, None)])
def test_fmtl_with_scale_free_combiners_is_alg1_with_each_part_aggregated_on_its_own(combiner, power, cap):
    # Alg. 1 lines 7-8 with Nash-MTL (G G^T a = 1/a, its output capped to norm 1 as the reference clips) and
    # FairGrad at alpha = 2 (G G^T w = w^(-1/2)): each set solved on its own Gramian, each cap applied once,
    # to its own aggregate, and the two aggregates added
    rho_sh, rho_ns = 0.05, 0.02
    x, y = batch()
    loss_rows, flat_rows, sam_heads = sam_rows_by_hand(TinyMTL(3), x, y, rho_sh, rho_ns)

    def aggregate(g):
        d = fixed_point_by_least_squares(g @ g.T, power) @ g
        return d * min(1.0, cap / d.norm().item()) if cap is not None else d

    expected = aggregate(loss_rows) + aggregate(flat_rows)
    model = TinyMTL(3)
    before_sh, before_heads = groups(model, [p.detach().clone() for p in model.parameters()])
    run(f"fmtl+{combiner}", model=model, lr=1.0, rho_sh=rho_sh, rho_ns=rho_ns)
    after_sh, after_heads = groups(model, [p.detach() for p in model.parameters()])
    torch.testing.assert_close(before_sh - after_sh, expected, rtol=1e-7, atol=1e-10)
    for i in range(3):
        torch.testing.assert_close(before_heads[i] - after_heads[i], sam_heads[i], rtol=1e-9, atol=1e-12)
    # the flat set is much smaller than the loss set, yet its aggregate weighs as much (Nash-MTL: both capped
    # to norm 1) or more (FairGrad: the direction scales as c^(-1/3) with the gradients' scale c)
    assert flat_rows.norm() < 0.3 * loss_rows.norm()
    assert aggregate(flat_rows).norm() >= 0.99 * aggregate(loss_rows).norm()


# ------------------------------------------------------------------------------------------------ SAMO
def test_spsa_is_a_central_difference_of_the_directional_derivative():
    torch.manual_seed(3)
    params = [torch.randn(5, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)]

    def loss():
        return torch.sin(params[0]).sum() * (params[1] ** 2).sum() + params[0] @ params[1].sum(1).repeat(2)[:5]

    point = [p.clone().requires_grad_(True) for p in params]
    saved = [p.clone() for p in params]
    grad = torch.autograd.grad(
        torch.sin(point[0]).sum() * (point[1] ** 2).sum() + point[0] @ point[1].sum(1).repeat(2)[:5], point
    )
    flat_grad = torch.cat([g.reshape(-1) for g in grad])
    rng_before = torch.get_rng_state()
    generator = torch.Generator().manual_seed(0)
    for mu in (1e-2, 1e-3):
        coeff, z = spsa_gradient(loss, params, mu, generator)
        directional = flat_grad @ torch.cat([zp.reshape(-1) for zp in z])
        assert abs(float(coeff - directional)) < 50 * mu**2 * (1 + abs(float(directional)))
    assert all(torch.equal(p, s) for p, s in zip(params, saved))  # restored bit for bit
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global stream is untouched
    # in expectation c z = grad l (E[z z^T] = I)
    n, draws = flat_grad.numel(), 3000
    total = torch.zeros(n, dtype=torch.float64)
    for _ in range(draws):
        coeff, z = spsa_gradient(loss, params, 1e-3, generator)
        total += coeff * torch.cat([zp.reshape(-1) for zp in z])
    sigma = flat_grad.norm() * math.sqrt(2.0 / draws)  # std of each coordinate's mean, roughly
    assert (total / draws - flat_grad).abs().max() < 5 * sigma


def test_spsa_forwards_see_the_same_random_draws():
    # dropout-like noise must cancel between l(theta + mu z) and l(theta - mu z)
    params = [torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)]
    noisy = spsa_gradient(
        lambda: (params[0] ** 2).sum() + torch.rand(()), params, 1e-3, torch.Generator().manual_seed(1)
    )
    clean = spsa_gradient(lambda: (params[0] ** 2).sum(), params, 1e-3, torch.Generator().manual_seed(1))
    torch.testing.assert_close(noisy[0], clean[0], rtol=1e-9, atol=1e-9)


def test_local_normalisations():
    g = torch.Generator().manual_seed(0)
    local = [torch.randn(4, 3, generator=g), torch.randn(5, generator=g), torch.zeros(2)]
    ref = [torch.randn(4, 3, generator=g), 10 * torch.randn(5, generator=g), torch.randn(2, generator=g)]
    layer = normalize_local(local, ref, "layerwise")
    for lo, re, out in zip(local[:2], ref[:2], layer[:2]):  # eq. (4): each layer gets the global layer's norm
        torch.testing.assert_close(out.norm(), re.norm())
        torch.testing.assert_close(unit(out.reshape(-1)), unit(lo.reshape(-1)))
    assert torch.equal(layer[2], torch.zeros(2))
    glob = normalize_local(local, ref, "glob-norm")
    flat = torch.cat([t.reshape(-1) for t in glob])
    torch.testing.assert_close(flat.norm(), torch.cat([t.reshape(-1) for t in ref]).norm())
    torch.testing.assert_close(glob[0] / local[0], torch.full_like(local[0], float(glob[1][0] / local[1][0])))
    assert normalize_local(local, ref, "no-norm") is local


def test_samo_normalisation_ablations_change_the_update():
    updates = {}
    for mode in ("layerwise", "glob-norm", "no-norm"):
        model, _ = run("samo+ls", rho=0.05, alpha=0.2, normalization=mode)
        updates[mode] = params_of(model)
    assert not torch.allclose(updates["layerwise"], updates["glob-norm"])
    assert not torch.allclose(updates["layerwise"], updates["no-norm"])
    again, _ = run("samo+ls", rho=0.05, alpha=0.2)
    assert torch.equal(params_of(again), updates["layerwise"])  # seeded: the same SPSA directions every run
    other_seed, _ = run("samo+ls", rho=0.05, alpha=0.2, seed=1)
    assert not torch.equal(params_of(other_seed), updates["layerwise"])


# ------------------------------------------------------------------------------------------------ costs
def expected_cost(method: str, k: int) -> tuple[int, int, int]:
    """(forwards with graph, gradient-free forwards, backward passes through the encoder) of one step.

    seed 002 Table 3 over the exact estimator (1 forward, K backwards for an aggregator): G-SAM + C_b,
    L-SAM and F-MTL + K C_b, SAMO + C_b + 2K C_f; each per-task perturbation also needs its own forward.
    """
    estimator, _, combiner = method.partition("+")
    linear = combiner in ("ls", "uw")
    return {
        "exact": (1, 0, 1 if linear else k),
        "features": (1, 0, 1),
        "sam": (2, 0, 2 if linear else 1 + k),
        "lsam": (1 + k, 0, 2 * k),
        "fmtl": (1 + k, 0, 2 * k),
        "samo": (1 + k, 2 * k, 1 + k),
        "consmtl": (1, 0, k),
    }[estimator]


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize(
    "method",
    [
        "exact+mgda",
        "exact+ls",
        "features+mgda",
        "sam+mgda",
        "sam+ls",
        "lsam+mgda",
        "fmtl+mgda",
        "samo+mgda",
        "samo+ls",
        "consmtl",
    ],
)
def test_forward_and_backward_counts_match_the_cost_model(method, k):
    model = TinyMTL(k)
    counter = Counter(model)
    run(method, k, model=model)
    assert counter.counts() == expected_cost(method, k)


# ------------------------------------------------------------------------------ task-restricted closures
PER_TASK_PASSES = ["lsam+mgda", "fmtl+pcgrad", "fmtl+ls", "samo+mgda", "samo+ls"]


@pytest.mark.parametrize("method", [*PER_TASK_PASSES, "sam+mgda", "exact+nash_mtl", "consmtl", "features+mgda"])
def test_a_task_restricted_closure_gives_the_same_steps(method):
    x, y = batch(3)
    full, restricted = TinyMTL(3), TinyMTL(3)
    run(method, model=full, steps=2, closure=closure_for(x, y))
    run(method, model=restricted, steps=2, closure=restricted_closure_for(x, y))
    torch.testing.assert_close(params_of(restricted), params_of(full), rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("method", PER_TASK_PASSES)
def test_per_task_passes_run_one_head_with_a_task_restricted_closure(method, k):
    """Each head's forwards per step: 1 (first forward) + the passes of its own task (1, or SPSA's 2 + 1)."""
    model = TinyMTL(k)
    calls = dict.fromkeys(model.tasks, 0)
    for t in model.tasks:
        model.heads[t].register_forward_hook(lambda *_, t=t: calls.__setitem__(t, calls[t] + 1))
    log = []
    x, y = batch(k)
    run(method, k, model=model, closure=restricted_closure_for(x, y, log))
    own = 3 if method.startswith("samo") else 1
    assert calls == dict.fromkeys(model.tasks, 1 + own)
    assert log[0] is None and all(tasks is not None and len(tasks) == 1 for tasks in log[1:])


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("method", PER_TASK_PASSES)
def test_task_restricted_forward_and_backward_counts_match_the_cost_model(method, k):
    model = TinyMTL(k)
    counter = Counter(model)
    x, y = batch(k)
    run(method, k, model=model, closure=restricted_closure_for(x, y))
    assert counter.counts() == expected_cost(method, k)


def test_a_tasks_parameter_without_default_is_rejected():
    x, y = batch(3)
    base = restricted_closure_for(x, y)

    def closure(model, tasks):
        return base(model, tasks)

    with pytest.raises(ValueError, match="'tasks' parameter needs a default"):
        run("samo+mgda", closure=closure)


def test_a_restricted_closure_returning_other_tasks_is_rejected():
    x, y = batch(3)
    base = restricted_closure_for(x, y)

    def closure(model, tasks=None):
        return base(model)  # ignores the restriction: all three tasks

    with pytest.raises(ValueError, match=r"unknown \['t1', 't2'\]"):
        run("lsam+mgda", closure=closure)


# ------------------------------------------------------------------------------------------ BatchNorm
@pytest.mark.parametrize("method", ["sam+mgda", "lsam+ls", "fmtl+pcgrad", "samo+fairgrad", "consmtl", "features+mgda"])
def test_batchnorm_statistics_move_once_per_step(method):
    x, y = batch()
    model = TinyMTL(3)
    reference = TinyMTL(3)
    closure_for(x, y)(reference)  # one training-mode forward
    run(method, model=model, lr=0.0, closure=closure_for(x, y))
    bn, ref_bn = model.encoder[1], reference.encoder[1]
    assert int(bn.num_batches_tracked) == 1
    torch.testing.assert_close(bn.running_mean, ref_bn.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(bn.running_var, ref_bn.running_var, rtol=0, atol=0)


def test_frozen_norm_stats_keeps_cumulative_averages_and_restores_momentum():
    bn = torch.nn.BatchNorm1d(3, momentum=None)
    bn(torch.randn(8, 3))
    mean, tracked = bn.running_mean.clone(), bn.num_batches_tracked.clone()
    with frozen_norm_stats(torch.nn.Sequential(bn)):
        bn(torch.randn(8, 3) + 5)
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.num_batches_tracked, tracked)
    assert bn.momentum is None
