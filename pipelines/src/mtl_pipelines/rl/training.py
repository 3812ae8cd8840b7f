"""One multi-task SAC run on MT10: seeded, resumable, evaluated every ``eval_every`` environment steps.

The loop is facebookresearch/mtrl's (``mtrl/experiment/multitask.py run``): every step takes one action in each
of the ten environments (uniformly random for the first ``init_steps`` steps, then sampled from the policy),
stores one transition per task, and, from step ``init_steps`` on, makes one SAC update (``init_steps`` updates
at that step, as the reference); episodes restart every ``max_episode_steps`` steps. Every ``eval_every`` steps
(a multiple of the episode length) and after the last step, the deterministic policy (the squashed mean) runs
``eval_episodes`` episodes per task; a task's success rate is the share of its episodes with a success.

The run directory is owned by :mod:`mtl_pipelines.run` (:class:`MT10Run` brings its own config validation
and what the report reads: ``final.json`` only, there is no separate evaluation): ``config.yaml``,
``checkpoint.pt`` after every evaluation (agent, optimisers, method states, replay buffer, reward statistics,
RNG states, the evaluation history), ``metrics.jsonl``/``curves.json`` derived from it, ``final.json`` last.
A run killed at any point and started again resumes from the last checkpoint and ends with exactly the numbers
of an uninterrupted run (every random draw comes from torch's global generator, restored; environment resets
are deterministic).

In the workflow each run is a train job of the grid (:mod:`mtl_pipelines.kinds`, kind ``mt10_sac``; the runs
are planned by :func:`mtl_pipelines.rl.study.plan_runs`): ``mtl train --job`` calls :func:`train_mt10`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from mtl_pipelines.config import ConfigError, config_hash
from mtl_pipelines.run import FINAL, Run, place, seed_everything, set_rng_state

__all__ = ["KIND", "PROTOCOL", "MT10Run", "evaluate", "resolve_rl", "run_config", "run_id", "train_mt10"]

KIND = "mt10_sac"

#: The MT10 protocol of the reference runs, field by field (sources in protocol_facts.yaml, study 003_table5):
#: Cranial-XIX/CAGrad mtrl/mtrl_files/run.sh (steps, batch, evaluation episodes) and facebookresearch/mtrl
#: config/ (networks, optimisers, SAC constants, buffer, evaluation frequency, episode length).
PROTOCOL: dict[str, Any] = {
    "total_steps": 2_000_000,
    "init_steps": 1500,
    "batch_size": 1280,
    "buffer_capacity": 1_000_000,
    "eval_every": 30_000,  # mtrl evaluates at steps that are multiples of eval_freq 10,000 and of the episode (150)
    "eval_episodes": 1,
    "max_episode_steps": 150,
    "hidden_dim": 400,
    "num_layers": 3,
    "log_std_bounds": [-20.0, 2.0],
    "lr": 3e-4,
    "betas": [0.9, 0.999],
    "discount": 0.99,
    "init_temperature": 1.0,
    "critic_tau": 0.005,
    "actor_update_freq": 1,
    "target_update_freq": 1,
    "disentangled_alpha": False,
    "one_hot": False,
    "reward_function_version": "v1",
    "normalize_reward": True,
}

_INT_MIN_1 = ("total_steps", "init_steps", "batch_size", "buffer_capacity", "eval_every", "eval_episodes",
              "max_episode_steps", "hidden_dim", "actor_update_freq", "target_update_freq")  # fmt: skip
_BOOLS = ("disentangled_alpha", "one_hot", "normalize_reward")
_POSITIVE = ("lr", "init_temperature")
_UNIT = ("discount", "critic_tau")  # in (0, 1]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def check_protocol(protocol: Mapping[str, Any], where: str) -> None:
    """ConfigError naming ``where``, the field, the bad value and what is valid."""
    unknown = sorted(set(protocol) - set(PROTOCOL))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; valid: {sorted(PROTOCOL)}")

    def bad(field: str, valid: str) -> ConfigError:
        return ConfigError(f"{where}.{field}: {protocol[field]!r} is not valid; valid: {valid}")

    for field, value in protocol.items():
        if field in _INT_MIN_1 and not (_is_int(value) and value >= 1):
            raise bad(field, "an integer >= 1")
        if field == "num_layers" and not (_is_int(value) and value >= 0):
            raise bad(field, "an integer >= 0")
        if field in _BOOLS and not isinstance(value, bool):
            raise bad(field, "true or false")
        if field in _POSITIVE and not (_is_number(value) and value > 0):
            raise bad(field, "a number > 0")
        if field in _UNIT and not (_is_number(value) and 0 < value <= 1):
            raise bad(field, "a number in (0, 1]")
        if field == "reward_function_version" and value not in ("v1", "v2"):
            raise bad(field, "'v1' or 'v2'")
        if field in ("log_std_bounds", "betas") and not (
            isinstance(value, list) and len(value) == 2 and all(map(_is_number, value)) and value[0] < value[1]
        ):
            raise bad(field, "a list [low, high] of two numbers, low < high")
    full = {**PROTOCOL, **protocol}
    if full["eval_every"] % full["max_episode_steps"]:
        raise ConfigError(
            f"{where}.eval_every: {full['eval_every']} is not a multiple of max_episode_steps "
            f"{full['max_episode_steps']} (evaluations and checkpoints happen between episodes)"
        )
    if full["max_episode_steps"] > 500:
        raise ConfigError(f"{where}.max_episode_steps: {full['max_episode_steps']}; valid: at most 500 (Meta-World)")
    if full["batch_size"] % 10:
        raise ConfigError(f"{where}.batch_size: {full['batch_size']} is not valid; valid: a multiple of the 10 tasks")


def resolve_rl(config: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate an MT10 SAC run config and fill in the protocol's defaults (ConfigError naming the field)."""
    from mtl_pipelines.rl.sac import check_method

    if not isinstance(config, Mapping) or config.get("kind") != KIND:
        raise ConfigError(f"{source}: not an MT10 SAC run config (kind must be {KIND!r})")
    unknown = sorted(set(config) - {"kind", "name", "seed", "method", "protocol", "train"})
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {unknown}; valid: kind, name, seed, method, protocol, train")
    if not (_is_int(config.get("seed")) and config["seed"] >= 0):
        raise ConfigError(f"{source}: seed: {config.get('seed')!r} is not valid; valid: an integer >= 0")
    method = config.get("method")
    if not isinstance(method, Mapping) or not isinstance(method.get("name"), str):
        raise ConfigError(f"{source}: method must be {{name: <method>, options: {{...}}}}, got {method!r}")
    try:
        check_method(method["name"], method.get("options") or {})
    except ValueError as exc:
        raise ConfigError(f"{source}: method: {exc}") from None
    protocol = config.get("protocol") or {}
    if not isinstance(protocol, Mapping):
        raise ConfigError(f"{source}: protocol must be a mapping of the fields {sorted(PROTOCOL)}")
    check_protocol(protocol, f"{source}: protocol")
    train = dict(config.get("train") or {})
    if set(train) - {"device", "threads"}:
        raise ConfigError(f"{source}: train: unknown field(s) {sorted(set(train) - {'device', 'threads'})}")
    threads = train.setdefault("threads", 1)
    if not (_is_int(threads) and threads >= 1):
        raise ConfigError(f"{source}: train.threads: {threads!r} is not valid; valid: an integer >= 1")
    out = {
        "kind": KIND,
        "name": str(config.get("name", KIND)),
        "seed": config["seed"],
        "method": {"name": method["name"], "options": dict(method.get("options") or {})},
        "protocol": {**copy.deepcopy(PROTOCOL), **copy.deepcopy(dict(protocol))},
        "train": train,
    }
    return out


def run_config(method: str, options: Mapping[str, Any], seed: int, protocol: Mapping[str, Any], **train: Any) -> dict:
    """The resolved config of one run (``train``: ``device``, ``threads``)."""
    from mtl_pipelines.grid import _safe

    return resolve_rl(
        {
            "kind": KIND,
            "name": f"mt10-sac-{_safe(method)}",
            "seed": seed,
            "method": {"name": method, "options": dict(options)},
            "protocol": dict(protocol),
            "train": train,
        }
    )


def run_id(config: Mapping[str, Any]) -> str:
    """The directory name of a resolved run config: its name and hash (characters safe in a path)."""
    return f"{config['name']}-{config_hash(config)}"


class MT10Run(Run):
    """A run directory of an MT10 SAC run: :class:`mtl_pipelines.run.Run` with the RL config."""

    resolve_config = staticmethod(resolve_rl)

    def read_results(self) -> dict[str, Any]:
        """What the report reads: ``{"final", "diagnostics"}`` (the policy is evaluated while it trains: no
        ``eval.json``); FileNotFoundError names a run that is not finished and how to train it."""
        if not self.path(FINAL).is_file():
            raise FileNotFoundError(
                f"{self.path(FINAL)} is missing: MT10 run {self.dir.name} is not finished; train it (its train job "
                "of the workflow, or `mtl train --job <results>/jobs/<job>.yaml`): it resumes from its checkpoint"
            )
        # read_final checks the config hash; the checkpoint (with the replay buffer: ~0.4 GB at the paper's
        # scale) is not loaded by the report
        return {"final": self.read_final(), "diagnostics": []}


class _Trainee:
    """What :meth:`Run.save_checkpoint` stores as ``model`` / ``method`` / ``schedulers``."""

    def __init__(self, agent: Any, updater: Any) -> None:
        self.agent, self.updater = agent, updater

    def state(self) -> dict[str, Any]:
        return {"model": self.agent.state_dict(), "method": self.updater.state_dict(), "schedulers": []}


@torch.no_grad()
def evaluate(agent: Any, envs: Any, episodes: int, device: torch.device) -> list[float]:
    """Per task, the share of ``episodes`` deterministic-policy episodes with a success at any step."""
    import numpy as np

    successes = np.zeros(envs.num_tasks)
    for _ in range(episodes):
        obs = envs.reset()
        hit = np.zeros(envs.num_tasks, dtype=bool)
        for _ in range(envs.max_episode_steps):
            action = agent.act(torch.from_numpy(obs).to(device), sample=False).cpu().numpy()
            obs, _, success = envs.step(action, learn=False)
            hit |= success
        successes += hit
    return (successes / episodes).tolist()


def _record(step: int, tasks: list[str], success: list[float], losses: Mapping[str, list[float]], began: float) -> dict:
    return {
        "step": step,
        "success": dict(zip(tasks, success)),
        "mean_success": float(sum(success) / len(success)),
        "losses": {family: dict(zip(tasks, values)) for family, values in losses.items()},
        "seconds": time.perf_counter() - began,
    }


def _curves(history: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [
        {"step": r["step"], "mean_success": r["mean_success"], **{f"success/{t}": v for t, v in r["success"].items()}}
        for r in history
    ]


def train_mt10(
    config: Mapping[str, Any],
    run_dir: str | Path,
    *,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    stop_after_evaluations: int | None = None,
    device: str | None = None,
    restart: bool = False,
    trust_checkpoints: bool = False,
) -> dict[str, Any]:
    """Train (or resume, or read the finished) run of ``config`` in ``run_dir``; returns ``final.json``.

    The options are those of :func:`mtl_pipelines.train.train`: ``progress`` (a bar over the environment steps;
    False: none), ``device`` overrides ``train.device``, ``restart`` deletes the run's files first,
    ``trust_checkpoints`` opts in to old pickled checkpoints. ``stop_after_evaluations`` ends the process after
    that many evaluations in total (tests of resumption)."""
    from tqdm.auto import tqdm

    from mtl_pipelines.rl.buffer import TaskReplayBuffer
    from mtl_pipelines.rl.mt10 import MT10
    from mtl_pipelines.rl.sac import MultiTaskSAC, SACUpdate

    run = MT10Run(run_dir, config, trust_checkpoints=trust_checkpoints)
    config = run.config
    on = run.device(device)
    if restart:
        run.restart()
    saved = run.check()
    if saved is not None and run.path(FINAL).exists():
        return run.read_final()
    p = config["protocol"]
    envs = MT10(
        config["seed"],
        max_episode_steps=p["max_episode_steps"],
        one_hot=p["one_hot"],
        reward_function_version=p["reward_function_version"],
        normalize_reward=p["normalize_reward"],
    )
    run.begin()
    torch.set_num_threads(config["train"]["threads"])
    seed_everything(config["seed"])
    k = envs.num_tasks
    agent = MultiTaskSAC(
        envs.obs_dim,
        envs.action_dim,
        k,
        hidden_dim=p["hidden_dim"],
        num_layers=p["num_layers"],
        log_std_bounds=p["log_std_bounds"],
        init_temperature=p["init_temperature"],
        discount=p["discount"],
        disentangled_alpha=p["disentangled_alpha"],
    ).to(on)  # initialised on the CPU: the same weights on every device
    updater = SACUpdate(
        agent,
        config["method"]["name"],
        config["method"]["options"],
        lr=p["lr"],
        betas=p["betas"],
        critic_tau=p["critic_tau"],
        actor_update_freq=p["actor_update_freq"],
        target_update_freq=p["target_update_freq"],
    )
    buffer = TaskReplayBuffer(k, p["buffer_capacity"], envs.obs_dim, envs.action_dim)
    history: list[dict[str, Any]] = []
    step = 0
    if saved is not None:
        agent.load_state_dict(saved["model"])
        updater.load_state_dict(saved["method"])
        buffer.load_state_dict(saved["buffer"])
        envs.load_state_dict(saved["envs"])
        set_rng_state(saved["rng"], on)
        history, step = saved["history"], int(saved["step"])
        if log:
            log(f"resuming {run.dir} at step {step} on {on}")
    run.write_history(history, [], _curves(history))
    began = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    losses: dict[str, list[float]] = {}
    obs = None
    total, length = p["total_steps"], p["max_episode_steps"]
    bar = tqdm(total=total, initial=step, desc=config["name"], unit="step", disable=progress is False, leave=False)
    while step < total:
        if step % length == 0:
            obs = envs.reset()
        if step < p["init_steps"]:
            action = torch.rand(k, envs.action_dim) * 2 - 1
        else:
            action = agent.act(torch.from_numpy(obs).to(on), sample=True).cpu()
        if step >= p["init_steps"]:
            for _ in range(p["init_steps"] if step == p["init_steps"] else 1):
                losses = updater.update(place(buffer.sample(p["batch_size"]), on))
        next_obs, reward, _ = envs.step(action.numpy())
        # Meta-World does not end an episode before its time limit: every transition bootstraps (mtrl)
        buffer.add(torch.from_numpy(obs), action, torch.from_numpy(reward), torch.from_numpy(next_obs), torch.ones(k))
        obs = next_obs
        step += 1
        bar.update()
        if step % p["eval_every"] == 0 or step == total:
            success = evaluate(agent, envs, p["eval_episodes"], on)
            history.append(_record(step, envs.task_names, success, losses, began))
            if step < total:  # between episodes: the next step starts one, whatever the envs did meanwhile
                run.save_checkpoint(
                    len(history) - 1,
                    _Trainee(agent, updater),
                    on,
                    history=history,
                    diagnostics=[],
                    step=step,
                    buffer=buffer.state_dict(),
                    envs=envs.state_dict(),
                )
                run.write_history(history, [], _curves(history))
                if stop_after_evaluations is not None and len(history) >= stop_after_evaluations:
                    bar.close()
                    envs.close()
                    return {"stopped_after": step}
    bar.close()
    envs.close()
    # a finished run keeps its last checkpoint beside final.json (Run.check requires it)
    run.save_checkpoint(
        len(history) - 1, _Trainee(agent, updater), on, history=history, diagnostics=[], step=step,
        buffer=buffer.state_dict(), envs=envs.state_dict(),
    )  # fmt: skip
    run.write_history(history, [], _curves(history))
    last = history[-1]
    run.write_final(
        {
            "dataset": "metaworld_mt10",
            "model": "sac",
            "method": config["method"]["name"],
            "tasks": envs.task_names,
            "seed": config["seed"],
            "epochs": len(history),
            "steps": step,
            "seconds": last["seconds"],
            "success": last["mean_success"],
            "last": {t: {"success": v} for t, v in last["success"].items()},
            "last_k": {t: {"success": v} for t, v in last["success"].items()},
        }
    )
    return run.read_final()
