"""Model files: loading unpickles nothing unless trusted, policy-only save/load, export to ONNX and numpy."""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces

from sgmmq import SGMMQ
from sgmmq.envs import TASKS
from sgmmq.export import export, greedy_arrays
from sgmmq.numpy_policy import load as load_npz
from sgmmq.numpy_policy import predict as numpy_predict
from sgmmq.policies import GMMPolicy

torch.set_num_threads(1)
LEGACY = sorted(Path(__file__).parents[1].glob("results/study/models/*.zip"))[:1]  # format-1 files of the study


class WritesFile:
    """A pickle that, when unpickled, writes a file (what a malicious model file would carry)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return exec, (f"open({str(self.target)!r}, 'w').write('pwned')",)


def rewrite(source: Path, dest: Path, data_edit=None, entries: dict[str, bytes] | None = None) -> Path:
    """Copy a model zip, editing its ``data`` JSON and/or replacing entries."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(dest, "w") as zout:
        for item in zin.infolist():
            content = zin.read(item.filename)
            if item.filename == "data" and data_edit is not None:
                data = json.loads(content)
                data_edit(data)
                content = json.dumps(data).encode()
            zout.writestr(item, (entries or {}).get(item.filename, content))
    return dest


def serialized(obj) -> dict:
    return {":type:": "<class 'object'>", ":serialized:": base64.b64encode(pickle.dumps(obj)).decode()}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    from sgmmq import runs

    model = runs.build_model(runs.resolve_task("CartPole-v1"), 0, {"learning_starts": 30, "policy_kwargs": {"n_components": 4}})
    model.learn(60)
    path = tmp_path_factory.mktemp("model") / "model.zip"
    model.save(path)
    return path


@pytest.fixture
def crafted(saved, tmp_path) -> dict[str, tuple[Path, Path]]:
    """Two hostile files, each with the file its pickle would write: one in ``data``, one in ``policy.pth``."""
    in_data, in_tensors = tmp_path / "data_pwned", tmp_path / "pth_pwned"
    bad_data = rewrite(saved, tmp_path / "bad_data.zip", data_edit=lambda d: d.update(extra=serialized(WritesFile(in_data))))
    buffer = io.BytesIO()
    torch.save({"q_net.offset": torch.zeros(1), "payload": WritesFile(in_tensors)}, buffer)
    bad_pth = rewrite(saved, tmp_path / "bad_pth.zip", entries={"policy.pth": buffer.getvalue()})
    return {"data": (bad_data, in_data), "tensors": (bad_pth, in_tensors)}


@pytest.mark.parametrize("kind, field", [("data", "'extra'"), ("tensors", "'policy.pth'")])
def test_hostile_file_is_refused_and_runs_nothing_unless_trusted(crafted, kind, field):
    path, target = crafted[kind]
    with pytest.raises(ValueError, match=f"{field}.*trusted=True"):
        SGMMQ.load(path)
    assert not target.exists()
    if kind == "data":  # the opt-in unpickles, as SB3 does (and so runs the payload)
        SGMMQ.load(path, trusted=True)
        assert target.read_text() == "pwned"


def test_known_fields_come_from_plain_values_not_their_pickle(saved, tmp_path):
    target = tmp_path / "pwned"
    path = rewrite(saved, tmp_path / "m.zip", data_edit=lambda d: d.update(observation_space=serialized(WritesFile(target)),
                                                                          policy_class=serialized(WritesFile(target))))
    model = SGMMQ.load(path)
    assert not target.exists() and model.observation_space == SGMMQ.load(saved).observation_space


def sgmmq_cli(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy"}
    return subprocess.run([sys.executable, "-m", "sgmmq.cli", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.parametrize("command", [["eval", "--episodes", "1"], ["render", "--max-frames", "5"], ["inspect"], ["export", "--format", "npz"]])
def test_every_cli_command_that_opens_a_model_refuses_a_hostile_file(crafted, command, tmp_path):
    for path, target in crafted.values():
        result = sgmmq_cli(command[0], path, *command[1:], cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "--trust-file" in lines[0]
        assert not target.exists()
    path, target = crafted["data"]
    result = sgmmq_cli(command[0], path, *command[1:], "--trust-file", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert target.exists()


def test_hand_edited_fields_get_a_clear_error(saved, tmp_path):
    def version_string(d):
        d["sgmmq_format_version"] = "2"

    with pytest.raises(ValueError, match="'sgmmq_format_version' must be a positive integer"):
        SGMMQ.load(rewrite(saved, tmp_path / "v.zip", data_edit=version_string))
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(tmp_path / "list.zip", "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, b"[1, 2]" if item.filename == "data" else zin.read(item.filename))
    with pytest.raises(ValueError, match="'data' entry must be a JSON object"):
        SGMMQ.load(tmp_path / "list.zip")


def test_saved_models_load_safely_and_exactly(tmp_path):
    model = SGMMQ("GMMPolicy", "CartPole-v1", learning_rate=3e-3, learning_starts=20, train_freq=(2, "step"), prune_interval=5,
                  prune_threshold=0.5, seed=1, policy_kwargs=dict(n_components=5, action_encoding="onehot", normalized=True,
                                                                   optimizer_class="rsgd"))
    model.learn(80)
    model.save(tmp_path / "m.zip")
    loaded = SGMMQ.load(tmp_path / "m.zip")
    obs = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    torch.testing.assert_close(loaded.policy(torch.as_tensor(obs)), model.policy(torch.as_tensor(obs)), rtol=0, atol=0)
    assert loaded.train_freq == model.train_freq and loaded.learning_rate == model.learning_rate
    assert torch.equal(loaded.pruner.strikes, model.pruner.strikes) and loaded.prune_events == [list(e) for e in model.prune_events]
    np.testing.assert_array_equal(loaded._last_obs, model._last_obs)
    assert list(loaded.ep_info_buffer) == list(model.ep_info_buffer)
    # a class given as optimizer_class is saved by name
    import geoopt

    classy = SGMMQ("GMMPolicy", "CartPole-v1", policy_kwargs=dict(n_components=3, optimizer_class=geoopt.optim.RiemannianSGD))
    classy.save(tmp_path / "c.zip")
    assert isinstance(SGMMQ.load(tmp_path / "c.zip").policy.optimizer, geoopt.optim.RiemannianSGD)


@pytest.mark.skipif(not LEGACY, reason="no format-1 study model in results/")
def test_format_1_files_load_without_unpickling_and_predict_as_before():
    safe, trusted = SGMMQ.load(LEGACY[0]), SGMMQ.load(LEGACY[0], trusted=True)
    low, high = np.asarray(safe.policy.obs_bounds, dtype=np.float32)
    obs = np.random.default_rng(0).uniform(low, high, size=(500, low.size)).astype(np.float32)
    np.testing.assert_array_equal(safe.predict(obs, deterministic=True)[0], trusted.predict(obs, deterministic=True)[0])
    assert safe.observation_space == trusted.observation_space and safe.action_space == trusted.action_space
    assert safe.train_freq == trusted.train_freq and safe.replay_buffer_class is trusted.replay_buffer_class
    assert torch.equal(safe.pruner.strikes, trusted.pruner.strikes)
    assert safe._last_obs is None  # only a pickle in format 1: training would restart from a reset


def test_policy_save_and_load_like_sb3_policies(tmp_path):
    """As SB3's tests do it: ``model.policy.save`` then ``PolicyClass.load`` predicts the same."""
    model = SGMMQ("GMMPolicy", "CartPole-v1", learning_starts=20, seed=0, policy_kwargs=dict(n_components=4, std_bounds=(0.05, 3.0)))
    model.learn(50)
    obs = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    model.policy.save(tmp_path / "policy.pth")
    policy = GMMPolicy.load(tmp_path / "policy.pth")
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    torch.testing.assert_close(policy(torch.as_tensor(obs)), model.policy(torch.as_tensor(obs)))
    target = tmp_path / "pwned"
    torch.save({"state_dict": {}, "data": WritesFile(target)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="refused"):
        GMMPolicy.load(tmp_path / "bad.pth")
    assert not target.exists()


# --- export ----------------------------------------------------------------------------------
def randomized_policy(task, seed: int) -> GMMPolicy:
    """An untrained policy of the task's study size with every parameter randomized (Q of order 1)."""
    torch.manual_seed(seed)
    n_actions = task.action_bins or {"CartPole-v1": 2, "Acrobot-v1": 3, "MountainCar-v0": 3, "LunarLander-v3": 4}[task.env_id]
    box = spaces.Box(np.asarray(task.obs_low, np.float32), np.asarray(task.obs_high, np.float32))
    policy = GMMPolicy(box, spaces.Discrete(n_actions), n_components=16, normalized=seed % 2 == 1)
    q = policy.q_net
    with torch.no_grad():
        q.euclidean.normal_(0.0, 1.0)
        q.offset.normal_()
        a = torch.randn(q.n_components, q.dim, q.dim)  # broad bumps: no exact ties between actions' Q-values
        q.precisions.copy_(0.1 * a @ a.transpose(1, 2) + 0.3 * torch.eye(q.dim))
        if q.normalized:  # undo the density's small factor, so that actions' Q-values stay apart
            q.euclidean[:, 0] /= torch.exp(0.5 * torch.logdet(q.precisions) - 0.5 * q.dim * np.log(2 * np.pi))
    return policy


@pytest.mark.parametrize("seed, task_id", list(enumerate(TASKS)))
def test_exported_onnx_and_numpy_policies_match_the_model(task_id, seed, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    task = TASKS[task_id]
    policy = randomized_policy(task, seed)
    low, high = np.asarray(task.obs_low, np.float32), np.asarray(task.obs_high, np.float32)
    obs = np.random.default_rng(seed).uniform(low - 0.2 * (high - low), high + 0.2 * (high - low), size=(10_000, low.size)).astype(np.float32)
    with torch.no_grad():
        q_model = policy(torch.as_tensor(obs)).numpy()
    actions = policy.predict(obs, deterministic=True)[0]
    assert np.abs(q_model).max() > 0.5  # Q-values of order 1: the tolerance below means something
    # where the best two actions' Q-values are within twice the tolerance, float32 rounding decides
    decided = np.diff(np.sort(q_model, axis=1)[:, -2:], axis=1)[:, 0] > 2e-5
    assert decided.mean() > 0.999
    onnx = pytest.importorskip("onnx")
    onnx.checker.check_model(onnx.load(export(policy, "onnx", tmp_path / "p.onnx")), full_check=True)
    session = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    onnx_actions, onnx_q = session.run(None, {"observation": obs})
    np_actions, np_q = numpy_predict(load_npz(export(policy, "npz", tmp_path / "p.npz")), obs)
    for got_actions, got_q in ((onnx_actions, onnx_q), (np_actions, np_q)):
        np.testing.assert_allclose(got_q, q_model, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(got_actions[decided], actions[decided])
    assert set(load_npz(tmp_path / "p.npz")) == set(greedy_arrays(policy))


def test_cli_export_writes_both_formats_and_never_overwrites(saved, tmp_path):
    for fmt in ("onnx", "npz"):
        result = sgmmq_cli("export", saved, "--format", fmt, "--out", tmp_path / f"p.{fmt}")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / f"p.{fmt}").stat().st_size > 0
    again = sgmmq_cli("export", saved, "--format", "npz", "--out", tmp_path / "p.npz")
    assert again.returncode == 2 and "already exists" in again.stderr
    model = SGMMQ.load(saved)
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(numpy_predict(load_npz(tmp_path / "p.npz"), obs)[0], model.predict(obs, deterministic=True)[0])


def test_a_custom_optimizer_class_saves_and_needs_the_opt_in(tmp_path):
    import geoopt

    class MyAdam(geoopt.optim.RiemannianAdam):
        pass

    model = SGMMQ("GMMPolicy", "CartPole-v1", policy_kwargs=dict(n_components=3, optimizer_class=MyAdam))
    model.save(tmp_path / "m.zip")
    with pytest.raises(ValueError, match="'policy_kwargs'.*trusted=True"):
        SGMMQ.load(tmp_path / "m.zip")


STUDY = Path(__file__).parents[1] / "results" / "study"


@pytest.mark.skipif(not (STUDY / "models" / "MountainCar-v0__sgmmq__k4__s0.zip").exists(), reason="no study results in results/")
def test_the_study_report_refuses_a_hostile_model_unless_trusted(tmp_path):
    import shutil

    results, target = tmp_path / "study", tmp_path / "pwned"
    (results / "runs").mkdir(parents=True)
    (results / "models").mkdir()
    for run in ("MountainCar-v0__sgmmq__k4__s0", "MountainCar-v0__dqn_zoo__w4__s0"):
        shutil.copy(STUDY / "runs" / f"{run}.json", results / "runs")
    rewrite(STUDY / "models" / "MountainCar-v0__sgmmq__k4__s0.zip", results / "models" / "MountainCar-v0__sgmmq__k4__s0.zip",
            data_edit=lambda d: d.update(extra=serialized(WritesFile(target))))
    result = sgmmq_cli("report", results, "--reps", "20", "--curve-reps", "10")
    assert result.returncode == 2 and "'extra'" in result.stderr and "--trust-file" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not target.exists()
    result = sgmmq_cli("report", results, "--reps", "20", "--curve-reps", "10", "--trust-file")
    assert result.returncode == 0 and target.exists(), result.stderr


def test_custom_objects_replace_a_field_that_cannot_be_read_safely(crafted):
    path, target = crafted["data"]
    model = SGMMQ.load(path, custom_objects={"extra": None})  # SB3's way to skip a field: nothing unpickled
    assert model.extra is None and not target.exists()


def test_an_unreadable_tensor_entry_is_a_clear_error(saved, tmp_path):
    with pytest.raises(ValueError, match="'policy.pth' is not readable as tensors"):
        SGMMQ.load(rewrite(saved, tmp_path / "m.zip", entries={"policy.pth": b"garbage"}))
