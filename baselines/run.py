"""Train one baseline on one task with one seed, then evaluate it.

    python -m sgmmq.baselines.run dqn_zoo CartPole-v1 --seed 0
    python -m sgmmq.baselines.run dqn_rigl CartPole-v1 --seed 0 --live-budget 1000

Evaluation: ``task.eval_episodes`` deterministic episodes (``evaluate_policy``) on an env seeded
``seed + EVAL_SEED_OFFSET``, never the training env. With the zoo's ``VecNormalize`` the
evaluation env uses the frozen training statistics and raw rewards.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.logger import Logger

from sgmmq.baselines.dense import METHODS, build_model
from sgmmq.envs.tasks import Task, get_task
from sgmmq.evaluation import count_parameters, evaluate, score_summary



def train_and_evaluate(
    method: str,
    task: Task | str,
    seed: int,
    net_arch: list[int] | None = None,
    live_budget: int | None = None,
    n_timesteps: int | None = None,
    overrides: dict[str, Any] | None = None,
    scale_obs: bool = False,
    save_path: str | None = None,
    verbose: int = 0,
    eval_episodes: int | None = None,
) -> dict[str, Any]:
    """Train, evaluate (``eval_episodes`` defaults to the task's) and count; a JSON-ready dict of the run."""
    th.set_num_threads(1)
    task = task if isinstance(task, Task) else get_task(task)
    overrides = dict(overrides or {})
    if n_timesteps is not None:
        overrides["n_timesteps"] = int(n_timesteps)
    model, spec = build_model(
        method, task, seed, net_arch=net_arch, live_budget=live_budget, overrides=overrides,
        scale_obs=scale_obs, logger=Logger(folder=None, output_formats=[]), verbose=verbose,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=spec.n_timesteps)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    returns = evaluate(model, task, seed, n_episodes=eval_episodes, scale_obs=scale_obs)
    eval_s = time.perf_counter() - start
    if save_path is not None:
        model.save(save_path)
    result = {
        "method": method,
        "env_id": task.env_id,
        "seed": seed,
        "net_arch": (spec.algo_kwargs.get("policy_kwargs") or {}).get("net_arch"),
        "live_budget": live_budget,
        "n_timesteps": spec.n_timesteps,
        **score_summary(task, returns),
        "params": count_parameters(model),
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "scale_obs": scale_obs,
        "spec": json.loads(json.dumps(asdict(spec), default=str)),
    }
    if hasattr(model, "masks"):
        result["sparsity"] = model.sparsity()
        result["topology_updates"] = model.topology_updates
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Train and evaluate one deep-RL baseline.")
    parser.add_argument("method", choices=METHODS)
    parser.add_argument("env_id")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--net-arch", type=int, nargs="*", default=None)
    parser.add_argument("--live-budget", type=int, default=None)
    parser.add_argument("--n-timesteps", type=int, default=None)
    parser.add_argument("--scale-obs", action="store_true")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    result = train_and_evaluate(
        args.method, args.env_id, args.seed, net_arch=args.net_arch, live_budget=args.live_budget,
        n_timesteps=args.n_timesteps, scale_obs=args.scale_obs, save_path=args.save,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
