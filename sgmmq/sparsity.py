"""Hadamard-overparametrized sparsity: the smooth penalty and the pruning rule.

With ``xi = u * v``, ``min_{u*v = xi} (|u|^2 + |v|^2) / 2 = |xi|``, so the smooth penalty
``lambda/2 (||u||^2 + ||v||^2)`` has the same minimizers as ``lambda ||xi||_1``: plain gradient
steps drive useless weights to exact-zero products, no proximal step needed. A component whose
``|xi_k|`` stays below ``threshold`` for ``patience`` consecutive checks is removed for good.
"""

from __future__ import annotations

import torch


def hadamard_penalty(u: torch.Tensor, v: torch.Tensor, strength: float) -> torch.Tensor:
    """``strength / 2 (||u||^2 + ||v||^2)``, the smooth surrogate of ``strength ||u * v||_1``."""
    return 0.5 * strength * (u.square().sum() + v.square().sum())


class Pruner:
    """Decides which components to keep from their weights, one check at a time."""

    def __init__(self, threshold: float, patience: int = 1, min_components: int = 1) -> None:
        if threshold < 0:
            raise ValueError(f"prune_threshold must be >= 0, got {threshold}")
        if patience < 1:
            raise ValueError(f"prune_patience must be >= 1, got {patience}")
        self.threshold = threshold
        self.patience = patience
        self.min_components = min_components
        self.strikes: torch.Tensor | None = None  # consecutive checks below threshold, per component

    def check(self, xi: torch.Tensor, judged: torch.Tensor | None = None) -> torch.Tensor | None:
        """A keep-mask when some component should go, else ``None``; the largest weights always stay.

        ``judged`` (bool per component, default all): only these collect strikes. A component that
        has had no data has had no gradient, so a small weight says nothing about it yet.
        """
        below = xi.detach().abs() < self.threshold
        if judged is not None:
            below = below & judged
        if self.strikes is None or self.strikes.shape != below.shape:
            self.strikes = torch.zeros_like(below, dtype=torch.long)
        self.strikes = torch.where(below, self.strikes + 1, torch.zeros_like(self.strikes))
        keep = self.strikes < self.patience
        if keep.all():
            return None
        if int(keep.sum()) < self.min_components:
            keep[xi.detach().abs().topk(min(self.min_components, xi.numel())).indices] = True
        self.keep_only(keep)
        return keep

    def keep_only(self, keep: torch.Tensor) -> None:
        """Forget the strikes of components removed by ``keep`` (pruned here, or moved by the pool)."""
        if self.strikes is not None:
            self.strikes = self.strikes[keep]

    def extend(self, n: int) -> None:
        """``n`` new components, appended last, start with no strikes."""
        if self.strikes is not None:
            self.strikes = torch.cat([self.strikes, self.strikes.new_zeros(n)])


def _map_component_state(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], n_before: int, fn) -> None:  # type: ignore[no-untyped-def]
    """Apply ``fn`` to every per-component optimizer-state tensor (first dimension ``n_before``)."""
    for param in params:
        for key, value in (optimizer.state.get(param) or {}).items():
            if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == n_before:
                optimizer.state[param][key] = fn(value)


@torch.no_grad()
def extend_optimizer_state(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], n_before: int, n_new: int) -> None:
    """Append zero per-component optimizer state (no momentum yet) for ``n_new`` components born last."""
    _map_component_state(optimizer, params, n_before, lambda value: torch.cat([value, value.new_zeros((n_new, *value.shape[1:]))]))


@torch.no_grad()
def slice_optimizer_state(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], keep: torch.Tensor) -> None:
    """Drop pruned components from per-parameter optimizer state (Adam moments and the like)."""
    _map_component_state(optimizer, params, keep.shape[0], lambda value: value[keep].clone())
