"""Benchmark tasks (installed as ``sgmmq.envs``).

Importing it registers every task's observation box with :mod:`sgmmq.registry` (``import sgmmq``
does that); the env factory and wrappers (gymnasium, SB3) are imported on first use.
"""

from typing import Any

from sgmmq.envs.tasks import TASKS, Task, get_task

__all__ = [
    "TASKS",
    "DiscretizeAction",
    "ScaleObservation",
    "Task",
    "get_task",
    "make_env",
    "make_vec_env",
    "wrap_task_env",
]

_LAZY = {"make_env": "factory", "make_vec_env": "factory", "wrap_task_env": "factory",
         "DiscretizeAction": "wrappers", "ScaleObservation": "wrappers"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"sgmmq.envs.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'sgmmq.envs' has no attribute {name!r}")
