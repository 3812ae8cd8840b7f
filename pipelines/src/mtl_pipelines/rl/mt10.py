"""The MT10 benchmark of Meta-World (seed 003 sec. 6.3, [55]) as ten environments stepped together.

One environment per task, in Meta-World's MT10 order; each gets one fixed task (goal and object placement) for the
whole run, drawn with the run's seed among the benchmark's 50 per environment, as the reference runs do
(facebookresearch/mtenv ``mtenv/envs/metaworld/env.py``: one ``random.choice`` per environment, then
``env.set_task``). An episode lasts ``max_episode_steps`` steps (150 in facebookresearch/mtrl
``mtrl/experiment/metaworld.py``); Meta-World never terminates an episode early during training, so every
transition bootstraps. ``info["success"]`` is the per-step success flag; an episode succeeds if any of its
steps does (mtrl ``evaluate_vec_env_of_tasks``).

Optional, as the reference: the reward normalised by a running estimate of its variance
(``reward / sqrt(var)``, exponential moving average with rate 0.001, as garage's ``NormalizedEnvWrapper``
that mtenv wraps every MT10 environment in); and the one-hot task id appended to the observation
(Meta-World's multi-task SAC [55]; the reference run feeds the environment observation only). The
normaliser is written here rather than metaworld's ``NormalizeRewardsExponential`` because that wrapper
updates its running estimate twice per step.

MuJoCo runs headless (no rendering is asked for). Environment resets are deterministic once the task is set
(the task freezes the random placement), so a run resumed at an episode boundary continues exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np

__all__ = ["MT10", "REWARD_ALPHA", "MetaworldMissing", "require_metaworld"]

#: rate of the running reward-variance estimate (garage NormalizedEnvWrapper ``reward_alpha``, used by mtenv)
REWARD_ALPHA = 0.001
_EPS = 1e-8


class MetaworldMissing(ImportError):
    """metaworld (the optional extra ``rl``) is not installed."""


def require_metaworld() -> Any:
    """The ``metaworld`` module, or :class:`MetaworldMissing` saying how to install it."""
    try:
        import metaworld
    except ImportError as exc:
        raise MetaworldMissing(
            "the MT10 study needs metaworld (with mujoco and gymnasium): pip install 'mtl-pipelines[rl]' "
            "(pinned in requirements/constraints.txt)"
        ) from exc
    return metaworld


@cache
def _benchmark(seed: int) -> Any:
    """``metaworld.MT10(seed)``: the 50 tasks of each environment (500 environment resets, ~15 s), built once per
    process and seed (read-only: the runs of every method share it)."""
    return require_metaworld().MT10(seed=seed)


class MT10:
    """The ten MT10 environments of a run, stepped together: ``reset(episode)``, ``step(actions)``.

    Observations are ``float32 [10, obs_dim]`` (39 Meta-World features, plus the 10-dim one-hot task id when
    ``one_hot``); actions ``[10, 4]`` in ``[-1, 1]``. ``reward_function_version`` selects Meta-World's
    reward (``"v1"``: the original reward that results on the ``*-v1`` environments used, ``"v2"``: the
    updated one).
    """

    def __init__(
        self,
        seed: int,
        *,
        max_episode_steps: int = 150,
        one_hot: bool = False,
        reward_function_version: str = "v1",
        normalize_reward: bool = True,
    ) -> None:
        benchmark = _benchmark(seed)
        choose = np.random.default_rng(seed)  # the fixed task of each environment (mtenv: random.choice)
        self.task_names: list[str] = list(benchmark.train_classes)
        self.envs = []
        for name, env_cls in benchmark.train_classes.items():
            env = env_cls(reward_function_version=reward_function_version)
            tasks = [t for t in benchmark.train_tasks if t.env_name == name]
            env.set_task(tasks[int(choose.integers(len(tasks)))])
            if max_episode_steps > env.max_path_length:
                raise ValueError(
                    f"max_episode_steps {max_episode_steps} exceeds Meta-World's episode limit {env.max_path_length}"
                )
            self.envs.append(env)
        self.num_tasks = len(self.envs)
        self.max_episode_steps = max_episode_steps
        self.one_hot = one_hot
        self.normalize_reward = normalize_reward
        self.env_obs_dim = int(self.envs[0].observation_space.shape[0])
        self.obs_dim = self.env_obs_dim + (self.num_tasks if one_hot else 0)
        self.action_dim = int(self.envs[0].action_space.shape[0])
        # running reward statistics per environment (garage: mean 0, variance 1 at the start)
        self.reward_mean = np.zeros(self.num_tasks)
        self.reward_var = np.ones(self.num_tasks)

    def _observe(self, observations: list[np.ndarray]) -> np.ndarray:
        obs = np.stack(observations).astype(np.float32)
        if self.one_hot:
            obs = np.concatenate([obs, np.eye(self.num_tasks, dtype=np.float32)], axis=1)
        return obs

    def reset(self) -> np.ndarray:
        """Start an episode in every environment: the observations ``[10, obs_dim]``."""
        return self._observe([env.reset()[0] for env in self.envs])

    def step(self, actions: np.ndarray, *, learn: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step of every environment: ``(observations, rewards, successes)``, each with a leading axis of 10.

        With ``learn`` (training), the rewards are normalised (when enabled) and update the running statistics;
        without (evaluation) the raw rewards are returned and nothing changes."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (self.num_tasks, self.action_dim):
            raise ValueError(f"actions must have shape {(self.num_tasks, self.action_dim)}, got {actions.shape}")
        observations, rewards, successes = [], [], []
        for env, action in zip(self.envs, np.clip(actions, -1.0, 1.0)):
            obs, reward, _terminated, _truncated, info = env.step(action)
            observations.append(obs)
            rewards.append(float(reward))
            successes.append(bool(info["success"]))
        reward = np.asarray(rewards)
        if learn and self.normalize_reward:
            reward = self._normalise(reward)
        return self._observe(observations), reward.astype(np.float32), np.asarray(successes)

    def _normalise(self, reward: np.ndarray) -> np.ndarray:
        """garage ``NormalizedEnvWrapper._apply_normalize_reward``: update the running mean and variance, then
        divide by the running standard deviation (the mean is not subtracted)."""
        self.reward_mean = (1 - REWARD_ALPHA) * self.reward_mean + REWARD_ALPHA * reward
        self.reward_var = (1 - REWARD_ALPHA) * self.reward_var + REWARD_ALPHA * np.square(reward - self.reward_mean)
        return reward / (np.sqrt(self.reward_var) + _EPS)

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs besides the (deterministic) resets: the reward statistics."""
        return {"reward_mean": self.reward_mean.tolist(), "reward_var": self.reward_var.tolist()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        mean, var = np.asarray(state["reward_mean"], float), np.asarray(state["reward_var"], float)
        if mean.shape != (self.num_tasks,) or var.shape != (self.num_tasks,):
            raise ValueError(f"reward statistics for {mean.shape} environments, expected {self.num_tasks}")
        self.reward_mean, self.reward_var = mean, var

    def close(self) -> None:
        for env in self.envs:
            env.close()
