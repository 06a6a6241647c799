"""Measure how much of each observation the declared task box covers (provenance for envs/tasks.py).

Runs a uniformly random policy and a scripted reasonable policy (CartPole: a PD controller on the
pole angle; LunarLander: gymnasium's own ``heuristic`` lander; others: random only) and prints,
per observation dimension, the 0.1% / 99.9% quantiles, the min / max, and the fraction of
observations outside the declared box.

    python -m sgmmq.envs.measure_boxes --episodes 200
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

from sgmmq.envs.tasks import TASKS


def _cartpole_pd(obs: np.ndarray, rng: np.random.Generator) -> int:
    x, x_dot, theta, theta_dot = obs
    return int(theta + 0.5 * theta_dot + 0.01 * x + 0.05 * x_dot > 0)


def _lander_heuristic(env: gym.Env):
    from gymnasium.envs.box2d.lunar_lander import heuristic

    return lambda obs, rng: int(heuristic(env.unwrapped, obs))


def collect(env_id: str, policy: str, episodes: int, seed: int = 0) -> np.ndarray:
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    act = None
    if policy == "scripted":
        act = {"CartPole-v1": lambda e: _cartpole_pd, "LunarLander-v3": _lander_heuristic}[env_id](env)
    observations = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            observations.append(obs)
            action = env.action_space.sample() if act is None else act(obs, rng)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        observations.append(obs)
    env.close()
    return np.asarray(observations, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    args = parser.parse_args()
    np.set_printoptions(precision=3, suppress=True, linewidth=150)
    for env_id in args.tasks:
        task = TASKS[env_id]
        low, high = task.box
        policies = ["random"] + (["scripted"] if env_id in ("CartPole-v1", "LunarLander-v3") else [])
        for policy in policies:
            obs = collect(env_id, policy, args.episodes)
            outside = ((obs < low) | (obs > high)).mean(axis=0)
            print(f"{env_id} {policy}: {len(obs)} observations")
            print("  q0.1% ", np.quantile(obs, 0.001, axis=0))
            print("  q99.9%", np.quantile(obs, 0.999, axis=0))
            print("  min   ", obs.min(axis=0))
            print("  max   ", obs.max(axis=0))
            print("  out   ", outside)


if __name__ == "__main__":
    main()
