"""Observation scaling to the task's fixed box, and action discretization for Box actions."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class ScaleObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Map observations affinely from the fixed box ``[low, high]`` to ``[-1, 1]``, then clip.

    The box is declared with the task (``Task.obs_low`` / ``Task.obs_high``), never estimated from
    data, so the same raw state always lands on the same scaled point.
    """

    def __init__(self, env: gym.Env, low: np.ndarray, high: np.ndarray):
        gym.utils.RecordConstructorArgs.__init__(self, low=low, high=high)
        super().__init__(env)
        low = np.asarray(low, dtype=np.float32)
        high = np.asarray(high, dtype=np.float32)
        shape = env.observation_space.shape
        if low.shape != shape or high.shape != shape:
            raise ValueError(f"box shape {low.shape}/{high.shape} does not match observations {shape}")
        if not np.all(high > low):
            raise ValueError("every dimension of the box needs high > low")
        self.low, self.high = low, high
        self._center = (high + low) / 2
        self._half_width = (high - low) / 2
        self.observation_space = spaces.Box(-1.0, 1.0, shape=shape, dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        scaled = (np.asarray(observation, dtype=np.float32) - self._center) / self._half_width
        return np.clip(scaled, -1.0, 1.0).astype(np.float32)


class DiscretizeAction(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Replace a Box action space by ``Discrete(bins ** d)``: ``bins`` evenly spaced values per dimension.

    For a 1-D action (Pendulum, MountainCarContinuous) action ``i`` is
    ``low + i * (high - low) / (bins - 1)``, so ``bins = 5`` on Pendulum gives the torques
    -2, -1, 0, 1, 2 and the middle bin is exactly zero when the box is symmetric. For ``d > 1`` the
    index enumerates the grid in row-major order (DQN needs a single Discrete space).
    """

    def __init__(self, env: gym.Env, bins: int):
        gym.utils.RecordConstructorArgs.__init__(self, bins=bins)
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, spaces.Box):
            raise TypeError(f"DiscretizeAction needs a Box action space, got {space}")
        if bins < 2:
            raise ValueError("bins must be at least 2")
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError("DiscretizeAction needs a bounded action box")
        low, high = space.low.reshape(-1), space.high.reshape(-1)
        self.bins = bins
        self.values = np.linspace(low, high, bins, dtype=np.float64).T.astype(space.dtype)  # (d, bins)
        grid = itertools.product(*(range(bins) for _ in range(low.size)))
        self.table = np.array([[self.values[j, k] for j, k in enumerate(idx)] for idx in grid], dtype=space.dtype)
        self.table = self.table.reshape((-1, *space.shape))
        self.action_space = spaces.Discrete(len(self.table))

    def action(self, action) -> np.ndarray:
        return self.table[int(action)].copy()
