"""Training runs in an output folder: hyperparameters, checkpoints, exact resume, the learning curve.

A run folder holds ``run.json`` (task, steps, seed, hyperparameters; once finished, the final
evaluation), ``model.zip`` (the final model), ``curve.csv`` (one line per finished training episode: step, return), ``logs/`` (SB3's CSV
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
import os
import pathlib
import random
import shutil
import signal
from typing import Any

import cloudpickle
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from sgmmq import SGMMQ, files
from sgmmq.envs import TASKS, Task, get_task
from sgmmq.envs.factory import make_vec_env

PICKLABLE_ENV_MODULES = ("gymnasium.envs.classic_control",)
RUN_FILE, MODEL_FILE, CURVE_FILE, CHECKPOINT_DIR = "run.json", "model.zip", "curve.csv", "checkpoint"
BUFFER_FILE, STATE_FILE, MANIFEST_FILE = "replay_buffer.pkl", "state.pkl", "manifest.json"
CHECKPOINT_PARTS = (MODEL_FILE, BUFFER_FILE, STATE_FILE)
CHECKPOINT_FORMAT = 1


# --- hyperparameters --------------------------------------------------------------------------
def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["batch_size=64", "policy_kwargs.n_components=16"]`` -> nested dict (values via literal_eval;
    ``true``/``false``/``null``/``none`` as YAML and the study configs write them)."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set needs key=value, got {pair!r}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            # a bare word such as radam or residual
            value = {"true": True, "false": False, "null": None, "none": None}.get(text.strip().lower(), text)
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
    config = files.parse_config(path)
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


def with_task_gamma(task: Task, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters S-GMM-QF trains with on ``task``: the task's gamma unless they set one."""
    return {"gamma": task.gamma, **hyperparameters}


def build_model(task: Task, seed: int, hyperparameters: dict[str, Any], env: Any = None, continuous: bool = False) -> SGMMQ:
    """SGMMQ on the task (``continuous``: its Box-action form) with its gamma unless overridden;
    unknown keys are a ValueError."""
    kwargs = with_task_gamma(task, hyperparameters)
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


def _fault_point(name: str) -> None:
    """Test hook: ``SGMMQ_KILL_AT=NAME[@K]`` SIGKILLs this process the K-th time (default 1st) it
    reaches point ``NAME``, so that tests can kill it inside a checkpoint write deterministically."""
    spec = os.environ.get("SGMMQ_KILL_AT")
    if not spec or spec.partition("@")[0] != name:
        return
    _FAULT_COUNTS[name] = _FAULT_COUNTS.get(name, 0) + 1
    if _FAULT_COUNTS[name] == int(spec.partition("@")[2] or 1):
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


_FAULT_COUNTS: dict[str, int] = {}
FAULT_POINTS = ("checkpoint:model", "checkpoint:buffer", "checkpoint:state", "checkpoint:commit", "checkpoint:cleanup")


def save_checkpoint(model: SGMMQ, folder: pathlib.Path, curve: list[tuple[int, float]], run: dict[str, Any] | None = None) -> None:
    """Model (with its pruner), replay window, RNG states, environment (when picklable), curve so far.

    The parts go to a new folder ``step-N-PID``; the checkpoint becomes that folder in one atomic
    step, the rename of ``manifest.json`` (step, the run it belongs to, the SHA-256 of each part).
    A kill at any instant leaves the previous checkpoint or this one; older folders are removed after.
    """
    folder.mkdir(parents=True, exist_ok=True)
    step = int(model.num_timesteps)
    parts = folder / f"step-{step}-{os.getpid()}"
    shutil.rmtree(parts, ignore_errors=True)  # a killed writer's, if the pid came round again
    parts.mkdir()
    env = model.get_env()
    env_bytes = cloudpickle.dumps(env) if _restorable(env) else None
    state = {"rng": _rng_states(model), "env": env_bytes, "curve": list(curve),
             "continuous": isinstance(model.action_space, spaces.Box)}
    _fault_point("checkpoint:model")
    model.save(parts / MODEL_FILE)
    _fault_point("checkpoint:buffer")
    model.save_replay_buffer(parts / BUFFER_FILE)
    _fault_point("checkpoint:state")
    (parts / STATE_FILE).write_bytes(cloudpickle.dumps(state))
    hashes = {}
    for name in CHECKPOINT_PARTS:
        with open(parts / name, "rb+") as f:
            os.fsync(f.fileno())
        hashes[name] = files.sha256(parts / name)
    files.fsync_folder(parts)
    _fault_point("checkpoint:commit")
    manifest = {"format": CHECKPOINT_FORMAT, "step": step, "folder": parts.name, "parts": hashes, "run": run}
    files.write_json_atomic(folder / MANIFEST_FILE, manifest)
    _fault_point("checkpoint:cleanup")
    for stale in folder.iterdir():  # earlier checkpoints, folders of killed writers, pre-manifest parts
        if stale.name not in (parts.name, MANIFEST_FILE):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message says why in one line."""


def read_manifest(folder: pathlib.Path) -> dict[str, Any]:
    """The committed checkpoint's manifest, its parts checked against their hashes."""
    path = folder / MANIFEST_FILE
    if not path.exists():
        if (folder / STATE_FILE).exists():
            raise CheckpointError(f"{folder} has no {MANIFEST_FILE} (written by an sgmmq without crash-safe checkpoints); "
                                  "its parts cannot be shown to belong together: start the run again with --overwrite")
        raise FileNotFoundError(f"no checkpoint in {folder}")
    try:
        manifest = json.loads(path.read_text())
        parts_folder, step, hashes = folder / manifest["folder"], int(manifest["step"]), dict(manifest["parts"])
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path} is not a readable checkpoint manifest ({error})") from None
    if manifest.get("format") != CHECKPOINT_FORMAT or set(hashes) != set(CHECKPOINT_PARTS):
        raise CheckpointError(f"{path} is a checkpoint manifest of another format; this sgmmq writes format {CHECKPOINT_FORMAT}")
    for name, expected in hashes.items():
        part = parts_folder / name
        if not part.is_file() or files.sha256(part) != expected:
            why = "is missing" if not part.is_file() else "does not match the hash in the manifest (changed, truncated or from another checkpoint)"
            raise CheckpointError(f"checkpoint part {part} {why}; refusing to resume from parts that do not belong together")
    return {**manifest, "step": step, "path": parts_folder}


def load_checkpoint(
    folder: pathlib.Path, task: Task, seed: int, run: dict[str, Any] | None = None
) -> tuple[SGMMQ, list[tuple[int, float]], bool]:
    """The model as it was at the checkpoint; ``exact`` is False when the env had to be rebuilt.
    ``run`` (the run's settings), when given, must be the one the checkpoint was written for."""
    manifest = read_manifest(folder)
    if run is not None:  # a finished run's file also holds its final evaluation, which no checkpoint knows
        run = {key: value for key, value in run.items() if key != "final_evaluation"}
    if run is not None and manifest.get("run") is not None and manifest["run"] != run:
        raise CheckpointError(f"the checkpoint in {folder} was written for another run than its {RUN_FILE} describes "
                              f"(step {manifest['step']}); refusing to resume")
    parts = manifest["path"]
    state = cloudpickle.loads((parts / STATE_FILE).read_bytes())
    exact = state["env"] is not None
    env = cloudpickle.loads(state["env"]) if exact else make_env(task, seed, continuous=state.get("continuous", False))
    model = SGMMQ.load(parts / MODEL_FILE, env=env, force_reset=not exact)
    model.load_replay_buffer(parts / BUFFER_FILE)
    _set_rng_states(model, state["rng"])
    if model.num_timesteps != manifest["step"]:
        raise CheckpointError(f"checkpoint model in {parts} is at step {model.num_timesteps}, its manifest says {manifest['step']}")
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
    run: dict[str, Any] | None = None,
) -> bool:
    """Train to ``total_timesteps`` in checkpointed chunks; False when stopped early by ``stop_after``."""
    from tqdm.auto import tqdm

    for name, value in (("total_timesteps", total_timesteps), ("checkpoint_every", checkpoint_every)):
        if not isinstance(value, int) or value < 1:  # checkpoint_every=0 would learn(0) forever
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    log_folder = out / "logs" if model.num_timesteps == 0 else out / "logs" / f"resumed_at_{model.num_timesteps}"
    model.set_logger(configure(str(log_folder), ["csv", "tensorboard"]))
    bar = tqdm(total=total_timesteps, initial=model.num_timesteps, disable=not progress_bar, unit="step")
    callback = RunCallback(total_timesteps, curve, bar)
    write_curve(out / CURVE_FILE, curve)  # the checkpoint's curve: a kill after a commit may have left an older file
    try:
        while model.num_timesteps < total_timesteps:
            if stop_after is not None and model.num_timesteps >= stop_after:
                return False
            chunk = min(checkpoint_every, total_timesteps - model.num_timesteps)
            model.learn(chunk, callback=callback, reset_num_timesteps=model.num_timesteps == 0)
            save_checkpoint(model, out / CHECKPOINT_DIR, curve, run)
            write_curve(out / CURVE_FILE, curve)
    finally:
        bar.close()
    return True


def write_curve(path: pathlib.Path, curve: list[tuple[int, float]]) -> None:
    files.write_text_atomic(path, "step,return\n" + "".join(f"{step},{ret!r}\n" for step, ret in curve))


def holds_run(out: pathlib.Path) -> bool:
    return any((out / name).exists() for name in (RUN_FILE, MODEL_FILE, CHECKPOINT_DIR))
