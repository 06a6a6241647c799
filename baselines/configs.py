"""Hyperparameters of the deep-RL baselines, with where every number comes from.

RL Zoo rows are copied verbatim from ``DLR-RM/rl-baselines3-zoo`` ``hyperparams/{dqn,ppo,a2c}.yml``
at commit 22e3ff24 (2026-04-23, rl_zoo3 2.9.0a2), as transcribed in
``/work/shared/notes/ecosystem.md`` section 2.1, unless a row says otherwise. Strings
``"lin_<x>"`` are the zoo's linear schedules from ``x`` to 0 and are turned into callables by
``baselines.dense``. ``normalize: True`` is the zoo's ``VecNormalize`` (observations and rewards,
statistics learned during training, frozen for evaluation).

Rules: a tuned value is never edited here. Where a task has no zoo row, or a zoo key cannot apply
to the discretized action space (gSDE and ``log_std_init`` need Box actions), the row says so in
``provenance`` and ``dropped``. Overrides for a particular experiment (a width sweep, a short test)
go through the ``overrides`` argument of ``baselines.dense.build_model`` and are recorded with the run.
"""

from __future__ import annotations

import copy
from typing import Any

# SB3 DQN defaults (stable_baselines3/dqn/dqn.py DQN.__init__, MlpPolicy net_arch [64, 64]); the
# budget is the task's common budget (envs.tasks.Task.budget).
DQN_SB3_DEFAULTS: dict[str, Any] = {"provenance": "SB3 2.9.2 DQN defaults, net_arch [64, 64]"}

# hyperparams/dqn.yml. CartPole is marked "Almost Tuned" in the zoo, the others "Tuned".
_DQN_ACROBOT_LUNAR = dict(
    n_timesteps=100_000,
    learning_rate=6.3e-4,
    batch_size=128,
    buffer_size=50_000,
    learning_starts=0,
    gamma=0.99,
    target_update_interval=250,
    train_freq=4,
    gradient_steps=-1,
    exploration_fraction=0.12,
    exploration_final_eps=0.1,
    policy_kwargs=dict(net_arch=[256, 256]),
)
DQN_ZOO: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(
        n_timesteps=50_000,
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]),
        provenance="rl-zoo dqn.yml@22e3ff24 CartPole-v1 (Almost Tuned)",
    ),
    "MountainCar-v0": dict(
        n_timesteps=120_000,
        learning_rate=4e-3,
        batch_size=128,
        buffer_size=10_000,
        learning_starts=1000,
        gamma=0.98,
        target_update_interval=600,
        train_freq=16,
        gradient_steps=8,
        exploration_fraction=0.2,
        exploration_final_eps=0.07,
        policy_kwargs=dict(net_arch=[256, 256]),
        provenance="rl-zoo dqn.yml@22e3ff24 MountainCar-v0 (Tuned)",
    ),
    "LunarLander-v3": dict(_DQN_ACROBOT_LUNAR, provenance="rl-zoo dqn.yml@22e3ff24 LunarLander-v3 (Tuned)"),
    "Acrobot-v1": dict(_DQN_ACROBOT_LUNAR, provenance="rl-zoo dqn.yml@22e3ff24 Acrobot-v1 (Tuned)"),
    # No zoo DQN rows for the continuous tasks (DQN needs discrete actions). We borrow the row the
    # zoo tuned for both Acrobot-v1 and LunarLander-v3, with the task's budget (1e5 for both).
    "Pendulum-v1": dict(
        _DQN_ACROBOT_LUNAR,
        provenance="no zoo row; borrowed rl-zoo dqn.yml@22e3ff24 Acrobot-v1/LunarLander-v3 row",
    ),
    "MountainCarContinuous-v0": dict(
        _DQN_ACROBOT_LUNAR,
        provenance="no zoo row; borrowed rl-zoo dqn.yml@22e3ff24 Acrobot-v1/LunarLander-v3 row",
    ),
}

# hyperparams/ppo.yml
PPO_ZOO: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(
        n_envs=8,
        n_timesteps=100_000,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate="lin_0.001",
        clip_range="lin_0.2",
        provenance="rl-zoo ppo.yml@22e3ff24 CartPole-v1 (Tuned)",
    ),
    "Acrobot-v1": dict(
        normalize=True,
        n_envs=16,
        n_timesteps=1_000_000,
        n_steps=256,
        gae_lambda=0.94,
        gamma=0.99,
        n_epochs=4,
        ent_coef=0.0,
        provenance="rl-zoo ppo.yml@22e3ff24 Acrobot-v1",
    ),
    "MountainCar-v0": dict(
        normalize=True,
        n_envs=16,
        n_timesteps=1_000_000,
        n_steps=16,
        gae_lambda=0.98,
        gamma=0.99,
        n_epochs=4,
        ent_coef=0.0,
        provenance="rl-zoo ppo.yml@22e3ff24 MountainCar-v0",
    ),
    "LunarLander-v3": dict(
        n_envs=16,
        n_timesteps=1_000_000,
        n_steps=1024,
        batch_size=64,
        gae_lambda=0.98,
        gamma=0.999,
        n_epochs=4,
        ent_coef=0.01,
        provenance="rl-zoo ppo.yml@22e3ff24 LunarLander-v3",
    ),
    "Pendulum-v1": dict(
        n_envs=4,
        n_timesteps=100_000,
        n_steps=1024,
        gae_lambda=0.95,
        gamma=0.9,
        n_epochs=10,
        ent_coef=0.0,
        learning_rate=1e-3,
        clip_range=0.2,
        dropped=dict(use_sde=True, sde_sample_freq=4),
        provenance="rl-zoo ppo.yml@22e3ff24 Pendulum-v1 (Tuned, for Box actions); gSDE dropped",
    ),
    # Row read at rl-zoo commit 00128b5d (not in ecosystem.md); tuned for Box actions.
    "MountainCarContinuous-v0": dict(
        normalize=True,
        n_envs=1,
        n_timesteps=20_000,
        batch_size=256,
        n_steps=8,
        gamma=0.9999,
        learning_rate=7.77e-05,
        ent_coef=0.00429,
        clip_range=0.1,
        n_epochs=10,
        gae_lambda=0.9,
        max_grad_norm=5,
        vf_coef=0.19,
        policy_kwargs=dict(ortho_init=False),
        dropped=dict(use_sde=True, log_std_init=-3.29),
        provenance="rl-zoo ppo.yml@00128b5d MountainCarContinuous-v0 (Tuned, for Box actions); gSDE dropped",
    ),
}

# hyperparams/a2c.yml (A2C defaults otherwise: lr 7e-4, n_steps 5, RMSprop)
A2C_ZOO: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(
        n_envs=8, n_timesteps=500_000, ent_coef=0.0, provenance="rl-zoo a2c.yml@22e3ff24 CartPole-v1"
    ),
    "Acrobot-v1": dict(
        normalize=True,
        n_envs=16,
        n_timesteps=500_000,
        ent_coef=0.0,
        provenance="rl-zoo a2c.yml@22e3ff24 Acrobot-v1",
    ),
    "MountainCar-v0": dict(
        normalize=True,
        n_envs=16,
        n_timesteps=1_000_000,
        ent_coef=0.0,
        provenance="rl-zoo a2c.yml@22e3ff24 MountainCar-v0",
    ),
    "LunarLander-v3": dict(
        n_envs=8,
        n_timesteps=200_000,
        gamma=0.995,
        n_steps=5,
        learning_rate="lin_0.00083",
        ent_coef=0.00001,
        provenance="rl-zoo a2c.yml@22e3ff24 LunarLander-v3",
    ),
    "Pendulum-v1": dict(
        normalize=True,
        n_envs=8,
        n_timesteps=1_000_000,
        ent_coef=0.0,
        max_grad_norm=0.5,
        n_steps=8,
        gae_lambda=0.9,
        vf_coef=0.4,
        gamma=0.9,
        use_rms_prop=True,
        normalize_advantage=False,
        learning_rate="lin_7e-4",
        policy_kwargs=dict(ortho_init=False),
        dropped=dict(use_sde=True, log_std_init=-2),
        provenance="rl-zoo a2c.yml@22e3ff24 Pendulum-v1 (for Box actions); gSDE dropped",
    ),
    # Row read at rl-zoo commit 02846e4d (not in ecosystem.md); tuned for Box actions.
    "MountainCarContinuous-v0": dict(
        normalize=True,
        n_envs=4,
        n_steps=100,
        n_timesteps=100_000,
        ent_coef=0.0,
        policy_kwargs=dict(ortho_init=False),
        dropped=dict(use_sde=True, sde_sample_freq=16, log_std_init=0.0),
        provenance="rl-zoo a2c.yml@02846e4d MountainCarContinuous-v0 (Tuned, for Box actions); gSDE dropped",
    ),
}

# Sparse DQN (baselines.sparse.SparseDQN): the task's zoo DQN row above, on a [64, 64] network
# (SB3's default width; with [256, 256] a 1,000-parameter budget would be 99.3% sparse), with the
# sparse-training settings of Graesser et al. (ICML 2022) classic-control configs
# (google-research/rigl@d39fc7d4 rigl/rl/tfagents/configs/dqn_gym_{sparse,pruning}_config.gin,
# 100k iterations): ERK masks; pruning from 20k to 75k every 1k steps; SET/RigL topology updates
# every 1k steps until 75k with initial drop fraction 0.5 and cosine decay. Step counts are kept as
# fractions of the training budget so that they scale to the zoo budgets.
SPARSE_DEFAULTS: dict[str, Any] = dict(
    net_arch=[64, 64],
    distribution="erk",
    prune_begin=0.2,
    prune_end=0.75,
    update_every=0.01,
    update_end=0.75,
    drop_fraction=0.5,
    provenance="Graesser et al. 2022 classic-control gin configs (rigl@d39fc7d4), scaled to the budget",
)

# LunarLanderContinuous-v3's discretized form (3 throttles per engine, 9 actions) has no zoo row for
# the discrete-action algorithms: it borrows LunarLander-v3's (same observations, same rewards).
for _rows, _name in ((DQN_ZOO, "dqn"), (PPO_ZOO, "ppo"), (A2C_ZOO, "a2c")):
    _rows["LunarLanderContinuous-v3"] = dict(
        copy.deepcopy(_rows["LunarLander-v3"]),
        provenance=f"no zoo row for the discretized form; borrowed {_rows['LunarLander-v3']['provenance']}",
    )

# hyperparams/sac.yml and td3.yml of rl_zoo3 2.9.2 (the installed package), for the native Box
# actions of the continuous tasks (``baselines.dense`` builds them on ``make_vec_env(continuous=True)``).
# ``noise_type``/``noise_std`` are the zoo's action-noise keys (turned into SB3 action noise).
SAC_ZOO: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(n_timesteps=20_000, learning_rate=1e-3, provenance="rl_zoo3 2.9.2 sac.yml Pendulum-v1"),
    "MountainCarContinuous-v0": dict(
        n_timesteps=50_000,
        learning_rate=3e-4,
        buffer_size=50_000,
        batch_size=512,
        ent_coef=0.1,
        train_freq=32,
        gradient_steps=32,
        gamma=0.9999,
        tau=0.01,
        learning_starts=0,
        use_sde=True,
        policy_kwargs=dict(log_std_init=-3.67, net_arch=[64, 64], use_expln=True),
        provenance="rl_zoo3 2.9.2 sac.yml MountainCarContinuous-v0 (Tuned)",
    ),
    "LunarLanderContinuous-v3": dict(
        n_timesteps=500_000,
        batch_size=256,
        learning_rate="lin_7.3e-4",
        buffer_size=1_000_000,
        ent_coef="auto",
        gamma=0.99,
        tau=0.01,
        train_freq=1,
        gradient_steps=1,
        learning_starts=10_000,
        policy_kwargs=dict(net_arch=[400, 300]),
        provenance="rl_zoo3 2.9.2 sac.yml LunarLanderContinuous-v3",
    ),
}
_TD3_COMMON = dict(gradient_steps=1, train_freq=1, learning_rate=1e-3, policy_kwargs=dict(net_arch=[400, 300]))
TD3_ZOO: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(
        _TD3_COMMON, n_timesteps=20_000, gamma=0.98, buffer_size=200_000, learning_starts=10_000,
        noise_type="normal", noise_std=0.1, provenance="rl_zoo3 2.9.2 td3.yml Pendulum-v1",
    ),
    "MountainCarContinuous-v0": dict(
        _TD3_COMMON, n_timesteps=300_000, batch_size=256, noise_type="ornstein-uhlenbeck", noise_std=0.5,
        provenance="rl_zoo3 2.9.2 td3.yml MountainCarContinuous-v0",
    ),
    "LunarLanderContinuous-v3": dict(
        _TD3_COMMON, n_timesteps=300_000, gamma=0.98, buffer_size=200_000, learning_starts=10_000,
        noise_type="normal", noise_std=0.1, provenance="rl_zoo3 2.9.2 td3.yml LunarLanderContinuous-v3",
    ),
}

# sb3-contrib ARS (Augmented Random Search), the linear-policy baseline: the LinearPolicy (no hidden
# layer, no bias: obs_dim x n_actions numbers, argmax over its outputs for Discrete actions) with
# n_delta=4 and every other value sb3-contrib's default, as a new user would try it (issue 15).
ARS_LINEAR: dict[str, Any] = dict(
    policy="LinearPolicy", n_delta=4, provenance="sb3-contrib 2.9.2 ARS defaults, LinearPolicy, n_delta=4 (untuned)"
)

# hyperparams/ars.yml of rl_zoo3 2.9.2 (the installed package). The zoo's ``normalize:
# "dict(norm_obs=True, norm_reward=False)"`` is kept as that dict (VecNormalize keywords). Rows tuned
# for Box actions run here on the task's declared (discretized) actions, as PPO's and A2C's do.
_ARS_PENDULUM = dict(
    n_timesteps=2_000_000,
    policy="MlpPolicy",
    normalize=dict(norm_obs=True, norm_reward=False),
    learning_rate=0.018,
    n_delta=4,
    n_top=1,
    delta_std=0.1,
    policy_kwargs=dict(net_arch=[16]),
    zero_policy=False,
)
ARS_ZOO: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(n_timesteps=50_000, policy="LinearPolicy", n_delta=2,
                        provenance="rl_zoo3 2.9.2 ars.yml CartPole-v1 (Tuned; a LinearPolicy)"),
    "Acrobot-v1": dict(_ARS_PENDULUM, n_timesteps=500_000, provenance="rl_zoo3 2.9.2 ars.yml Acrobot-v1 (Tuned)"),
    "MountainCar-v0": dict(_ARS_PENDULUM, n_timesteps=500_000, n_delta=8,
                           provenance="rl_zoo3 2.9.2 ars.yml MountainCar-v0 (Tuned)"),
    "LunarLander-v3": dict(_ARS_PENDULUM, n_delta=6, n_top=1,
                           provenance="rl_zoo3 2.9.2 ars.yml LunarLander-v3 (TO BE Tuned)"),
    "Pendulum-v1": dict(_ARS_PENDULUM, provenance="rl_zoo3 2.9.2 ars.yml Pendulum-v1 (Tuned, for Box actions)"),
    "MountainCarContinuous-v0": dict(
        _ARS_PENDULUM, n_timesteps=500_000, delta_std=0.2,
        provenance="rl_zoo3 2.9.2 ars.yml MountainCarContinuous-v0 (Tuned, for Box actions)",
    ),
    "LunarLanderContinuous-v3": dict(
        _ARS_PENDULUM, provenance="rl_zoo3 2.9.2 ars.yml LunarLanderContinuous-v3 (Tuned, for Box actions)"
    ),
}

ZOO: dict[str, dict[str, dict[str, Any]]] = {
    "dqn": DQN_ZOO, "ppo": PPO_ZOO, "a2c": A2C_ZOO, "sac": SAC_ZOO, "td3": TD3_ZOO, "ars": ARS_ZOO
}


def zoo_config(algo: str, env_id: str) -> dict[str, Any]:
    """A deep copy of the zoo row (``algo`` in dqn/ppo/a2c/sac/td3/ars) for ``env_id``."""
    try:
        return copy.deepcopy(ZOO[algo][env_id])
    except KeyError:
        raise ValueError(f"No {algo} config for {env_id!r}; known: {', '.join(ZOO.get(algo, {}))}") from None
