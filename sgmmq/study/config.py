"""The sweep config: tasks x methods x parameter budgets x seeds, read from YAML, JSON or TOML.

```yaml
name: smoke
tasks: [CartPole-v1]
seeds: 2                  # 2 -> seeds 0, 1; or a list; or {default: 5, CartPole-v1: 10}
steps: 2000               # or null (each task's budget), or {default: null, CartPole-v1: 50000}
eval_every: 500           # steps between evaluations during training
eval_episodes: 5          # deterministic episodes per intermediate evaluation
final_eval_episodes: null # null: the task's eval_episodes
batch: true               # S-GMM-QF's seeds of a (task, config) as one batched job (sgmmq.batched); false: one process per seed
compile: false            # batched jobs through torch.compile (BatchedSGMMQ(compile=True)): faster, other float rounding
task_defaults: true       # S-GMM-QF takes each task's registered defaults (envs/tasks.py); false: the signature's (ablations)
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
    seeds: 3              # this entry on the task's first 3 seeds only (or a list of them); for costly baselines
  - method: a2c_zoo
    steps: 500000         # this entry's own step budget (or {default: ..., task: ...}); default: the sweep's
  - method: ars_linear    # sb3-contrib ARS, linear policy: one size, no budget
  - method: ars_zoo       # ARS with the RL Zoo rows; budgets through net_arch
    net_arch: [[16], [32]]
```

``expand(config)`` turns it into ``Run``s with stable ids, e.g. ``CartPole-v1__sgmmq__k8__s0``.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import asdict, dataclass, field
from typing import Any

from sgmmq import registry
from sgmmq.envs.tasks import get_task
from sgmmq.files import parse_config
from sgmmq.methods import SGMMQ_METHODS

BUDGET_KEYS = ("n_components", "net_arch", "live_budget")  # S-GMM-QF, dense widths, sparse DQN
_ENTRY_KEYS = {"method", "label", "overrides", "tasks", "steps", "seeds", *BUDGET_KEYS}
_TOP_KEYS = {"name", "tasks", "seeds", "steps", "eval_every", "eval_episodes", "final_eval_episodes", "methods", "description",
             "batch", "compile", "task_defaults"}


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
    # S-GMM-QF: the task's registered defaults (sgmmq.registry) when the run was planned. Part of the
    # settings, so that a finished run made under other defaults is not taken for this one.
    task_defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.task}__{self.label}__{budget_tag(self.budget_key, self.budget)}__s{self.seed}"

    @property
    def config_name(self) -> str:
        """The (method, budget) this run is a seed of."""
        return f"{self.label} {budget_tag(self.budget_key, self.budget)}"

    def settings(self) -> dict[str, Any]:
        settings = json.loads(json.dumps(asdict(self)))
        if not settings["task_defaults"]:
            del settings["task_defaults"]  # no registered defaults: the settings of files written before the field
        return settings


def budget_tag(key: str | None, value: Any) -> str:
    if key is None:
        return "default"
    if key == "n_components":
        return f"k{value}"
    if key == "net_arch":
        return "w" + "x".join(str(w) for w in value)
    return f"b{value}"


def read(path: str | pathlib.Path) -> dict[str, Any]:
    """A config file (``.yml``/``.yaml``, ``.json`` or ``.toml``) as a dict, checked completely
    (every field, method name and override key) before any run starts."""
    path = pathlib.Path(path)
    if path.suffix not in (".yml", ".yaml", ".json", ".toml"):
        raise ValueError(f"{path}: a sweep config is .yml, .yaml, .json or .toml")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    config = parse_config(path)
    check(config, str(path))
    return config


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _known_tasks() -> tuple[str, ...]:
    from sgmmq.envs.tasks import TASKS

    return tuple(TASKS)


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_per_task(config: dict[str, Any], key: str, ok: Any, expected: str, where: str, nullable: bool) -> None:
    """``key`` is a value, or a mapping of task ids (and ``default``) to values; each one ``ok``."""
    value = config.get(key)
    values = value.items() if isinstance(value, dict) else [(None, value)]
    for task, item in values:
        field_name = key if task is None else f"{key}.{task}"
        if task is not None and task != "default" and task not in config["tasks"]:
            raise ValueError(f"{where}: {field_name}: {task!r} is not one of this config's tasks {config['tasks']}")
        if not ((item is None and nullable) or ok(item)):
            raise ValueError(f"{where}: {field_name} must be {expected}{' or null' if nullable else ''}, got {item!r}")


def override_keys(method: str) -> set[str]:
    """The hyperparameters a method's ``overrides`` may set: its constructor's keyword arguments."""
    import inspect

    if method in SGMMQ_METHODS:
        from sgmmq.agent import SGMMQ

        classes = [SGMMQ]
        extra: set[str] = set()
    else:
        from stable_baselines3 import A2C, DQN, PPO, SAC, TD3

        from sgmmq.baselines import dense
        from sgmmq.baselines.sparse import SparseDQN

        classes = {"ppo": [PPO], "a2c": [A2C], "sac": [SAC], "td3": [TD3]}.get(method.split("_")[0], [DQN])
        if method in dense.ARS_METHODS:
            classes = [dense._ars()]  # noqa: SLF001 -- sb3-contrib's ARS, imported on use
        if method[len("dqn_"):] in dense.SPARSE_METHODS:
            classes = [SparseDQN, DQN]
        extra = set(dense._CONFIG_ONLY_KEYS) - {"provenance", "dropped"}  # noqa: SLF001 -- the same module family
    keys = {name for cls in classes for name in inspect.signature(cls.__init__).parameters}
    return (keys | extra) - {"self", "policy", "env", "seed", "verbose", "kwargs", "_init_setup_model", "sparse_method"}


def _check_overrides(method: str, overrides: Any, where: str) -> None:
    import difflib

    if not isinstance(overrides, dict):
        raise ValueError(f"{where}: must be a mapping of hyperparameters, got {overrides!r}")
    known = override_keys(method)
    for key in overrides:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            raise ValueError(f"{where}: {key!r} is not a hyperparameter of {method}"
                             + (f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(sorted(known))}"))
    if method in SGMMQ_METHODS:  # types and ranges, as the constructor would check them, before any run
        import inspect

        from sgmmq.agent import SGMMQ, _check_hyperparameters
        from sgmmq.mixture import GMMQFunction
        from sgmmq.policies import GMMPolicy

        policy_keys = {*inspect.signature(GMMPolicy.__init__).parameters, *inspect.signature(GMMQFunction.__init__).parameters}
        policy_keys -= {"self", "observation_space", "action_space", "lr_schedule", "q_kwargs", "state_dim", "n_actions"}
        policy_kwargs = overrides.get("policy_kwargs") or {}
        for key in policy_kwargs if isinstance(policy_kwargs, dict) else ():
            if key not in policy_keys:
                close = difflib.get_close_matches(str(key), policy_keys, n=1)
                raise ValueError(f"{where}: policy_kwargs: {key!r} is not an argument of GMMPolicy"
                                 + (f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(sorted(policy_keys))}"))

        defaults = {name: p.default for name, p in inspect.signature(SGMMQ.__init__).parameters.items()}
        try:
            _check_hyperparameters({**defaults, **overrides})
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None


def check(config: Any, where: str = "config") -> None:
    """Raise a ValueError naming the first bad field (``where: field: problem``)."""
    from sgmmq.baselines.dense import CONTINUOUS_METHODS, METHODS, SPARSE_METHODS

    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a mapping at the top level")
    unknown = set(config) - _TOP_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_TOP_KEYS)}")
    for key in ("tasks", "methods"):
        if not config.get(key) or not isinstance(config[key], list):
            raise ValueError(f"{where}: '{key}' must be a non-empty list")
    for key in ("name", "description"):
        if key in config and not isinstance(config[key], str):
            raise ValueError(f"{where}: {key} must be a string, got {config[key]!r}")
    for key in ("batch", "compile", "task_defaults"):
        if key in config and not isinstance(config[key], bool):
            raise ValueError(f"{where}: {key} must be true or false, got {config[key]!r}")
    for env_id in config["tasks"]:
        if not isinstance(env_id, str):
            raise ValueError(f"{where}: tasks: {env_id!r} is not a task id; known: {', '.join(_known_tasks())}")
        get_task(env_id)  # ValueError naming the known tasks
    seeds_ok = lambda v: _is_int(v, 1) or (isinstance(v, list) and v and all(_is_int(s, 0) for s in v) and len(set(v)) == len(v))  # noqa: E731
    _check_per_task(config, "seeds", seeds_ok, "a count >= 1 or a list of distinct seeds >= 0", where, nullable=True)
    positive = lambda v: _is_int(v, 1)  # noqa: E731
    for key in ("steps", "eval_every", "eval_episodes", "final_eval_episodes"):
        _check_per_task(config, key, positive, "an integer >= 1", where, nullable=True)
    known_methods = (*SGMMQ_METHODS, *METHODS)
    for i, entry in enumerate(config["methods"]):
        at = f"{where}: methods[{i}]"
        if not isinstance(entry, dict) or "method" not in entry:
            raise ValueError(f"{at} needs a 'method'")
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise ValueError(f"{at} has unknown keys {sorted(unknown)}; known: {sorted(_ENTRY_KEYS)}")
        method = entry["method"]
        if method not in known_methods:
            import difflib

            close = difflib.get_close_matches(str(method), known_methods, n=1)
            raise ValueError(f"{at}.method: unknown method {method!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                             + f"; known: {', '.join(known_methods)}")
        if "label" in entry and not (isinstance(entry["label"], str) and entry["label"]):
            raise ValueError(f"{at}.label must be a non-empty string, got {entry['label']!r}")
        if "tasks" in entry:
            if not isinstance(entry["tasks"], list) or not entry["tasks"]:
                raise ValueError(f"{at}.tasks must be a non-empty list of this config's tasks")
            strays = [t for t in entry["tasks"] if t not in config["tasks"]]
            if strays:
                raise ValueError(f"{at}.tasks: {strays} not among this config's tasks {config['tasks']}")
        if "steps" in entry:  # the entry's own budget (A2C's zoo budget is not DQN's): as the top-level steps
            _check_per_task({"tasks": entry.get("tasks", config["tasks"]), "steps": entry["steps"]}, "steps",
                            positive, "an integer >= 1", f"{at}", nullable=False)
        if "seeds" in entry:  # a subset of each task's seeds: a count (the first n) or a list
            _check_per_task({"tasks": entry.get("tasks", config["tasks"]), "seeds": entry["seeds"]}, "seeds",
                            seeds_ok, "a count >= 1 or a list of distinct seeds >= 0", at, nullable=False)
            for env_id in entry.get("tasks", config["tasks"]):
                task_seeds = _task_seeds(config, env_id)
                chosen, wanted = _entry_seeds(entry, env_id, task_seeds), _per_task(entry["seeds"], env_id, None)
                if isinstance(wanted, int) and wanted > len(task_seeds):
                    raise ValueError(f"{at}.seeds: {wanted} seeds, but {env_id} has {len(task_seeds)} in this config")
                if not set(chosen) <= set(task_seeds):
                    raise ValueError(f"{at}.seeds: {sorted(set(chosen) - set(task_seeds))} are not among "
                                     f"{env_id}'s seeds {task_seeds} (an entry runs a subset of its task's seeds)")
        if sum(key in entry for key in BUDGET_KEYS) > 1:
            raise ValueError(f"{at} sets more than one of {BUDGET_KEYS}")
        if method in SGMMQ_METHODS and ("net_arch" in entry or "live_budget" in entry):
            raise ValueError(f"{at}: S-GMM-QF budgets are n_components")
        if method not in SGMMQ_METHODS and "n_components" in entry:
            raise ValueError(f"{at}: n_components is for methods {SGMMQ_METHODS} only")
        if method.startswith("ars_linear") and ("net_arch" in entry or "live_budget" in entry):
            raise ValueError(f"{at}: {method} is a linear policy of one size (obs_dim x n_actions); "
                             "give it no budget, or use ars_zoo with net_arch")
        if method.startswith("ars_zoo") and "live_budget" in entry:
            raise ValueError(f"{at}: {method} budgets are net_arch")
        if method in ("sgmmq_continuous", *CONTINUOUS_METHODS):
            discrete = [t for t in entry.get("tasks", config["tasks"]) if not get_task(t).has_continuous_form]
            if discrete:
                raise ValueError(f"{at}: {method} needs Box-action tasks; "
                                 f"{discrete} have discrete actions (restrict the entry with 'tasks')")
        sparse = method.startswith("dqn_") and method[len("dqn_"):] in SPARSE_METHODS
        if sparse and "live_budget" not in entry:
            raise ValueError(f"{at}: {method} needs live_budget (a list of live-weight counts)")
        for key in BUDGET_KEYS:
            if key not in entry:
                continue
            budgets = entry[key]
            good = (lambda b: isinstance(b, list) and all(_is_int(w, 1) for w in b)) if key == "net_arch" else (lambda b: _is_int(b, 1))
            if not isinstance(budgets, list) or not budgets or not all(good(b) for b in budgets):
                expected = "lists of layer widths >= 1" if key == "net_arch" else "integers >= 1"
                raise ValueError(f"{at}.{key} must be a non-empty list of {expected}, got {budgets!r}")
        _check_overrides(method, entry.get("overrides") or {}, f"{at}.overrides")


def _task_seeds(config: dict[str, Any], env_id: str) -> list[int]:
    seeds = _per_task(config.get("seeds", 1), env_id, 1)
    return list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]


def _entry_seeds(entry: dict[str, Any], env_id: str, task_seeds: list[int]) -> list[int]:
    """The seeds an entry runs on a task: all the task's, or its ``seeds`` (the first n, or a list)."""
    seeds = _per_task(entry.get("seeds"), env_id, None)
    if seeds is None:
        return task_seeds
    return task_seeds[:seeds] if isinstance(seeds, int) else [int(s) for s in seeds]


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
        seeds = _task_seeds(config, env_id)
        common = dict(
            task=env_id,
            eval_episodes=int(_per_task(config.get("eval_episodes"), env_id, 5)),
            final_eval_episodes=int(_per_task(config.get("final_eval_episodes"), env_id, None) or task.eval_episodes),
        )
        per_task.append((seeds, common, int(_per_task(config.get("steps"), env_id, None) or task.budget)))
    runs: list[Run] = []
    for position in range(max((len(seeds) for seeds, _, _ in per_task), default=0)):
        for seeds, common, sweep_steps in per_task:
            if position >= len(seeds):
                continue
            env_id = common["task"]
            for entry in config["methods"]:
                if "tasks" in entry and env_id not in entry["tasks"]:
                    continue
                if seeds[position] not in _entry_seeds(entry, env_id, seeds):
                    continue
                steps = int(_per_task(entry.get("steps"), env_id, None) or sweep_steps)
                eval_every = int(_per_task(config.get("eval_every"), env_id, None) or max(1, steps // 10))
                key = next((k for k in BUDGET_KEYS if k in entry), None)
                for budget in (entry[key] if key else [None]):
                    runs.append(Run(
                        method=entry["method"], label=entry.get("label", entry["method"]), budget_key=key,
                        budget=budget, seed=seeds[position], overrides=dict(entry.get("overrides") or {}),
                        steps=steps, eval_every=eval_every, **common,
                        task_defaults=registry.task_hyperparameters(common["task"])
                        if entry["method"] in SGMMQ_METHODS and config.get("task_defaults", True) else {},
                    ))
    ids = [run.id for run in runs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"runs with the same id (give the entries distinct labels): {duplicates[:5]}")
    return runs
