"""Sparsified DQN: gradual magnitude pruning, static random sparsity, SET and RigL.

``SparseDQN`` is SB3's ``DQN`` with a binary mask per weight matrix of the online Q-network.
Biases stay dense. The masks live **outside** the module, in ``model.masks`` (a dict from
``q_net`` parameter name to a bool tensor), so state-dict keys and parameter order stay those of
a plain DQN; ``torch.nn.utils.prune`` would rename ``weight`` to ``weight_orig``, which breaks
SB3's ``polyak_update`` and ``DQN.load`` (ecosystem.md section 3.4). The masks are enforced by:

- a gradient hook on every masked weight (pruned entries get zero gradient, before clipping);
- an optimizer step post-hook that multiplies the weights by their masks and zeroes the Adam
  moments of pruned entries (so a regrown connection starts from a clean state);
- ``_on_step`` multiplying the target network's weights by the masks after SB3's target update;
- SB3's ``save``: ``masks`` is an ordinary attribute, pickled with the model's data and restored
  by ``SparseDQN.load`` before the networks are rebuilt.

Methods (``sparse_method``):

- ``"static"``: a random mask at the target sparsity, fixed for all of training.
- ``"gmp"``: gradual magnitude pruning (Zhu & Gupta 2017). Dense at first; between
  ``prune_begin`` and ``prune_end`` (fractions of the training budget), every ``update_every``,
  the sparsity is set to ``s_t = s_f * (1 - (1 - p)^3)`` with ``p`` the progress through the
  pruning window, by dropping the smallest-magnitude live weights of each layer. It reaches
  ``s_f`` exactly at ``prune_end``.
- ``"set"`` (Mocanu et al. 2018) and ``"rigl"`` (Evci et al. 2020): start from a random mask at the
  target sparsity; every ``update_every`` until ``update_end``, drop the fraction
  ``drop_fraction / 2 * (1 + cos(pi * t / update_end))`` of each layer's live weights with the
  smallest magnitude and grow as many: at random (SET) or where the dense gradient of the TD loss
  on one replay batch is largest (RigL). Grown weights start at zero (as in the rigl code), so the
  live count is constant.

The per-layer sparsity follows ``distribution``: ``"erk"`` (Erdos-Renyi: density proportional to
``(n_in + n_out) / (n_in * n_out)``, capped at 1, as Graesser et al. 2022 recommend) or
``"uniform"``. The target is given either as ``sparsity`` (fraction of weights removed) or as
``live_budget``: the total live parameters of the Q-network (live weights plus dense biases),
which is how the benchmark matches S-GMM-QF's parameter counts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import DQN
from torch.nn import functional as F

SPARSE_METHODS = ("static", "gmp", "set", "rigl")


def layer_densities(shapes: list[tuple[int, ...]], live_weights: int, distribution: str = "erk") -> list[int]:
    """Live-weight counts per layer summing exactly to ``live_weights`` (each layer keeps at least one)."""
    sizes = np.array([int(np.prod(s)) for s in shapes], dtype=np.float64)
    total = int(sizes.sum())
    if not len(shapes) <= live_weights <= total:
        raise ValueError(f"live weights must be in [{len(shapes)}, {total}], got {live_weights}")
    if distribution == "uniform":
        raw = np.ones_like(sizes)
    elif distribution == "erk":
        raw = np.array([sum(s) / np.prod(s) for s in shapes], dtype=np.float64)
    else:
        raise ValueError(f"distribution must be 'erk' or 'uniform', got {distribution!r}")
    dense = np.zeros(len(shapes), dtype=bool)
    while True:  # water-filling: layers whose density would exceed 1 become dense
        eps = (live_weights - sizes[dense].sum()) / (raw[~dense] * sizes[~dense]).sum()
        density = np.where(dense, 1.0, np.minimum(eps * raw, 1.0))
        newly_dense = (~dense) & (eps * raw >= 1.0)
        if not newly_dense.any():
            break
        dense |= newly_dense
    exact = density * sizes
    counts = np.maximum(np.floor(exact), 1).astype(int)
    counts = np.minimum(counts, sizes.astype(int))
    remainder = exact - counts
    for i in np.argsort(-remainder):  # largest remainder first, until the total is exact
        if counts.sum() >= live_weights:
            break
        if counts[i] < sizes[i]:
            counts[i] += 1
    while counts.sum() > live_weights:  # the floor of 1 may overshoot for tiny budgets
        i = int(np.argmax(counts))
        counts[i] -= 1
    return [int(c) for c in counts]


def gmp_sparsity(step: int, final_sparsity: float, begin_step: int, end_step: int, initial_sparsity: float = 0.0) -> float:
    """Zhu & Gupta's cubic schedule: ``initial`` before ``begin_step``, ``final`` from ``end_step`` on."""
    if step <= begin_step:
        return initial_sparsity
    if step >= end_step:
        return final_sparsity
    progress = (step - begin_step) / (end_step - begin_step)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


class SparseDQN(DQN):
    """SB3 DQN whose online and target Q-network weights are held to binary masks (see module doc)."""

    def __init__(
        self,
        policy: Any,
        env: Any,
        sparse_method: str = "static",
        sparsity: float | None = None,
        live_budget: int | None = None,
        distribution: str = "erk",
        prune_begin: float = 0.2,
        prune_end: float = 0.75,
        update_every: float = 0.01,
        update_end: float = 0.75,
        drop_fraction: float = 0.5,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        if sparse_method not in SPARSE_METHODS:
            raise ValueError(f"sparse_method must be one of {SPARSE_METHODS}, got {sparse_method!r}")
        if (sparsity is None) == (live_budget is None) and _init_setup_model:
            raise ValueError("give exactly one of sparsity and live_budget")
        self.sparse_method = sparse_method
        self.target_sparsity = sparsity
        self.live_budget = live_budget
        self.distribution = distribution
        self.prune_begin, self.prune_end = prune_begin, prune_end
        self.update_every, self.update_end = update_every, update_end
        self.drop_fraction = drop_fraction
        self.masks: dict[str, th.Tensor] | None = None
        self.final_live: dict[str, int] | None = None  # live weights per masked layer at the end
        self.topology_updates = 0
        self._next_update = 0
        self._hook_handles: list[Any] = []
        super().__init__(policy, env, _init_setup_model=_init_setup_model, **kwargs)

    # ---- setup, hooks, save/load --------------------------------------------------------------
    def _excluded_save_params(self) -> list[str]:
        return super()._excluded_save_params() + ["_hook_handles"]

    def _masked_parameters(self) -> dict[str, th.nn.Parameter]:
        return {name: p for name, p in self.q_net.named_parameters() if p.dim() >= 2}

    def _setup_model(self) -> None:
        super()._setup_model()
        self._rng = np.random.default_rng(self.seed)
        weights = self._masked_parameters()
        if self.final_live is None:
            n_bias = sum(p.numel() for name, p in self.q_net.named_parameters() if name not in weights)
            total = sum(p.numel() for p in weights.values())
            if self.live_budget is not None:
                live = self.live_budget - n_bias
            else:
                live = int(round(total * (1.0 - self.target_sparsity)))
            counts = layer_densities([tuple(p.shape) for p in weights.values()], live, self.distribution)
            self.final_live = dict(zip(weights, counts))
        if self.masks is None:  # a fresh model; a loaded one brings its masks
            if self.sparse_method == "gmp":
                self.masks = {name: th.ones_like(p, dtype=th.bool) for name, p in weights.items()}
            else:
                self.masks = {name: self._random_mask(p, self.final_live[name]) for name, p in weights.items()}
        self.masks = {name: m.to(self.device) for name, m in self.masks.items()}
        self._install_hooks()
        self.apply_masks()

    def _random_mask(self, param: th.Tensor, live: int) -> th.Tensor:
        flat = np.zeros(param.numel(), dtype=bool)
        flat[self._rng.choice(param.numel(), size=live, replace=False)] = True
        return th.as_tensor(flat.reshape(tuple(param.shape)), device=param.device)

    def _install_hooks(self) -> None:
        for handle in self._hook_handles:
            handle.remove()
        self._hook_handles = []
        self._mask_gradients = True
        for name, param in self._masked_parameters().items():
            def hook(grad: th.Tensor, name: str = name) -> th.Tensor:
                return grad * self.masks[name] if self._mask_gradients else grad

            self._hook_handles.append(param.register_hook(hook))
        self._hook_handles.append(self.policy.optimizer.register_step_post_hook(lambda *_: self._after_optimizer_step()))

    @th.no_grad()
    def _after_optimizer_step(self) -> None:
        optimizer = self.policy.optimizer
        for name, param in self._masked_parameters().items():
            mask = self.masks[name]
            param.mul_(mask)
            for value in optimizer.state.get(param, {}).values():
                if isinstance(value, th.Tensor) and value.shape == param.shape:
                    value.mul_(mask)

    @th.no_grad()
    def apply_masks(self) -> None:
        """Multiply the online and target weights by the masks (zeroes every pruned entry)."""
        online = self._masked_parameters()
        target = dict(self.q_net_target.named_parameters())
        for name, mask in self.masks.items():
            online[name].mul_(mask)
            target[name].mul_(mask)
        self._after_optimizer_step()

    def live_weights(self) -> int:
        return int(sum(int(m.sum()) for m in self.masks.values()))

    def sparsity(self) -> float:
        """Fraction of masked weight entries that are pruned (biases excluded)."""
        return 1.0 - self.live_weights() / sum(m.numel() for m in self.masks.values())

    # ---- topology updates ---------------------------------------------------------------------
    def _on_step(self) -> None:
        super()._on_step()  # may copy the online net into the target net
        total = max(int(self._total_timesteps), 1)
        if self.sparse_method != "static" and self.num_timesteps >= self._next_update:
            self._update_topology(self.num_timesteps, total)
            self._next_update = self.num_timesteps + max(int(round(self.update_every * total)), 1)
        if self.sparse_method == "gmp" and self.num_timesteps >= self.prune_end * total and self.sparsity_behind():
            self._update_topology(self.num_timesteps, total)  # land on the final sparsity at prune_end
        self.apply_masks()

    def sparsity_behind(self) -> bool:
        return any(int(self.masks[n].sum()) > k for n, k in self.final_live.items())

    @th.no_grad()
    def _update_topology(self, step: int, total: int) -> None:
        if self.sparse_method == "gmp":
            begin, end = int(self.prune_begin * total), int(self.prune_end * total)
            if step < begin or (step > end and not self.sparsity_behind()):
                return
            weights = self._masked_parameters()
            for name, param in weights.items():
                n = param.numel()
                final_sparsity = 1.0 - self.final_live[name] / n
                keep = n - int(round(gmp_sparsity(step, final_sparsity, begin, end) * n))
                keep = max(min(keep, int(self.masks[name].sum())), self.final_live[name])
                self.masks[name] = self._top_k(param.abs(), self.masks[name], keep)
            self.topology_updates += 1
            return
        end = int(self.update_end * total)
        if step == 0 or step > end:
            return
        fraction = self.drop_fraction / 2 * (1 + math.cos(math.pi * step / end))
        grads = self._dense_gradients() if self.sparse_method == "rigl" else None
        if self.sparse_method == "rigl" and grads is None:
            return  # not enough data in the replay buffer yet
        for name, param in self._masked_parameters().items():
            mask = self.masks[name]
            live = int(mask.sum())
            n_move = min(int(fraction * live), param.numel() - live)
            if n_move == 0:
                continue
            kept = self._top_k(param.abs(), mask, live - n_move)  # drop the smallest live weights
            if self.sparse_method == "set":
                score = th.as_tensor(self._rng.random(param.shape), dtype=param.dtype, device=param.device)
            else:
                score = grads[name].abs()
            grow = self._top_k(score, ~kept, n_move)  # grow among the entries not kept
            new_mask = kept | grow
            param[grow] = 0.0  # new connections start at zero
            self.masks[name] = new_mask
        self.topology_updates += 1

    @staticmethod
    def _top_k(score: th.Tensor, allowed: th.Tensor, k: int) -> th.Tensor:
        """Bool mask of the ``k`` entries with the largest score among ``allowed`` (ties: lowest index)."""
        flat = th.where(allowed, score, th.full_like(score, -math.inf)).flatten()
        # a stable sort makes ties (e.g. zero-initialized weights) deterministic
        order = th.sort(flat, descending=True, stable=True).indices[:k]
        out = th.zeros_like(flat, dtype=th.bool)
        out[order] = True
        return out.view_as(score)

    def _dense_gradients(self) -> dict[str, th.Tensor] | None:
        """Gradient of the TD loss on one replay batch with respect to the full (unmasked) weights."""
        if self.replay_buffer is None or self.replay_buffer.size() < self.batch_size:
            return None
        with th.enable_grad():
            data = self.replay_buffer.sample(self.batch_size, env=self._vec_normalize_env)
            discounts = data.discounts if data.discounts is not None else self.gamma
            with th.no_grad():
                next_q = self.q_net_target(data.next_observations).max(dim=1)[0].reshape(-1, 1)
                target = data.rewards + (1 - data.dones) * discounts * next_q
            current = th.gather(self.q_net(data.observations), dim=1, index=data.actions.long())
            loss = F.smooth_l1_loss(current, target)
            weights = self._masked_parameters()
            self._mask_gradients = False
            try:
                grads = th.autograd.grad(loss, list(weights.values()))
            finally:
                self._mask_gradients = True
        return dict(zip(weights, grads))
