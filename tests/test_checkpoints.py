"""Crash-consistent checkpoints: a run SIGKILLed at any instant resumes to the uninterrupted run.

The kills come from two sources: ``SGMMQ_KILL_AT=POINT@K`` (sgmmq.runs' test hook, which kills
the process inside the K-th checkpoint write at a named point) and a timer at a random instant
after training has started. After each kill the run is resumed; every resume must either continue
(and the chain must end in exactly the uninterrupted run's curve and model) or, when the kill came
before the first checkpoint, say so in one ``error:`` line.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
import torch

from sgmmq import SGMMQ
from sgmmq.runs import CHECKPOINT_DIR, MANIFEST_FILE, CheckpointError, read_manifest

SETTINGS = ["--steps", "400", "--checkpoint-every", "100", "--eval-episodes", "1", "--no-progress",
            "--set", "learning_starts=100", "--set", "prune_interval=50", "--set", "window_size=200",
            "--set", "policy_kwargs.n_components=4"]


class Process:
    """``sgmmq ARGS`` in a child forked from a server that has imported sgmmq already (a fresh
    interpreter per kill would spend seconds importing torch); stdout and stderr go to files."""

    context = multiprocessing.get_context("forkserver")
    count = 0

    def __init__(self, folder: Path, *args: object, kill_at: str | None = None) -> None:
        self.context.set_forkserver_preload(["sgmmq.cli", "sgmmq.runs", "sgmmq.agent", "sgmmq.evaluation"])
        Process.count += 1
        self.stdout, self.stderr = folder / f"{Process.count}.out", folder / f"{Process.count}.err"
        self.process = self.context.Process(target=_child, args=([str(a) for a in args], kill_at, self.stdout, self.stderr))
        self.process.start()

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in (self.stdout.read_text() if self.stdout.exists() else "") and self.process.is_alive():
            assert time.monotonic() < deadline
            time.sleep(0.01)

    def kill(self) -> None:
        try:
            os.kill(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:  # it finished first
            pass

    def finish(self) -> tuple[int, str, str]:
        self.process.join(300)
        stdout, stderr = (path.read_text() if path.exists() else "" for path in (self.stdout, self.stderr))  # killed early
        assert "Traceback" not in stderr, stderr
        return self.process.exitcode, stdout, stderr


def _child(argv: list[str], kill_at: str | None, stdout: Path, stderr: Path) -> None:
    os.environ.pop("SGMMQ_KILL_AT", None)
    if kill_at:
        os.environ["SGMMQ_KILL_AT"] = kill_at
    sys.stdout, sys.stderr = open(stdout, "w", buffering=1), open(stderr, "w", buffering=1)
    from sgmmq import cli

    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def assert_consistent(out: Path) -> int | None:
    """The committed checkpoint verifies (or there is none); its step."""
    if not (out / CHECKPOINT_DIR / MANIFEST_FILE).exists():
        return None
    return read_manifest(out / CHECKPOINT_DIR)["step"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "whole"
    code, _, stderr = Process(out.parent, "train", "CartPole-v1", "--out", out, *SETTINGS).finish()
    assert code == 0, stderr
    return out


def test_sigkill_at_any_instant_resumes_to_the_uninterrupted_run(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    # killed inside the first checkpoint write: nothing committed, and resume says so in one line
    code, _, _ = Process(tmp_path, "train", "CartPole-v1", "--out", out, *SETTINGS, kill_at="checkpoint:model@1").finish()
    assert code == -signal.SIGKILL and assert_consistent(out) is None
    code, _, stderr = Process(tmp_path, "train", "--resume", "--out", out, "--no-progress").finish()
    assert code == 2 and stderr.strip().count("\n") == 0 and "no checkpoint yet" in stderr and "--overwrite" in stderr
    # killed inside checkpoint writes at each point; each time the previous checkpoint survives
    code, _, _ = Process(tmp_path, "train", "CartPole-v1", "--out", out, *SETTINGS, "--overwrite", kill_at="checkpoint:buffer@2").finish()
    assert code == -signal.SIGKILL and assert_consistent(out) == 100
    steps = [100]
    for point, expected in [("checkpoint:commit@1", 100), ("checkpoint:cleanup@2", 300)]:
        code, stdout, _ = Process(tmp_path, "train", "--resume", "--out", out, "--no-progress", kill_at=point).finish()
        assert code == -signal.SIGKILL and f"resuming {out} at step {steps[-1]:,}" in stdout
        assert assert_consistent(out) == expected
        steps.append(expected)
    assert len([p for p in (out / CHECKPOINT_DIR).iterdir() if p.is_dir()]) == 2  # killed before removing the old one
    # killed by a timer at random instants while training and checkpointing
    rng = random.Random(18)
    for _ in range(3):  # a resume to the end takes about 2 s here: the kills land while it trains
        process = Process(tmp_path, "train", "--resume", "--out", out, "--no-progress", "--eval-episodes", "1")
        process.wait_for("resuming")
        time.sleep(rng.uniform(0.0, 2.0))
        process.kill()
        code, stdout, _ = process.finish()
        assert f"resuming {out} at step {steps[-1]:,}" in stdout
        if code == 0:  # it finished before the timer
            break
        assert code == -signal.SIGKILL
        steps.append(assert_consistent(out))
        assert steps[-1] >= steps[-2]
    if code != 0:
        code, stdout, stderr = Process(tmp_path, "train", "--resume", "--out", out, "--no-progress", "--eval-episodes", "1").finish()
        assert code == 0, stderr
    assert (out / "curve.csv").read_text() == (reference / "curve.csv").read_text()
    whole, resumed = SGMMQ.load(reference / "model.zip"), SGMMQ.load(out / "model.zip")
    assert whole.prune_events == resumed.prune_events and resumed.num_timesteps == 400
    for key, value in whole.policy.state_dict().items():
        assert torch.equal(value, resumed.policy.state_dict()[key]), key
    assert not list(out.rglob("*.tmp"))


def test_parts_that_do_not_belong_together_are_refused(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    folder = out / CHECKPOINT_DIR
    manifest = read_manifest(folder)
    assert manifest["step"] == 400 and set(manifest["parts"]) == {"model.zip", "replay_buffer.pkl", "state.pkl"}
    buffer = manifest["path"] / "replay_buffer.pkl"
    original = buffer.read_bytes()
    buffer.write_bytes(original[: len(original) // 2])  # truncated, or another checkpoint's
    with pytest.raises(CheckpointError, match="replay_buffer.pkl does not match the hash"):
        read_manifest(folder)
    code, _, stderr = Process(tmp_path, "train", "--resume", "--out", out, "--no-progress").finish()
    assert code == 2 and stderr.startswith("error: checkpoint part") and stderr.strip().count("\n") == 0
    buffer.write_bytes(original)
    (manifest["path"] / "state.pkl").unlink()
    with pytest.raises(CheckpointError, match="state.pkl is missing"):
        read_manifest(folder)
    (folder / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable checkpoint manifest"):
        read_manifest(folder)
    # the layout of sgmmq before manifests: parts side by side, nothing says they belong together
    shutil.rmtree(folder)
    folder.mkdir()
    for name in ("model.zip", "replay_buffer.pkl", "state.pkl"):
        (folder / name).write_bytes(b"x")
    with pytest.raises(CheckpointError, match="no manifest.json"):
        read_manifest(folder)


def test_a_checkpoint_of_another_run_is_refused(reference: Path, tmp_path: Path) -> None:
    from sgmmq.envs import get_task
    from sgmmq.runs import load_checkpoint

    run = json.loads((reference / "run.json").read_text())
    with pytest.raises(CheckpointError, match="written for another run"):
        load_checkpoint(reference / CHECKPOINT_DIR, get_task("CartPole-v1"), 0, {**run, "seed": 1})


def test_train_run_refuses_a_checkpoint_interval_that_would_never_advance(tmp_path: Path) -> None:
    from sgmmq.runs import train_run

    for total, every in ((100, 0), (100, -5), (0, 10)):
        with pytest.raises(ValueError, match="must be an integer >= 1"):
            train_run(None, tmp_path, total, every, [])  # type: ignore[arg-type]
