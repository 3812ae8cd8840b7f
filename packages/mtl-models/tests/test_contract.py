"""The model contract, checked on every benchmark configuration at a tiny size.

encode/decode/forward agree, shared and task parameters partition the model, every parameter gets a
gradient, per-task gradients through z (features mode) equal the parameter gradients by the chain rule,
and initialisation is a deterministic function of the seed.
"""

from __future__ import annotations

import pytest
import torch

from mtl_models.testing import Benchmark

from .conftest import tiny_input, tiny_model, weighted_losses


def _as_tuple(z: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return z if isinstance(z, tuple) else (z,)


def test_shared_and_task_parameters_partition_the_model(benchmark_cfg: Benchmark) -> None:
    model = tiny_model(benchmark_cfg)
    shared = {id(p) for p in model.shared_parameters()}
    per_task = {t: {id(p) for p in model.task_parameters(t)} for t in model.tasks}
    assert shared, "no shared parameters"
    for task, ids in per_task.items():
        assert ids, f"task {task!r} has no parameters"
        assert not ids & shared, f"task {task!r} shares parameters with the encoder"
        for other, other_ids in per_task.items():
            if other != task:
                assert not ids & other_ids, f"tasks {task!r} and {other!r} share parameters"
    union = shared.union(*per_task.values())
    everything = {id(p) for p in model.parameters()}
    assert union == everything
    assert len(model.shared_parameters()) + sum(len(model.task_parameters(t)) for t in model.tasks) == len(everything)


def test_encode_then_decode_equals_forward(benchmark_cfg: Benchmark) -> None:
    model = tiny_model(benchmark_cfg).eval()
    x = tiny_input(benchmark_cfg)
    with torch.no_grad():
        direct = model(x)
        z = model.encode(x)
        staged = model.decode(z)
    assert list(direct) == list(model.tasks) == list(staged)
    for task in model.tasks:
        torch.testing.assert_close(staged[task], direct[task], rtol=0, atol=0)


def test_decoding_a_subset_of_tasks_runs_only_their_heads(benchmark_cfg: Benchmark) -> None:
    model = tiny_model(benchmark_cfg).eval()
    x = tiny_input(benchmark_cfg)
    names = list(model.tasks)
    wanted = [names[-1], names[0]]  # any order in, task order out
    called: list[str] = []
    hooks = [model.heads[t].register_forward_hook(lambda *_, t=t: called.append(t)) for t in names]
    try:
        with torch.no_grad():
            full = model(x)
            called.clear()
            subset = model(x, tasks=wanted)
    finally:
        for hook in hooks:
            hook.remove()
    expected = [t for t in names if t in wanted]
    assert list(subset) == expected
    assert sorted(called) == sorted(expected), "heads outside the requested tasks ran"
    for task in expected:
        torch.testing.assert_close(subset[task], full[task], rtol=0, atol=0)


@pytest.mark.parametrize("tasks", ["not-a-task", ["not-a-task"], 3])
def test_decoding_unknown_tasks_raises(benchmark_cfg: Benchmark, tasks: object) -> None:
    model = tiny_model(benchmark_cfg).eval()
    with torch.no_grad(), pytest.raises(ValueError, match="task"):
        model(tiny_input(benchmark_cfg), tasks=tasks)


def test_training_mode_forward_is_reproducible_under_a_seed(benchmark_cfg: Benchmark) -> None:
    # Dropout (ASPP, Office) is the only randomness of a forward pass.
    model = tiny_model(benchmark_cfg).train()
    x = tiny_input(benchmark_cfg)
    outputs = []
    for _ in range(2):
        torch.manual_seed(123)
        with torch.no_grad():
            outputs.append(model.decode(model.encode(x)))
    for task in model.tasks:
        torch.testing.assert_close(outputs[0][task], outputs[1][task], rtol=0, atol=0)


def test_gradients_reach_every_parameter(benchmark_cfg: Benchmark) -> None:
    model = tiny_model(benchmark_cfg).train()
    losses = weighted_losses(model(tiny_input(benchmark_cfg)))
    sum(losses.values()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        if p.dim() > 1:  # weight tensors; biases in front of BatchNorm legitimately get ~0
            assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_heads_only_touch_their_own_parameters(benchmark_cfg: Benchmark) -> None:
    model = tiny_model(benchmark_cfg).train()
    z = model.encode(tiny_input(benchmark_cfg))
    detached = tuple(t.detach() for t in _as_tuple(z))
    losses = weighted_losses(model.decode(detached if isinstance(z, tuple) else detached[0]))
    for task, loss in losses.items():
        grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True, retain_graph=True)
        touched = {id(p) for p, g in zip(model.parameters(), grads) if g is not None}
        assert touched == {id(p) for p in model.task_parameters(task)}, task


def test_features_mode_gradients_follow_the_chain_rule(benchmark_cfg: Benchmark) -> None:
    """dL_k/dθ computed directly equals (dz/dθ)^T (∂L_k/∂z), with ∂L_k/∂z taken at a detached copy of z
    (how the "features" estimators use the representation): z carries everything the heads read.

    Partial derivatives matter when z's parts are nested (DeepLabV3+'s layer4 map is computed from its
    layer1 map): the total derivative through the encoder would count that path twice.
    """
    model = tiny_model(benchmark_cfg).double().train()
    x = tiny_input(benchmark_cfg)
    if isinstance(x, torch.Tensor):
        x = x.double()
    elif isinstance(x, dict):
        x = {t: v.double() for t, v in x.items()}
    else:  # PyG batch
        x.x, x.edge_attr = x.x.double(), x.edge_attr.double()
    shared = model.shared_parameters()
    z = model.encode(x)
    zs = _as_tuple(z)
    leaves = tuple(t.detach().requires_grad_() for t in zs)
    torch.manual_seed(0)  # same dropout masks in both decodes
    losses_at_leaves = weighted_losses(model.decode(leaves if isinstance(z, tuple) else leaves[0]))
    torch.manual_seed(0)
    losses = weighted_losses(model.decode(z))
    checked = [*model.task_names[:2], model.task_names[-1]]  # one code path per task; keep CelebA's 40 cheap
    for task in dict.fromkeys(checked):
        loss = losses[task]
        grad_z = torch.autograd.grad(losses_at_leaves[task], leaves, retain_graph=True, allow_unused=True)
        grad_z = tuple(torch.zeros_like(t) if g is None else g for t, g in zip(zs, grad_z))
        assert any(g.abs().sum() > 0 for g in grad_z), f"loss of {task!r} does not depend on z"
        chained = torch.autograd.grad(zs, shared, grad_outputs=grad_z, retain_graph=True, allow_unused=True)
        direct = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
        for p, a, b in zip(shared, chained, direct):
            a = torch.zeros_like(p) if a is None else a
            b = torch.zeros_like(p) if b is None else b
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_initialisation_is_a_function_of_the_seed(benchmark_cfg: Benchmark) -> None:
    rng_before = torch.get_rng_state()
    first, again, other = (tiny_model(benchmark_cfg, seed=s).state_dict() for s in (7, 7, 8))
    assert torch.equal(torch.get_rng_state(), rng_before), "building a model consumed the global RNG"
    assert first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first if first[k].is_floating_point())


@pytest.mark.parametrize("bad_z", ["wrong_container", "wrong_layout"])
def test_decode_rejects_a_malformed_representation(benchmark_cfg: Benchmark, bad_z: str) -> None:
    model = tiny_model(benchmark_cfg).eval()
    with torch.no_grad():
        z = model.encode(tiny_input(benchmark_cfg))
    if isinstance(z, tuple):
        malformed = z[0] if bad_z == "wrong_container" else z[:-1]
    else:
        malformed = (z,) if bad_z == "wrong_container" else z[0]  # a tuple, or a map without batch dimension
    with pytest.raises(ValueError, match="decode expects"):
        model.decode(malformed)
