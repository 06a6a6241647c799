"""Deep-RL baselines: configs, parameter counting, sparse DQN masks and schedules, short trainings."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

from sgmmq.baselines.configs import DQN_ZOO, PPO_ZOO, SAC_ZOO, TD3_ZOO, ZOO
from sgmmq.evaluation import count_parameters, evaluate, mlp_parameters
from sgmmq.baselines.dense import CONTINUOUS_METHODS, METHODS, build_model, resolve_config
from sgmmq.baselines.sparse import SparseDQN, gmp_sparsity, layer_densities
from sgmmq.envs import TASKS, make_vec_env
from sgmmq.methods import build

th.set_num_threads(1)
SILENT = Logger(folder=None, output_formats=[])


def sparse_dqn(method="static", budget=500, seed=0, **kwargs):
    params = dict(learning_starts=100, train_freq=4, gradient_steps=1, buffer_size=5000, batch_size=32)
    params.update(kwargs)
    model = SparseDQN("MlpPolicy", make_vec_env("CartPole-v1", 1, seed=seed), sparse_method=method,
                      live_budget=budget, seed=seed, **params)
    model.set_logger(SILENT)
    return model


def pruned_entries_are_zero(model) -> bool:
    online = dict(model.q_net.named_parameters())
    target = dict(model.q_net_target.named_parameters())
    return all(
        bool((online[n][~m] == 0).all()) and bool((target[n][~m] == 0).all()) for n, m in model.masks.items()
    )


class Watch(BaseCallback):
    """Records the live count and mask of every step, and whether pruned entries were zero."""

    def __init__(self):
        super().__init__()
        self.history = []

    def _on_step(self) -> bool:
        m = self.model
        self.history.append((m.num_timesteps, m.live_weights(), m.sparsity(), pruned_entries_are_zero(m),
                             {n: k.clone() for n, k in m.masks.items()}))
        return True


# ---- configs ------------------------------------------------------------------------------------
def test_zoo_rows_are_verbatim():
    cartpole = DQN_ZOO["CartPole-v1"]
    assert (cartpole["learning_rate"], cartpole["batch_size"], cartpole["train_freq"], cartpole["gradient_steps"]) == (
        2.3e-3, 64, 256, 128)
    assert cartpole["policy_kwargs"] == {"net_arch": [256, 256]} and cartpole["n_timesteps"] == 50_000
    assert PPO_ZOO["CartPole-v1"]["learning_rate"] == "lin_0.001"
    for algo, rows in ZOO.items():
        box_tasks = {t for t, task in TASKS.items() if task.has_continuous_form}
        assert (box_tasks if algo in ("sac", "td3") else set(TASKS)) <= set(rows)
        assert all(row["provenance"] for row in rows.values())
    assert SAC_ZOO["MountainCarContinuous-v0"]["policy_kwargs"] == dict(log_std_init=-3.67, net_arch=[64, 64], use_expln=True)
    assert TD3_ZOO["Pendulum-v1"]["noise_std"] == 0.1 and TD3_ZOO["Pendulum-v1"]["gamma"] == 0.98


def test_overrides_are_explicit_and_recorded():
    config = resolve_config("dqn_zoo", "CartPole-v1", net_arch=[16, 16])
    assert config["policy_kwargs"]["net_arch"] == [16, 16] and config["learning_rate"] == 2.3e-3
    assert DQN_ZOO["CartPole-v1"]["policy_kwargs"]["net_arch"] == [256, 256]  # the source is untouched
    model, spec = build_model("ppo_zoo", "CartPole-v1", seed=0, overrides={"n_epochs": 2})
    assert spec.overrides == {"n_epochs": 2} and model.n_epochs == 2 and model.n_steps == 32
    assert callable(model.learning_rate) and model.learning_rate(1.0) == pytest.approx(1e-3)
    assert model.learning_rate(0.5) == pytest.approx(5e-4)


# ---- parameter counting -------------------------------------------------------------------------
@pytest.mark.parametrize("env_id, arch, expected", [
    ("CartPole-v1", [64, 64], 4_610),
    ("CartPole-v1", [256, 256], 67_586),
    ("Acrobot-v1", [256, 256], 68_355),
    ("MountainCar-v0", [64, 64], 4_547),
    ("LunarLander-v3", [256, 256], 69_124),
    ("CartPole-v1", [4], 30),
    ("Pendulum-v1", [8], 3 * 8 + 8 + 8 * 5 + 5),
])
def test_dqn_counts_match_hand_computed(env_id, arch, expected):
    model, _ = build_model("dqn_zoo", env_id, seed=0, net_arch=arch, overrides={"buffer_size": 100})
    counts = count_parameters(model)
    assert counts["inference"] == counts["dense"] == counts["nonzero"] == expected
    assert counts["training"] == 2 * expected  # online + target
    obs_dim = TASKS[env_id].box[0].size
    assert mlp_parameters([obs_dim, *arch, model.action_space.n]) == expected


def test_actor_critic_counts_match_hand_computed():
    model, _ = build_model("ppo_zoo", "CartPole-v1", seed=0)
    counts = count_parameters(model)
    assert counts["inference"] == 4 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2 == 4_610
    assert counts["critic"] == 4 * 64 + 64 + 64 * 64 + 64 + 64 + 1 == 4_545
    assert counts["training"] == 9_155  # ecosystem.md section 3.4
    a2c, _ = build_model("a2c_zoo", "Acrobot-v1", seed=0)
    assert count_parameters(a2c)["training"] == 9_476


def test_sac_and_td3_count_their_actor_and_take_the_zoo_noise():
    sac, _ = build_model("sac_zoo", "Pendulum-v1", seed=0, net_arch=[8, 8], overrides={"buffer_size": 100})
    counts = count_parameters(sac)
    # actor: 3 -> 8 -> 8, then mean and log_std heads 8 -> 1 each; critics: two (3 + 1) -> 8 -> 8 -> 1
    assert counts["inference"] == mlp_parameters([3, 8, 8]) + 2 * mlp_parameters([8, 1]) == 122
    assert counts["critic"] == 2 * mlp_parameters([4, 8, 8, 1]) and counts["training"] == 122 + 2 * counts["critic"]
    td3, spec = build_model("td3_zoo", "LunarLanderContinuous-v3", seed=0, overrides={"buffer_size": 100})
    assert count_parameters(td3)["inference"] == mlp_parameters([8, 400, 300, 2])
    assert td3.action_space.shape == (2,) and spec.provenance.startswith("rl_zoo3 2.9.2 td3.yml")
    np.testing.assert_allclose(td3.action_noise._sigma, [0.1, 0.1])
    with pytest.raises(ValueError, match="No sac config for 'CartPole-v1'; known: Pendulum-v1"):
        build_model("sac_zoo", "CartPole-v1", seed=0)


def test_sparse_counts_only_nonzero_and_sgmmq_duck_typing():
    model = sparse_dqn(budget=1000)
    counts = count_parameters(model)
    assert counts["inference"] == counts["mask_live"] == counts["nonzero"] == 1000 and counts["dense"] == 4_610
    assert counts["training"] == 2000

    class FakeSGMMQ:
        def num_parameters(self):
            return 420

        def num_training_parameters(self):
            return 2 * 32 * 21

    assert count_parameters(FakeSGMMQ()) == {"inference": 420, "training": 1344}


# ---- sparsity distribution and schedule -----------------------------------------------------------
@pytest.mark.parametrize("distribution", ["erk", "uniform"])
@pytest.mark.parametrize("live", [3, 120, 870, 4_000, 4_480])
def test_layer_densities_sum_exactly(distribution, live):
    shapes = [(64, 4), (64, 64), (2, 64)]
    counts = layer_densities(shapes, live, distribution)
    assert sum(counts) == live
    assert all(1 <= c <= np.prod(s) for c, s in zip(counts, shapes))


def test_erk_favours_small_layers():
    counts = layer_densities([(64, 4), (64, 64), (2, 64)], 870, "erk")
    densities = [c / n for c, n in zip(counts, [256, 4096, 128])]
    assert densities[2] == 1.0 and densities[0] > densities[1]
    with pytest.raises(ValueError):
        layer_densities([(2, 2)], 5)


def test_gmp_schedule_is_cubic_and_reaches_target():
    assert gmp_sparsity(100, 0.9, 100, 500) == 0.0
    assert gmp_sparsity(500, 0.9, 100, 500) == pytest.approx(0.9)
    assert gmp_sparsity(300, 0.9, 100, 500) == pytest.approx(0.9 * (1 - 0.5**3))
    assert gmp_sparsity(10_000, 0.9, 100, 500) == pytest.approx(0.9)


def test_gmp_reaches_target_sparsity_at_the_declared_step():
    model = sparse_dqn("gmp", budget=500, prune_begin=0.2, prune_end=0.5, update_every=0.05)
    watch = Watch()
    model.learn(2000, callback=watch)
    final = 1 - (500 - 130) / 4480  # 130 dense biases
    by_step = {step: sparsity for step, _, sparsity, _, _ in watch.history}
    assert by_step[400] == 0.0  # dense until prune_begin (callbacks see the state before that step's update)
    assert 0 < by_step[800] < final  # on the way
    assert by_step[1001] == pytest.approx(final)  # pruned to the target at step 1000 = prune_end
    sparsities = [s for _, _, s, _, _ in watch.history]
    assert all(b >= a for a, b in zip(sparsities, sparsities[1:]))  # never regrows
    assert all(zero for *_, zero, _ in watch.history)
    assert count_parameters(model)["inference"] == 500


# ---- masks through optimizer steps, target updates, save/load --------------------------------------
@pytest.mark.parametrize("method", ["static", "set", "rigl"])
def test_masks_hold_through_training_target_updates_and_save_load(method, tmp_path):
    model = sparse_dqn(method, budget=400, target_update_interval=50, tau=0.5)
    watch = Watch()
    model.learn(1500, callback=watch)
    assert model._n_updates > 300
    assert all(zero for *_, zero, _ in watch.history)
    assert pruned_entries_are_zero(model)
    assert count_parameters(model)["mask_live"] == 400

    path = tmp_path / "sparse.zip"
    model.save(path)
    loaded = SparseDQN.load(path, env=make_vec_env("CartPole-v1", 1, seed=1))
    loaded.set_logger(SILENT)
    assert set(loaded.masks) == set(model.masks)
    for name, mask in model.masks.items():
        assert th.equal(loaded.masks[name], mask)
    for (n1, p1), (n2, p2) in zip(model.policy.state_dict().items(), loaded.policy.state_dict().items()):
        assert n1 == n2 and th.equal(p1, p2)
    plain = DQN("MlpPolicy", make_vec_env("CartPole-v1", 1, seed=0), buffer_size=100)
    assert list(plain.policy.state_dict()) == list(loaded.policy.state_dict())  # keys and order of a plain DQN
    obs = np.zeros((1, 4), dtype=np.float32)
    assert loaded.predict(obs, deterministic=True)[0] == model.predict(obs, deterministic=True)[0]
    # the loaded model keeps enforcing its masks
    loaded.learn(600, reset_num_timesteps=False)
    assert pruned_entries_are_zero(loaded)
    assert loaded.live_weights() == 400 - 130


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_dynamic_sparse_training_moves_connections_at_constant_live_count(method):
    model = sparse_dqn(method, budget=600, update_every=0.05, update_end=0.75)
    watch = Watch()
    model.learn(2000, callback=watch)
    lives = {live for _, live, *_ in watch.history}
    assert lives == {600 - 130}
    first, last = watch.history[0][-1], watch.history[-1][-1]
    moved = sum(int((first[n] & ~last[n]).sum()) for n in first)
    assert moved > 0 and model.topology_updates >= 10
    masks = [h[-1] for h in watch.history]
    changes = [i for i in range(1, len(masks)) if any(not th.equal(masks[i][n], masks[i - 1][n]) for n in first)]
    assert changes and max(watch.history[i][0] for i in changes) <= 1501  # no updates after update_end


def test_pruning_with_torch_utils_prune_is_not_needed():
    model = sparse_dqn()
    assert not any("weight_orig" in k or "weight_mask" in k for k in model.policy.state_dict())


# ---- every baseline trains briefly on every task ----------------------------------------------------
def _short(method):
    # Small nets and short rollouts so one rollout fits in the test budget; recorded as overrides.
    overrides = {}
    if method.startswith("dqn"):
        overrides["buffer_size"] = 5_000
    if method in ("sac_zoo", "td3_zoo"):
        overrides.update(buffer_size=5_000, learning_starts=500)
    if method in ("ppo_zoo", "a2c_zoo"):
        overrides["n_steps"] = 16
        overrides["batch_size"] = 64 if method == "ppo_zoo" else None
        overrides = {k: v for k, v in overrides.items() if v is not None}
    return overrides


@pytest.mark.parametrize("env_id", list(TASKS))
@pytest.mark.parametrize("method", METHODS)
def test_every_baseline_trains_on_every_task(method, env_id):
    if method in CONTINUOUS_METHODS and not TASKS[env_id].has_continuous_form:
        pytest.skip("SAC and TD3 need Box actions")
    if env_id == "LunarLanderContinuous-v3" and method not in ("dqn_zoo", *CONTINUOUS_METHODS):
        pytest.skip("its discretized form is LunarLander-v3's rows on 9 actions: dqn_zoo stands for them")
    sparse = method in ("dqn_static", "dqn_gmp", "dqn_set", "dqn_rigl")
    budget_key = "live_budget" if sparse else None if method.startswith("ars_linear") else "net_arch"
    model, spec = build(method, env_id, 0, budget_key, 300 if sparse else [32, 32], _short(method), steps=2_000, logger=SILENT)
    model.learn(spec["n_timesteps"])
    returns = evaluate(model, TASKS[env_id], 0, n_episodes=2)
    assert np.isfinite(returns.mean()) and len(returns) == 2
    counts = count_parameters(model)
    assert counts["inference"] > 0
    if sparse:
        assert counts["mask_live"] == 300


# ---- ARS (sb3-contrib): the linear-policy baseline ----------------------------------------------------
# obs_dim x n_actions of the declared (discrete) actions: the 8 / 18 / 6 / 32 numbers
LINEAR_SIZES = {"CartPole-v1": 4 * 2, "Acrobot-v1": 6 * 3, "MountainCar-v0": 2 * 3, "LunarLander-v3": 8 * 4,
                "Pendulum-v1": 3 * 5, "MountainCarContinuous-v0": 2 * 5, "LunarLanderContinuous-v3": 8 * 9}


def test_ars_linear_counts_obs_dim_times_n_actions():
    assert set(LINEAR_SIZES) == set(TASKS)
    for env_id, size in LINEAR_SIZES.items():
        model, spec = build_model("ars_linear", env_id, seed=0)
        assert type(model.policy).__name__ == "ARSLinearPolicy" and model.n_delta == 4 and model.n_top == 4
        assert count_parameters(model)["inference"] == size == model.n_params  # no bias, no hidden layer
        assert spec.n_timesteps == TASKS[env_id].budget and spec.provenance.startswith("sb3-contrib")
    model.weights[:] = 1.0
    model.policy.load_from_vector(model.weights.numpy())
    assert count_parameters(model)["nonzero"] == LINEAR_SIZES["LunarLanderContinuous-v3"]


def test_ars_zoo_takes_the_zoo_row_and_net_arch_as_its_budget():
    model, spec = build_model("ars_zoo", "Acrobot-v1", seed=0)
    assert (model.n_delta, model.n_top, model.delta_std_schedule(1.0), model.zero_policy) == (4, 1, 0.1, False)
    assert model.learning_rate == 0.018 and spec.provenance == "rl_zoo3 2.9.2 ars.yml Acrobot-v1 (Tuned)"
    env = model.get_vec_normalize_env()
    assert env is not None and env.norm_obs and not env.norm_reward  # the zoo's obs-only VecNormalize
    assert count_parameters(model)["inference"] == mlp_parameters([6, 16, 3])
    model, _ = build_model("ars_zoo", "MountainCar-v0", seed=0, net_arch=[32, 8])
    assert model.n_delta == 8 and count_parameters(model)["inference"] == mlp_parameters([2, 32, 8, 3])
    linear, _ = build_model("ars_zoo", "CartPole-v1", seed=0)  # the zoo's CartPole row is linear ...
    assert count_parameters(linear)["inference"] == 8 and linear.n_delta == 2
    mlp, spec = build_model("ars_zoo", "CartPole-v1", seed=0, net_arch=[16])  # ... a width makes it an MLP
    assert count_parameters(mlp)["inference"] == mlp_parameters([4, 16, 2]) and "MlpPolicy for the net_arch" in spec.provenance
    with pytest.raises(ValueError, match="ars_linear is a linear policy"):
        resolve_config("ars_linear", "CartPole-v1", net_arch=[16])


def test_ars_on_the_native_box_actions_outputs_the_action():
    for env_id, size in {"Pendulum-v1": 3, "MountainCarContinuous-v0": 2, "LunarLanderContinuous-v3": 8 * 2}.items():
        model, _ = build_model("ars_linear_continuous", env_id, seed=0)
        assert model.action_space.shape == (size // model.observation_space.shape[0],)
        assert count_parameters(model)["inference"] == size  # obs_dim x action_dim, no bias
    model.weights[:] = 100.0  # a huge linear output is clipped to the box
    model.policy.load_from_vector(model.weights.numpy())
    action, _ = model.predict(np.ones((1, 8), dtype=np.float32))
    assert np.all(action == model.action_space.high)
    zoo, spec = build_model("ars_zoo_continuous", "MountainCarContinuous-v0", seed=0)
    assert zoo.delta_std_schedule(1.0) == 0.2 and count_parameters(zoo)["inference"] == mlp_parameters([2, 16, 1])
