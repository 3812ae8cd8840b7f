"""MT10 (mtl_pipelines.rl.mt10) and one seeded MT10 SAC run (mtl_pipelines.rl.training): the environments
(10 tasks, one-hot task id, success flags, reward normalisation), a deterministic tiny run, and a run killed
after its first checkpoint that resumes to exactly the numbers of an uninterrupted one.

Needs the extra ``rl`` (metaworld, mujoco); skipped with the reason without it. Building metaworld's MT10 task
list takes ~15-20 s on this machine (500 environment resets), once per process: the module is marked slow."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("metaworld", reason="metaworld is not installed (pip install 'mtl-pipelines[rl]')")

from mtl_pipelines.config import ConfigError
from mtl_pipelines.rl.mt10 import MT10, REWARD_ALPHA
from mtl_pipelines.rl.training import resolve_rl, run_config, train_mt10
from mtl_pipelines.run import RunError

pytestmark = pytest.mark.slow  # MT10's task list (see the module docstring)

MT10_TASKS = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
              "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3"]  # fmt: skip
TINY = {"total_steps": 40, "init_steps": 20, "max_episode_steps": 20, "eval_every": 20, "batch_size": 10,
        "buffer_capacity": 100, "hidden_dim": 8, "num_layers": 1}  # fmt: skip


def test_ten_tasks_with_the_one_hot_id_appended_and_a_success_flag_each() -> None:
    envs = MT10(0, max_episode_steps=20, one_hot=True, normalize_reward=True)
    assert envs.task_names == MT10_TASKS and envs.num_tasks == 10
    obs = envs.reset()
    assert obs.shape == (10, 39 + 10) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs[:, 39:], np.eye(10))
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (10, 4))
    raw_envs = MT10(0, max_episode_steps=20, one_hot=False, normalize_reward=False)
    raw_envs.reset()
    next_obs, reward, success = envs.step(actions)
    raw_obs, raw_reward, raw_success = raw_envs.step(actions)
    assert success.shape == (10,) and success.dtype == bool
    np.testing.assert_array_equal(success, raw_success)
    np.testing.assert_allclose(next_obs[:, :39], raw_obs)  # the same task, the same dynamics
    # garage's normaliser: mean and variance updated first (rate 0.001), the reward divided by the running std
    mean = REWARD_ALPHA * raw_reward
    var = (1 - REWARD_ALPHA) * 1.0 + REWARD_ALPHA * (raw_reward - mean) ** 2
    np.testing.assert_allclose(reward, raw_reward / (np.sqrt(var) + 1e-8), rtol=1e-6)
    # evaluation steps neither normalise nor move the statistics
    state = envs.state_dict()
    envs.step(actions, learn=False)
    assert envs.state_dict() == state
    # the task fixed per environment: a reset after steps starts where the first did
    np.testing.assert_array_equal(envs.reset(), obs)


def test_a_success_flag_comes_from_the_environment_info() -> None:
    """Reach's success is the hand within 5 cm of the goal: driving the hand there with a proportional
    controller on the observation (hand xyz = obs[0:3], goal xyz = obs[36:39]) gives a success."""
    envs = MT10(0, max_episode_steps=150)
    obs = envs.reset()
    hit = np.zeros(10, dtype=bool)
    for _ in range(150):
        actions = np.zeros((10, 4))
        actions[0, :3] = np.clip(10 * (obs[0, 36:39] - obs[0, 0:3]), -1, 1)
        obs, _, success = envs.step(actions, learn=False)
        hit |= success
    assert hit[0] and not hit[1:].any()


def _tiny(method: str = "exact+pcgrad", seed: int = 0, **extra: object) -> dict:
    return run_config(method, {"reduction": "mean"} if method == "exact+pcgrad" else {}, seed, {**TINY, **extra})


def _numbers(history: list[dict]) -> list[tuple]:
    return [(r["step"], r["success"], r["losses"]) for r in history]


def test_a_seeded_run_is_deterministic_and_resumes_exactly(tmp_path) -> None:
    from mtl_pipelines import io

    config = _tiny()
    first = train_mt10(config, tmp_path / "a")
    again = train_mt10(config, tmp_path / "b")
    assert first["epochs"] == 2 and first["steps"] == 40 and first["tasks"] == MT10_TASKS
    assert first["last"] == again["last"]
    full = io.read_jsonl(tmp_path / "a" / "metrics.jsonl")
    assert _numbers(full) == _numbers(io.read_jsonl(tmp_path / "b" / "metrics.jsonl"))
    assert full[-1]["losses"]["critic"], "the run made SAC updates"
    # killed after its first checkpoint, started again: the same numbers as the uninterrupted run
    assert train_mt10(config, tmp_path / "c", stop_after_evaluations=1) == {"stopped_after": 20}
    assert not (tmp_path / "c" / "final.json").exists()
    resumed = train_mt10(config, tmp_path / "c")
    assert resumed["last"] == first["last"]
    assert _numbers(io.read_jsonl(tmp_path / "c" / "metrics.jsonl")) == _numbers(full)
    # a finished run is read, not trained again; another seed is another run
    assert train_mt10(config, tmp_path / "a")["config_hash"] == first["config_hash"]
    other = train_mt10(_tiny(seed=1), tmp_path / "d")
    assert other["config_hash"] != first["config_hash"]


def test_a_directory_of_another_config_or_a_bad_config_is_refused(tmp_path) -> None:
    train_mt10(_tiny("ls"), tmp_path / "run", stop_after_evaluations=1)
    with pytest.raises(RunError, match="different config"):
        train_mt10(_tiny("ls", hidden_dim=16), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"protocol.eval_every: 30 is not a multiple of max_episode_steps 20"):
        resolve_rl({**_tiny("ls"), "protocol": {**TINY, "eval_every": 30}})
    with pytest.raises(ConfigError, match=r"protocol.batch_size: 0 is not valid; valid: an integer >= 1"):
        resolve_rl({**_tiny("ls"), "protocol": {**TINY, "batch_size": 0}})
    with pytest.raises(ConfigError, match=r"method: .*'features\+pcgrad' cannot train multi-task SAC"):
        resolve_rl({**_tiny("ls"), "method": {"name": "features+pcgrad"}})
