"""Build the SB3 model of a baseline for (method, task, seed, width) from the configs.

Methods:

- ``dqn_zoo``: DQN with the RL Zoo row of ``baselines.configs.DQN_ZOO``;
- ``dqn_sb3``: DQN with SB3's defaults (net [64, 64]) at the task's common budget;
- ``ppo_zoo`` / ``a2c_zoo``: PPO / A2C with the RL Zoo rows;
- ``sac_zoo`` / ``td3_zoo``: SAC / TD3 with the RL Zoo rows, on the task's native Box actions
  (Box-action tasks only: Pendulum-v1, MountainCarContinuous-v0, LunarLanderContinuous-v3);
- ``ars_linear``: sb3-contrib ARS with its ``LinearPolicy`` and ``n_delta=4`` (``baselines.configs.ARS_LINEAR``),
  the linear-policy baseline; it has one size (obs_dim x n_actions), so no ``net_arch``;
- ``ars_zoo``: ARS with the RL Zoo row (``ARS_ZOO``): an MLP policy where the zoo uses one; a
  ``net_arch`` makes it an MLP on any task (the row's other hyperparameters kept);
- ``ars_linear_continuous`` / ``ars_zoo_continuous``: the same on the native Box actions (Box-action
  tasks only; the linear policy's outputs are the action, clipped to the box);
- ``dqn_static`` / ``dqn_gmp`` / ``dqn_set`` / ``dqn_rigl``: ``baselines.sparse.SparseDQN`` with the
  task's zoo DQN row on ``SPARSE_DEFAULTS["net_arch"]`` at a ``live_budget``.

``net_arch`` replaces the network width of any method (the width sweep); ``overrides`` replaces
any other hyperparameter. Both are recorded in the returned spec, so no tuned value changes
silently.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from sgmmq.baselines.configs import ARS_LINEAR, DQN_SB3_DEFAULTS, SPARSE_DEFAULTS, zoo_config
from sgmmq.baselines.sparse import SPARSE_METHODS, SparseDQN
from sgmmq.envs.factory import make_vec_env
from sgmmq.envs.tasks import Task, get_task

DENSE_METHODS = ("dqn_zoo", "dqn_sb3", "ppo_zoo", "a2c_zoo")
# sb3-contrib ARS (random search on the policy's weights), on the declared actions and on the native Box ones
_ARS_DISCRETE = ("ars_linear", "ars_zoo")
ARS_METHODS = (*_ARS_DISCRETE, "ars_linear_continuous", "ars_zoo_continuous")
CONTINUOUS_METHODS = ("sac_zoo", "td3_zoo", "ars_linear_continuous", "ars_zoo_continuous")  # native Box actions
METHODS = DENSE_METHODS + CONTINUOUS_METHODS + _ARS_DISCRETE + tuple(f"dqn_{m}" for m in SPARSE_METHODS)
_CONFIG_ONLY_KEYS = ("n_timesteps", "n_envs", "normalize", "provenance", "dropped", "noise_type", "noise_std", "policy")
_NOISES = {"normal": NormalActionNoise, "ornstein-uhlenbeck": OrnsteinUhlenbeckActionNoise}


@dataclass
class BaselineSpec:
    """What was built: the resolved hyperparameters and where they came from."""

    method: str
    env_id: str
    seed: int
    n_timesteps: int
    n_envs: int
    normalize: bool
    algo_kwargs: dict[str, Any]
    provenance: str
    overrides: dict[str, Any] = field(default_factory=dict)


def _schedule(value: Any) -> Any:
    """The zoo's ``"lin_<x>"`` strings as SB3 schedules (x at the start, 0 at the end)."""
    if isinstance(value, str) and value.startswith("lin_"):
        return LinearSchedule(float(value[4:]), 0.0, 1.0)
    return value


def _ars() -> type[BaseAlgorithm]:
    """sb3-contrib's ARS, imported on use: sb3-contrib is an optional dependency (the study extra)."""
    try:
        from sb3_contrib import ARS
    except ImportError:
        raise ImportError("the ARS baselines need sb3-contrib: pip install 'sgmmq[study]'") from None
    return ARS


def resolve_config(
    method: str,
    task: Task | str,
    net_arch: list[int] | None = None,
    live_budget: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The hyperparameters of ``method`` on ``task`` (config keys plus SB3 keyword arguments)."""
    task = task if isinstance(task, Task) else get_task(task)
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; known: {', '.join(METHODS)}")
    if method == "dqn_sb3":
        config = dict(copy.deepcopy(DQN_SB3_DEFAULTS), n_timesteps=task.budget)
    elif method.startswith("ars_linear"):
        if net_arch is not None:
            raise ValueError(f"{method} is a linear policy (no hidden layer): it takes no net_arch; use ars_zoo for an MLP")
        config = dict(copy.deepcopy(ARS_LINEAR), n_timesteps=task.budget)
    elif method in ("dqn_zoo", "ppo_zoo", "a2c_zoo", "ars_zoo", *CONTINUOUS_METHODS):
        config = zoo_config(method.split("_")[0], task.env_id)
    else:  # sparse DQN: zoo row, SPARSE_DEFAULTS on top
        config = zoo_config("dqn", task.env_id)
        sparse = copy.deepcopy(SPARSE_DEFAULTS)
        config["provenance"] = f"{config['provenance']}; sparse: {sparse.pop('provenance')}"
        config.setdefault("policy_kwargs", {})["net_arch"] = sparse.pop("net_arch")
        config.update(sparse, sparse_method=method[len("dqn_"):], live_budget=live_budget)
        if live_budget is None:
            raise ValueError(f"{method} needs a live_budget")
    if net_arch is not None:
        config.setdefault("policy_kwargs", {})["net_arch"] = list(net_arch)
        if config.get("policy") == "LinearPolicy":  # the zoo's linear row (CartPole): a width needs the MLP
            config["policy"] = "MlpPolicy"
            config["provenance"] += "; MlpPolicy for the net_arch given"
    config.update(copy.deepcopy(overrides or {}))
    return config


def build_model(
    method: str,
    task: Task | str,
    seed: int,
    net_arch: list[int] | None = None,
    live_budget: int | None = None,
    overrides: dict[str, Any] | None = None,
    scale_obs: bool = False,
    logger: Logger | None = None,
    verbose: int = 0,
) -> tuple[BaseAlgorithm, BaselineSpec]:
    """The SB3 model of a baseline with its training env (seeded ``seed``), and its spec."""
    task = task if isinstance(task, Task) else get_task(task)
    config = resolve_config(method, task, net_arch, live_budget, overrides)
    n_envs = int(config.get("n_envs", 1))
    normalize = config.get("normalize", False)  # True, or VecNormalize keywords (ARS's zoo rows)
    kwargs = {k: _schedule(v) for k, v in config.items() if k not in _CONFIG_ONLY_KEYS}
    continuous = method in CONTINUOUS_METHODS
    env: VecEnv = make_vec_env(task, n_envs=n_envs, seed=seed, scale_obs=scale_obs, continuous=continuous)
    if "noise_type" in config:  # the zoo's action noise: sigma = noise_std in every action coordinate
        n_actions = env.action_space.shape[0]
        kwargs["action_noise"] = _NOISES[config["noise_type"]](
            mean=np.zeros(n_actions), sigma=float(config["noise_std"]) * np.ones(n_actions)
        )
    if normalize:  # the zoo's VecNormalize: obs and reward, gamma of the algorithm
        env = VecNormalize(env, gamma=kwargs.get("gamma", 0.99), **(normalize if isinstance(normalize, dict) else {}))
    algo = {"dqn": DQN, "ppo": PPO, "a2c": A2C, "sac": SAC, "td3": TD3}.get(method.split("_")[0])
    if method in ARS_METHODS:
        algo = _ars()
    if method[len("dqn_"):] in SPARSE_METHODS and method.startswith("dqn_"):
        algo = SparseDQN
    model = algo(config.get("policy", "MlpPolicy"), env, seed=seed, verbose=verbose, **kwargs)
    if logger is not None:
        model.set_logger(logger)
    spec = BaselineSpec(
        method=method,
        env_id=task.env_id,
        seed=seed,
        n_timesteps=int(config["n_timesteps"]),
        n_envs=n_envs,
        normalize=bool(normalize),
        algo_kwargs={k: v for k, v in config.items() if k not in ("provenance",)},
        provenance=config.get("provenance", ""),
        overrides={**({"net_arch": list(net_arch)} if net_arch is not None else {}), **(overrides or {})},
    )
    return model, spec
