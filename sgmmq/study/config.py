"""The sweep config: tasks x methods x parameter budgets x seeds, read from YAML, JSON or TOML.

```yaml
name: smoke
tasks: [CartPole-v1]
seeds: 2                  # 2 -> seeds 0, 1; or a list; or {default: 5, CartPole-v1: 10}
steps: 2000               # or null (each task's budget), or {default: null, CartPole-v1: 50000}
eval_every: 500           # steps between evaluations during training
eval_episodes: 5          # deterministic episodes per intermediate evaluation
final_eval_episodes: null # null: the task's eval_episodes
methods:
  - method: sgmmq         # S-GMM-QF; budgets through policy_kwargs.n_components
    n_components: [8, 32]
  - method: sgmmq_continuous  # S-GMM-QF on the native Box actions (Box-action tasks only)
    n_components: [8, 32]
  - method: dqn_zoo       # any of sgmmq.baselines.dense.METHODS; budgets through net_arch ...
    net_arch: [[16, 16], [64, 64]]
  - method: dqn_rigl      # ... or, for the sparse DQNs, live_budget
    live_budget: [500, 1000]
    overrides: {}         # any other hyperparameter (the same for every budget)
    label: rigl           # name in tables and plots (default: the method)
    tasks: [CartPole-v1]  # restrict this entry to some tasks (default: all)
```

``expand(config)`` turns it into ``Run``s with stable ids, e.g. ``CartPole-v1__sgmmq__k8__s0``.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import asdict, dataclass, field
from typing import Any

from sgmmq.envs.tasks import get_task

BUDGET_KEYS = ("n_components", "net_arch", "live_budget")  # S-GMM-QF, dense widths, sparse DQN
# S-GMM-QF on the task's declared (discretized) actions, and on the native Box actions of a Box-action task
SGMMQ_METHODS = ("sgmmq", "sgmmq_continuous")
_ENTRY_KEYS = {"method", "label", "overrides", "tasks", *BUDGET_KEYS}
_TOP_KEYS = {"name", "tasks", "seeds", "steps", "eval_every", "eval_episodes", "final_eval_episodes", "methods", "description"}


@dataclass(frozen=True)
class Run:
    """One training run of the sweep: everything a worker needs, JSON-serializable."""

    task: str
    method: str  # one of SGMMQ_METHODS or a baseline of sgmmq.baselines.dense.METHODS
    label: str  # the method's name in tables and plots
    budget_key: str | None  # which of BUDGET_KEYS sets the size, or None (the method's default size)
    budget: Any  # its value: an int, or a list of widths
    seed: int
    steps: int
    eval_every: int
    eval_episodes: int
    final_eval_episodes: int
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.task}__{self.label}__{budget_tag(self.budget_key, self.budget)}__s{self.seed}"

    @property
    def config_name(self) -> str:
        """The (method, budget) this run is a seed of."""
        return f"{self.label} {budget_tag(self.budget_key, self.budget)}"

    def settings(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def budget_tag(key: str | None, value: Any) -> str:
    if key is None:
        return "default"
    if key == "n_components":
        return f"k{value}"
    if key == "net_arch":
        return "w" + "x".join(str(w) for w in value)
    return f"b{value}"


def read(path: str | pathlib.Path) -> dict[str, Any]:
    """A config file (``.yml``/``.yaml``, ``.json`` or ``.toml``) as a dict, checked."""
    path = pathlib.Path(path)
    text = path.read_text()
    if path.suffix in (".yml", ".yaml"):
        import yaml

        config = yaml.safe_load(text)
    elif path.suffix == ".json":
        config = json.loads(text)
    elif path.suffix == ".toml":
        import tomllib  # Python 3.11+

        config = tomllib.loads(text)
    else:
        raise ValueError(f"{path}: a sweep config is .yml, .yaml, .json or .toml")
    check(config, str(path))
    return config


def check(config: Any, where: str = "config") -> None:
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a mapping at the top level")
    unknown = set(config) - _TOP_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_TOP_KEYS)}")
    for key in ("tasks", "methods"):
        if not config.get(key):
            raise ValueError(f"{where}: '{key}' must be a non-empty list")
    for env_id in config["tasks"]:
        get_task(env_id)  # ValueError naming the known tasks
    from sgmmq.baselines.dense import CONTINUOUS_METHODS
    for i, entry in enumerate(config["methods"]):
        if not isinstance(entry, dict) or "method" not in entry:
            raise ValueError(f"{where}: methods[{i}] needs a 'method'")
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise ValueError(f"{where}: methods[{i}] has unknown keys {sorted(unknown)}; known: {sorted(_ENTRY_KEYS)}")
        if sum(key in entry for key in BUDGET_KEYS) > 1:
            raise ValueError(f"{where}: methods[{i}] sets more than one of {BUDGET_KEYS}")
        if entry["method"] in SGMMQ_METHODS and ("net_arch" in entry or "live_budget" in entry):
            raise ValueError(f"{where}: methods[{i}]: S-GMM-QF budgets are n_components")
        if entry["method"] not in SGMMQ_METHODS and "n_components" in entry:
            raise ValueError(f"{where}: methods[{i}]: n_components is for methods {SGMMQ_METHODS} only")
        if entry["method"] in ("sgmmq_continuous", *CONTINUOUS_METHODS):
            discrete = [t for t in entry.get("tasks", config["tasks"]) if not get_task(t).has_continuous_form]
            if discrete:
                raise ValueError(f"{where}: methods[{i}]: {entry['method']} needs Box-action tasks; "
                                 f"{discrete} have discrete actions (restrict the entry with 'tasks')")


def _per_task(value: Any, env_id: str, default: Any) -> Any:
    if isinstance(value, dict):
        return value.get(env_id, value.get("default", default))
    return default if value is None else value


def expand(config: dict[str, Any]) -> list[Run]:
    """Every run of the sweep, seed-major across tasks (seed 0 of every task and config first), ids
    unique: a sweep stopped part-way has covered every task with as many seeds as it could."""
    check(config)
    per_task = []
    for env_id in config["tasks"]:
        task = get_task(env_id)
        seeds = _per_task(config.get("seeds", 1), env_id, 1)
        seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
        steps = int(_per_task(config.get("steps"), env_id, None) or task.budget)
        common = dict(
            task=env_id, steps=steps,
            eval_every=int(_per_task(config.get("eval_every"), env_id, None) or max(1, steps // 10)),
            eval_episodes=int(_per_task(config.get("eval_episodes"), env_id, 5)),
            final_eval_episodes=int(_per_task(config.get("final_eval_episodes"), env_id, None) or task.eval_episodes),
        )
        per_task.append((seeds, common))
    runs: list[Run] = []
    for position in range(max((len(seeds) for seeds, _ in per_task), default=0)):
        for seeds, common in per_task:
            if position >= len(seeds):
                continue
            for entry in config["methods"]:
                if "tasks" in entry and common["task"] not in entry["tasks"]:
                    continue
                key = next((k for k in BUDGET_KEYS if k in entry), None)
                for budget in (entry[key] if key else [None]):
                    runs.append(Run(
                        method=entry["method"], label=entry.get("label", entry["method"]), budget_key=key,
                        budget=budget, seed=seeds[position], overrides=dict(entry.get("overrides") or {}), **common,
                    ))
    ids = [run.id for run in runs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"runs with the same id (give the entries distinct labels): {duplicates[:5]}")
    return runs
