"""The adaptive pool: components go where the data is (sgmmq's extension; the papers' pool is fixed).

A Gaussian whose mean sits where no state is ever visited gets no gradient; the sparsity penalty
then shrinks its weight, and the pruning rule removes it before it could be of use (LunarLander's
9-D joint space: 27-38 of 64 uniformly placed components went at the first check). So, at every
pruning check, a sample of the window is used twice:

- **support** ``s_k = sum_n g_nk``, each component's activation mass on visited points. Only a
  component with ``s_k >= min_support`` is judged by the pruning rule; one below it has seen no
  data, so a small weight says nothing about it.
- **births**: with ``pool="adaptive"``, idle (unsupported) components are moved, and free slots
  (up to ``n_components``, which becomes a cap) are filled, at the sampled points where the
  Bellman residual ``delta = Q(z) - y`` is largest, each with weight ``-birth_gain * delta`` so that
  it removes part of the residual where it is born. Points closer than one ``init_std`` to an
  already chosen point are skipped, and only points whose residual exceeds ``birth_threshold``
  times the sample's RMS residual qualify: a pool that fits the data does not grow.
"""

from __future__ import annotations

import torch

POOLS = ("fixed", "adaptive")


def support(bumps: torch.Tensor) -> torch.Tensor:
    """Activation mass per component over sampled points: ``bumps`` is ``(K, N)``."""
    return bumps.sum(1)


def birth_sites(z: torch.Tensor, residual: torch.Tensor, n: int, min_distance: float, threshold: float) -> torch.Tensor:
    """Indices of up to ``n`` distinct points with the largest ``|residual|`` above ``threshold x RMS``."""
    if n <= 0 or residual.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    magnitude = residual.abs()
    rms = magnitude.square().mean().sqrt()
    chosen: list[int] = []
    for index in torch.argsort(magnitude, descending=True).tolist():
        if magnitude[index] <= threshold * rms or len(chosen) == n:
            break
        if chosen and torch.cdist(z[index : index + 1], z[chosen]).min() < min_distance:
            continue
        chosen.append(index)
    return torch.as_tensor(chosen, dtype=torch.long)
