"""Benchmark tasks (installed as ``sgmmq.envs``)."""

from sgmmq.envs.factory import make_env, make_vec_env, wrap_task_env
from sgmmq.envs.tasks import TASKS, Task, get_task
from sgmmq.envs.wrappers import DiscretizeAction, ScaleObservation

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
