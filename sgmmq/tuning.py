"""Hyperparameter search for S-GMM-QF with Optuna.

Each trial samples a configuration, trains it on ``n_seeds`` seeds one after the other and scores
it by the mean normalized return (``Task.normalize``: 0 about random, 1 solved) of deterministic
evaluation episodes. After every seed the running mean is reported, so the median pruner stops a
bad configuration after its first seed (never after its last: a fully evaluated trial counts). The
study lives in a journal file (default, one machine or a shared file system) or in any database
Optuna takes by URL (trials spread over machines: run the same command on each; every invocation
samples new points). The best configuration is written to ``best.json``, which
``sgmmq train --config`` reads.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
from stable_baselines3.common.logger import Logger

from sgmmq.envs import Task
from sgmmq.evaluation import evaluate
from sgmmq.files import write_json_atomic
from sgmmq.runs import build_model


def sample(trial: Any) -> dict[str, Any]:
    """The search space: a config in the form ``SGMMQ(**config)`` and ``train --config`` take."""
    batch_size = trial.suggest_categorical("batch_size", [16, 32, 64])
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True),
        "batch_size": batch_size,
        "window_size": trial.suggest_categorical("window_size", [500, 1_000, 5_000, 50_000]),
        "target_update_interval": trial.suggest_categorical("target_update_interval", [100, 200, 500, 1_000]),
        "exploration_fraction": trial.suggest_float("exploration_fraction", 0.05, 0.4),
        "sparsity_lambda": trial.suggest_float("sparsity_lambda", 1e-5, 1e-2, log=True),
        "target": trial.suggest_categorical("target", ["snapshot", "residual"]),
        "policy_kwargs": {
            "n_components": trial.suggest_categorical("n_components", [8, 16, 32, 64]),
            "init_std": trial.suggest_categorical("init_std", [0.25, 0.5, 1.0]),
        },
    }


def score(task: Task, config: dict[str, Any], seed: int, steps: int, eval_episodes: int, continuous: bool = False) -> float:
    """Normalized mean return of one training run (``continuous``: on the task's Box-action form)."""
    model = build_model(task, seed, config, continuous=continuous)
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn(steps)
    return task.normalize(float(evaluate(model, task, seed, n_episodes=eval_episodes).mean()))


def storage_for(out: pathlib.Path, url: str | None) -> Any:
    import optuna

    if url:
        return url
    from optuna.storages.journal import JournalFileBackend

    out.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(out / "study.journal")))


def tune(
    task: Task,
    out: pathlib.Path,
    n_trials: int,
    steps: int,
    n_seeds: int = 2,
    eval_episodes: int = 5,
    storage: str | None = None,
    study_name: str | None = None,
    timeout: float | None = None,
    sampler_seed: int | None = None,
    continuous: bool = False,
) -> dict[str, Any]:
    """Run (or continue) the study; write ``out/best.json``; return score, trial, config path and
    the trials this call added.

    The sampler draws new points when a study is continued: with ``sampler_seed=None`` it starts
    from fresh randomness; with a seed, the seed is offset by the trials already in the study (a
    fixed seed would replay the same configurations on every call). A sampled configuration that
    some finished trial already evaluated is not trained again: the trial takes that trial's value.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name or f"sgmmq-{task.env_id}",
        storage=storage_for(out, storage),
        load_if_exists=True,
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    before = {t.number for t in study.get_trials(deepcopy=False)}
    seed = None if sampler_seed is None else sampler_seed + len(before)
    study.sampler = optuna.samplers.TPESampler(seed=seed)

    def objective(trial: optuna.Trial) -> float:
        config = sample(trial)
        for other in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if other.params == trial.params:
                trial.set_user_attr("config", config)
                trial.set_user_attr("same_as", other.number)
                print(f"trial {trial.number}: same configuration as trial {other.number}, not trained again")
                return float(other.value)
        scores = []
        for seed in range(n_seeds):
            scores.append(score(task, config, seed, steps, eval_episodes, continuous))
            trial.report(float(np.mean(scores)), step=seed)
            if seed < n_seeds - 1 and trial.should_prune():  # a fully evaluated trial is never pruned
                print(f"trial {trial.number}: pruned after {seed + 1} of {n_seeds} seeds "
                      f"(normalized score {np.mean(scores):.3f}, below the median) {json.dumps(config)}")
                raise optuna.TrialPruned()
        trial.set_user_attr("config", config)
        print(f"trial {trial.number}: normalized score {np.mean(scores):.3f} {json.dumps(config)}")
        return float(np.mean(scores))

    study.optimize(objective, n_trials=n_trials, timeout=timeout)
    trials = study.get_trials(deepcopy=False)
    added = [(t.number, t.state.name.lower()) for t in trials if t.number not in before]
    best = study.best_trial  # ValueError "No trials are completed yet" when none is
    config_path = out / "best.json"
    write_json_atomic(config_path, best.user_attrs["config"], indent=2)
    return {"score": best.value, "trial": best.number, "config": config_path, "added": added, "n_trials": len(trials)}
