"""``sgmmq tune``: a tiny Optuna study, its journal, a database URL, and train --config on the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")


def sgmmq(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sgmmq.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def test_tune_writes_a_config_that_train_reads(tmp_path: Path) -> None:
    out = tmp_path / "tune"
    result = sgmmq("tune", "CartPole-v1", "--trials", "2", "--steps", "300", "--seeds", "2", "--eval-episodes", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "best normalized score" in result.stdout and (out / "study.journal").exists()
    config = json.loads((out / "best.json").read_text())
    assert {"learning_rate", "batch_size", "policy_kwargs"} <= set(config)
    run = tmp_path / "run"
    result = sgmmq("train", "CartPole-v1", "--config", out / "best.json", "--steps", "100", "--out", run, "--eval-episodes", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "run.json").read_text())["hyperparameters"] == config


def test_tune_continues_a_study_in_a_database(tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    for _ in range(2):  # two workers one after the other share the study
        result = sgmmq("tune", "CartPole-v1", "--trials", "1", "--steps", "200", "--seeds", "1", "--eval-episodes", "1",
                       "--storage", url, "--study", "s", "--out", tmp_path)
        assert result.returncode == 0, result.stderr
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2


def test_objective_prunes_a_trial_worse_than_the_median(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sgmmq import tuning
    from sgmmq.envs import get_task

    scores = iter([0.9, 0.9, 0.8, 0.8, 0.7, 0.7, 0.0, 0.0])  # trials 0-2 good, trial 3 bad on its first seed
    monkeypatch.setattr(tuning, "score", lambda *args: next(scores))
    tuning.tune(get_task("CartPole-v1"), tmp_path, n_trials=4, steps=1, n_seeds=2)
    import optuna

    study = optuna.load_study(study_name="sgmmq-CartPole-v1", storage=tuning.storage_for(tmp_path, None))
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"]
