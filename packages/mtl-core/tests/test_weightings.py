"""Loss weightings: each prescribes the gradient of its paper's objective."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_core import weightings


def model_losses(scales=(1.0, 1.0, 1.0)):
    torch.manual_seed(0)
    w = torch.randn(5, requires_grad=True)
    x = torch.randn(3, 5)
    losses = torch.stack([s * ((x[i] @ w - i) ** 2 + 0.1) for i, s in enumerate(scales)])
    return w, losses


def grad_of(weighting, scales):
    w, losses = model_losses(scales)
    (g,) = torch.autograd.grad(weighting.loss(losses), w)
    return g


@pytest.mark.parametrize("name", ["uw_o", "si"])
def test_uw_o_and_si_are_invariant_to_per_task_loss_scales(name):
    # seed 001 A1.1: rescaling each task loss by any positive constant leaves the update unchanged
    base = grad_of(weightings.create(name, 3), (1.0, 1.0, 1.0))
    scaled = grad_of(weightings.create(name, 3), (10.0, 0.1, 3.0))
    torch.testing.assert_close(base, scaled)
    # equal-weighting is not invariant (this is what the probe is for)
    ls = weightings.create("ls", 3)
    assert not torch.allclose(grad_of(ls, (1.0, 1.0, 1.0)), grad_of(ls, (10.0, 0.1, 3.0)))


def test_uw_o_weights_are_inverse_detached_losses():
    losses = torch.tensor([2.0, 0.5, 4.0], requires_grad=True)
    w = weightings.create("uw_o", 3)(losses)
    torch.testing.assert_close(w, torch.tensor([0.5, 2.0, 0.25]))
    assert not w.requires_grad


def test_ls_task_weights():
    losses = torch.tensor([1.0, 2.0])
    assert weightings.create("ls", 2)(losses).tolist() == [1.0, 1.0]
    assert weightings.create("ls", 2, task_weights=[0.3, 2])(losses).tolist() == pytest.approx([0.3, 2.0])


def test_gls_gradient_is_that_of_the_geometric_mean():
    w, losses = model_losses()
    gls = weightings.create("gls", 3)
    expected = torch.autograd.grad(losses.prod() ** (1 / 3), w, retain_graph=True)[0]
    via_weights = torch.autograd.grad((gls(losses) * losses).sum(), w)[0]
    torch.testing.assert_close(via_weights, expected)


def test_rlw_weights_are_random_softmax_and_seeded():
    losses = torch.ones(4)
    a, b = weightings.create("rlw", 4, seed=1), weightings.create("rlw", 4, seed=1)
    wa = [a(losses) for _ in range(3)]
    wb = [b(losses) for _ in range(3)]
    for x, y in zip(wa, wb):
        torch.testing.assert_close(x, y)
        assert x.sum().item() == pytest.approx(1.0) and (x > 0).all()
    assert not torch.allclose(wa[0], wa[1])


def test_dwa_follows_mtan_eq_7():
    dwa = weightings.create("dwa", 2, temperature=2.0)
    history = [torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.8]), torch.tensor([0.4, 1.0])]
    for epoch, epoch_losses in enumerate(history):
        for _ in range(3):
            w = dwa(epoch_losses)
            if epoch < 2:
                assert w.tolist() == [1.0, 1.0]
        dwa.end_epoch()
    # third epoch used r = L(t-1)/L(t-2) = [0.5/1, 1.8/2]
    r = torch.tensor([0.5, 0.9])
    expected = 2 * torch.softmax(r / 2.0, 0)
    torch.testing.assert_close(w, expected)
    # after epoch 3: r = [0.4/0.5, 1.0/1.8]
    r = torch.tensor([0.8, 1.0 / 1.8])
    torch.testing.assert_close(dwa(torch.ones(2)), 2 * torch.softmax(r / 2.0, 0))


def dwa_after(epochs: list[list[float]], temperature: float = 2.0) -> torch.Tensor:
    """DWA's weights in the epoch after ``epochs`` (one call per epoch, each followed by ``end_epoch``)."""
    dwa = weightings.create("dwa", len(epochs[0]), temperature=temperature)
    for losses in epochs:
        dwa(torch.tensor(losses, dtype=torch.float64))
        dwa.end_epoch()
    return dwa(torch.ones(len(epochs[0]), dtype=torch.float64))


def test_dwa_zero_loss_in_both_previous_epochs_counts_as_an_unchanged_loss():
    """0 -> 0: MTAN eq. (7)'s ratio 0/0 is taken as 1 (the rate of any loss that did not change)."""
    w = dwa_after([[0.0, 2.0, 1.0], [0.0, 1.5, 1.0]])
    torch.testing.assert_close(w, 3 * torch.softmax(torch.tensor([1.0, 0.75, 1.0], dtype=torch.float64) / 2, 0))
    # the same weights as a task whose loss stayed at any positive constant
    torch.testing.assert_close(w, dwa_after([[0.3, 2.0, 1.0], [0.3, 1.5, 1.0]]))


def test_dwa_loss_rising_from_zero_takes_the_limit_of_eq_7():
    """0 -> L > 0: the ratio is +inf; eq. (7)'s limit gives those tasks K / m each (m of them), the others 0,
    as a vanishing previous loss does."""
    w = dwa_after([[0.0, 2.0, 0.0, 1.0], [0.5, 1.0, 3.0, 1.0]])
    torch.testing.assert_close(w, torch.tensor([2.0, 0.0, 2.0, 0.0], dtype=torch.float64))
    near = dwa_after([[1e-3, 2.0, 1e-3, 1.0], [0.5, 1.0, 3.0, 1.0]], temperature=1e-3)
    torch.testing.assert_close(near, torch.tensor([0.0, 0.0, 4.0, 0.0], dtype=torch.float64))  # 3000 > 500
    near = dwa_after([[1e-12, 2.0, 1e-12, 1.0], [0.5, 1.0, 0.5, 1.0]])
    torch.testing.assert_close(near, w)


def test_dwa_rejects_a_negative_epoch_average_naming_the_task():
    """Eq. (7) is a rate of descent of a positive loss: a negative epoch average is refused at the roll."""
    dwa = weightings.create("dwa", 3)
    dwa(torch.tensor([1.0, -0.5, 2.0]))
    with pytest.raises(ValueError, match=r"task 1.*-0\.5"):
        dwa.end_epoch()


def test_uw_regularised_objective_is_minimal_at_sigma_squared_equal_loss():
    uw = weightings.create("uw", 2)
    losses = torch.tensor([0.3, 4.0])
    with torch.no_grad():
        uw.log_vars.copy_(torch.log(losses))
    (g,) = torch.autograd.grad(uw.loss(losses), uw.log_vars)
    torch.testing.assert_close(g, torch.zeros(2), atol=1e-6, rtol=0)
    # and its weights there are UW-O's up to the factor 1/2 of Kendall et al.
    torch.testing.assert_close(uw(losses).detach(), 0.5 * weightings.create("uw_o", 2)(losses))


def test_imtl_l_optimum_scales_every_loss_to_one():
    imtl = weightings.create("imtl_l", 2)
    losses = torch.tensor([0.3, 4.0])
    with torch.no_grad():
        imtl.log_scales.copy_(-torch.log(losses))
    (g,) = torch.autograd.grad(imtl.loss(losses), imtl.log_scales)
    torch.testing.assert_close(g, torch.zeros(2), atol=1e-6, rtol=0)


def test_famo_weights_give_the_gradient_of_its_objective():
    w, losses = model_losses()
    famo = weightings.create("famo", 3)
    with torch.no_grad():
        famo.logits.copy_(torch.tensor([0.2, -0.5, 0.1]))
    z = torch.softmax(famo.logits, 0)
    d = losses - 0 + 1e-8
    c = (z / d.detach()).sum()
    expected = torch.autograd.grad((z / c * torch.log(d)).sum(), w, retain_graph=True)[0]
    got = torch.autograd.grad(famo.loss(losses), w)[0]
    torch.testing.assert_close(got, expected)


def test_famo_update_favours_the_task_that_improved_least():
    famo = weightings.create("famo", 2, w_lr=0.1, gamma=0.0)
    before = torch.tensor([1.0, 1.0])
    famo(before)
    famo.after_step(torch.tensor([0.5, 0.99]))  # task 0 improved a lot, task 1 barely
    z = torch.softmax(famo.logits, 0)
    assert z[1] > z[0]
    # first Adam step moves each logit by lr * sign(grad) (bias-corrected m/sqrt(v) = +-1)
    delta = torch.log(before) - torch.log(torch.tensor([0.5, 0.99]))
    z0 = torch.tensor([0.5, 0.5])
    grad = z0 * (delta - (z0 * delta).sum())
    torch.testing.assert_close(famo.logits, -0.1 * torch.sign(grad), atol=1e-6, rtol=0)


def test_famo_after_step_needs_a_forward_first():
    with pytest.raises(RuntimeError, match="before the weights"):
        weightings.create("famo", 2).after_step(torch.ones(2))


@pytest.mark.parametrize("name", weightings.names())
def test_state_dict_round_trip(name):
    a = weightings.create(name, 3)
    seq = [torch.tensor([1.0, 2.0, 3.0]) * (1 - 0.1 * i) for i in range(6)]
    for loss in seq[:3]:
        a(loss)
        if a.needs_losses_after_step:
            a.after_step(loss * 0.9)
        a.end_epoch()
    b = weightings.create(name, 3)
    b.load_state_dict(a.state_dict())
    for loss in seq[3:]:
        torch.testing.assert_close(a(loss), b(loss), rtol=0, atol=0)
        if a.needs_losses_after_step:
            a.after_step(loss * 0.9)
            b.after_step(loss * 0.9)


@pytest.mark.parametrize("name", weightings.names())
def test_bad_losses_raise(name):
    w = weightings.create(name, 3)
    with pytest.raises(ValueError, match="NaN/Inf at task index"):
        w(torch.tensor([1.0, math.nan, 1.0]))
    with pytest.raises(ValueError, match="3 task losses"):
        w(torch.ones(2))


def test_unknown_names_and_values():
    with pytest.raises(ValueError, match=r"valid names: .*famo.*uw_o"):
        weightings.create("uwo", 2)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        weightings.create("dwa", 2, temperature=0)
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['lr'\].*valid"):
        weightings.create("famo", 2, lr=0.1)
    with pytest.raises(ValueError, match="must be > 0"):
        weightings.create("si", 2)(torch.tensor([1.0, 0.0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", weightings.names())
@pytest.mark.parametrize("module_device", ["cpu", "cuda"])
def test_weightings_on_cuda_follow_the_losses_device(name, module_device):
    losses = torch.tensor([1.0, 2.0, 3.0], device="cuda", requires_grad=True)
    w = weightings.create(name, 3).to(module_device)
    weights = w(losses)
    assert weights.device.type == "cuda"
    w.loss(losses).backward()
    if w.needs_losses_after_step:
        w.after_step(losses.detach() * 0.5)
