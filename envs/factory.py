"""The one environment factory that S-GMM-QF, the baselines and every script use.

``make_env`` returns a ``Monitor``-wrapped Gymnasium env with, in order: the action
discretization (tasks that declare ``action_bins``, unless ``continuous=True`` asks for their
native Box actions), optionally the fixed-box observation scaling, and ``Monitor`` outermost so
episode returns are the raw task rewards.

Observations are **unscaled by default**: the S-GMM-QF policy scales them itself from the task box
(``TASKS[env_id].obs_low/obs_high``), and the RL Zoo hyperparameters of the dense baselines were
tuned on raw observations (or on the zoo's own ``VecNormalize``). Pass ``scale_obs=True`` for a
method that should see ``[-1, 1]`` observations from the declared box.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sgmmq.envs.tasks import TASKS, Task, get_task
from sgmmq.envs.wrappers import DiscretizeAction, ScaleObservation


def _task(task_or_id: Task | str) -> Task:
    return task_or_id if isinstance(task_or_id, Task) else get_task(task_or_id)


def check_form(task: Task, continuous: bool) -> None:
    if continuous and not task.has_continuous_form:
        raise ValueError(f"{task.env_id} has discrete actions: it has no continuous form (Box-action tasks: "
                         + ", ".join(t for t, declared in TASKS.items() if declared.has_continuous_form) + ")")


def is_continuous(action_space: spaces.Space) -> bool:
    """The form a model with this action space runs on (for evaluating a saved model)."""
    return isinstance(action_space, spaces.Box)


def _make(task: Task, **kwargs: Any) -> gym.Env:
    return gym.make(task.make_id or task.env_id, **dict(task.make_kwargs), **kwargs)


def wrap_task_env(env: gym.Env, task: Task | str, scale_obs: bool = False, continuous: bool = False) -> gym.Env:
    """Apply the task's wrappers (discretization unless ``continuous``, optional scaling) to a bare env, without Monitor."""
    task = _task(task)
    check_form(task, continuous)
    if task.action_bins is not None and not continuous:
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
    continuous: bool = False,
    **env_kwargs: Any,
) -> gym.Env:
    """One env of the task: discretized actions where declared (``continuous``: the native Box
    actions), optional scaling, Monitor outermost.

    ``seed`` seeds the first ``reset`` and the action space; later resets continue that stream.
    """
    task = _task(task_or_id)
    check_form(task, continuous)
    env = _make(task, render_mode=render_mode, **env_kwargs)
    env = wrap_task_env(env, task, scale_obs=scale_obs, continuous=continuous)
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
    continuous: bool = False,
    **env_kwargs: Any,
) -> VecEnv:
    """``n_envs`` copies of the task via SB3's ``make_vec_env`` (env ``i`` is seeded ``seed + i``)."""
    task = _task(task_or_id)
    check_form(task, continuous)

    def wrapper(env: gym.Env) -> gym.Env:
        return wrap_task_env(env, task, scale_obs=scale_obs, continuous=continuous)

    return sb3_make_vec_env(
        task.env_id if task.make_id is None else functools.partial(_make, task),
        n_envs=n_envs,
        seed=seed,
        wrapper_class=wrapper,
        env_kwargs=env_kwargs or None,
        vec_env_cls=vec_env_cls,
    )
