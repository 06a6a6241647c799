"""The one environment factory that S-GMM-QF, the baselines and every script use.

``make_env`` returns a ``Monitor``-wrapped Gymnasium env with, in order: the action
discretization (tasks that declare ``action_bins``), optionally the fixed-box observation scaling,
and ``Monitor`` outermost so episode returns are the raw task rewards.

Observations are **unscaled by default**: the S-GMM-QF policy scales them itself from the task box
(``TASKS[env_id].obs_low/obs_high``), and the RL Zoo hyperparameters of the dense baselines were
tuned on raw observations (or on the zoo's own ``VecNormalize``). Pass ``scale_obs=True`` for a
method that should see ``[-1, 1]`` observations from the declared box.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sgmmq.envs.tasks import Task, get_task
from sgmmq.envs.wrappers import DiscretizeAction, ScaleObservation


def _task(task_or_id: Task | str) -> Task:
    return task_or_id if isinstance(task_or_id, Task) else get_task(task_or_id)


def wrap_task_env(env: gym.Env, task: Task | str, scale_obs: bool = False) -> gym.Env:
    """Apply the task's wrappers (discretization, optional scaling) to a bare env, without Monitor."""
    task = _task(task)
    if task.action_bins is not None:
        env = DiscretizeAction(env, task.action_bins)
    if scale_obs:
        env = ScaleObservation(env, *task.box)
    return env


def make_env(
    task_or_id: Task | str,
    seed: int | None = None,
    scale_obs: bool = False,
    monitor: bool = True,
    render_mode: str | None = None,
    **env_kwargs: Any,
) -> gym.Env:
    """One env of the task: discretized actions where declared, optional scaling, Monitor outermost.

    ``seed`` seeds the first ``reset`` and the action space; later resets continue that stream.
    """
    task = _task(task_or_id)
    env = gym.make(task.env_id, render_mode=render_mode, **env_kwargs)
    env = wrap_task_env(env, task, scale_obs=scale_obs)
    if monitor:
        env = Monitor(env)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def make_vec_env(
    task_or_id: Task | str,
    n_envs: int = 1,
    seed: int | None = None,
    scale_obs: bool = False,
    vec_env_cls: type[DummyVecEnv] | type[SubprocVecEnv] | None = None,
    **env_kwargs: Any,
) -> VecEnv:
    """``n_envs`` copies of the task via SB3's ``make_vec_env`` (env ``i`` is seeded ``seed + i``)."""
    task = _task(task_or_id)

    def wrapper(env: gym.Env) -> gym.Env:
        return wrap_task_env(env, task, scale_obs=scale_obs)

    return sb3_make_vec_env(
        task.env_id,
        n_envs=n_envs,
        seed=seed,
        wrapper_class=wrapper,
        env_kwargs=env_kwargs or None,
        vec_env_cls=vec_env_cls,
    )
