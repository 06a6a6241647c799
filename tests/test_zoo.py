"""SGMMQ through the RL Zoo's own trainer (rl_zoo3.train), via sgmmq.zoo's launcher."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# rl_zoo3 needs moviepy (pillow<12), which conflicts with the pinned pillow 13: installed with
# --no-deps where it is installed at all (README, Command line), so skip where it is absent.
pytest.importorskip("rl_zoo3")


def test_zoo_trains_evaluates_and_saves_sgmmq(tmp_path: Path) -> None:
    from sgmmq import SGMMQ

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "sgmmq.zoo", "--algo", "sgmmq", "--env", "CartPole-v1", "-n", "600",
               "--eval-freq", "300", "--eval-episodes", "2", "--seed", "0", "-f", str(tmp_path), "--num-threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sgmmq.yml" in result.stdout and "Eval num_timesteps=600" in result.stdout
    run = tmp_path / "sgmmq" / "CartPole-v1_1"
    assert (run / "evaluations.npz").exists()
    model = SGMMQ.load(run / "CartPole-v1.zip")
    assert model.num_timesteps == 600 and model.gamma == 0.99


def test_zoo_enjoy_runs_a_launcher_trained_model_and_refuses_a_hostile_one(tmp_path: Path) -> None:
    from test_modelfile import WritesFile, rewrite, serialized

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = [sys.executable, "-m", "sgmmq.zoo", "--algo", "sgmmq", "--env", "CartPole-v1", "-n", "300", "--eval-freq", "-1",
             "--seed", "0", "-f", str(tmp_path), "--num-threads", "1"]
    assert subprocess.run(train, capture_output=True, text=True, env=env, timeout=300).returncode == 0
    enjoy = [sys.executable, "-m", "sgmmq.cli", "zoo", "enjoy", "--env", "CartPole-v1", "-f", str(tmp_path), "--no-render",
             "-n", "200", "--num-threads", "1"]
    result = subprocess.run(enjoy, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Episode Reward" in result.stdout
    model = tmp_path / "sgmmq" / "CartPole-v1_1" / "CartPole-v1.zip"
    target = tmp_path / "pwned"
    rewrite(model, tmp_path / "hostile.zip", data_edit=lambda d: d.update(extra=serialized(WritesFile(target))))
    (tmp_path / "hostile.zip").replace(model)
    result = subprocess.run(enjoy, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2 and "'extra'" in result.stderr and "--trust-file" in result.stderr, result.stderr[-3000:]
    assert not target.exists()
    result = subprocess.run([*enjoy, "--trust-file"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and target.exists(), result.stderr[-3000:]


def test_zoo_trains_sgmmq_on_native_box_actions(tmp_path: Path) -> None:
    from gymnasium import spaces

    from sgmmq import SGMMQ

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "sgmmq.zoo", "--continuous", "--env", "Pendulum-v1", "-n", "300",
               "--eval-freq", "-1", "--seed", "0", "-f", str(tmp_path), "--num-threads", "1",
               "--hyperparams", "learning_starts:100", "policy_kwargs:dict(n_components=4)"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sgmmq_continuous.yml" in result.stdout
    model = SGMMQ.load(tmp_path / "sgmmq" / "Pendulum-v1_1" / "Pendulum-v1.zip")
    assert isinstance(model.action_space, spaces.Box) and model.policy.q_net.continuous
