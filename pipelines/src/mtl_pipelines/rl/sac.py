"""Multi-task Soft Actor-Critic whose per-task losses are combined by an ``mtl_core`` method (seed 003 sec. 6.3:
"Soft Actor-Critic (SAC) [13] trained with various gradient altering methods [26, 37, 54]").

The agent is facebookresearch/mtrl's SAC (``mtrl/agent/sac.py``, ``mtrl/agent/components/actor.py`` and
``critic.py``) with one model shared by every task: a tanh-squashed Gaussian actor, twin critics with Polyak
averaged targets, and an entropy temperature per task (``log_alpha[K]``; with ``disentangled_alpha`` false,
as the reference runs, every task reads ``log_alpha[0]``). For a sampled batch, with ``alpha_i = exp(log_alpha)``
of the transition's task and ``B_i`` the transitions of task ``i``:

- critic: ``y = r + gamma * not_done * (min_j Q'_j(s', a') - alpha * log pi(a'|s'))`` with ``a' ~ pi(.|s')``
  (no gradient), ``L_i^Q = mean_{B_i} [(Q_1(s, a) - y)^2 + (Q_2(s, a) - y)^2]``;
- actor: ``L_i^pi = mean_{B_i} [alpha * log pi(a~|s) - min_j Q_j(s, a~)]`` with ``a~ ~ pi(.|s)`` reparameterised
  (alpha without gradient);
- temperature: ``L_i^alpha = mean_{B_i} [alpha * (-log pi(a~|s) - H_target)]`` (log pi without gradient),
  ``H_target = -|A|``.

Each family of K losses is turned into one update of its parameters the way the reference gradient-manipulation
agents do (mtrl ``mtrl/agent/grad_manipulation.py``, Cranial-XIX/CAGrad ``mtrl/mtrl_files/cagrad.py``): the
per-task gradients ``G[K, n]`` (:func:`mtl_core.jacobian`) are combined by the method's aggregator into the
direction written into ``.grad``, then Adam steps. A plain loss weighting (``ls``: the "MTL SAC" row) back-
propagates its weighted sum instead.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mtl_pipelines.rl.buffer import Batch

__all__ = [
    "Actor",
    "MultiTaskSAC",
    "SACUpdate",
    "TaskGradientCombiner",
    "TwinCritic",
    "check_method",
    "mlp",
    "per_task_mean",
]


def mlp(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> nn.Sequential:
    """mtrl ``build_mlp``: ``num_layers`` hidden ReLU layers of ``hidden_dim`` (none: one linear layer), Xavier-
    uniform weights and zero biases (mtrl ``agent/utils.py weight_init``)."""
    dims = [in_dim] + [hidden_dim] * num_layers
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(dims):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(dims[-1], out_dim))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy (mtrl ``components/actor.py``): the MLP gives ``mu`` and a raw log-std,
    squashed into ``log_std_bounds`` by ``tanh``."""

    def __init__(
        self, obs_dim: int, action_dim: int, hidden_dim: int, num_layers: int, log_std_bounds: Sequence[float]
    ):
        super().__init__()
        self.action_dim = action_dim
        self.net = mlp(obs_dim, hidden_dim, 2 * action_dim, num_layers)
        self.log_std_min, self.log_std_max = (float(b) for b in log_std_bounds)

    def forward(self, obs: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(tanh(mu), a, log pi(a|s))`` with ``a = tanh(mu + std * noise)``; ``noise`` ~ N(0, I) unless given.
        ``log pi`` is the Gaussian log-density minus ``sum log(1 - a^2 + 1e-6)`` (the change of variables of tanh,
        with mtrl's clamp)."""
        mu, log_std = self.net(obs).chunk(2, dim=-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(log_std) + 1)
        if noise is None:
            noise = torch.randn_like(mu)
        pre_tanh = mu + noise * log_std.exp()
        log_pi = (-0.5 * noise.pow(2) - log_std).sum(-1) - 0.5 * math.log(2 * math.pi) * mu.shape[-1]
        action = torch.tanh(pre_tanh)
        log_pi = log_pi - torch.log(torch.relu(1 - action.pow(2)) + 1e-6).sum(-1)
        return torch.tanh(mu), action, log_pi


class TwinCritic(nn.Module):
    """Two Q-networks on ``[s, a]`` (mtrl ``components/critic.py``)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_dim: int, num_layers: int):
        super().__init__()
        self.q1 = mlp(obs_dim + action_dim, hidden_dim, 1, num_layers)
        self.q2 = mlp(obs_dim + action_dim, hidden_dim, 1, num_layers)

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


def per_task_mean(values: Tensor, task: Tensor, num_tasks: int) -> Tensor:
    """``[K]``: the mean of ``values[b]`` over the transitions ``b`` of each task (mtrl
    ``_convert_loss_into_task_loss``); every task must occur in ``task``."""
    counts = torch.bincount(task, minlength=num_tasks)
    if bool((counts == 0).any()):
        raise ValueError(f"tasks {torch.nonzero(counts == 0).flatten().tolist()} have no transition in the batch")
    sums = torch.zeros(num_tasks, dtype=values.dtype, device=values.device).index_add(0, task, values)
    return sums / counts.to(values.dtype)


class MultiTaskSAC(nn.Module):
    """Actor, twin critics and their targets, ``log_alpha[K]``, and the three families of per-task losses."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        num_tasks: int,
        *,
        hidden_dim: int = 400,
        num_layers: int = 3,
        log_std_bounds: Sequence[float] = (-20.0, 2.0),
        init_temperature: float = 1.0,
        discount: float = 0.99,
        disentangled_alpha: bool = False,
    ) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.discount = discount
        self.disentangled_alpha = disentangled_alpha
        self.target_entropy = -float(action_dim)
        self.actor = Actor(obs_dim, action_dim, hidden_dim, num_layers, log_std_bounds)
        self.critic = TwinCritic(obs_dim, action_dim, hidden_dim, num_layers)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.full((num_tasks,), math.log(init_temperature)))

    def alpha(self, task: Tensor) -> Tensor:
        """The temperature of each transition's task (``log_alpha[0]`` for all without disentangled alphas)."""
        log_alpha = self.log_alpha[task] if self.disentangled_alpha else self.log_alpha[0].expand(task.shape)
        return log_alpha.exp()

    @torch.no_grad()
    def act(self, obs: Tensor, *, sample: bool) -> Tensor:
        """Actions for ``obs``: sampled (training) or the squashed mean (evaluation, which draws no noise)."""
        if not sample:
            return self.actor(obs, noise=torch.zeros(*obs.shape[:-1], self.actor.action_dim, device=obs.device))[0]
        return self.actor(obs)[1]

    def critic_losses(self, batch: Batch) -> Tensor:
        """``L^Q[K]`` (module docstring)."""
        with torch.no_grad():
            _, next_action, next_log_pi = self.actor(batch.next_obs)
            target_q1, target_q2 = self.critic_target(batch.next_obs, next_action)
            value = torch.min(target_q1, target_q2) - self.alpha(batch.task) * next_log_pi
            target = batch.reward + batch.not_done * self.discount * value
        q1, q2 = self.critic(batch.obs, batch.action)
        return per_task_mean((q1 - target).pow(2) + (q2 - target).pow(2), batch.task, self.num_tasks)

    def actor_losses(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(L^pi[K], log pi)`` (module docstring); ``log pi`` (detached) feeds the temperature losses."""
        _, action, log_pi = self.actor(batch.obs)
        q1, q2 = self.critic(batch.obs, action)
        per_sample = self.alpha(batch.task).detach() * log_pi - torch.min(q1, q2)
        return per_task_mean(per_sample, batch.task, self.num_tasks), log_pi.detach()

    def temperature_losses(self, log_pi: Tensor, task: Tensor) -> Tensor:
        """``L^alpha[K]`` (module docstring)."""
        per_sample = self.alpha(task) * (-log_pi - self.target_entropy)
        return per_task_mean(per_sample, task, self.num_tasks)

    @torch.no_grad()
    def update_target(self, tau: float) -> None:
        """Polyak averaging ``theta' <- tau * theta + (1 - tau) * theta'`` (mtrl ``soft_update_params``)."""
        for param, target in zip(self.critic.parameters(), self.critic_target.parameters()):
            target.lerp_(param, tau)


def check_method(method: str, options: Mapping[str, Any] | None = None) -> Any:
    """The parsed ``mtl_core`` method for SAC's per-task losses: a weighting without learnable parameters
    (``ls``...) or ``exact+<aggregator or weighting>`` (the gradients are w.r.t. all of a network's parameters:
    there is no shared representation for the ``features`` estimator, and the SAM family is not part of the
    protocol). ``ValueError`` names the method and what is valid."""
    from mtl_core import weightings
    from mtl_core.step import parse_method

    parsed = parse_method(method, dict(options or {}))
    if parsed.kind == "gradient" and parsed.estimator == "exact":
        return parsed
    if parsed.kind == "weighting":
        weighting = weightings.create(parsed.combiner, 2, **parsed.combiner_hparams)
        if not any(True for _ in weighting.parameters()):
            return parsed
    raise ValueError(
        f"method {method!r} cannot train multi-task SAC: give a loss weighting without learnable parameters "
        "(e.g. 'ls') or 'exact+<aggregator>' (e.g. 'exact+pcgrad')"
    )


class TaskGradientCombiner:
    """One ``mtl_core`` combiner turning K losses into the gradient of a parameter group (module docstring)."""

    def __init__(self, method: Any, num_tasks: int) -> None:
        from mtl_core import aggregators, weightings

        self.method = method
        registry = weightings if method.combiner_is_weighting else aggregators
        self.combiner = registry.create(method.combiner, num_tasks, **method.combiner_hparams)

    def backward(self, losses: Tensor, params: Sequence[Tensor]) -> None:
        """Write the combined direction of ``losses[K]`` into ``p.grad`` of every ``params``."""
        from mtl_core import jacobian

        if self.method.kind == "weighting":
            weights = self.combiner(losses.detach()).to(losses.dtype)
            grads = torch.autograd.grad((weights * losses).sum(), list(params))
        else:
            rows = jacobian(list(losses.unbind()), list(params))
            if self.method.combiner_is_weighting:
                direction = self.combiner(losses.detach()).to(rows.dtype) @ rows
            else:
                direction = self.combiner(rows, losses.detach())
            grads = torch.split(direction, [p.numel() for p in params])
        for param, grad in zip(params, grads):
            param.grad = grad.reshape(param.shape).detach().clone()

    def state_dict(self) -> dict[str, Any]:
        return self.combiner.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.combiner.load_state_dict(state)


class SACUpdate:
    """One SAC update per call (mtrl ``Agent.update``): critic, then actor and temperature, then the targets;
    Adam for each group (mtrl ``config/agent/optimizers/metaworld_*.yaml``), each loss family combined by its
    own instance of the method (stateful methods such as Nash-MTL keep one state per family)."""

    FAMILIES = ("critic", "actor", "temperature")

    def __init__(
        self,
        agent: MultiTaskSAC,
        method: str,
        options: Mapping[str, Any] | None = None,
        *,
        lr: float = 3e-4,
        betas: Sequence[float] = (0.9, 0.999),
        critic_tau: float = 0.005,
        actor_update_freq: int = 1,
        target_update_freq: int = 1,
    ) -> None:
        parsed = check_method(method, options)
        self.agent = agent
        self.critic_tau = critic_tau
        self.actor_update_freq = actor_update_freq
        self.target_update_freq = target_update_freq
        self.groups = {
            "critic": list(agent.critic.parameters()),
            "actor": list(agent.actor.parameters()),
            "temperature": [agent.log_alpha],
        }
        self.optimizers = {f: torch.optim.Adam(p, lr=lr, betas=tuple(betas)) for f, p in self.groups.items()}
        self.combiners = {f: TaskGradientCombiner(parsed, agent.num_tasks) for f in self.FAMILIES}
        self.updates = 0

    def _apply(self, family: str, losses: Tensor) -> None:
        self.optimizers[family].zero_grad(set_to_none=True)
        self.combiners[family].backward(losses, self.groups[family])
        self.optimizers[family].step()

    def update(self, batch: Batch) -> dict[str, list[float]]:
        """One update from ``batch``; returns the per-task losses before the update."""
        agent = self.agent
        out = {}
        critic = agent.critic_losses(batch)
        self._apply("critic", critic)
        out["critic"] = critic.detach().tolist()
        if self.updates % self.actor_update_freq == 0:
            actor, log_pi = agent.actor_losses(batch)
            self._apply("actor", actor)
            temperature = agent.temperature_losses(log_pi, batch.task)
            self._apply("temperature", temperature)
            out["actor"], out["temperature"] = actor.detach().tolist(), temperature.detach().tolist()
        if self.updates % self.target_update_freq == 0:
            agent.update_target(self.critic_tau)
        self.updates += 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "updates": self.updates,
            "optimizers": {f: o.state_dict() for f, o in self.optimizers.items()},
            "combiners": {f: c.state_dict() for f, c in self.combiners.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for family in self.FAMILIES:
            self.optimizers[family].load_state_dict(state["optimizers"][family])
            self.combiners[family].load_state_dict(state["combiners"][family])
        self.updates = int(state["updates"])
