"""Property tests: each aggregator satisfies the defining equation of its paper on many Jacobians."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from jacobians import FAMILIES, cases, make
from scipy.optimize import minimize

from mtl_core import aggregators
from mtl_core.aggregators import alignment_matrix

CASES = cases()


def gram(g: torch.Tensor) -> np.ndarray:
    g = g.double()
    return (g @ g.T).numpy()


def losses_for(k: int) -> torch.Tensor:
    return torch.linspace(0.5, 2.0, k)


@pytest.mark.parametrize("name", aggregators.names())
@pytest.mark.parametrize("family,k", CASES)
def test_every_aggregator_returns_a_finite_direction_consistent_with_its_weights(name, family, k):
    g = make(family, k)
    agg = aggregators.create(name, num_tasks=k)
    d = agg(g, losses_for(k))
    assert d.shape == (g.shape[1],) and d.dtype == g.dtype
    assert torch.isfinite(d).all()
    if agg.last_weights is not None:
        expected = (agg.last_weights.double() @ g.double()).float()
        torch.testing.assert_close(expected, d, rtol=1e-5, atol=1e-6 * (1 + d.abs().max().item()))


# --- MGDA -------------------------------------------------------------------------------------------


def qp_min_norm(m: np.ndarray) -> float:
    """Independent solve of min w^T M w on the simplex (SLSQP from many starts)."""
    k = m.shape[0]
    best = math.inf
    rng = np.random.default_rng(0)
    for start in [np.full(k, 1 / k), *rng.dirichlet(np.ones(k), size=3)]:
        res = minimize(
            lambda w: w @ m @ w,
            start,
            jac=lambda w: 2 * m @ w,
            bounds=[(0, 1)] * k,
            constraints=({"type": "eq", "fun": lambda w: w.sum() - 1},),
            method="SLSQP",
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        best = min(best, float(res.x @ m @ res.x))
    return best


@pytest.mark.parametrize("family,k", CASES)
def test_mgda_is_the_min_norm_point_of_the_convex_hull(family, k):
    g = make(family, k).double()
    agg = aggregators.create("mgda", num_tasks=k)
    d = agg(g)
    w = agg.last_weights.numpy()
    m = gram(g)
    scale = np.trace(m) / k
    assert (w >= -1e-12).all() and abs(w.sum() - 1) < 1e-9
    # KKT certificate of the min-norm point: <g_i, d> >= ||d||^2 for every task, equality on the support
    dd = float(d @ d)
    inner = (g @ d).numpy()
    assert (inner >= dd - 1e-7 * scale).all()
    support = w > 1e-6
    np.testing.assert_allclose(inner[support], dd, atol=1e-6 * scale)
    # and no independent QP solve finds a shorter point of the hull
    assert dd <= qp_min_norm(m) + 1e-8 * scale
    # non-conflicting: d is a descent direction for every task
    assert (inner >= -1e-9 * scale).all()


def test_mgda_two_tasks_closed_form():
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    d = aggregators.create("mgda", num_tasks=2)(g)
    # min over t of ||t g1 + (1-t) g2||^2 -> t = 4/5
    torch.testing.assert_close(d, torch.tensor([0.8, 0.4], dtype=torch.float64))


# --- PCGrad -----------------------------------------------------------------------------------------


def pcgrad_in_parameter_space(g: torch.Tensor, orders: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    g = g.double()
    pc = g.clone()
    for i, order in enumerate(orders):
        for j in order:
            dot = pc[i] @ g[j]
            if dot < 0:
                pc[i] -= dot / (g[j] @ g[j]) * g[j]
    return pc, pc.sum(0)


@pytest.mark.parametrize("family,k", CASES)
def test_pcgrad_matches_the_algorithm_and_leaves_no_conflict_with_the_last_projection(family, k):
    g = make(family, k).double()
    agg = aggregators.create("pcgrad", num_tasks=k, seed=3)
    d = agg(g)
    pc, expected = pcgrad_in_parameter_space(g, agg.last_orders)
    torch.testing.assert_close(d, expected, rtol=1e-8, atol=1e-8 * (1 + expected.abs().max().item()))
    for i, order in enumerate(agg.last_orders):
        assert sorted(order) == [j for j in range(k) if j != i]
        if order:  # after its last projection, g_i^PC does not conflict with that gradient
            assert pc[i] @ g[order[-1]] >= -1e-9 * (1 + g.norm() ** 2)


def test_pcgrad_two_tasks_has_no_conflict_at_all():
    for seed in range(20):
        g = torch.randn(2, 10, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        agg = aggregators.create("pcgrad", num_tasks=2)
        agg(g)
        pc = torch.from_numpy(agg.last_coefficients) @ g
        assert pc[0] @ g[1] >= -1e-12 and pc[1] @ g[0] >= -1e-12


def test_pcgrad_leaves_non_conflicting_gradients_untouched():
    g = torch.tensor([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.1, 0.1, 1.0]])
    torch.testing.assert_close(aggregators.create("pcgrad", num_tasks=3)(g), g.sum(0))


# --- IMTL-G -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family,k", [c for c in CASES if c[0] not in ("rank_deficient",)])
def test_imtl_direction_has_equal_projections_on_unit_gradients(family, k):
    g = make(family, k).double()
    agg = aggregators.create("imtl", num_tasks=k)
    d = agg(g)
    norms = g.norm(dim=1)
    active = norms > 0
    proj = (g[active] @ d) / norms[active]
    scale = proj.abs().max().item() + 1e-12
    if family == "collinear" and k > 3:
        pytest.skip("nearly collinear with K > 3: the equal-projection system is ill-conditioned")
    assert (proj.max() - proj.min()).item() <= 1e-6 * scale
    assert abs(agg.last_weights.sum().item() - 1) < 1e-9


def test_imtl_matches_the_papers_closed_form():
    g = make("random", 4).double()
    u = g / g.norm(dim=1, keepdim=True)
    big_d, big_u = g[0] - g[1:], u[0] - u[1:]
    alpha_rest = g[0] @ big_u.T @ torch.linalg.inv(big_d @ big_u.T)
    alpha = torch.cat([1 - alpha_rest.sum().reshape(1), alpha_rest])
    agg = aggregators.create("imtl", num_tasks=4)
    agg(g)
    torch.testing.assert_close(agg.last_weights, alpha)


# --- Aligned-MTL ------------------------------------------------------------------------------------


@pytest.mark.parametrize("family,k", CASES)
def test_aligned_matrix_has_equal_singular_values_and_condition_number_one(family, k):
    g = make(family, k).double()
    m = gram(g)
    b = torch.from_numpy(alignment_matrix(m, "min"))
    aligned = b @ g
    # "non-zero" singular values: eigenvalues of G G^T above the float32 round-off of the reference code
    eig = np.linalg.eigvalsh(m)
    nonzero = eig[eig > eig.max() * k * np.finfo(np.float32).eps]
    rank = nonzero.size
    if rank == 0:
        return
    sv = torch.linalg.svdvals(aligned)
    assert (sv[rank:] <= 1e-9 * (1 + sv[0])).all()  # the dropped directions are removed
    sv = sv[:rank]
    # condition number of the aligned system is 1 and its scale is the smallest non-zero singular value of G
    assert (sv.max() / sv.min()).item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(sv, torch.full_like(sv, np.sqrt(nonzero.min())), rtol=1e-6, atol=0)
    agg = aggregators.create("aligned_mtl", num_tasks=k)
    torch.testing.assert_close(agg(g), aligned.sum(0), rtol=1e-8, atol=1e-8 * (1 + aligned.abs().max().item()))


def test_aligned_mtl_uses_pre_defined_task_weights():
    g = make("random", 3).double()
    w = [1.0, 2.0, 0.5]
    agg = aggregators.create("aligned_mtl", num_tasks=3, task_weights=w)
    b = torch.from_numpy(alignment_matrix(gram(g)))
    torch.testing.assert_close(agg(g), torch.tensor(w, dtype=torch.float64) @ (b @ g))


@pytest.mark.parametrize(
    "eigenvalues,median",
    [([4.0, 3.0, 2.0, 1.0], 2.0), ([9.0, 1.0], 1.0), ([5.0, 3.0, 2.0], 3.0), ([8.0, 4.0, 2.0, 1.0, 0.0], 2.0)],
)
def test_aligned_mtl_median_scale_is_the_lower_middle_eigenvalue(eigenvalues, median):
    """``scale="median"`` (not in the paper; SamsungLabs/MTL ``code/optim/aligned/solver.py`` takes
    ``torch.median`` of the non-zero eigenvalues: the lower middle value for an even rank): on a rotated
    Gramian with known eigenvalues, ``B = sqrt(median) V diag(lambda^(-1/2)) V^T`` over the non-zero ones."""
    lam = np.array(eigenvalues)
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((lam.size, lam.size)))
    nonzero = lam > 0
    v = q[:, nonzero]
    expected = np.sqrt(median) * (v / np.sqrt(lam[nonzero])) @ v.T
    np.testing.assert_allclose(alignment_matrix(q @ np.diag(lam) @ q.T, "median"), expected, atol=1e-12)


# --- Nash-MTL, FairGrad, ConsMTL: fixed points ----------------------------------------------------

FULL_RANK = [c for c in CASES if c[0] in ("random", "conflicting", "wild_norms") and c[1] <= 40]


@pytest.mark.parametrize("family,k", FULL_RANK)
def test_nash_mtl_satisfies_its_fixed_point(family, k):
    g = make(family, k).double()
    agg = aggregators.create("nash_mtl", num_tasks=k, max_norm=0.0)
    d = agg(g)
    a = agg.last_weights.numpy()
    assert (a > 0).all()
    # Navon et al. 2022, eq. (2)-(3): G G^T a = 1 / a with the unnormalised Gramian
    np.testing.assert_allclose(gram(g) @ a, 1 / a, rtol=1e-6)
    # hence ||d||^2 = a^T G G^T a = K
    assert d.norm().item() == pytest.approx(math.sqrt(k), rel=1e-6)


@pytest.mark.parametrize("k", [2, 3, 11])
@pytest.mark.parametrize("family", ["random", "conflicting", "wild_norms"])
def test_nash_mtl_step_length_does_not_depend_on_the_gradients_scale(family, k):
    g = make(family, k).double()
    for max_norm, expected in ((0.0, math.sqrt(k)), (1.0, 1.0)):  # uncapped, and the default cap
        norms = []
        for scale in (1e-3, 1.0, 1e3):
            agg = aggregators.create("nash_mtl", num_tasks=k, max_norm=max_norm)
            norms.append(agg(scale * g).norm().item())
            if max_norm == 0.0:  # the weights carry the scale: a(s G) = a(G) / s
                ref = aggregators.create("nash_mtl", num_tasks=k, max_norm=0.0)
                ref(g)
                np.testing.assert_allclose(agg.last_weights.numpy(), ref.last_weights.numpy() / scale, rtol=1e-8)
        np.testing.assert_allclose(norms, expected, rtol=1e-8)


def test_nash_mtl_max_norm_caps_the_direction_and_reuses_weights():
    g = 100 * make("random", 3)
    agg = aggregators.create("nash_mtl", num_tasks=3, max_norm=1.0, update_weights_every=2)
    d = agg(g)
    assert d.norm().item() == pytest.approx(1.0, rel=1e-5)
    reused = agg.reusable_weights()
    assert reused is not None
    d2 = agg(5 * g)  # not recomputed: uses the stored (unclipped) weights, then clips
    torch.testing.assert_close(d2 / d2.norm(), (reused.float() @ g) / (reused.float() @ g).norm())
    assert agg.reusable_weights() is None


@pytest.mark.parametrize("family,k", FULL_RANK)
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
def test_fairgrad_satisfies_its_alpha_fair_fixed_point(family, k, alpha):
    g = make(family, k).double()
    agg = aggregators.create("fairgrad", num_tasks=k, alpha=alpha)
    agg(g)
    w = agg.last_weights.numpy()
    assert (w > 0).all()
    np.testing.assert_allclose(gram(g) @ w, w ** (-1 / alpha), rtol=1e-6)


@pytest.mark.parametrize("k", [2, 3, 11])
def test_fairgrad_at_alpha_one_solves_nash_mtls_equation(k):
    g = make("conflicting", k).double()
    fair = aggregators.create("fairgrad", num_tasks=k, alpha=1.0)
    nash = aggregators.create("nash_mtl", num_tasks=k, max_norm=0.0)
    torch.testing.assert_close(fair(g), nash(g), rtol=1e-7, atol=1e-9)
    w = fair.last_weights.numpy()
    np.testing.assert_allclose(gram(g) @ w, 1 / w, rtol=1e-6)


def test_fairgrad_default_alpha_is_the_authors_two():
    # OptMN-Lab/fairgrad experiments/*/run.sh and OptMN-Lab/SAMO experiments/utils.py run alpha = 2.0
    assert aggregators.hparams("fairgrad")["alpha"] == 2.0
    g = make("conflicting", 3).double()
    agg = aggregators.create("fairgrad", num_tasks=3)
    agg(g)
    w = agg.last_weights.numpy()
    np.testing.assert_allclose(gram(g) @ w, w ** (-1 / 2), rtol=1e-6)


@pytest.mark.parametrize("family,k", FULL_RANK)
def test_consmtl_upper_level_satisfies_eq_5(family, k):
    g = make(family, k).double()
    agg = aggregators.create("consmtl", num_tasks=k)
    d = agg(g)
    a = agg.last_weights.numpy()
    np.testing.assert_allclose(gram(g) @ a, np.sqrt(1 / a), rtol=1e-6)
    # the utilities <g_i, d> are all positive (eq. (3)'s constraint)
    assert ((g @ d) > 0).all()


# --- CAGrad -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family,k", [c for c in CASES if c[1] > 1])
def test_cagrad_reduces_to_the_mean_gradient_at_c_zero(family, k):
    g = make(family, k)
    torch.testing.assert_close(aggregators.create("cagrad", num_tasks=k, c=0.0)(g), g.mean(0))


@pytest.mark.parametrize("family,k", [c for c in CASES if c[1] in (2, 3, 11)])
def test_cagrad_maximises_the_worst_task_improvement_in_the_ball(family, k):
    g = make(family, k).double()
    c = 0.4
    d = aggregators.create("cagrad", num_tasks=k, c=c, rescale=0)(g)
    g0 = g.mean(0)
    radius = c * g0.norm()
    assert (d - g0).norm() <= radius * (1 + 1e-6) + 1e-12
    worst = (g @ d).min()
    gen = torch.Generator().manual_seed(1)
    for _ in range(2000):  # no point of the ball does better than the CAGrad direction
        v = torch.randn(g.shape[1], generator=gen, dtype=torch.float64)
        cand = g0 + radius * torch.rand((), generator=gen, dtype=torch.float64) ** (1 / g.shape[1]) * v / v.norm()
        assert (g @ cand).min() <= worst + 1e-6 * (1 + worst.abs())


# --- GradDrop, GradVac, MoCo, DB-MTL, GradNorm -------------------------------------------------------


@pytest.mark.parametrize("family,k", [c for c in CASES if c[1] > 1])
def test_graddrop_keeps_sign_consistent_coordinates(family, k):
    g = make(family, k)
    agg = aggregators.create("graddrop", num_tasks=k, seed=1)
    d = agg(g)
    # each coordinate of d only sums gradients of one sign: |d_c| equals the sum of |kept| of that sign
    pos = g.clamp(min=0).sum(0)
    neg = g.clamp(max=0).sum(0)
    ok = torch.isclose(d, pos, atol=1e-6) | torch.isclose(d, neg, atol=1e-6)
    assert ok.all()
    torch.testing.assert_close(aggregators.create("graddrop", num_tasks=k, leak=1.0)(g), g.sum(0))


def test_graddrop_keeps_every_coordinate_on_which_all_tasks_agree():
    g = torch.tensor([[1.0, -2.0, 3.0], [2.0, -1.0, 0.5]])
    torch.testing.assert_close(aggregators.create("graddrop", num_tasks=2)(g), g.sum(0))


def test_gradvac_with_zero_targets_is_pcgrad():
    g = make("conflicting", 5)
    gv = aggregators.create("gradvac", num_tasks=5, beta=0.0, seed=7)
    pc = aggregators.create("pcgrad", num_tasks=5, seed=7)
    for _ in range(3):
        torch.testing.assert_close(gv(g), pc(g), rtol=1e-5, atol=1e-5)


def test_gradvac_raises_each_similarity_to_its_target():
    g = torch.tensor([[1.0, 0.0, 0.2], [0.6, 0.8, -0.1]], dtype=torch.float64)
    agg = aggregators.create("gradvac", num_tasks=2, beta=0.0)
    agg.targets.fill_(0.9)  # above the observed cosine
    d = agg(g)
    vaccinated = torch.from_numpy(agg.last_coefficients) @ g
    torch.testing.assert_close(d, vaccinated.sum(0))
    for i, j in ((0, 1), (1, 0)):
        cos = vaccinated[i] @ g[j] / (vaccinated[i].norm() * g[j].norm())
        assert cos.item() == pytest.approx(0.9, abs=1e-9)
    # the targets follow the observed cosines with beta = 1
    agg = aggregators.create("gradvac", num_tasks=2, beta=1.0)
    agg(g)
    observed = (g[0] @ g[1] / (g[0].norm() * g[1].norm())).item()
    assert agg.targets[0, 1].item() == pytest.approx(observed)


def test_moco_weights_stay_on_the_simplex_and_direction_is_tracked_combination():
    g = make("conflicting", 3)
    agg = aggregators.create("moco", num_tasks=3)
    for _ in range(5):
        d = agg(g, losses_for(3))
        lam = agg.lambd
        assert (lam >= 0).all() and lam.sum().item() == pytest.approx(1.0)
        torch.testing.assert_close(d, lam.float() @ agg.y)


def test_db_mtl_balances_gradient_magnitudes():
    g = make("wild_norms", 4)
    losses = torch.tensor([0.1, 1.0, 10.0, 3.0])
    agg = aggregators.create("db_mtl", num_tasks=4)
    d = agg(g, losses)
    log_grads = g / losses[:, None]
    norms = log_grads.norm(dim=1)
    # first step: the EMA starts from 0, so y = (1 - beta) g
    expected = (1 - 0.9) * ((norms.max() / norms)[:, None] * log_grads).sum(0)
    torch.testing.assert_close(d, expected, rtol=1e-4, atol=1e-4)


def test_db_mtl_default_ema_is_libmtls_constant_beta():
    """Defaults of LibMTL (``LibMTL/config.py``: ``--DB_beta 0.9``, ``--DB_beta_sigma 0``; the DB-MTL authors'
    library): ``beta_t = 0.9`` at every step, i.e. ``y_t = 0.1 sum_s 0.9^(t-s) g_s / L_s`` from ``y_0 = 0``."""
    assert aggregators.hparams("db_mtl") == {"beta": 0.9, "beta_sigma": 0.0}
    gen = torch.Generator().manual_seed(3)
    steps = [
        (torch.randn(3, 7, generator=gen, dtype=torch.float64), torch.rand(3, generator=gen, dtype=torch.float64) + 0.1)
        for _ in range(4)
    ]
    agg = aggregators.create("db_mtl", num_tasks=3)
    y = torch.zeros(3, 7, dtype=torch.float64)
    for g, losses in steps:
        d = agg(g, losses)
        y = 0.9 * y + 0.1 * g / losses[:, None]
        norms = y.norm(dim=1)
        torch.testing.assert_close(d, (norms.max() / norms) @ y, rtol=1e-6, atol=0.0)


def test_gradnorm_shrinks_the_weight_of_the_dominant_gradient():
    g = torch.stack([100 * torch.randn(20), torch.randn(20)])
    agg = aggregators.create("gradnorm", num_tasks=2, lr=0.1)
    losses = torch.tensor([1.0, 1.0])
    for _ in range(10):
        agg(g, losses)
    w = agg.weights()
    assert w.sum().item() == pytest.approx(2.0)
    assert w[0] < 1.0 < w[1]


# --- state, bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", aggregators.names())
def test_state_dict_round_trip_continues_identically(name):
    k = 3
    gs = [make("conflicting", k, seed=s) for s in range(5)]
    losses = [losses_for(k) * (1 + 0.1 * s) for s in range(5)]
    a = aggregators.create(name, num_tasks=k)
    for g, loss in zip(gs[:3], losses[:3]):
        a(g, loss)
    b = aggregators.create(name, num_tasks=k)
    b.load_state_dict(a.state_dict())
    for g, loss in zip(gs[3:], losses[3:]):
        torch.testing.assert_close(a(g, loss), b(g, loss), rtol=0, atol=0)


@pytest.mark.parametrize("name", aggregators.names())
def test_bad_inputs_raise_value_errors_naming_the_problem(name):
    agg = aggregators.create(name, num_tasks=3)
    g = make("random", 3)
    bad = g.clone()
    bad[1, 5] = float("nan")
    with pytest.raises(ValueError, match=r"task index\(es\) \[1\]"):
        agg(bad, losses_for(3))
    with pytest.raises(ValueError, match=r"shape \[3, n\]"):
        agg(make("random", 2), losses_for(3))
    with pytest.raises(ValueError, match="losses"):
        agg(g, torch.tensor([1.0, float("inf"), 1.0]))
    with pytest.raises(ValueError, match="losses"):
        agg(g, torch.ones(4))


def test_unknown_names_and_hparams_list_the_valid_choices():
    with pytest.raises(ValueError, match=r"valid names: .*mgda.*pcgrad"):
        aggregators.create("pcgard", num_tasks=2)
    valid = r"valid: \['c', 'norm_eps', 'rescale'\]"
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['cc'\].*" + valid):
        aggregators.create("cagrad", num_tasks=2, cc=0.5)
    with pytest.raises(ValueError, match="c must be a finite number >= 0, got -1"):
        aggregators.create("cagrad", num_tasks=2, c=-1)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        aggregators.create("fairgrad", num_tasks=2, alpha=0)
    with pytest.raises(ValueError, match="normalization must be one of"):
        aggregators.create("mgda", num_tasks=2, normalization="L2")
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['gramian_normalization'\]"):
        aggregators.create("nash_mtl", num_tasks=2, gramian_normalization="frobenius")  # removed (issue 13)
    with pytest.raises(ValueError, match="num_tasks must be an integer >= 1, got 0"):
        aggregators.create("mgda", num_tasks=0)
    with pytest.raises(ValueError, match="task_weights must be 3"):
        aggregators.create("aligned_mtl", num_tasks=3, task_weights=[1, 2])


def test_losses_are_required_by_methods_that_read_them():
    with pytest.raises(ValueError, match="needs the task losses"):
        aggregators.create("moco", num_tasks=2)(make("random", 2))


def test_families_cover_the_requested_cases():
    assert set(FAMILIES) >= {"conflicting", "collinear", "rank_deficient", "zero_row", "wild_norms"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", aggregators.names())
@pytest.mark.parametrize("module_device", ["cpu", "cuda"])
def test_aggregators_run_on_cuda_and_match_cpu(name, module_device):
    g = make("conflicting", 5)
    losses = losses_for(5)
    cpu_agg, gpu_agg = aggregators.create(name, num_tasks=5), aggregators.create(name, num_tasks=5).to(module_device)
    for step in range(2):  # the second step reads the state the first one left
        cpu = cpu_agg(g * (1 + step), losses)
        gpu = gpu_agg(g.cuda() * (1 + step), losses.cuda())
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5 * (1 + cpu.abs().max().item()))


def test_finite_gradients_whose_row_sum_overflows_are_accepted():
    g = torch.full((2, 4), 3e38)  # finite entries, float32 row sums overflow to inf
    d = aggregators.create("mgda", num_tasks=2)(g / 1e30)  # scaled to keep the solve finite
    assert torch.isfinite(d).all()
    from mtl_core._checks import check_grads

    assert check_grads(g, 2) is g
