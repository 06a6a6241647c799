"""SGMMQ as a Stable-Baselines3 algorithm: learning, SB3 integration, save/load, errors."""

import json
import re
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

from sgmmq import SGMMQ
from sgmmq.agent import FORMAT_VERSION


def quiet(model: SGMMQ) -> SGMMQ:
    model.set_logger(configure(None, []))
    return model


def small_model(env="CartPole-v1", **kwargs) -> SGMMQ:
    defaults = dict(learning_starts=100, prune_interval=200, prune_patience=1, seed=0)
    return quiet(SGMMQ("GMMPolicy", env, **{**defaults, **kwargs}))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> SGMMQ:
    """A short CartPole run shared by the tests that need a trained, pruned model."""
    torch.set_num_threads(1)
    model = quiet(SGMMQ("GMMPolicy", "CartPole-v1", seed=1, exploration_fraction=0.3))
    model.learn(15_000)
    return model


def test_short_cartpole_run_clearly_beats_random(trained):
    eval_env = gym.make("CartPole-v1")
    eval_env.reset(seed=123)
    mean, _ = evaluate_policy(trained, eval_env, n_eval_episodes=10, deterministic=True, warn=False)
    # a uniformly random policy scores about 22 on CartPole-v1
    assert mean > 150, f"mean eval return {mean}"
    assert trained.live_components < 32, "nothing was pruned"
    assert trained.num_parameters() == trained.live_components * 21 + 1


def test_save_load_reproduces_deterministic_actions(trained, tmp_path):
    observations = np.random.default_rng(0).uniform(-1, 1, size=(200, 4)).astype(np.float32)
    actions, _ = trained.predict(observations, deterministic=True)
    trained.save(tmp_path / "model")
    loaded = SGMMQ.load(tmp_path / "model")  # the .zip suffix is optional, as in SB3
    assert loaded.live_components == trained.live_components
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0], actions)
    torch.testing.assert_close(loaded.policy(torch.as_tensor(observations)), trained.policy(torch.as_tensor(observations)))
    assert loaded.prune_events == [list(event) for event in trained.prune_events] or loaded.prune_events == trained.prune_events
    # and training goes on from the loaded model (optimizer state has the pruned size)
    loaded.set_env(make_vec_env("CartPole-v1", n_envs=1, seed=0))
    quiet(loaded).learn(300, reset_num_timesteps=False)


def test_get_and_set_parameters_round_trip(trained):
    fresh = small_model()
    assert fresh.live_components == 32
    fresh.set_parameters(trained.get_parameters())
    assert fresh.live_components == trained.live_components
    observations = np.random.default_rng(1).uniform(-1, 1, size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(fresh.predict(observations, deterministic=True)[0], trained.predict(observations, deterministic=True)[0])


def test_predict_shapes_and_exploration(trained):
    single = np.zeros(4, dtype=np.float32)
    action, state = trained.predict(single, deterministic=True)
    assert action.shape == () and state is None
    batch_actions, _ = trained.predict(np.zeros((7, 4), dtype=np.float32), deterministic=True)
    assert batch_actions.shape == (7,)
    trained.exploration_rate = 1.0
    draws = {int(trained.predict(single, deterministic=False)[0]) for _ in range(50)}
    trained.exploration_rate = 0.0
    assert draws == {0, 1}, "epsilon = 1 should sample both actions"
    assert len({int(trained.predict(single, deterministic=True)[0]) for _ in range(10)}) == 1


def test_callbacks_vec_envs_and_logger(tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = SGMMQ("GMMPolicy", env, learning_starts=100, prune_interval=100, target_update_interval=50, seed=0)
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    eval_cb = EvalCallback(make_vec_env("CartPole-v1", n_envs=1, seed=5), eval_freq=300, n_eval_episodes=2, log_path=str(tmp_path / "eval"), verbose=0)
    checkpoint_cb = CheckpointCallback(save_freq=400, save_path=str(tmp_path / "ckpt"), name_prefix="sgmmq")
    model.learn(1_200, callback=[eval_cb, checkpoint_cb], log_interval=1)
    assert model.num_timesteps >= 1_200
    assert (tmp_path / "eval" / "evaluations.npz").exists()
    checkpoints = sorted((tmp_path / "ckpt").glob("sgmmq_*_steps.zip"))
    assert checkpoints, "CheckpointCallback saved nothing"
    SGMMQ.load(checkpoints[-1])
    header = (tmp_path / "log" / "progress.csv").read_text().splitlines()[0].split(",")
    for key in ["train/live_components", "train/n_parameters", "train/loss", "rollout/exploration_rate", "train/precision_eig_max"]:
        assert key in header, key


def test_declared_box_is_used_for_known_tasks_and_required_otherwise():
    model = small_model()
    low, high = model.policy.obs_bounds
    assert high[1] == pytest.approx(3.0) and low[2] == pytest.approx(-0.2095)
    # a finite space is used as is
    assert small_model("MountainCar-v0").policy.obs_bounds[1] == pytest.approx([0.6, 0.07])


@pytest.mark.parametrize(
    "options",
    [
        dict(target="residual"),
        dict(mean_init="data"),
        dict(policy_kwargs=dict(action_encoding="onehot", normalized=True)),
        dict(policy_kwargs=dict(optimizer_class="rsgd", factor_signs="positive"), learning_rate=1e-3),
        dict(window_size=5_000),
        dict(policy_kwargs=dict(precision="diagonal")),
    ],
)
def test_options_train_and_keep_precisions_in_bounds(options):
    model = small_model(**options)
    model.learn(600)
    q_net = model.policy.q_net
    eig = torch.linalg.eigvalsh(q_net.precisions.detach())
    assert q_net.manifold.eig_min * 0.999 <= eig.min() and eig.max() <= q_net.manifold.eig_max * 1.001
    assert torch.isfinite(q_net.euclidean).all()


def test_snapshot_is_refreshed_every_interval_and_frozen_in_between():
    model = small_model(target_update_interval=50)
    model.learn(120)  # refreshed at step 100
    snapshot = model.policy.q_net_target
    frozen = snapshot.euclidean.detach().clone()
    model.learn(20, reset_num_timesteps=False)  # steps 121..140: no refresh, but 20 gradient steps
    torch.testing.assert_close(snapshot.euclidean, frozen)
    assert not torch.equal(model.policy.q_net.euclidean, frozen)
    model.learn(10, reset_num_timesteps=False)  # step 150: refresh
    assert not torch.equal(snapshot.euclidean, frozen)


# --- errors -----------------------------------------------------------------------------------


class NaNObservation(gym.ObservationWrapper):
    def observation(self, observation):
        observation = observation.copy()
        observation[0] = np.nan
        return observation


class ImageEnv(gym.Env):
    observation_space = spaces.Box(0, 255, (32, 32, 3), dtype=np.uint8)
    action_space = spaces.Discrete(2)


class MultiDiscreteEnv(gym.Env):
    observation_space = spaces.Box(-1, 1, (3,), dtype=np.float32)
    action_space = spaces.MultiDiscrete([2, 2])


@pytest.mark.parametrize(
    "env, message",
    [
        (MultiDiscreteEnv(), "Discrete or a bounded 1-D Box action space"),
        (ImageEnv(), "flat continuous"),
    ],
)
def test_unsupported_spaces_are_refused(env, message):
    with pytest.raises(ValueError, match=message):
        SGMMQ("GMMPolicy", env)


def test_image_space_error_shows_the_shape_the_user_gave():
    with pytest.raises(ValueError, match=r"\(32, 32, 3\)"):
        SGMMQ("GMMPolicy", ImageEnv())


class UnboundedActionEnv(MultiDiscreteEnv):
    action_space = spaces.Box(-np.inf, np.inf, (1,), dtype=np.float32)


def test_unbounded_box_actions_get_our_error_not_an_assertion():
    with pytest.raises(ValueError, match="bounded Box action space"):
        SGMMQ("GMMPolicy", UnboundedActionEnv())


def test_infinite_unknown_box_asks_for_obs_bounds():
    class Unbounded(gym.Env):
        observation_space = spaces.Box(-np.inf, np.inf, (2,), dtype=np.float32)
        action_space = spaces.Discrete(2)

    with pytest.raises(ValueError, match="obs_bounds"):
        SGMMQ("GMMPolicy", Unbounded())
    SGMMQ("GMMPolicy", Unbounded(), policy_kwargs=dict(obs_bounds=([-1, -1], [1, 1])))


def test_nan_observations_are_refused():
    model = small_model(NaNObservation(gym.make("CartPole-v1")))
    with pytest.raises(ValueError, match="NaN"):
        model.learn(50)
    with pytest.raises(ValueError, match="NaN"):
        small_model().predict(np.array([np.nan, 0, 0, 0], dtype=np.float32), deterministic=True)


def test_wrong_observation_shape_is_refused():
    with pytest.raises(ValueError):
        small_model().predict(np.zeros(3, dtype=np.float32))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sparsity_lambda=-0.1), "sparsity_lambda"),
        (dict(window_size=16, batch_size=32), "window_size"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(gamma=1.5), "gamma"),
        (dict(target="double"), "target"),
        (dict(prune_threshold=-1.0), "prune_threshold"),
        (dict(mean_init="kmeans"), "mean_init"),
        (dict(policy_kwargs=dict(action_encoding="binary")), "action_encoding"),
        (dict(policy_kwargs=dict(std_bounds=(0.5, 0.1))), "std_min"),
        (dict(policy_kwargs=dict(n_components=0)), "n_components"),
        (dict(policy_kwargs=dict(optimizer_class="lbfgs")), "optimizer_class"),
        # wrong types are named too (they used to fail inside a comparison with a bare TypeError)
        (dict(learning_rate="0.01"), "learning_rate must be a number > 0 or a schedule"),
        (dict(gamma="abc"), "gamma must be a number in"),
        (dict(batch_size="32"), "batch_size must be an integer >= 1, got batch_size='32'"),
        (dict(batch_size=True), "batch_size must be an integer"),
        (dict(window_size=1000.5), "window_size must be an integer"),
        (dict(learning_starts=None), "learning_starts must be an integer >= 0"),
        (dict(train_freq=0), "train_freq"),
        (dict(train_freq=(4, "minute")), "train_freq"),
        (dict(gradient_steps=0), "gradient_steps"),
        (dict(target_update_interval=2.5), "target_update_interval must be an integer"),
        (dict(exploration_fraction="0.2"), "exploration_fraction must be a number"),
        (dict(prune_patience=[3]), "prune_patience must be an integer"),
        (dict(policy_kwargs=[("n_components", 8)]), "policy_kwargs must be a dict"),
    ],
)
def test_nonsense_hyperparameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SGMMQ("GMMPolicy", "CartPole-v1", **kwargs)


def test_numpy_numbers_and_schedules_are_accepted():
    model = SGMMQ("GMMPolicy", "CartPole-v1", batch_size=np.int64(16), gamma=np.float32(0.9), learning_rate=lambda p: 1e-2 * p,
                  train_freq=(1, "step"), gradient_steps=-1)
    assert model.batch_size == 16


def test_corrupt_and_foreign_save_files_are_refused(tmp_path):
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="not a zip"):
        SGMMQ.load(corrupt)
    with pytest.raises(FileNotFoundError):
        SGMMQ.load(tmp_path / "missing.zip")

    dqn = DQN("MlpPolicy", "CartPole-v1", learning_starts=0)
    dqn.save(tmp_path / "dqn.zip")
    with pytest.raises(ValueError, match="not saved by SGMMQ"):
        SGMMQ.load(tmp_path / "dqn.zip")

    model = small_model()
    model.save(tmp_path / "model.zip")
    newer = tmp_path / "newer.zip"
    with zipfile.ZipFile(tmp_path / "model.zip") as source, zipfile.ZipFile(newer, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "data":
                data = json.loads(content)
                data["sgmmq_format_version"] = FORMAT_VERSION + 1
                content = json.dumps(data).encode()
            target.writestr(item, content)
    with pytest.raises(ValueError, match="format version"):
        SGMMQ.load(newer)
