"""Toy problems: CAGrad's toy (seed 001 Table A7, seed 003 Fig. 1) and SAMO's toy (seed 002 Fig. 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_core import aggregators, analysis, toy, weightings

EW = toy.TABLE_A7_METHODS["EW"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def cagrad():
    return toy.cagrad_toy()


# --- the problems -------------------------------------------------------------------------------------


def test_cagrad_losses_hand_values():
    x = torch.tensor([[0.0, 0.0], [0.0, -20.0], [-3.0, 20.0]], dtype=torch.float64)
    f = toy.cagrad_losses(x)
    assert f[0].tolist() == [0.0, 0.0]  # c1 = c2 = 0 on the x1 axis
    # far below: c2 = tanh(10) and the quadratic bowls (7^2 + 0.1 * 12^2) / 10 - 20 = -13.66
    torch.testing.assert_close(f[1], torch.full((2,), -13.66 * math.tanh(10), dtype=torch.float64))
    # far above: c1 = tanh(10), f1 = log|0.5 * (3 - 7) - tanh(-20)| + 6 = log 1 + 6, f2 = log|3 - 1 + 2| + 6
    expected = torch.tensor([6.0, math.log(4) + 6], dtype=torch.float64) * math.tanh(10)
    torch.testing.assert_close(f[2], expected)


def test_cagrad_global_minimum(cagrad):
    x_star, f_star = cagrad.global_minimum
    np.testing.assert_allclose(x_star, [0.0, -8.3551], atol=1e-3)  # the reference plots it at (0, -8.3552)
    assert f_star == pytest.approx(-15.0916, abs=1e-3)


def test_samo_losses_and_global_minimum():
    f = toy.samo_losses(torch.tensor([[0.0, 0.0], [-4.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(f, torch.tensor([[0.0, 1 - math.exp(-32)], [1 - 1 / 26.6, 0.0]], dtype=torch.float64))
    x_star, _ = toy.samo_toy().global_minimum
    np.testing.assert_allclose(x_star, [-3.9909, 0.0], atol=1e-3)


def test_gradient_on_the_x1_axis_is_the_reference_scripts_subgradient():
    """The reference scripts' ``torch.clamp`` had derivative 1 at its bound (PyTorch 0.4.1, pytorch/pytorch#7049,
    until #191142); PyTorch 2.14 gives 0, which made every task gradient vanish at the start (0, 0) of
    Aligned-MTL's script. Hand derivation: on ``x2 = 0``, ``c1 = c2 = 0`` and ``dc1/dx2 = -dc2/dx2 = 1/2``, so
    ``grad f_i = s_i (0, (f_i^log - f_i^sq) / 2)``."""
    scales = (0.3, 0.7)
    x1 = torch.tensor([0.0, -3.0, 2.5, 9.0, -8.5], dtype=torch.float64)
    _, jac = toy.cagrad_toy(task_scales=scales).losses_and_jacobian(torch.stack([x1, torch.zeros_like(x1)], -1))
    f_log = torch.stack([torch.log((0.5 * (x1 + 7)).abs()) + 6, torch.log((0.5 * (3 - x1) + 2).abs()) + 6], -1)
    f_sq = torch.stack([((7 - x1) ** 2 + 6.4) / 10 - 20, ((x1 + 7) ** 2 + 6.4) / 10 - 20], -1)
    assert torch.equal(jac[..., 0], torch.zeros_like(f_log))
    torch.testing.assert_close(jac[..., 1], 0.5 * (f_log - f_sq) * torch.tensor(scales, dtype=torch.float64))
    # at (0, 0) both tasks have the gradient (0, (log 3.5 + 20.46) / 2) = (0, 10.8564)
    _, jac0 = toy.cagrad_toy().losses_and_jacobian(torch.zeros(1, 2, dtype=torch.float64))
    expected = torch.tensor([[0.0, (math.log(3.5) + 20.46) / 2]] * 2, dtype=torch.float64)
    torch.testing.assert_close(jac0[0], expected, rtol=1e-15, atol=0)


def test_off_the_clamp_bounds_the_toy_is_torch_clamp_bitwise():
    """Away from ``x2 = 0`` and ``|u_i| = 5e-6`` the inclusive maxima are ``torch.clamp``'s values and gradients bit
    for bit, so the trajectories of seed 001's starts (which never touch a bound) are unchanged."""
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        x = (20 * torch.rand(500, 2, generator=gen) - 10).to(dtype).requires_grad_(True)
        x1, x2 = x[:, 0], x[:, 1]
        f1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), 5e-6).log() + 6
        f2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), 5e-6).log() + 6
        c1, c2 = torch.clamp(torch.tanh(x2 * 0.5), 0), torch.clamp(torch.tanh(-x2 * 0.5), 0)
        f1_sq = ((-x1 + 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
        f2_sq = ((-x1 - 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
        clamped = torch.stack([f1 * c1 + f1_sq * c2, f2 * c1 + f2_sq * c2], -1)
        ours = toy.cagrad_losses(x)
        assert torch.equal(ours, clamped)
        for k in range(2):
            (g_ours,) = torch.autograd.grad(ours[:, k].sum(), x, retain_graph=True)
            (g_clamped,) = torch.autograd.grad(clamped[:, k].sum(), x, retain_graph=True)
            assert torch.equal(g_ours, g_clamped)


@pytest.mark.parametrize("name", ["nash_mtl", "cagrad", "aligned_mtl", "imtl"])
def test_every_method_leaves_the_start_at_the_origin_into_the_bowl(name):
    # with a zero gradient at (0, 0), Nash-MTL raised "all task gradients are zero" and the others stayed put
    problem = toy.cagrad_toy(task_scales=(0.5, 0.5), starts=toy.ALIGNED_MTL_STARTS)
    origin = toy.ALIGNED_MTL_STARTS.index((0.0, 0.0))
    run = toy.run_toy(problem, name, optimizer="adam", lr=1e-3, iterations=5)
    assert (np.diff(run.points[:, origin, 1]) < 0).all()  # x2 decreases at every step
    assert (run.losses[1:, origin].mean(-1) < 0).all()


def test_jacobian_is_exactly_per_task_autograd(cagrad):
    x = torch.tensor([[-8.5, 7.5], [0.0, 0.0], [9.0, -1.0], [1.3, -2.2]])
    f, jac = cagrad.losses_and_jacobian(x)
    xx = x.clone().requires_grad_(True)
    ff = cagrad.losses(xx)
    for k in range(2):
        (g,) = torch.autograd.grad(ff[:, k].sum(), xx, retain_graph=True)
        assert torch.equal(jac[:, k], g)
    assert torch.equal(f, ff.detach())


# --- seed 001 Table A7 --------------------------------------------------------------------------------


def test_adam_ew_reaches_the_global_minimum_from_every_start_at_lr_1(cagrad):
    name, hparams = EW
    result = toy.iterations_to_global_minimum(cagrad, name, optimizer="adam", lr=1.0, max_iterations=2000, **hparams)
    assert all(v is not None for v in result.per_start)
    # Table A7 reports 22 iterations; same order of magnitude required (we measure 22)
    assert 22 / 10 <= result.iterations <= 22 * 10


def test_pcgrad_stops_on_the_pareto_front_where_ew_reaches_the_minimum(cagrad):
    _, f_star = cagrad.global_minimum
    ew_name, ew_hparams = EW
    ew = toy.iterations_to_global_minimum(cagrad, ew_name, optimizer="adam", lr=0.5, max_iterations=300, **ew_hparams)
    assert ew.iterations is not None  # Table A7: 58

    pc_name, pc_hparams = toy.TABLE_A7_METHODS["PCGrad"]
    run = toy.run_toy(cagrad, pc_name, optimizer="adam", lr=0.5, iterations=300, **pc_hparams)
    stuck = 0
    for s in range(len(cagrad.starts)):
        f, jac = cagrad.losses_and_jacobian(torch.tensor(run.final_points[s : s + 1], dtype=torch.float64))
        on_front = analysis.pareto_stationarity(jac[0]) / float(jac[0].norm(dim=1).max()) < 1e-4
        away = float(f.mean()) - f_star > toy.GLOBAL_MINIMUM_TOL
        stuck += on_front and away
        # it never passed through the minimum either
        assert np.all(run.losses[:, s].mean(-1) - f_star > toy.GLOBAL_MINIMUM_TOL)
    assert stuck >= 1


def test_gd_cagrad_at_lr_10_reaches_the_minimum_as_in_table_a7(cagrad):
    # Table A7: 644 (the reference toy script's CAGrad, with its 1e-4 regularisation of the norms); exact CAGrad
    # never gets there from (9, 9). The starts' counts of a re-run of the script's arithmetic: 644, 3, 47.
    name, hparams = toy.TABLE_A7_METHODS["CAGrad"]
    result = toy.iterations_to_global_minimum(cagrad, name, optimizer="gd", lr=10.0, max_iterations=1000, **hparams)
    assert result.per_start == (643, 3, 47)  # Table A7: 644


def test_table_a7_cagrad_cells_keep_their_counts(cagrad):
    """The closed-form K = 2 dual and the batched rows give the per-start counts of the general exact solver
    (NNLS + root-find, one row at a time; measured for every cell at a 5,000-step budget: identical)."""
    lrs = (10.0, 5.0, 1.0, 0.5)
    grid = toy.table_a7(methods={"CAGrad": toy.TABLE_A7_METHODS["CAGrad"]}, lrs=lrs, max_iterations=700, problem=cagrad)
    assert [grid[("CAGrad", "gd", lr)].per_start for lr in lrs] == [
        (643, 3, 47),
        (17, 2, 66),
        (66, 29, 365),
        (165, 60, 536),
    ]
    assert [grid[("CAGrad", "adam", lr)].per_start for lr in lrs] == [
        (24, 5, 27),
        (4, 30, 30),
        (19, 32, 20),
        (101, 24, 103),
    ]


def test_cagrad_toy_solves_all_rows_in_one_closed_form_call_per_step(cagrad, monkeypatch):
    """The toy's speed-up, timing-free: one stacked K = 2 solve per step for every start and learning rate, no
    NNLS (the general solver ran 15-33 NNLS per start and step), and the same trajectories as one row alone."""
    from mtl_core import solvers
    from mtl_core.aggregators import cagrad as cagrad_module

    calls = {"nnls": 0, "rows": []}
    real_nnls, real_closed_form = solvers.nnls, cagrad_module.cagrad_weights_two_tasks

    def counting_nnls(*args, **kwargs):
        calls["nnls"] += 1
        return real_nnls(*args, **kwargs)

    def counting_closed_form(grams, *args, **kwargs):
        calls["rows"].append(len(grams))
        return real_closed_form(grams, *args, **kwargs)

    monkeypatch.setattr(solvers, "nnls", counting_nnls)
    monkeypatch.setattr(cagrad_module, "cagrad_weights_two_tasks", counting_closed_form)
    name, hparams = toy.TABLE_A7_METHODS["CAGrad"]
    lrs = (0.1, 0.01)
    grid = toy.table_a7(
        methods={"CAGrad": (name, hparams)}, optimizers=("adam",), lrs=lrs, max_iterations=20, problem=cagrad
    )
    assert calls["nnls"] == 0 and calls["rows"] == [6] * 20  # 3 starts x 2 learning rates, 20 steps
    run = toy.run_toy(cagrad, name, optimizer="gd", lr=5.0, iterations=40, **hparams)
    alone = toy.run_toy(cagrad, name, optimizer="gd", lr=5.0, iterations=40, starts=[toy.CAGRAD_STARTS[2]], **hparams)
    np.testing.assert_array_equal(run.points[:, 2], alone.points[:, 0])
    for lr in lrs:
        single = toy.iterations_to_global_minimum(cagrad, name, optimizer="adam", lr=lr, max_iterations=20, **hparams)
        assert single == grid[("CAGrad", "adam", lr)]


def test_table_a7_grid_matches_single_runs_and_reports_missing_as_none(cagrad):
    lrs = (10.0, 1.0, 0.5)
    grid = toy.table_a7(methods={"EW": EW}, optimizers=("gd", "adam"), lrs=lrs, max_iterations=80, problem=cagrad)
    assert set(grid) == {(m, o, lr) for m in ("EW",) for o in ("gd", "adam") for lr in lrs}
    assert [grid[("EW", "adam", lr)].iterations for lr in lrs] == [26, 22, 57]  # Table A7: 26, 22, 58
    assert grid[("EW", "gd", 10.0)].iterations is None  # Table A7: '-'
    name, hparams = EW
    for lr in lrs:  # the batched learning rates give exactly the numbers of separate runs
        single = toy.iterations_to_global_minimum(cagrad, name, optimizer="adam", lr=lr, max_iterations=80, **hparams)
        assert single == grid[("EW", "adam", lr)]
    assert toy.Convergence(per_start=(3, None)).iterations is None


def test_trajectories_are_deterministic(cagrad):
    for name in ("pcgrad", "cagrad", "graddrop"):  # pcgrad and graddrop draw random numbers
        a = toy.run_toy(cagrad, name, optimizer="adam", lr=0.1, iterations=30)
        b = toy.run_toy(cagrad, name, optimizer="adam", lr=0.1, iterations=30)
        assert a.points.shape == (31, 3, 2) and a.losses.shape == (31, 3, 2)
        np.testing.assert_array_equal(a.points, b.points)
        np.testing.assert_array_equal(a.points[0], np.array(toy.CAGRAD_STARTS, dtype=np.float32))


def test_starts_are_independent_of_each_other(cagrad):
    together = toy.run_toy(cagrad, "pcgrad", optimizer="gd", lr=0.01, iterations=20)
    alone = toy.run_toy(cagrad, "pcgrad", optimizer="gd", lr=0.01, iterations=20, starts=[toy.CAGRAD_STARTS[2]])
    np.testing.assert_array_equal(together.points[:, 2], alone.points[:, 0])


def test_gd_step_is_the_combined_direction(cagrad):
    run = toy.run_toy(cagrad, "ls", optimizer="gd", lr=0.1, iterations=1, dtype=torch.float64)
    _, jac = cagrad.losses_and_jacobian(torch.tensor(toy.CAGRAD_STARTS, dtype=torch.float64))
    np.testing.assert_allclose(run.points[1], run.points[0] - 0.1 * jac.sum(dim=1).numpy(), rtol=1e-15)


@pytest.mark.parametrize("name", aggregators.names())
def test_every_aggregator_runs(name):
    run = toy.run_toy(toy.samo_toy(), name, optimizer="adam", lr=0.05, iterations=3)
    assert np.isfinite(run.points).all() and not np.array_equal(run.points[0], run.points[-1])


@pytest.mark.parametrize("name", weightings.names())
def test_every_weighting_runs(name):
    run = toy.run_toy(toy.samo_toy(), name, optimizer="gd", lr=0.5, iterations=3)
    assert np.isfinite(run.points).all() and not np.array_equal(run.points[0], run.points[-1])


def test_aligned_mtl_on_its_five_starts():
    problem = toy.cagrad_toy(task_scales=(0.5, 0.5), starts=toy.ALIGNED_MTL_STARTS)
    run = toy.run_toy(problem, "aligned_mtl", optimizer="adam", lr=1e-3, iterations=5)
    assert run.points.shape == (6, 5, 2) and np.isfinite(run.points).all()
    # scales multiply the losses: the half-scaled problem has half the CAGrad losses
    np.testing.assert_allclose(run.losses[0], toy.cagrad_losses(torch.tensor(toy.ALIGNED_MTL_STARTS)) / 2, rtol=1e-6)


# --- seed 002 Fig. 1 ----------------------------------------------------------------------------------


def test_samo_toy_ls_ends_sharp_and_ls_sam_ends_flat():
    runs = toy.samo_toy_trajectories()
    problem = toy.samo_toy()
    assert set(runs) == {"LS", "LS+SAM"}
    sharpness = {}
    for label, run in runs.items():
        np.testing.assert_array_equal(run.points[0, 0], toy.SAMO_START)
        lo, hi = np.array(toy.SAMO_BOUNDS).T
        assert np.all(run.points >= lo) and np.all(run.points <= hi)
        end = run.final_points[0]
        # both end on the Pareto set: the segment from (-4, 0) to (0, 0)
        assert abs(end[1]) < 1e-3 and -4.0 <= end[0] <= 0.0
        x = torch.tensor(end, dtype=torch.float64, requires_grad=True)
        sharpness[label] = analysis.hessian_eigenvalues(lambda x=x: problem.losses(x).sum(), [x], k=1)[0]
    np.testing.assert_allclose(runs["LS"].final_points[0], [-3.9909, 0.0], atol=1e-3)  # the sharp well of f2
    assert sharpness["LS"] > 3.0
    assert sharpness["LS+SAM"] < 0.1 * sharpness["LS"]


def test_sam_with_rho_zero_is_the_base_method():
    a = toy.run_toy(toy.samo_toy(), "ls", optimizer="adam", lr=0.1, iterations=20, rho=0.0)
    b = toy.run_toy(toy.samo_toy(), "ls", optimizer="adam", lr=0.1, iterations=20)
    np.testing.assert_array_equal(a.points, b.points)
    c = toy.run_toy(toy.samo_toy(), "ls", optimizer="adam", lr=0.1, iterations=20, rho=0.5)
    assert not np.array_equal(a.points, c.points)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"method": "adamw"}, "unknown method"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"lr": -1.0}, "lr"),
        ({"iterations": -1}, "iterations"),
        ({"rho": float("nan")}, "rho"),
        ({"dtype": torch.float16}, "dtype"),
    ],
)
def test_bad_arguments(cagrad, kwargs, match):
    kwargs = {"method": "ls", "iterations": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        toy.run_toy(cagrad, **kwargs)


def test_bad_problem_definitions():
    with pytest.raises(ValueError, match="task_scales"):
        toy.cagrad_toy(task_scales=(1.0, 0.0))
    with pytest.raises(ValueError, match="finite"):
        toy.cagrad_toy(starts=[(1.0, float("inf"))])
    with pytest.raises(ValueError, match="shape"):
        toy.cagrad_toy().losses(torch.zeros(3))
    with pytest.raises(ValueError, match="ToyProblem"):
        toy.run_toy("cagrad", "ls")
