"""What the agent may know about a task: its declared observation box and its default hyperparameters.

The benchmark suite (``sgmmq.envs``) fills this registry when it is imported (``import sgmmq``
imports it, as ``import gymnasium`` registers gymnasium's envs), so the agent finds a task's box
and defaults by its Gymnasium id without importing the suite: the core depends on nothing of the
suite, the suite on the core. Any other package can register its own tasks the same way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TaskEntry:
    """A registered task: its observation box and the hyperparameters SGMMQ takes by default on it."""

    obs_low: tuple[float, ...]
    obs_high: tuple[float, ...]
    hyperparameters: dict[str, Any] = field(default_factory=dict)


_TASKS: dict[str, TaskEntry] = {}


def register_task(env_id: str, obs_low: Any, obs_high: Any, hyperparameters: dict[str, Any] | None = None) -> None:
    """Declare ``env_id``'s observation box (``SGMMQ`` scales observations from it) and the SGMMQ
    arguments it takes on this task unless the user passes them. Registering an id again replaces it."""
    low, high = tuple(float(x) for x in obs_low), tuple(float(x) for x in obs_high)
    if len(low) != len(high):
        raise ValueError(f"{env_id}: obs_low has {len(low)} entries and obs_high {len(high)}")
    if any(lo >= hi for lo, hi in zip(low, high)):
        raise ValueError(f"{env_id}: every obs_low entry must be below its obs_high entry, got {low} and {high}")
    if hyperparameters is not None and not isinstance(hyperparameters, dict):
        raise ValueError(f"{env_id}: hyperparameters must be a dict of SGMMQ arguments, got {hyperparameters!r}")
    _TASKS[env_id] = TaskEntry(low, high, copy.deepcopy(dict(hyperparameters or {})))


def declared_box(env_id: str | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(obs_low, obs_high)`` of a registered task, else None."""
    entry = _TASKS.get(env_id) if env_id is not None else None
    return None if entry is None else (entry.obs_low, entry.obs_high)


def task_hyperparameters(env_id: str | None) -> dict[str, Any]:
    """A copy of the task's registered SGMMQ defaults (empty for an unregistered id)."""
    entry = _TASKS.get(env_id) if env_id is not None else None
    return {} if entry is None else copy.deepcopy(entry.hyperparameters)


def registered() -> tuple[str, ...]:
    return tuple(_TASKS)


def unregister_task(env_id: str) -> None:
    """Forget a task (tests register fakes and clean up)."""
    _TASKS.pop(env_id, None)
