"""The S-GMM-Q-function: a weighted sum of Gaussian bumps over the joint state-action vector.

    Q(s, a) = b + sum_k xi_k exp(-1/2 (z - m_k)^T P_k (z - m_k)),   z = (x(s), e(a)),  xi = u * v

``x(s)`` is the observation scaled to ``[-1, 1]`` (done by the policy), ``e(a)`` the action code
(discrete actions) or the action itself scaled to ``[-1, 1]`` (continuous actions, ``action_dim``),
``P_k = C_k^{-1}`` the precision on the bounded SPD manifold, ``b`` an optional offset. The
weights are Hadamard-factored (``xi = u * v``) so that an L2 penalty on ``(u, v)`` acts as an L1
penalty on ``xi`` (see :mod:`sgmmq.sparsity`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from geoopt import ManifoldParameter
from torch import nn

from sgmmq.geometry import BoundedSPD

ACTION_ENCODINGS = ("index", "onehot")
MEAN_INITS = ("uniform", "data")
FACTOR_SIGNS = ("random", "positive")
PRECISIONS = ("full", "diagonal")


def action_codes(n_actions: int, encoding: str) -> torch.Tensor:
    """``e(a)`` for every action, shape ``(n_actions, d_a)``.

    ``index``: one scalar, the action index spread evenly over ``[-1, 1]``;
    ``onehot``: one coordinate per action (costs more parameters, assumes no action order).
    """
    if encoding == "index":
        if n_actions == 1:
            return torch.zeros(1, 1)
        return torch.linspace(-1.0, 1.0, n_actions).unsqueeze(1)
    if encoding == "onehot":
        return torch.eye(n_actions)
    raise ValueError(f"action_encoding must be one of {ACTION_ENCODINGS}, got {encoding!r}")


def component_size(dim: int, precision: str = "full") -> int:
    """Inference-time parameters of one component: weight, mean, symmetric (or diagonal) precision."""
    return 1 + dim + (dim if precision == "diagonal" else dim * (dim + 1) // 2)


def box_points(action_dim: int) -> torch.Tensor:
    """Fixed argmax candidates in ``[-1, 1]^d``: the grid ``{-1, 0, 1}^d`` up to d = 3, else centre and face centres."""
    if action_dim <= 3:
        return torch.cartesian_prod(*[torch.tensor([-1.0, 0.0, 1.0])] * action_dim).reshape(-1, action_dim)
    eye = torch.eye(action_dim)
    return torch.cat([torch.zeros(1, action_dim), eye, -eye])


class GMMQFunction(nn.Module):
    """Q-function for a ``state_dim``-dimensional scaled state and ``n_actions`` discrete actions,
    or (``n_actions=None``, ``action_dim=d``) a continuous action scaled to ``[-1, 1]^d``.

    :param n_components: size of the initial pool of Gaussians (pruning shrinks it).
    :param action_encoding: ``"index"`` or ``"onehot"``.
    :param normalized: multiply each bump by ``(2 pi)^{-D/2} det(P_k)^{1/2}`` (a density).
    :param offset: add a learned constant ``b`` (lets weights start near zero whatever the return scale).
    :param init_std: initial standard deviation of every component (precision ``I / init_std^2``).
    :param std_bounds: ``(min, max)`` standard deviations allowed; become the precision eigenvalue bounds.
    :param factor_init: initial magnitude of ``u`` and ``v`` (so ``|xi| = factor_init^2``).
    :param factor_signs: ``"random"`` (independent random signs for ``u`` and ``v``) or ``"positive"``.
        With both positive, a weight that must become negative has to cross the saddle ``u = v = 0``.
    :param action_dim: continuous actions only: their dimension (then ``n_actions`` is None).
    :param argmax_steps: continuous actions only: polish steps of the greedy argmax (see :meth:`greedy`).
    :param precision: ``"full"`` (``D(D+1)/2`` numbers per component) or ``"diagonal"`` (``D``: axis-aligned
        Gaussians). A diagonal precision is a product of ``D`` one-dimensional SPD manifolds, the diagonal
        submanifold of the same affine-invariant geometry: with the Euclidean gradient restricted to the
        diagonal, the Riemannian gradient ``P G P``, the retraction and the eigenvalue clipping all keep a
        diagonal ``P`` diagonal, so the optimizer needs no second manifold (tested).

    The parameters may carry a leading seed axis (``euclidean (S, K, 2 + D)``, ``offset (S, 1)``,
    ``precisions (S, K, D, D)``): :mod:`sgmmq.batched` stacks S agents so, and ``encode``, ``q_z``,
    ``q_sa``, ``forward`` and the discrete ``greedy`` then take and return that axis first.
    """

    def __init__(
        self,
        state_dim: int,
        n_actions: int | None,
        n_components: int = 32,
        action_encoding: str = "index",
        normalized: bool = False,
        offset: bool = True,
        init_std: float = 0.5,
        std_bounds: tuple[float, float] = (0.02, 5.0),
        factor_init: float = 0.1,
        factor_signs: str = "random",
        action_dim: int | None = None,
        argmax_steps: int = 15,
        precision: str = "full",
    ) -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if (n_actions is None) == (action_dim is None):
            raise ValueError(f"give exactly one of n_actions (discrete) and action_dim (continuous), got {n_actions=} and {action_dim=}")
        if action_dim is not None and action_dim < 1:
            raise ValueError(f"action_dim must be >= 1, got {action_dim}")
        if argmax_steps < 0:
            raise ValueError(f"argmax_steps must be >= 0, got {argmax_steps}")
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        if factor_signs not in FACTOR_SIGNS:
            raise ValueError(f"factor_signs must be one of {FACTOR_SIGNS}, got {factor_signs!r}")
        std_min, std_max = std_bounds
        if not 0.0 < std_min <= init_std <= std_max:
            raise ValueError(f"need 0 < std_min <= init_std <= std_max, got {std_bounds=} and {init_std=}")
        self.state_dim = state_dim
        self.n_actions = n_actions
        self.action_encoding = action_encoding
        self.normalized = normalized
        self.precision = precision
        self.init_std = init_std
        self.capacity = n_components  # the initial pool, and the cap an adaptive pool grows back to
        self.continuous = action_dim is not None
        self.argmax_steps = argmax_steps
        self.argmax_polished = 8  # best candidates polished per state (see greedy): 1 missed maxima
        # between a negative and a positive bump (0.86 of a dense grid's range on random mixtures)
        if self.continuous:
            # the codes of a continuous action are the fixed candidates of the greedy argmax
            self.register_buffer("codes", box_points(action_dim))
            self.action_dim = action_dim
        else:
            self.register_buffer("codes", action_codes(n_actions, action_encoding))
            self.action_dim = self.codes.shape[1]
        self.dim = state_dim + self.action_dim

        k, d = n_components, self.dim
        signs_u = torch.randint(0, 2, (k,)) * 2.0 - 1.0 if factor_signs == "random" else torch.ones(k)
        signs_v = torch.randint(0, 2, (k,)) * 2.0 - 1.0 if factor_signs == "random" else torch.ones(k)
        means = torch.empty(k, d).uniform_(-1.0, 1.0)
        if not self.continuous:
            means[:, state_dim:] = self.codes[torch.randint(0, n_actions, (k,))]
        # The Euclidean factor of the manifold, one row per component: [u_k, v_k, m_k]. One tensor
        # rather than three because the optimizer's per-tensor overhead dominates at these sizes.
        self.euclidean = nn.Parameter(torch.cat([factor_init * signs_u[:, None], factor_init * signs_v[:, None], means], 1))
        self.offset = nn.Parameter(torch.zeros(1)) if offset else None
        self.manifold = BoundedSPD(eig_min=1.0 / std_max**2, eig_max=1.0 / std_min**2)
        self.precisions = ManifoldParameter(torch.eye(d).repeat(k, 1, 1) / init_std**2, manifold=self.manifold)

    @property
    def u(self) -> torch.Tensor:
        return self.euclidean[..., 0]

    @property
    def v(self) -> torch.Tensor:
        return self.euclidean[..., 1]

    @property
    def means(self) -> torch.Tensor:
        return self.euclidean[..., 2:]

    @property
    def xi(self) -> torch.Tensor:
        """Mixing weights ``u * v``."""
        return self.u * self.v

    @property
    def n_components(self) -> int:
        return self.u.shape[-1]

    def encode(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``z = (x, e(a))`` for scaled states ``(B, d_x)`` and integer actions ``(B,)`` (or, continuous,
        scaled actions ``(B, d_a)``); stacked agents: ``(S, B, d_x)`` and ``(S, B)`` (or ``(S, B, d_a)``)."""
        if self.continuous:
            return torch.cat([states, actions.to(states.dtype).reshape(*states.shape[:-1], self.action_dim)], dim=-1)
        return torch.cat([states, self.codes[actions.long().reshape(states.shape[:-1])]], dim=-1)

    def q_z(self, z: torch.Tensor) -> torch.Tensor:
        """Q at joint points ``(N, D)``: shape ``(N,)``; one fused autograd node (see MixtureValue).
        Stacked agents: points ``(S, N, D)``, values ``(S, N)``."""
        offset = self.offset_or_zero()
        if not torch.is_grad_enabled():  # acting and the snapshot's targets: the same arithmetic, no autograd node
            return mixture_terms(z, self.euclidean, offset, self.precisions, self.normalized)[-1]
        return MixtureValue.apply(z, self.euclidean, offset, self.precisions, self.normalized, self.precision == "diagonal")

    def offset_or_zero(self) -> torch.Tensor:
        """The offset ``b``, or a zero of its shape for a model built without one."""
        return self.offset if self.offset is not None else self.u.new_zeros(self.u.shape[:-1] + (1,))

    def q_sa(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q(s, a) for the given actions: shape ``(B,)``."""
        return self.q_z(self.encode(states, actions))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """Q(s, a) for every action at once: shape ``(B, n_actions)`` (continuous: at the fixed box points);
        stacked agents: states ``(S, B, d_x)``, values ``(S, B, n_actions)``."""
        *seeds, batch = states.shape[:-1]
        n_actions = self.codes.shape[0]
        z = torch.cat(
            [
                states.unsqueeze(-2).expand(*seeds, batch, n_actions, self.state_dim),
                self.codes.expand(*seeds, batch, n_actions, self.codes.shape[1]),
            ],
            dim=-1,
        )
        return self.q_z(z.reshape(*seeds, batch * n_actions, self.dim)).reshape(*seeds, batch, n_actions)

    # --- the greedy action ---------------------------------------------------------------------
    @torch.no_grad()
    def greedy(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(argmax_a Q(s, a), max_a Q(s, a))`` for scaled states ``(B, d_x)``, no gradient; stacked agents:
        states ``(S, B, d_x)``, actions ``(S, B)`` (continuous: ``(S, B, d_a)``) and values ``(S, B)``.

        Discrete: over the actions. Continuous: over the box ``[-1, 1]^d``. Conditioning component k
        on ``x`` leaves a Gaussian bump in ``a`` centred at ``mu_k(x) = m_a - P_aa^{-1} P_ax (x - m_x)``,
        so every local maximum of a positive-weight mixture lies near one of these centres. The
        candidates (each ``mu_k`` clipped to the box, plus the fixed box points) are evaluated in one
        batch; the best few per state are then polished by ``argmax_steps`` normalized projected-gradient
        steps whose length halves when a step does not improve Q (so Q never decreases and the
        action never leaves the box), and the best of them is returned.
        """
        if not self.continuous:
            q = self(states)
            values, actions = q.max(dim=-1)
            return actions, values
        d_a = self.action_dim
        value_and_grad, centres = self.conditional(states)
        candidates = torch.cat([centres.clamp(-1.0, 1.0), self.codes.expand(*centres.shape[:-2], -1, -1)], -2)
        values, grads = value_and_grad(candidates)
        values, best = values.topk(min(self.argmax_polished, candidates.shape[-2]), dim=-1)
        index = best.unsqueeze(-1).expand(*best.shape, d_a)
        actions, grad = candidates.gather(-2, index), grads.gather(-2, index)  # (B, m, d_a)
        step = torch.full((*values.shape, 1), 0.25, dtype=states.dtype, device=states.device)
        for _ in range(self.argmax_steps):  # one evaluation per step: a trial's gradient serves the next step
            trial = (actions + step * grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)).clamp(-1.0, 1.0)
            trial_values, trial_grad = value_and_grad(trial)
            better = (trial_values > values).unsqueeze(-1)
            actions = torch.where(better, trial, actions)
            values = torch.where(better.squeeze(-1), trial_values, values)
            grad = torch.where(better, trial_grad, grad)
            step = torch.where(better, step * 1.5, step * 0.5)
        values, best = values.max(dim=-1)
        return actions.gather(-2, best[..., None, None].expand(*best.shape, 1, d_a)).squeeze(-2), values

    @torch.no_grad()
    def conditional(self, states: torch.Tensor) -> tuple[Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        """Q(s, .) as a mixture over the action alone, for continuous actions: ``(value_and_grad, centres)``.

        With ``d = x - m_x``, component k's quadratic form splits into
        ``(a - mu_k)^T P_aa (a - mu_k) + d^T (P_xx - P_xa P_aa^{-1} P_ax) d`` with ``mu_k = m_a - P_aa^{-1} P_ax d``,
        so each state's Q is a mixture of ``d_a``-dimensional bumps with per-state weights. The argmax
        then works on ``(B, M, K, d_a)`` tensors, not ``(K, B M, D)`` ones: half the time of the joint form
        at ``d_a = 1``. ``value_and_grad(actions (B, M, d_a))`` gives Q ``(B, M)`` and ``dQ/da``;
        ``centres`` ``(B, K, d_a)`` are the ``mu_k`` (unclipped). Stacked agents: a seed axis first on all.
        """
        d_x, d_a = self.state_dim, self.action_dim
        means, precisions = self.means, self.precisions
        p_aa = precisions[..., d_x:, d_x:]
        coupling = torch.linalg.solve(p_aa, precisions[..., d_x:, :d_x])  # (K, d_a, d_x)
        d = states.unsqueeze(-2) - means[..., :d_x].unsqueeze(-3)  # (B, K, d_x)
        centres = means[..., d_x:].unsqueeze(-3) - torch.einsum("...kax,...bkx->...bka", coupling, d)
        schur = precisions[..., :d_x, :d_x] - precisions[..., :d_x, d_x:] @ coupling
        log_scale = -0.5 * torch.einsum("...bkx,...kxy,...bky->...bk", d, schur, d)
        if self.normalized:
            log_scale = log_scale + 0.5 * torch.logdet(precisions).unsqueeze(-2) - 0.5 * self.dim * math.log(2 * math.pi)
        weights = (self.xi.unsqueeze(-2) * log_scale.exp()).unsqueeze(-2)  # (B, 1, K)
        offset = self.offset.unsqueeze(-1) if self.offset is not None else 0.0
        p_scalar = p_aa[..., 0].unsqueeze(-3).unsqueeze(-3) if d_a == 1 else None  # (1, 1, K, 1)

        def value_and_grad(actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            diff = actions.unsqueeze(-2) - centres.unsqueeze(-3)  # (B, M, K, d_a)
            p_diff = diff * p_scalar if p_scalar is not None else torch.einsum("...bmka,...kac->...bmkc", diff, p_aa)
            weighted = weights * torch.exp(-0.5 * (diff * p_diff).sum(-1))  # (B, M, K)
            return weighted.sum(-1) + offset, -(weighted.unsqueeze(-1) * p_diff).sum(-2)

        return value_and_grad, centres

    # --- sparsity: the pool shrinks physically -------------------------------------------------
    def component_parameters(self) -> list[nn.Parameter]:
        """Parameters with one slice per component (first dimension K)."""
        return [self.euclidean, self.precisions]

    @torch.no_grad()
    def keep_components(self, keep: torch.Tensor) -> None:
        """Remove every component where ``keep`` is False, with its weight, mean and precision.

        Slices ``.data`` in place, so the Parameter objects (and an optimizer's references to
        them) survive; per-component optimizer state must be sliced by the owner of the optimizer.
        A tensor computed from the parameters before the call must not be backpropagated after it.
        """
        for param in self.component_parameters():
            param.data = param.data[keep].clone()

    @torch.no_grad()
    def add_components(self, means: torch.Tensor, xi: torch.Tensor) -> None:
        """Append components at ``means`` ``(M, D)`` with weights ``xi`` ``(M,)`` and precision ``I / init_std^2``.

        ``u = sign(xi) sqrt|xi|``, ``v = sqrt|xi|``: equal magnitudes, the balanced point the Hadamard
        penalty drives the factors to. Like :meth:`keep_components`, it replaces ``.data`` in place,
        so per-component optimizer state must be extended by the optimizer's owner.
        """
        magnitude = xi.abs().sqrt()
        rows = torch.cat([(torch.sign(xi) * magnitude)[:, None], magnitude[:, None], means], 1)
        precision = torch.eye(self.dim, dtype=self.precisions.dtype, device=self.precisions.device) / self.init_std**2
        self.euclidean.data = torch.cat([self.euclidean.data, rows.to(self.euclidean)])
        self.precisions.data = torch.cat([self.precisions.data, precision.expand(means.shape[0], -1, -1)])

    @torch.no_grad()
    def bumps(self, z: torch.Tensor) -> torch.Tensor:
        """Unweighted activations ``g_nk`` at joint points ``(N, D)``: shape ``(K, N)``, no gradient."""
        diff = (z.unsqueeze(1) - self.means).transpose(0, 1)
        return (-0.5 * (diff * torch.bmm(diff, self.precisions)).sum(-1)).exp()

    def num_parameters(self) -> int:
        """Live inference-time parameters: components x (1 + D + D(D+1)/2, or 1 + 2D diagonal), plus the offset."""
        return self.n_components * component_size(self.dim, self.precision) + (1 if self.offset is not None else 0)

    def num_training_parameters(self) -> int:
        """Numbers the optimizer updates: ``u`` and ``v`` separately, plus the offset."""
        return self.num_parameters() + self.n_components

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # A saved model may have been pruned to fewer components: take its size before copying.
        saved = state_dict.get(prefix + "euclidean")
        if saved is not None and saved.shape[0] != self.n_components:
            for name, param in zip(("euclidean", "precisions"), self.component_parameters()):
                incoming = state_dict.get(prefix + name)
                if incoming is not None:
                    param.data = torch.empty_like(incoming, device=param.device, dtype=param.dtype)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        actions = f"continuous({self.action_dim})" if self.continuous else f"encoding={self.action_encoding}"
        return (
            f"components={self.n_components}, dim={self.dim}, {actions}, "
            f"normalized={self.normalized}, offset={self.offset is not None}, precision={self.precision}"
        )


class MixtureValue(torch.autograd.Function):
    """``q_n = b + sum_k u_k v_k g_nk`` with a hand-derived backward (``euclidean`` rows are ``[u_k, v_k, m_k]``).

    Autograd over the dozen small ops of the forward pass cost more than the math at these sizes
    (K ~ 32, D ~ 5); the closed-form gradients below are checked against finite differences in
    the tests. With ``c_nk = dL/dq_n xi_k g_nk``, ``G_nk = -c_nk / 2`` (the gradient of the quadratic
    form) and the moments ``A_k = sum_n G_nk z_n z_n^T``, ``a_k = sum_n G_nk z_n``, ``a0_k = sum_n G_nk``
    (one matrix product with the features of :func:`mixture_terms`):
    ``dL/dxi_k = sum_n dL/dq_n g_nk``, ``dL/dm_k = -2 P_k (a_k - a0_k m_k)``,
    ``dL/dP_k = A_k - a_k m_k^T - m_k a_k^T + a0_k m_k m_k^T`` ``= sum_n G_nk d_nk d_nk^T`` with ``d_nk = z_n - m_k``
    (``+ 1/2 (sum_n c_nk) P_k^{-1}`` when normalized); ``diagonal``: only its diagonal (the gradient on the
    diagonal submanifold).
    """

    @staticmethod
    def forward(ctx, z, euclidean, offset, precisions, normalized, diagonal=False):  # type: ignore[override]
        features, bumps, q = mixture_terms(z, euclidean, offset, precisions, normalized)
        ctx.save_for_backward(z, euclidean, precisions, features, bumps)
        ctx.normalized = normalized
        ctx.diagonal = diagonal
        return q

    @staticmethod
    def backward(ctx, grad_q):  # type: ignore[override]
        z, euclidean, precisions, features, bumps = ctx.saved_tensors
        grads = mixture_gradients(grad_q, z, euclidean, precisions, features, bumps, ctx.normalized, ctx.diagonal,
                                  with_z=ctx.needs_input_grad[0])
        return (*grads, None, None)


def mixture_gradients(grad_q, z, euclidean, precisions, features, bumps, normalized, diagonal, with_z=False):  # type: ignore[no-untyped-def]
    """``(dL/dz or None, dL/d euclidean, dL/d offset, dL/d precisions)`` from ``dL/dq`` and the terms of
    :func:`mixture_terms`: :class:`MixtureValue`'s backward, callable without autograd (see
    :func:`sgmmq.agent.closed_form_gradients`)."""
    d = precisions.shape[-1]
    u, v, means = euclidean[..., 0], euclidean[..., 1], euclidean[..., 2:]
    weighted = bumps * grad_q.unsqueeze(-1)  # (N, K): dL/dq_n g_nk
    grad_xi = weighted.sum(-2)
    c = weighted * (u * v).unsqueeze(-2)
    moments = torch.matmul((-0.5 * c).transpose(-1, -2), features)  # (K, D^2 + D + 1): A_k, a_k, a0_k
    second, first, zeroth = moments[..., : d * d].unflatten(-1, (d, d)), moments[..., d * d : -1], moments[..., -1:]
    centred = first - zeroth * means  # a_k - a0_k m_k
    grad_means = -2.0 * torch.matmul(precisions, centred.unsqueeze(-1)).squeeze(-1)
    outer = means.unsqueeze(-1) * centred.unsqueeze(-2)  # m_k (a_k - a0_k m_k)^T
    grad_precisions = second - first.unsqueeze(-1) * means.unsqueeze(-2) - outer  # the symmetric form above
    if normalized:
        grad_precisions = grad_precisions + 0.5 * c.sum(-2)[..., None, None] * torch.linalg.inv(precisions)
    if diagonal:
        grad_precisions = torch.diag_embed(torch.diagonal(grad_precisions, dim1=-2, dim2=-1))
    grad_z = None
    if with_z:  # dL/dz_n = -sum_k c_nk P_k (z_n - m_k)
        p_means = torch.matmul(precisions, means.unsqueeze(-1)).squeeze(-1)
        mixed = torch.matmul(c, precisions.flatten(-2)).unflatten(-1, (d, d))  # sum_k c_nk P_k
        grad_z = torch.matmul(c, p_means) - torch.matmul(mixed, z.unsqueeze(-1)).squeeze(-1)
    grad_euclidean = torch.cat([(grad_xi * v)[..., None], (grad_xi * u)[..., None], grad_means], -1)
    grad_offset = grad_q.sum().reshape(1) if grad_q.dim() == 1 else grad_q.sum(-1, keepdim=True)
    return grad_z, grad_euclidean, grad_offset, grad_precisions


def mixture_terms(z, euclidean, offset, precisions, normalized):  # type: ignore[no-untyped-def]
    """The forward pass of :class:`MixtureValue`: the features ``(N, D^2 + D + 1)``, ``bumps (N, K)`` and ``q (N,)``.

    Every component's quadratic form at every point is one matrix product: with the features
    ``f(z) = [vec(z z^T), z, 1]`` and the rows ``w_k = [vec(P_k), -2 P_k m_k, m_k^T P_k m_k]``,
    ``(z - m_k)^T P_k (z - m_k) = f(z) . w_k``. At these sizes one ``(N, F) x (F, K)`` product is several
    times faster than the ``(K, N, D)`` differences and ``K`` batched ``D x D`` products of the direct form
    (and the gap grows with stacked agents); it agrees with the direct form to float rounding (the
    expanded terms are at most ``|z|^2 eig_max``; tested).

    Stacked agents (:mod:`sgmmq.batched`) put a seed axis first on everything: ``z (S, N, D)``,
    ``euclidean (S, K, 2 + D)``, ``offset (S, 1)``, ``precisions (S, K, D, D)``, ``q (S, N)``.
    """
    means = euclidean[..., 2:]
    # (P + P^T) / 2 is P itself, bit for bit, for the symmetric precisions the manifold holds; written so, the
    # expansion is exact for any square P (what a finite-difference check of dL/dP perturbs)
    p_means = torch.matmul(0.5 * (precisions + precisions.transpose(-1, -2)), means.unsqueeze(-1)).squeeze(-1)  # (K, D)
    weights = torch.cat([precisions.flatten(-2), -2.0 * p_means, (means * p_means).sum(-1, keepdim=True)], -1)
    features = torch.cat([(z.unsqueeze(-1) * z.unsqueeze(-2)).flatten(-2), z, torch.ones_like(z[..., :1])], -1)
    log_bumps = -0.5 * torch.matmul(features, weights.transpose(-1, -2))  # (N, K)
    if normalized:
        log_bumps = log_bumps + 0.5 * torch.logdet(precisions).unsqueeze(-2) - 0.5 * means.shape[-1] * math.log(2 * math.pi)
    bumps = log_bumps.exp()
    xi = euclidean[..., 0] * euclidean[..., 1]
    q = bumps @ xi if xi.dim() == 1 else torch.matmul(bumps, xi.unsqueeze(-1)).squeeze(-1)
    return features, bumps, q + offset
