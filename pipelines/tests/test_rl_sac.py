"""Multi-task SAC (mtl_pipelines.rl.sac): the three loss families against hand computations on a tiny batch,
and the per-task gradients combined on the shared parameters against an independent computation."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_pipelines.rl.buffer import Batch, TaskReplayBuffer
from mtl_pipelines.rl.sac import MultiTaskSAC, SACUpdate, TaskGradientCombiner, check_method, per_task_mean

OBS, ACT, K = 5, 2, 2


def _agent(disentangled: bool = True) -> MultiTaskSAC:
    torch.manual_seed(0)
    agent = MultiTaskSAC(OBS, ACT, K, hidden_dim=8, num_layers=2, discount=0.9, disentangled_alpha=disentangled)
    with torch.no_grad():
        agent.log_alpha.copy_(torch.tensor([math.log(0.5), math.log(2.0)]))
        for p in agent.critic_target.parameters():  # targets different from the critic
            p.add_(0.1 * torch.randn_like(p))
    return agent


def _batch() -> Batch:
    g = torch.Generator().manual_seed(1)
    return Batch(
        obs=torch.randn(4, OBS, generator=g),
        action=torch.rand(4, ACT, generator=g) * 2 - 1,
        reward=torch.tensor([1.0, -0.5, 0.25, 2.0]),
        next_obs=torch.randn(4, OBS, generator=g),
        not_done=torch.tensor([1.0, 0.0, 1.0, 1.0]),
        task=torch.tensor([0, 1, 0, 1]),
    )


def _policy_by_hand(agent: MultiTaskSAC, obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, log pi(a|s))`` from the actor's raw outputs, the tanh-Gaussian density written out per sample."""
    raw = agent.actor.net(obs)
    mu, raw_log_std = raw[:, :ACT], raw[:, ACT:]
    log_std = -20.0 + 0.5 * 22.0 * (torch.tanh(raw_log_std) + 1)
    u = mu + noise * log_std.exp()
    a = torch.tanh(u)
    gauss = sum(-0.5 * noise[:, j] ** 2 - log_std[:, j] - 0.5 * math.log(2 * math.pi) for j in range(ACT))
    return a, gauss - sum(torch.log(1 - a[:, j] ** 2 + 1e-6) for j in range(ACT))


def test_actor_log_probability_is_the_tanh_gaussian_density() -> None:
    agent = _agent()
    obs, noise = torch.randn(6, OBS), torch.randn(6, ACT)
    mean, action, log_pi = agent.actor(obs, noise=noise)
    raw = agent.actor.net(obs)
    log_std = -20.0 + 11.0 * (torch.tanh(raw[:, ACT:]) + 1)
    base = torch.distributions.Normal(raw[:, :ACT], log_std.exp())
    squashed = torch.distributions.TransformedDistribution(base, [torch.distributions.TanhTransform()])
    pre = raw[:, :ACT] + noise * log_std.exp()
    # the same density up to mtrl's 1e-6 inside the log-Jacobian of tanh
    expected = base.log_prob(pre).sum(-1) - torch.log(1 - torch.tanh(pre) ** 2).sum(-1)
    torch.testing.assert_close(log_pi, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(action, torch.tanh(pre))
    torch.testing.assert_close(mean, torch.tanh(raw[:, :ACT]))
    assert torch.isfinite(squashed.log_prob(action.clamp(-0.999, 0.999))).all()


@pytest.mark.parametrize("disentangled", [True, False])
def test_critic_losses_are_the_td_errors_with_the_entropy_term_per_task(disentangled: bool) -> None:
    agent, batch = _agent(disentangled), _batch()
    torch.manual_seed(7)
    losses = agent.critic_losses(batch)
    torch.manual_seed(7)  # the same draw of a' ~ pi(.|s') as inside
    noise = torch.randn(4, ACT)
    with torch.no_grad():
        next_a, next_logp = _policy_by_hand(agent, batch.next_obs, noise)
        expected = torch.zeros(K)
        for b in range(4):
            task = int(batch.task[b])
            alpha = [0.5, 2.0][task] if disentangled else 0.5
            sa_next = torch.cat([batch.next_obs[b], next_a[b]])
            v = min(float(agent.critic_target.q1(sa_next)), float(agent.critic_target.q2(sa_next)))
            y = float(batch.reward[b]) + 0.9 * float(batch.not_done[b]) * (v - alpha * float(next_logp[b]))
            sa = torch.cat([batch.obs[b], batch.action[b]])
            expected[task] += ((float(agent.critic.q1(sa)) - y) ** 2 + (float(agent.critic.q2(sa)) - y) ** 2) / 2
    torch.testing.assert_close(losses.detach(), expected, rtol=1e-5, atol=1e-5)


def test_actor_and_temperature_losses_and_the_temperature_gradient() -> None:
    agent, batch = _agent(), _batch()
    torch.manual_seed(3)
    actor_losses, log_pi = agent.actor_losses(batch)
    torch.manual_seed(3)
    noise = torch.randn(4, ACT)
    with torch.no_grad():
        a, logp = _policy_by_hand(agent, batch.obs, noise)
        expected = torch.zeros(K)
        for b in range(4):
            task = int(batch.task[b])
            sa = torch.cat([batch.obs[b], a[b]])
            q = min(float(agent.critic.q1(sa)), float(agent.critic.q2(sa)))
            expected[task] += ([0.5, 2.0][task] * float(logp[b]) - q) / 2
    torch.testing.assert_close(actor_losses.detach(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(log_pi, logp, rtol=1e-5, atol=1e-5)

    temperature = agent.temperature_losses(log_pi, batch.task)
    h = -float(ACT)  # target entropy -|A|
    by_hand = [
        sum([0.5, 2.0][t] * (-float(log_pi[b]) - h) for b in range(4) if int(batch.task[b]) == t) / 2 for t in range(K)
    ]
    torch.testing.assert_close(temperature.detach(), torch.tensor(by_hand), rtol=1e-5, atol=1e-5)
    # d L_t / d log_alpha_t = alpha_t * mean(-log pi - H): each task's loss moves its own temperature only
    (grad,) = torch.autograd.grad(temperature[1], agent.log_alpha)
    torch.testing.assert_close(grad, torch.tensor([0.0, by_hand[1]]))


def test_per_task_mean_refuses_a_batch_without_some_task() -> None:
    torch.testing.assert_close(
        per_task_mean(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 1]), 2), torch.tensor([2.0, 5.0])
    )
    with pytest.raises(ValueError, match=r"tasks \[2\] have no transition"):
        per_task_mean(torch.tensor([1.0, 2.0]), torch.tensor([0, 1]), 3)


def _task_gradients(losses: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """One backward per task, flattened (independent of mtl_core.jacobian)."""
    return [
        torch.cat([g.flatten() for g in torch.autograd.grad(losses[i], params, retain_graph=True)])
        for i in range(len(losses))
    ]


def test_pcgrad_direction_on_the_critic_equals_the_projection_by_hand() -> None:
    agent, batch = _agent(), _batch()
    params = list(agent.critic.parameters())
    torch.manual_seed(0)
    losses = agent.critic_losses(batch)
    g1, g2 = _task_gradients(losses, params)
    # PCGrad with two tasks: each gradient loses its component along the other when they conflict; averaged
    # (mtrl's reduction), as the reference agent mtrl/agent/pcgrad.py
    p1 = g1 - min(float(g1 @ g2), 0.0) / float(g2 @ g2) * g2
    p2 = g2 - min(float(g2 @ g1), 0.0) / float(g1 @ g1) * g1
    expected = (p1 + p2) / 2
    TaskGradientCombiner(check_method("exact+pcgrad", {"reduction": "mean"}), K).backward(losses, params)
    got = torch.cat([p.grad.flatten() for p in params])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_a_weighting_backpropagates_the_sum_of_the_task_losses() -> None:
    agent, batch = _agent(), _batch()
    params = list(agent.actor.parameters())
    torch.manual_seed(0)
    losses, _ = agent.actor_losses(batch)
    expected = sum(_task_gradients(losses, params))
    TaskGradientCombiner(check_method("ls"), K).backward(losses, params)
    torch.testing.assert_close(torch.cat([p.grad.flatten() for p in params]), expected, rtol=1e-5, atol=1e-6)


def test_one_update_steps_each_group_with_its_combined_gradient_and_moves_the_targets() -> None:
    agent = _agent()
    buffer = TaskReplayBuffer(K, 8, OBS, ACT)
    for _ in range(3):
        buffer.add(torch.randn(K, OBS), torch.rand(K, ACT), torch.randn(K), torch.randn(K, OBS), torch.ones(K))
    before = {n: p.detach().clone() for n, p in agent.named_parameters()}
    target_before = [p.clone() for p in agent.critic_target.parameters()]
    update = SACUpdate(agent, "exact+cagrad", {"c": 0.9}, critic_tau=0.5)
    torch.manual_seed(0)
    out = update.update(buffer.sample(4))
    assert set(out) == {"critic", "actor", "temperature"} and all(len(v) == K for v in out.values())
    for name, p in agent.named_parameters():
        assert not torch.equal(p, before[name]), f"{name} was not updated"
    for p, old, new in zip(agent.critic.parameters(), target_before, agent.critic_target.parameters()):
        torch.testing.assert_close(new, 0.5 * old + 0.5 * p.detach())


@pytest.mark.parametrize("method", ["features+pcgrad", "samo+ls", "uw", "pcgrad"])
def test_methods_sac_cannot_train_are_refused_by_name(method: str) -> None:
    with pytest.raises(ValueError, match=method.split("+")[0] if "+" in method else method):
        check_method(method)


def test_the_buffer_samples_every_task_equally_and_round_trips_its_state() -> None:
    buffer = TaskReplayBuffer(3, 6, 2, 1)
    for i in range(3):
        buffer.add(torch.full((3, 2), float(i)), torch.zeros(3, 1), torch.arange(3.0), torch.zeros(3, 2), torch.ones(3))
    batch = buffer.sample(9)
    assert batch.task.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    torch.testing.assert_close(batch.reward, batch.task.float())  # each transition is its own task's
    copy = TaskReplayBuffer(3, 6, 2, 1)
    copy.load_state_dict(buffer.state_dict())
    torch.manual_seed(5)
    a = buffer.sample(6)
    torch.manual_seed(5)
    b = copy.sample(6)
    torch.testing.assert_close(a.obs, b.obs)
    with pytest.raises(ValueError, match="not a multiple of the number of tasks"):
        buffer.sample(4)
