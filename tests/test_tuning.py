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


def _configs(tmp_path: Path) -> list[str]:
    import optuna

    from sgmmq import tuning

    study = optuna.load_study(study_name="sgmmq-CartPole-v1", storage=tuning.storage_for(tmp_path, None))
    return [json.dumps(t.user_attrs["config"], sort_keys=True) for t in study.trials]


@pytest.mark.parametrize("seed", [[], ["--sampler-seed", "0"]], ids=["fresh", "seeded"])
def test_tune_twice_on_one_journal_evaluates_no_configuration_twice(seed: list[str], monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from sgmmq import cli, tuning

    trained = []
    monkeypatch.setattr(tuning, "score", lambda task, config, *args: trained.append(json.dumps(config, sort_keys=True)) or 0.5)
    for call in range(2):
        assert cli.main(["tune", "CartPole-v1", "--trials", "3", "--seeds", "1", "--out", str(tmp_path), *seed]) == 0
        stdout = capsys.readouterr().out
        numbers = range(3 * call, 3 * call + 3)
        assert f"added 3 trial(s): {', '.join(f'{n} (complete)' for n in numbers)}; the study holds {3 * call + 3}" in stdout
        assert all(f"trial {n}: normalized score" in stdout for n in numbers)
    assert len(trained) == 6 and len(set(trained)) == 6  # a fixed sampler seed used to replay trials 0-2 as 3-5
    assert _configs(tmp_path) == trained


def test_a_configuration_already_evaluated_is_not_trained_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    from sgmmq import tuning
    from sgmmq.envs import get_task

    monkeypatch.setattr(tuning, "sample", lambda trial: {"batch_size": trial.suggest_categorical("batch_size", [32])})
    trained = []
    monkeypatch.setattr(tuning, "score", lambda *args: trained.append(args) or 0.7)
    best = tuning.tune(get_task("CartPole-v1"), tmp_path, n_trials=3, steps=1, n_seeds=2)
    assert len(trained) == 2  # two seeds of trial 0; trials 1 and 2 drew the same (only) configuration
    assert "trial 1: same configuration as trial 0, not trained again" in capsys.readouterr().out
    assert best["score"] == 0.7 and [n for n, _ in best["added"]] == [0, 1, 2]


def test_with_one_seed_a_fully_evaluated_trial_is_never_pruned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    from sgmmq import tuning
    from sgmmq.envs import get_task

    scores = iter([0.9, 0.8, 0.7, 0.0])  # trial 3 is the worst, but it has been evaluated on all (one) seeds
    monkeypatch.setattr(tuning, "score", lambda *args: next(scores))
    best = tuning.tune(get_task("CartPole-v1"), tmp_path, n_trials=4, steps=1, n_seeds=1)
    assert best["added"] == [(0, "complete"), (1, "complete"), (2, "complete"), (3, "complete")]
    assert "trial 3: normalized score 0.000" in capsys.readouterr().out


def test_a_pruned_trial_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from sgmmq import tuning
    from sgmmq.envs import get_task

    scores = iter([0.9, 0.9, 0.8, 0.8, 0.7, 0.7, 0.0, 0.0])
    monkeypatch.setattr(tuning, "score", lambda *args: next(scores))
    tuning.tune(get_task("CartPole-v1"), tmp_path, n_trials=4, steps=1, n_seeds=2)
    assert "trial 3: pruned after 1 of 2 seeds (normalized score 0.000, below the median)" in capsys.readouterr().out
    assert oct((tmp_path / "best.json").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
