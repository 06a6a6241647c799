"""The one builder: a model for (method, task, seed, budget, overrides), S-GMM-QF or any baseline.

The study, the speed benchmark and the deployment-cost measurement build through :func:`build`;
``sgmmq train`` and ``sgmmq tune`` build S-GMM-QF through :func:`sgmmq.runs.build_model`, which
``build`` calls too, so every S-GMM-QF model gets the task's gamma (and, through the SGMMQ
constructor, the task's registered defaults) in one place.
"""

from __future__ import annotations

import copy
import inspect
import json
from dataclasses import asdict
from typing import Any

from sgmmq.envs.tasks import Task, get_task

# S-GMM-QF on the task's declared (discretized) actions, and on the native Box actions of a Box-action task
SGMMQ_METHODS = ("sgmmq", "sgmmq_continuous")


def sgmmq_hyperparameters(budget_key: str | None, budget: Any, overrides: dict[str, Any] | None,
                          task: str | None = None, task_defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """S-GMM-QF's keyword arguments for a budget and overrides (a copy, as the run file records it):
    what :func:`build` gives SGMMQ, and the study's batched jobs give every seed's agent.

    ``task_defaults``: the task's registered defaults the run was planned with (``None``: whatever the
    registry holds). A registered default missing from it is passed explicitly at the signature's value,
    so that a sweep planned without the task's defaults (``task_defaults: false``) trains without them."""
    hyperparameters = json.loads(json.dumps(overrides or {}))
    if budget_key == "n_components":
        hyperparameters.setdefault("policy_kwargs", {})["n_components"] = int(budget)
    if task is not None and task_defaults is not None:
        from sgmmq import registry
        from sgmmq.agent import SGMMQ

        signature = inspect.signature(SGMMQ.__init__).parameters
        for name in registry.task_hyperparameters(task):
            if name not in task_defaults and name not in hyperparameters:
                hyperparameters[name] = signature[name].default
    return hyperparameters


def build(
    method: str,
    task: Task | str,
    seed: int,
    budget_key: str | None = None,
    budget: Any = None,
    overrides: dict[str, Any] | None = None,
    steps: int | None = None,
    logger: Any = None,
    task_defaults: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The model (its training env seeded ``seed``) and the hyperparameters it was built with.

    ``budget_key``/``budget``: its size (``n_components`` for S-GMM-QF; ``net_arch`` or
    ``live_budget`` for the baselines); ``steps``: a baseline's training budget, recorded as its
    ``n_timesteps`` (S-GMM-QF's budget is the caller's ``learn`` argument); ``logger``: set on the
    model (e.g. a silent one)."""
    task = task if isinstance(task, Task) else get_task(task)
    if method in SGMMQ_METHODS:
        from sgmmq import runs

        hyperparameters = sgmmq_hyperparameters(budget_key, budget, overrides, task.env_id, task_defaults)
        model = runs.build_model(task, seed, hyperparameters, continuous=method == "sgmmq_continuous")
        recorded = runs.with_task_gamma(task, hyperparameters)
    else:
        from sgmmq.baselines.dense import build_model

        overrides = copy.deepcopy(overrides or {})
        if steps is not None:
            overrides["n_timesteps"] = int(steps)
        model, spec = build_model(
            method, task, seed,
            net_arch=budget if budget_key == "net_arch" else None,
            live_budget=budget if budget_key == "live_budget" else None,
            overrides=overrides,
        )
        recorded = json.loads(json.dumps(asdict(spec), default=str))
    if logger is not None:
        model.set_logger(logger)
    return model, recorded
