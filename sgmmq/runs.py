"""Training runs in an output folder: hyperparameters, checkpoints, exact resume, the learning curve.

A run folder holds ``run.json`` (task, steps, seed, hyperparameters), ``model.zip`` (the final
model), ``curve.csv`` (one line per finished training episode: step, return), ``logs/`` (SB3's CSV
and TensorBoard output) and ``checkpoint/`` (model, replay window, random-generator and environment
states, written every ``checkpoint_every`` steps). Training always advances in chunks of
``checkpoint_every`` steps with the learning-rate and exploration schedules computed over the whole
budget, so a run resumed from its checkpoint continues exactly as the uninterrupted run would
(when the environment can be pickled: the classic-control tasks can; a Box2D task such as
LunarLander resumes from a fresh episode, so its curve differs from the uninterrupted one).
"""

from __future__ import annotations

import ast
import json
import pathlib
import random
from typing import Any

import cloudpickle
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from sgmmq import SGMMQ
from sgmmq.envs import TASKS, Task, get_task
from sgmmq.envs.factory import make_vec_env

PICKLABLE_ENV_MODULES = ("gymnasium.envs.classic_control",)
RUN_FILE, MODEL_FILE, CURVE_FILE, CHECKPOINT_DIR = "run.json", "model.zip", "curve.csv", "checkpoint"


# --- hyperparameters --------------------------------------------------------------------------
def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["batch_size=64", "policy_kwargs.n_components=16"]`` -> nested dict (values via literal_eval)."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set needs key=value, got {pair!r}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare word such as radam or residual
        node = result
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return result


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, recursing into nested dicts (policy_kwargs)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_config(path: str | pathlib.Path) -> dict[str, Any]:
    """Hyperparameters from a JSON or YAML file (a mapping, e.g. what ``sgmmq tune`` writes)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No config file at {path}")
    text = path.read_text()
    if path.suffix in (".yml", ".yaml"):
        import yaml

        config = yaml.safe_load(text)
    else:
        config = json.loads(text)
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a mapping of hyperparameters, got {type(config).__name__}")
    return config.get("hyperparameters", config)


def resolve_task(env_id: str) -> Task:
    """The declared task; a registered Gymnasium id outside the suite gets default settings."""
    if env_id in TASKS:
        return TASKS[env_id]
    import gymnasium as gym

    if env_id not in gym.registry:
        get_task(env_id)  # raises the "Unknown task ...; known tasks: ..." ValueError
    return Task(env_id, obs_low=(), obs_high=(), budget=100_000, score_range=(0.0, 1.0), success_threshold=float("inf"))


def make_env(task: Task, seed: int, n_envs: int = 1, continuous: bool = False) -> Any:
    """The task's VecEnv; ``continuous``: its native Box actions instead of the declared discretization."""
    if task.env_id in TASKS:
        return make_vec_env(task, n_envs=n_envs, seed=seed, continuous=continuous)
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    return sb3_make_vec_env(task.env_id, n_envs=n_envs, seed=seed)


def build_model(task: Task, seed: int, hyperparameters: dict[str, Any], env: Any = None, continuous: bool = False) -> SGMMQ:
    """SGMMQ on the task (``continuous``: its Box-action form) with its gamma unless overridden;
    unknown keys are a ValueError."""
    kwargs = {"gamma": task.gamma, **hyperparameters}
    env = env if env is not None else make_env(task, seed, continuous=continuous)
    try:
        model = SGMMQ("GMMPolicy", env, seed=seed, **kwargs)
    except TypeError as error:  # an unknown keyword: say which, without the traceback
        raise ValueError(f"bad hyperparameter: {error}") from None
    model.task_id = task.env_id  # saved with the model: eval/render/inspect find the task
    return model


# --- checkpoints and exact resume -------------------------------------------------------------
def _rng_states(model: SGMMQ) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "action_space": model.action_space.np_random.bit_generator.state,
    }


def _set_rng_states(model: SGMMQ, states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    model.action_space.np_random.bit_generator.state = states["action_space"]


def _restorable(env: Any) -> bool:
    """Only pure-Python envs pickle to a working copy (Box2D pickles without its world, then fails)."""
    envs = getattr(env, "envs", None)
    return envs is not None and all(type(e.unwrapped).__module__.startswith(PICKLABLE_ENV_MODULES) for e in envs)


def save_checkpoint(model: SGMMQ, folder: pathlib.Path, curve: list[tuple[int, float]]) -> None:
    """Model (with its pruner), replay window, RNG states, environment (when picklable), curve so far."""
    folder.mkdir(parents=True, exist_ok=True)
    env = model.get_env()
    env_bytes = cloudpickle.dumps(env) if _restorable(env) else None
    state = {"rng": _rng_states(model), "env": env_bytes, "curve": list(curve),
             "continuous": isinstance(model.action_space, spaces.Box)}
    model.save(folder / MODEL_FILE)
    model.save_replay_buffer(folder / "replay_buffer.pkl")
    (folder / "state.pkl").write_bytes(cloudpickle.dumps(state))


def load_checkpoint(folder: pathlib.Path, task: Task, seed: int) -> tuple[SGMMQ, list[tuple[int, float]], bool]:
    """The model as it was at the checkpoint; ``exact`` is False when the env had to be rebuilt."""
    if not (folder / "state.pkl").exists():
        raise FileNotFoundError(f"No checkpoint in {folder} to resume from")
    state = cloudpickle.loads((folder / "state.pkl").read_bytes())
    exact = state["env"] is not None
    env = cloudpickle.loads(state["env"]) if exact else make_env(task, seed, continuous=state.get("continuous", False))
    model = SGMMQ.load(folder / MODEL_FILE, env=env, force_reset=not exact)
    model.load_replay_buffer(folder / "replay_buffer.pkl")
    _set_rng_states(model, state["rng"])
    return model, state["curve"], exact


class RunCallback(BaseCallback):
    """Keeps the schedules on the whole budget, records the curve, drives the progress bar."""

    def __init__(self, total_timesteps: int, curve: list[tuple[int, float]], bar: Any = None) -> None:
        super().__init__()
        self.total, self.curve, self.bar = total_timesteps, curve, bar

    def _on_training_start(self) -> None:
        self.model._total_timesteps = self.total  # progress (lr, epsilon) over the whole run, not the chunk

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            if "episode" in info:
                self.curve.append((self.num_timesteps, float(info["episode"]["r"])))
        if self.bar is not None:
            self.bar.update(self.model.n_envs)
        return True


def train_run(
    model: SGMMQ,
    out: pathlib.Path,
    total_timesteps: int,
    checkpoint_every: int,
    curve: list[tuple[int, float]],
    stop_after: int | None = None,
    progress_bar: bool = True,
) -> bool:
    """Train to ``total_timesteps`` in checkpointed chunks; False when stopped early by ``stop_after``."""
    from tqdm.auto import tqdm

    log_folder = out / "logs" if model.num_timesteps == 0 else out / "logs" / f"resumed_at_{model.num_timesteps}"
    model.set_logger(configure(str(log_folder), ["csv", "tensorboard"]))
    bar = tqdm(total=total_timesteps, initial=model.num_timesteps, disable=not progress_bar, unit="step")
    callback = RunCallback(total_timesteps, curve, bar)
    try:
        while model.num_timesteps < total_timesteps:
            if stop_after is not None and model.num_timesteps >= stop_after:
                return False
            chunk = min(checkpoint_every, total_timesteps - model.num_timesteps)
            model.learn(chunk, callback=callback, reset_num_timesteps=model.num_timesteps == 0)
            save_checkpoint(model, out / CHECKPOINT_DIR, curve)
            write_curve(out / CURVE_FILE, curve)
    finally:
        bar.close()
    return True


def write_curve(path: pathlib.Path, curve: list[tuple[int, float]]) -> None:
    path.write_text("step,return\n" + "".join(f"{step},{ret!r}\n" for step, ret in curve))


def holds_run(out: pathlib.Path) -> bool:
    return any((out / name).exists() for name in (RUN_FILE, MODEL_FILE, CHECKPOINT_DIR))
