"""The ``sgmmq`` command line, run through its real entry point with tiny budgets."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from sgmmq import SGMMQ

TINY = ["--steps", "600", "--checkpoint-every", "300", "--eval-episodes", "2", "--no-progress",
        "--set", "learning_starts=200", "--set", "prune_interval=50", "--set", "policy_kwargs.n_components=8"]


def sgmmq(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy"}
    return subprocess.run([sys.executable, "-m", "sgmmq.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("cli") / "cp"
    stdout = ok(sgmmq("train", "CartPole-v1", "--seed", "0", "--out", out, *TINY))
    return out, stdout


def test_help_of_every_command_says_what_it_does_with_an_example() -> None:
    assert "train" in ok(sgmmq("--help"))
    for command in ("train", "eval", "render", "inspect", "tune", "bench", "zoo"):
        text = ok(sgmmq(command, "--help"))
        assert "example:" in text and f"sgmmq {command} " in text


def test_train_prints_score_parameters_and_saves_model_logs_and_curve(run: tuple[Path, str]) -> None:
    out, stdout = run
    assert "CartPole-v1: score " in stdout and "over 2 deterministic episodes" in stdout
    assert "live components: " in stdout and "parameters: " in stdout
    assert f"saved to {out / 'model.zip'}" in stdout
    model = SGMMQ.load(out / "model.zip")
    assert model.num_timesteps == 600 and model.task_id == "CartPole-v1" and model.gamma == 0.99
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["hyperparameters"] == {"learning_starts": 200, "prune_interval": 50, "policy_kwargs": {"n_components": 8}}
    final = recorded["final_evaluation"]  # the printed score, kept with the run
    assert len(final["episode_returns"]) == 2 and f"score {final['score_mean']:.1f} +- {final['score_std']:.1f}" in stdout
    assert final["parameters"] == model.num_parameters() and final["live_components"] == model.live_components
    with open(out / "logs" / "progress.csv") as file:
        columns = set(next(csv.reader(file)))
    for key in ("train/live_components", "train/n_parameters", "train/loss", "rollout/exploration_rate",
                "train/precision_eig_min", "train/precision_eig_max"):
        assert key in columns
    assert list((out / "logs").glob("events.out.tfevents.*"))
    assert (out / "curve.csv").read_text().startswith("step,return\n")


def test_eval_prints_mean_and_std(run: tuple[Path, str]) -> None:
    stdout = ok(sgmmq("eval", run[0] / "model.zip", "--episodes", "3"))
    assert stdout.startswith("CartPole-v1: score ") and "+-" in stdout and "over 3 deterministic episodes" in stdout


def test_render_writes_a_gif(run: tuple[Path, str], tmp_path: Path) -> None:
    gif = tmp_path / "episode.gif"
    assert f"-> {gif}" in ok(sgmmq("render", run[0] / "model.zip", "--out", gif, "--max-frames", "40"))
    assert gif.read_bytes()[:6] == b"GIF89a"
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        one_line_error(sgmmq("render", run[0] / "model.zip", "--out", tmp_path / "e.mp4"), "imageio-ffmpeg")


def test_inspect_prints_the_components_and_draws_them(run: tuple[Path, str], tmp_path: Path) -> None:
    png = tmp_path / "g.png"
    stdout = ok(sgmmq("inspect", run[0] / "model.zip", "--png", png))
    model = SGMMQ.load(run[0] / "model.zip")
    assert f"{model.live_components} live components, {model.num_parameters():,} parameters" in stdout
    assert "xi = u*v" in stdout and "std devs" in stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inspect_visited_draws_the_greedy_states_and_prints_each_gaussians_distance_to_them(run: tuple[Path, str], tmp_path: Path) -> None:
    from sgmmq import inspection

    png = tmp_path / "v.png"
    stdout = ok(sgmmq("inspect", run[0] / "model.zip", "--png", png, "--visited", "2", "--seed", "1"))
    model = SGMMQ.load(run[0] / "model.zip")
    states = inspection.visited_states(model, episodes=2, seed=1)
    distances = inspection.coverage(model, states)
    assert f"visited: {len(states):,} states in 2 greedy episodes (seed 1)" in stdout
    near = sum(distance <= 2 for distance in distances)
    assert f"{near} of {model.live_components} components within 2 std of a visited state" in stdout
    assert " ".join(f"{distance:.2f}" for distance in distances) + ")" in stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "within 2 std" not in ok(sgmmq("inspect", run[0] / "model.zip", "--png", tmp_path / "off.png"))  # default 0: off


def test_resume_after_an_interruption_gives_the_same_run(run: tuple[Path, str], tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    assert "stopped at step 300" in ok(sgmmq("train", "CartPole-v1", "--seed", "0", "--out", out, *TINY, "--stop-after", "300"))
    assert not (out / "model.zip").exists()
    assert "resuming" in ok(sgmmq("train", "--resume", "--out", out, "--no-progress", "--eval-episodes", "2"))
    assert (out / "curve.csv").read_text() == (run[0] / "curve.csv").read_text()
    whole, resumed = SGMMQ.load(run[0] / "model.zip"), SGMMQ.load(out / "model.zip")
    assert whole.prune_events == resumed.prune_events
    for key, value in whole.policy.state_dict().items():
        assert torch.equal(value, resumed.policy.state_dict()[key]), key


def test_errors_are_one_line_with_exit_2(run: tuple[Path, str], tmp_path: Path) -> None:
    one_line_error(sgmmq("train", "NoSuchTask-v0"), "Unknown task", "CartPole-v1", "LunarLander-v3")
    one_line_error(sgmmq("train", "CartPole-v1", "--out", run[0], "--steps", "10"), "already holds a run", "--overwrite")
    one_line_error(sgmmq("train", "CartPole-v1", "--continuous", "--out", tmp_path / "bw"), "no continuous form")
    one_line_error(sgmmq("train", "CartPole-v1", "--out", tmp_path / "b", "--set", "batch_size=0"), "batch_size")
    one_line_error(sgmmq("train", "CartPole-v1", "--out", tmp_path / "c", "--set", "no_such_option=1"), "no_such_option")
    one_line_error(sgmmq("eval", tmp_path / "missing.zip"), "No saved model")
    one_line_error(sgmmq("train", "--resume", "--out", tmp_path / "nothing"), "No run to resume")
    assert not (tmp_path / "bw").exists()


def test_model_files_from_another_algorithm_or_a_newer_version_are_refused(run: tuple[Path, str], tmp_path: Path) -> None:
    from stable_baselines3 import DQN

    DQN("MlpPolicy", "CartPole-v1").save(tmp_path / "dqn.zip")
    one_line_error(sgmmq("eval", tmp_path / "dqn.zip"), "not saved by SGMMQ")
    newer = tmp_path / "newer.zip"
    with zipfile.ZipFile(run[0] / "model.zip") as source, zipfile.ZipFile(newer, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "data":
                data = json.loads(content)
                data["sgmmq_format_version"] = 99
                content = json.dumps(data).encode()
            target.writestr(item, content)
    one_line_error(sgmmq("inspect", newer), "format version 99")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    one_line_error(sgmmq("render", tmp_path / "junk.zip"), "not an SB3/SGMMQ save file")


def test_overwrite_replaces_a_run(tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "run.json").write_text("{}")
    (out / "logs").mkdir()
    (out / "logs" / "old.txt").write_text("old")
    ok(sgmmq("train", "CartPole-v1", "--out", out, "--steps", "50", "--eval-episodes", "1", "--no-progress", "--overwrite"))
    assert json.loads((out / "run.json").read_text())["steps"] == 50 and not (out / "logs" / "old.txt").exists()


def test_parse_overrides_and_config_merge(tmp_path: Path) -> None:
    from sgmmq.runs import merge, parse_overrides, read_config

    overrides = parse_overrides(["target=residual", "policy_kwargs.std_bounds=(0.05, 2.0)", "learning_rate=3e-3"])
    assert overrides == {"target": "residual", "policy_kwargs": {"std_bounds": (0.05, 2.0)}, "learning_rate": 3e-3}
    config = tmp_path / "c.yaml"
    config.write_text("batch_size: 64\npolicy_kwargs:\n  n_components: 16\n")
    assert merge(read_config(config), overrides)["policy_kwargs"] == {"n_components": 16, "std_bounds": (0.05, 2.0)}
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["batch_size"])
    assert parse_overrides(["double_q=true", "offset=False", "x=null", "loss=huber"]) == {
        "double_q": True, "offset": False, "x": None, "loss": "huber"}
