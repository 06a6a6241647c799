"""A trained SGMMQ policy in plain numpy: what ``sgmmq export MODEL --format npz`` writes, and how to run it.

This file needs nothing but numpy: copy it next to an exported ``.npz`` to act without torch,
Stable-Baselines3 or sgmmq installed::

    params = load("cartpole.npz")
    actions, q_values = predict(params, observations)   # observations: (obs_dim,) or (batch, obs_dim)

The ``.npz`` holds the live components only: ``weights`` (K,) (the mixing weights ``xi``, with the
density normalization folded in for ``normalized=True`` models), ``means`` (K, D), ``precisions``
(K, D, D), ``offset`` (1,), ``obs_low``/``obs_high`` (the box observations are scaled from) and
``action_codes`` (n_actions, d_a), the code ``e(a)`` of each action.
"""

from __future__ import annotations

import numpy as np


def load(path):
    """The arrays of an exported ``.npz`` as a dict (no pickles: ``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def predict(params, observations):
    """Greedy actions ``(B,)`` and Q-values ``(B, n_actions)``; a single observation gives ``(1,)``, ``(1, n_actions)``.

    ``Q(s, a) = offset + sum_k weights_k exp(-1/2 (z - means_k)^T precisions_k (z - means_k))``
    with ``z = (x(s), e(a))`` and ``x(s)`` the observation mapped from the box to [-1, 1], clipped.
    """
    obs = np.atleast_2d(np.asarray(observations, dtype=np.float32))
    low, high = params["obs_low"], params["obs_high"]
    center, half_width = (high + low) / 2, (high - low) / 2
    states = np.clip((obs - center) / half_width, -1.0, 1.0).astype(np.float64)
    codes = params["action_codes"].astype(np.float64)
    batch, n_actions = states.shape[0], codes.shape[0]
    z = np.concatenate(
        [np.repeat(states[:, None, :], n_actions, axis=1), np.broadcast_to(codes, (batch, *codes.shape))], axis=2
    )  # (B, A, D): every observation paired with every action code
    diff = z[:, :, None, :] - params["means"].astype(np.float64)  # (B, A, K, D)
    quad = ((diff[..., None, :] @ params["precisions"].astype(np.float64))[..., 0, :] * diff).sum(-1)  # (B, A, K)
    q_values = np.exp(-0.5 * quad) @ params["weights"].astype(np.float64) + float(params["offset"][0])
    return q_values.argmax(axis=1), q_values
