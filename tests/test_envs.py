"""The benchmark suite: task declarations, wrappers and the shared factory."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.monitor import Monitor

from sgmmq.envs import TASKS, DiscretizeAction, ScaleObservation, get_task, make_env, make_vec_env

TASK_IDS = list(TASKS)


def test_task_declarations_are_consistent():
    for env_id, task in TASKS.items():
        spec = gym.spec(env_id)
        low, high = task.box
        assert low.shape == high.shape == gym.make(env_id).observation_space.shape
        assert np.all(high > low)
        assert task.budget > 0 and task.eval_episodes > 0
        assert task.score_range[0] < task.score_range[1]
        if spec.reward_threshold is not None:
            assert task.success_threshold == spec.reward_threshold
        continuous = isinstance(gym.make(env_id).action_space, gym.spaces.Box)
        assert (task.action_bins is not None) == continuous


def test_get_task_lists_known_tasks():
    assert get_task("CartPole-v1") is TASKS["CartPole-v1"]
    with pytest.raises(ValueError, match="CartPole-v1"):
        get_task("Nope-v0")


@pytest.mark.parametrize("env_id", TASK_IDS)
@pytest.mark.parametrize("scale_obs", [False, True])
def test_envs_pass_gymnasium_and_sb3_checkers(env_id, scale_obs):
    env = make_env(env_id, seed=0, scale_obs=scale_obs)
    assert isinstance(env, Monitor)
    gym_check_env(gym.make(env_id).unwrapped, skip_render_check=True)  # the bare env
    # gymnasium's checker re-creates the env from its spec, which SB3's Monitor does not support
    gym_check_env(make_env(env_id, seed=0, scale_obs=scale_obs, monitor=False), skip_render_check=True)
    sb3_check_env(env, warn=False)
    assert isinstance(env.action_space, gym.spaces.Discrete)


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_scaled_observations_stay_in_the_box(env_id):
    task = TASKS[env_id]
    env = make_env(env_id, seed=1, scale_obs=True)
    raw = make_env(env_id, seed=1, scale_obs=False)
    low, high = task.box
    obs, _ = env.reset(seed=1)
    raw_obs, _ = raw.reset(seed=1)
    for t in range(300):
        assert env.observation_space.contains(obs)
        assert np.all(obs >= -1.0) and np.all(obs <= 1.0)
        inside = (raw_obs >= low) & (raw_obs <= high)  # where the raw value is inside, scaling is affine
        expected = 2 * (raw_obs - low) / (high - low) - 1
        np.testing.assert_allclose(obs[inside], expected[inside], atol=1e-5)
        np.testing.assert_array_equal(obs[raw_obs > high], 1.0)
        np.testing.assert_array_equal(obs[raw_obs < low], -1.0)
        action = env.action_space.sample()
        obs, _, term, trunc, _ = env.step(action)
        raw_obs, _, raw_term, raw_trunc, _ = raw.step(action)
        assert (term, trunc) == (raw_term, raw_trunc)
        if term or trunc:
            obs, _ = env.reset(seed=100 + t)
            raw_obs, _ = raw.reset(seed=100 + t)


def test_scale_observation_maps_box_corners():
    env = ScaleObservation(gym.make("MountainCar-v0"), np.array([-1.2, -0.07]), np.array([0.6, 0.07]))
    np.testing.assert_allclose(env.observation(np.array([-1.2, -0.07])), [-1, -1])
    np.testing.assert_allclose(env.observation(np.array([0.6, 0.07])), [1, 1])
    np.testing.assert_allclose(env.observation(np.array([-0.3, 0.0])), [0, 0], atol=1e-6)
    np.testing.assert_allclose(env.observation(np.array([5.0, -1.0])), [1, -1])


@pytest.mark.parametrize("env_id, torques", [
    ("Pendulum-v1", [-2.0, -1.0, 0.0, 1.0, 2.0]),
    ("MountainCarContinuous-v0", [-1.0, -0.5, 0.0, 0.5, 1.0]),
])
def test_discretized_actions_map_to_the_right_torques(env_id, torques):
    env = make_env(env_id, seed=0)
    wrapper = env.env
    assert isinstance(wrapper, DiscretizeAction)
    assert env.action_space == gym.spaces.Discrete(len(torques))
    for i, torque in enumerate(torques):
        np.testing.assert_allclose(wrapper.action(i), [torque])
        assert wrapper.action(i).dtype == np.float32


def test_discretized_pendulum_applies_the_torque():
    # Pendulum's cost includes 0.001 * u^2: the same state with actions 0 (u=-2) and 2 (u=0) differs by 0.004.
    rewards = []
    for action in (0, 2):
        env = make_env("Pendulum-v1", seed=3)
        env.reset(seed=3)
        _, reward, *_ = env.step(action)
        rewards.append(reward)
    assert rewards[1] - rewards[0] == pytest.approx(0.001 * 4, abs=1e-5)


def test_discretize_multidimensional_grid():
    env = DiscretizeAction(gym.make("LunarLander-v3", continuous=True), bins=3)
    assert env.action_space == gym.spaces.Discrete(9)
    np.testing.assert_allclose(env.action(0), [-1, -1])
    np.testing.assert_allclose(env.action(5), [0, 1])
    np.testing.assert_allclose(env.action(8), [1, 1])


def test_factory_seeding_is_reproducible_and_vectorized():
    a, b = make_env("CartPole-v1", seed=7), make_env("CartPole-v1", seed=7)
    np.testing.assert_array_equal(a.reset(seed=7)[0], b.reset(seed=7)[0])
    vec = make_vec_env("Pendulum-v1", n_envs=3, seed=0, scale_obs=True)
    obs = vec.reset()
    assert obs.shape == (3, 3) and np.all(np.abs(obs) <= 1)
    assert vec.action_space == gym.spaces.Discrete(5)
    obs, rewards, dones, infos = vec.step(np.array([0, 2, 4]))
    assert rewards.shape == (3,)
    vec.close()
