"""How every method is scored: one evaluation and one parameter count, for S-GMM-QF and every baseline.

Evaluation: ``task.eval_episodes`` deterministic episodes (``evaluate_policy``) on an env seeded
``seed + EVAL_SEED_OFFSET``, never the training env. With the zoo's ``VecNormalize`` the
evaluation env uses the frozen training statistics and raw rewards.

The parameter-counting rule (SPEC section 3).

``count_parameters(model)`` returns a dict:

- ``inference``: the live trainable numbers the acting function needs. DQN: the online
  Q-network's weights and biases (for sparse DQN the entries its masks keep, which are the only
  ones that can be nonzero). PPO/A2C: the actor (policy MLP, action head, ``log_std`` if any, its
  features extractor). S-GMM-QF: the model's own ``num_parameters()`` (live components x
  (1 + D + D(D+1)/2)). "Live" rather than a literal count of nonzeros because a fresh PPO has
  zero-initialized biases and RigL/SET regrow connections at exactly zero; those are still
  parameters the method trains. ``nonzero`` gives the literal count alongside. SAC/TD3: the actor
  (the acting network, as for PPO/A2C). ARS (sb3-contrib): the policy's action network, which is
  all ARS keeps: obs_dim x n_actions weights for the ``LinearPolicy`` (no bias), weights and biases
  for its MLP. ARS zeroes the weights before training, so ``nonzero`` starts at 0.
- ``training``: the trainable numbers the learner keeps and updates during training. DQN: the
  online net's trainable entries (mask-live ones when sparse) plus the target copy of them.
  PPO/A2C: actor plus critic. SAC/TD3: actor and critics plus their target copies.
  S-GMM-QF: ``num_training_parameters()``.
- ``critic`` (PPO/A2C/SAC/TD3 only): the value or Q networks, reported separately.
- ``dense``: every entry of the acting network, zero or not (the size before sparsification).
- ``nonzero``: the literal count of nonzero entries of the acting network.
- ``mask_live`` (sparse DQN only): entries the masks keep (equal to ``inference``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from torch import nn

from sgmmq.envs.factory import is_continuous, make_env
from sgmmq.envs.tasks import Task

EVAL_SEED_OFFSET = 100_000


def evaluate(model: Any, task: Task, seed: int, n_episodes: int | None = None, scale_obs: bool = False) -> np.ndarray:
    """Returns of deterministic episodes on an env seeded ``seed + EVAL_SEED_OFFSET``."""
    continuous = task.has_continuous_form and is_continuous(model.action_space)  # the form the model acts in
    env = DummyVecEnv([lambda: make_env(task, seed=seed + EVAL_SEED_OFFSET, scale_obs=scale_obs, continuous=continuous)])
    train_env = model.get_vec_normalize_env()
    if train_env is not None:
        env = VecNormalize(env, training=False, norm_reward=False)
        env.obs_rms = train_env.obs_rms
    returns, _ = evaluate_policy(
        model, env, n_eval_episodes=n_episodes or task.eval_episodes, deterministic=True, return_episode_rewards=True
    )
    env.close()
    return np.asarray(returns, dtype=np.float64)


def score_summary(task: Task, returns: np.ndarray) -> dict[str, Any]:
    """The score fields every result file shares, from the final evaluation's episode returns."""
    score = float(returns.mean())
    return {
        "score_mean": score,
        "score_std": float(returns.std()),
        "normalized_score": task.normalize(score),
        "success": bool(score >= task.success_threshold),
        "episode_returns": returns.tolist(),
    }


def _nonzero(params) -> int:
    return int(sum(int(th.count_nonzero(p.detach())) for p in params))


def _numel(params) -> int:
    return int(sum(p.numel() for p in params))


def count_parameters(model: Any) -> dict[str, int]:
    """Parameter counts of an SB3 model (DQN, QR-DQN, sparse DQN, PPO, A2C, SAC, TD3, ARS), an S-GMM-QF model, or a module."""
    if hasattr(model, "num_parameters") and callable(model.num_parameters):
        inference = int(model.num_parameters())
        training = model.num_training_parameters() if hasattr(model, "num_training_parameters") else inference
        return {"inference": inference, "training": int(training)}

    policy = getattr(model, "policy", model)
    q_net = getattr(policy, "q_net", None)  # DQN, QR-DQN (quantile_net for QR-DQN)
    if q_net is None:
        q_net = getattr(policy, "quantile_net", None)
    if q_net is not None:
        named = [(n, p) for n, p in q_net.named_parameters() if p.requires_grad]
        masks = getattr(model, "masks", None) or {}
        live = int(sum(int(masks[n].sum()) if n in masks else p.numel() for n, p in named))
        counts = {"inference": live, "training": 2 * live, "nonzero": _nonzero(p for _, p in named),
                  "dense": _numel(p for _, p in named)}
        if masks:
            counts["mask_live"] = live
        return counts

    if hasattr(policy, "actor") and hasattr(policy, "critic"):  # SAC, TD3: the actor acts
        actor = [p for p in policy.actor.parameters() if p.requires_grad]
        critic = [p for p in policy.critic.parameters() if p.requires_grad]
        targets = [p for name in ("actor_target", "critic_target") if getattr(policy, name, None) is not None
                   for p in getattr(policy, name).parameters()]
        return {
            "inference": _numel(actor),
            "critic": _numel(critic),
            "training": _numel(actor) + _numel(critic) + _numel(targets),
            "nonzero": _nonzero(actor),
            "dense": _numel(actor),
        }

    if hasattr(policy, "mlp_extractor"):  # ActorCriticPolicy (PPO, A2C)
        actor, critic = {}, {}
        for name, p in policy.named_parameters():
            if not p.requires_grad:
                continue
            if name.startswith(("mlp_extractor.policy_net", "action_net", "log_std", "pi_features_extractor")):
                actor[name] = p
            elif name.startswith(("mlp_extractor.value_net", "value_net", "vf_features_extractor")):
                critic[name] = p
            else:  # a shared features extractor serves both
                actor[name] = p
                critic[name] = p
        everything = {id(p): p for p in list(actor.values()) + list(critic.values())}
        return {
            "inference": _numel(actor.values()),
            "critic": _numel(critic.values()),
            "training": _numel(everything.values()),
            "nonzero": _nonzero(actor.values()),
            "dense": _numel(actor.values()),
        }

    if hasattr(policy, "action_net") and hasattr(model, "n_delta"):  # ARS: the action network is the policy
        params = list(policy.action_net.parameters())
        return {"inference": _numel(params), "training": _numel(params), "nonzero": _nonzero(params),
                "dense": _numel(params)}

    if isinstance(policy, nn.Module):
        params = [p for p in policy.parameters() if p.requires_grad]
        return {"inference": _numel(params), "training": _numel(params), "nonzero": _nonzero(params),
                "dense": _numel(params)}
    raise TypeError(f"Cannot count the parameters of {type(model).__name__}")


def mlp_parameters(sizes: list[int]) -> int:
    """Weights and biases of a dense MLP with layer sizes ``[in, hidden..., out]`` (for hand checks)."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
