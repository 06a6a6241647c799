"""The adaptive pool (sgmmq.pool): support-gated pruning, births at the worst-fit points, new loss options."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.logger import configure

from sgmmq import SGMMQ
from sgmmq.pool import birth_sites
from sgmmq.sparsity import Pruner

BUMP = np.array([0.7, 0.7], dtype=np.float32)  # where the reward lives, far from where the means start


class BumpBandit(gym.Env):
    """One-step episodes: states only near ``BUMP``, reward ``5 exp(-|s - BUMP|^2 / 0.02)`` for action 1."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = (BUMP + self.np_random.uniform(-0.25, 0.25, 2)).astype(np.float32)
        return self.state, {}

    def step(self, action):
        reward = 5.0 * float(np.exp(-np.sum((self.state - BUMP) ** 2) / 0.02)) if action == 1 else 0.0
        return self.state, reward, True, False, {}


def bandit_model(**kwargs) -> SGMMQ:
    defaults = dict(learning_starts=100, prune_interval=100, prune_patience=1, exploration_fraction=0.5, seed=0,
                    policy_kwargs=dict(n_components=8, offset=False))
    model = SGMMQ("GMMPolicy", BumpBandit(), **{**defaults, **kwargs})
    model.set_logger(configure(None, []))
    with torch.no_grad():  # every mean in the far corner, nowhere near a visited point
        model.policy.q_net.means.copy_(torch.full_like(model.policy.q_net.means, -0.9))
        model.policy.refresh_snapshot()
    return model


def distance_to_bump(model: SGMMQ) -> torch.Tensor:
    """Distance of every live component's (state, action) mean to (BUMP, action 1)."""
    target = torch.as_tensor([*BUMP, 1.0])
    return torch.linalg.norm(model.policy.q_net.means.detach() - target, dim=1)


def test_adaptive_pool_puts_components_on_a_far_bump():
    torch.set_num_threads(1)
    model = bandit_model(pool="adaptive", prune_min_support=1.0)
    assert distance_to_bump(model).min() > 2.0
    model.learn(1_500)
    near = distance_to_bump(model) < 0.3
    assert near.any(), distance_to_bump(model)
    assert (model.policy.q_net.xi.detach()[near] > 0).any()  # and they carry the reward
    assert model.pool_events and model.policy.q_net.n_components <= 8
    greedy = model.predict(BUMP, deterministic=True)[0]
    assert int(greedy) == 1


def test_fixed_pool_leaves_far_components_in_the_corner():
    model = bandit_model(pool="fixed")
    model.learn(1_000)
    assert not model.pool_events
    assert model.policy.q_net.n_components == 0 or distance_to_bump(model).min() > 1.0


def test_a_component_without_data_is_never_pruned():
    model = bandit_model(pool="fixed", prune_min_support=1.0, sparsity_lambda=0.5)
    model.learn(1_000)  # a strong penalty: weights of idle components go to ~0 at once
    q_net = model.policy.q_net
    assert q_net.n_components == 8 and (q_net.xi.detach().abs() < 1e-2).all()


def test_pruner_does_not_judge_components_without_data():
    pruner = Pruner(threshold=0.1, patience=2)
    xi = torch.tensor([0.0, 0.0, 1.0])
    judged = torch.tensor([True, False, True])
    assert pruner.check(xi, judged) is None
    keep = pruner.check(xi, judged)
    assert keep.tolist() == [False, True, True]
    for _ in range(5):  # the unjudged one stays whatever its weight
        assert pruner.check(xi[keep], judged[keep]) is None
    pruner.extend(2)
    assert pruner.strikes.tolist() == [0, 0, 0, 0]


def test_birth_sites_pick_distinct_large_residuals_only():
    z = torch.tensor([[0.0, 0.0], [0.01, 0.0], [1.0, 1.0], [-1.0, 0.5], [0.5, -0.5]])
    residual = torch.tensor([10.0, 9.0, -8.0, 0.1, 0.1])
    sites = birth_sites(z, residual, n=3, min_distance=0.5, threshold=1.0)
    assert sites.tolist() == [0, 2]  # 1 is too close to 0; 3 and 4 are below the RMS
    assert birth_sites(z, residual, n=0, min_distance=0.5, threshold=1.0).numel() == 0
    assert birth_sites(z, torch.ones(5), n=3, min_distance=0.5, threshold=1.0).numel() == 0  # a uniform fit


def test_births_keep_optimizer_state_aligned_and_save_load_exact(tmp_path):
    model = bandit_model(pool="adaptive", prune_min_support=1.0)
    model.learn(1_500)
    q_net = model.policy.q_net
    for param in q_net.component_parameters():
        for value in model.policy.optimizer.state[param].values():
            if torch.is_tensor(value) and value.dim() > 0:
                assert value.shape[0] == q_net.n_components
    model.save(tmp_path / "m.zip")
    loaded = SGMMQ.load(tmp_path / "m.zip")
    obs = np.random.default_rng(0).uniform(-1, 1, (64, 2)).astype(np.float32)
    assert np.array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    assert loaded.pool_events == [list(e) for e in model.pool_events] or loaded.pool_events == model.pool_events


@pytest.mark.parametrize("options", [dict(loss="huber"), dict(double_q=True), dict(n_steps=3),
                                     dict(pool="adaptive", prune_min_support=0.5, target="residual")])
def test_loss_options_train_on_cartpole(options):
    model = SGMMQ("GMMPolicy", "CartPole-v1", learning_starts=100, prune_interval=200, seed=0, **options)
    model.set_logger(configure(None, []))
    model.learn(600)
    assert torch.isfinite(model.policy.q_net.euclidean).all()


def test_n_step_targets_use_the_buffer_discounts():
    model = SGMMQ("GMMPolicy", "CartPole-v1", learning_starts=50, n_steps=3, gamma=0.9, seed=0)
    model.set_logger(configure(None, []))
    model.learn(200)
    data = model.replay_buffer.sample(64)
    assert data.discounts is not None
    discounts = data.discounts.numpy().ravel()
    assert np.all(np.isclose(discounts[:, None], [0.9, 0.81, 0.729]).any(axis=1))
    assert np.isclose(discounts, 0.729).any()  # three-step returns do happen


@pytest.mark.parametrize("kwargs, message", [
    (dict(pool="grow"), "pool"), (dict(loss="l1"), "loss"), (dict(n_steps=0), "n_steps"),
    (dict(double_q="yes"), "double_q"), (dict(prune_min_support=-1.0), "prune_min_support"),
    (dict(max_births=-1), "max_births"), (dict(birth_gain=-0.5), "birth_gain"),
    (dict(birth_threshold=-1.0), "birth_threshold"), (dict(pool_sample_size=0), "pool_sample_size"),
])
def test_bad_pool_and_loss_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGMMQ("GMMPolicy", "CartPole-v1", **kwargs)


def test_n_step_model_loads_safely_and_predicts_the_same(tmp_path):
    model = SGMMQ("GMMPolicy", "CartPole-v1", learning_starts=50, n_steps=3, double_q=True, loss="huber", seed=0)
    model.set_logger(configure(None, []))
    model.learn(300)
    model.save(tmp_path / "n3.zip")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3's "n_steps is ignored" would be wrong here: the buffer is n-step
        loaded = SGMMQ.load(tmp_path / "n3.zip")  # no unpickling: the n-step buffer class is an allowed name
    assert loaded.n_steps == 3 and loaded.double_q and loaded.loss == "huber"
    assert loaded.replay_buffer_kwargs == {"n_steps": 3, "gamma": model.gamma}
    obs = np.random.default_rng(1).uniform(-1, 1, (64, 4)).astype(np.float32)
    assert np.array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
