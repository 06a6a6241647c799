"""Riemannian Adam and SGD that update every parameter of a small model in one pass.

geoopt's ``RiemannianAdam`` walks the parameters one at a time and issues a dozen tensor
operations for each; with a few hundred numbers per model that per-call overhead, not the
arithmetic, is the cost of a step. These optimizers do the same arithmetic, in the same order
(so they agree with geoopt's to the last bit on CPU, tested), but batch the Euclidean parameters
into ``torch._foreach_*`` calls and hand each manifold parameter to its manifold once
(``egrad2rgrad``, ``component_inner``, ``retr_transp``, ``projx``/``proju``: geoopt's definitions,
all components of a ``(K, D, D)`` tensor at once).

State lives in ``optimizer.state[param]``, one tensor per key whose first dimension is the
component axis, so pruning slices it (:func:`sgmmq.sparsity.slice_optimizer_state`) and rows
appended for newborn components start from zeros. ``step`` is per component too (a float64 tensor
of shape ``(K,)``): a newborn row gets its own Adam bias correction. Many agents stacked on a
leading seed axis, ``(S, K, ...)`` tensors marked ``param.component_dims = 2``, take the same steps
as S separate optimizers (tested): steps are ``(S, K)`` and everything else broadcasts or batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from geoopt import ManifoldParameter, ManifoldTensor
from geoopt.manifolds import Euclidean


def _manifold(param: torch.Tensor) -> Any:
    """The manifold geoopt's optimizers would use for ``param`` (Euclidean for a plain tensor)."""
    return param.manifold if isinstance(param, (ManifoldParameter, ManifoldTensor)) else None


def _is_flat(manifold: Any) -> bool:
    """Plain parameters and elementwise Euclidean ones take the batched ``_foreach`` path."""
    return manifold is None or (isinstance(manifold, Euclidean) and manifold.ndim == 0)


def _step_shape(param: torch.Tensor) -> tuple[int, ...]:
    """One step count per component: the leading ``param.component_dims`` dimensions (default 1;
    2 for parameters stacked ``(seed, component, ...)``); a scalar parameter counts as one."""
    return tuple(param.shape[: getattr(param, "component_dims", 1)]) if param.dim() > 0 else ()


def _bias_corrections(step: torch.Tensor, count: int | None, param: torch.Tensor, beta1: float, beta2: float) -> tuple[Any, Any]:
    """Adam's ``1 - beta ** step`` for every component.

    While every component has the same step ``count`` (always, but right after a birth) these are
    the Python floats geoopt computes; otherwise float64 tensors cast to the parameter's dtype (the
    float a Python scalar becomes too) and shaped to broadcast over the trailing dimensions.
    """
    if count is not None:
        return 1 - beta1**count, 1 - beta2**count
    shape = step.shape + (1,) * (param.dim() - step.dim())
    return tuple((1 - torch.pow(beta, step)).to(param.dtype).reshape(shape) for beta in (beta1, beta2))


def _has_step_hooks(optimizer: torch.optim.Optimizer) -> bool:
    """Whether anyone listens to ``step``: hooks on this optimizer or all, or a running profiler."""
    from torch.optim import optimizer as torch_optimizer

    return bool(
        getattr(optimizer, "_optimizer_step_pre_hooks", None) or getattr(optimizer, "_optimizer_step_post_hooks", None)
        or getattr(torch_optimizer, "_global_optimizer_pre_hooks", None) or getattr(torch_optimizer, "_global_optimizer_post_hooks", None)
        or torch.autograd.profiler._is_profiler_enabled
    )


class _LeanStep:
    """``step`` without torch's per-call wrapper unless hooks or a profiler need it.

    torch wraps every optimizer's ``step`` in a profiler range and a hook dispatch, some 60 us a
    call on this project's CPU, more than the Euclidean half of the update; the wrapper still runs
    whenever a step hook is registered or a profiler is recording.
    """

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        if _has_step_hooks(self):  # type: ignore[arg-type]
            return _hooked_step(self, closure)
        return self._step(closure)  # type: ignore[attr-defined]

    step.hooked = True  # type: ignore[attr-defined]  # tells torch.optim.Optimizer not to wrap it

    @torch.no_grad()
    def _step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:  # type: ignore[attr-defined]
            self._group_step(group)  # type: ignore[attr-defined]
        return loss


_hooked_step = torch.optim.Optimizer.profile_hook_step(_LeanStep._step)


class FusedRiemannianAdam(_LeanStep, torch.optim.Optimizer):
    """geoopt's ``RiemannianAdam`` (same arguments, same arithmetic), one batched pass per step.

    :param stabilize: project parameters (and the first moment) back onto their manifold every
        ``stabilize`` steps, as geoopt does; ``None``: never.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        stabilize: int | None = None,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Invalid betas (each in [0, 1)): {betas}")
        if eps < 0.0 or weight_decay < 0.0:
            raise ValueError(f"Invalid eps or weight_decay (both >= 0): {eps}, {weight_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, stabilize=stabilize)
        super().__init__(params, defaults)
        # param -> (its step tensor, the count all its components share, or None): a cache that spares a
        # reduction a step; pruning, births and loading replace the tensor, which invalidates the entry.
        self._counts: dict[torch.Tensor, tuple[torch.Tensor, int | None]] = {}

    def _group_step(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        if any(p.grad.is_sparse for p in params):
            raise RuntimeError("FusedRiemannianAdam does not support sparse gradients")
        states = [self._state(p, group["amsgrad"]) for p in params]
        manifolds = [_manifold(p) for p in params]
        grads = [p.grad for p in params]
        if group["weight_decay"] != 0:
            torch._foreach_add_(grads, params, alpha=group["weight_decay"])
        # Riemannian gradients and their squared norms, component by component
        rgrads, inners = [], []
        for p, grad, manifold in zip(params, grads, manifolds):
            if _is_flat(manifold):
                rgrads.append(grad)
                inners.append(None)
            else:
                rgrad = manifold.egrad2rgrad(p, grad)
                rgrads.append(rgrad)
                inners.append(manifold.component_inner(p, rgrad))
        flat_idx = [i for i, inner in enumerate(inners) if inner is None]
        if flat_idx:
            squares = torch._foreach_pow([rgrads[i] for i in flat_idx], 2)
            for i, square in zip(flat_idx, squares):
                inners[i] = square
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1.0)
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, rgrads, alpha=1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_add_(exp_avg_sqs, inners, alpha=1 - beta2)
        corrections1, corrections2 = [], []
        for p, step in zip(params, steps):
            c1, c2 = _bias_corrections(step, self._shared_count(p, step), p, beta1, beta2)
            corrections1.append(c1)
            corrections2.append(c2)
        if group["amsgrad"]:
            maxima = [s["max_exp_avg_sq"] for s in states]
            torch._foreach_maximum_(maxima, exp_avg_sqs)
            denoms = [m.div(c) for m, c in zip(maxima, corrections2)]
        else:
            denoms = [m.div(c) for m, c in zip(exp_avg_sqs, corrections2)]
        torch._foreach_sqrt_(denoms)
        torch._foreach_add_(denoms, group["eps"])
        directions = [m.div(c) for m, c in zip(exp_avgs, corrections1)]
        torch._foreach_div_(directions, denoms)
        torch._foreach_mul_(directions, -group["lr"])  # the step -lr * direction
        flat_params = [params[i] for i in flat_idx]
        if flat_params:  # Euclidean retraction x + u; the moments need no transport
            torch._foreach_add_(flat_params, [directions[i] for i in flat_idx])
        for i, (p, manifold) in enumerate(zip(params, manifolds)):
            if not _is_flat(manifold):
                new_point, exp_avg_new = manifold.retr_transp(p, directions[i], exp_avgs[i])
                p.copy_(new_point)
                exp_avgs[i].copy_(exp_avg_new)
        if group["stabilize"] is not None and any(bool((s["step"] % group["stabilize"] == 0).any()) for s in states):
            self.stabilize_group(group)

    def __setstate__(self, state: dict[str, Any]) -> None:  # unpickling and deepcopy skip __init__
        super().__setstate__(state)
        self._counts = {}

    def _shared_count(self, param: torch.Tensor, step: torch.Tensor) -> int | None:
        """The step count of every component of ``param`` (just incremented), or None if they differ."""
        cached = self._counts.get(param)
        if cached is not None and cached[0] is step and cached[1] is not None:
            count: int | None = cached[1] + 1
        else:
            low, high = step.aminmax() if step.dim() else (step, step)
            count = int(high.item()) if low.item() == high.item() else None
        self._counts[param] = (step, count)
        return count

    def _state(self, param: torch.Tensor, amsgrad: bool) -> dict[str, torch.Tensor]:
        state = self.state[param]
        if len(state) == 0:
            state["step"] = torch.zeros(_step_shape(param), dtype=torch.float64, device=param.device)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            if amsgrad:
                state["max_exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        elif not torch.is_tensor(state["step"]) or state["step"].shape != _step_shape(param):
            raise ValueError(
                f"optimizer state for a parameter of shape {tuple(param.shape)} has step {state['step']!r}: "
                "expected one step count per component (was it saved by another optimizer class?)"
            )
        return state

    @torch.no_grad()
    def stabilize_group(self, group: dict[str, Any]) -> None:
        """geoopt's stabilization: parameters back onto the manifold, first moments onto its tangent space."""
        for p in group["params"]:
            manifold = _manifold(p)
            state = self.state[p]
            if manifold is None or not state:
                continue
            p.copy_(manifold.projx(p))
            state["exp_avg"].copy_(manifold.proju(p, state["exp_avg"]))


class FusedRiemannianSGD(_LeanStep, torch.optim.Optimizer):
    """geoopt's ``RiemannianSGD`` (same arguments, same arithmetic), one batched pass per step."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        stabilize: int | None = None,
    ) -> None:
        if lr < 0.0 or momentum < 0.0 or weight_decay < 0.0:
            raise ValueError(f"Invalid lr, momentum or weight_decay (each >= 0): {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov, stabilize=stabilize)
        super().__init__(params, defaults)

    def _group_step(self, group: dict[str, Any]) -> None:
        group["step"] = group.get("step", 0) + 1
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        if any(p.grad.is_sparse for p in params):
            raise RuntimeError("FusedRiemannianSGD does not support sparse gradients")
        momentum, lr = group["momentum"], group["lr"]
        grads = [p.grad for p in params]
        for p, grad in zip(params, grads):
            state = self.state[p]
            if len(state) == 0 and momentum > 0:
                state["momentum_buffer"] = grad.clone()  # geoopt starts it from the raw gradient
        manifolds = [_manifold(p) for p in params]
        if group["weight_decay"] != 0:
            torch._foreach_add_(grads, params, alpha=group["weight_decay"])
        rgrads = [grad if _is_flat(m) else m.egrad2rgrad(p, grad) for p, grad, m in zip(params, grads, manifolds)]
        if momentum > 0:
            buffers = [self.state[p]["momentum_buffer"] for p in params]
            torch._foreach_mul_(buffers, momentum)
            torch._foreach_add_(buffers, rgrads, alpha=1 - group["dampening"])
            if group["nesterov"]:
                torch._foreach_add_(rgrads, buffers, alpha=momentum)
                directions = rgrads
            else:
                directions = buffers
        else:
            buffers, directions = None, rgrads
        steps = torch._foreach_mul(directions, -lr)
        for i, (p, manifold) in enumerate(zip(params, manifolds)):
            if _is_flat(manifold):
                continue
            if buffers is not None:
                new_point, new_buffer = manifold.retr_transp(p, steps[i], buffers[i])
                buffers[i].copy_(new_buffer)
            else:
                new_point = manifold.retr(p, steps[i])
            p.copy_(new_point)
        flat = [i for i, m in enumerate(manifolds) if _is_flat(m)]
        if flat:
            torch._foreach_add_([params[i] for i in flat], [steps[i] for i in flat])
        if group["stabilize"] is not None and group["step"] % group["stabilize"] == 0:
            self.stabilize_group(group)

    @torch.no_grad()
    def stabilize_group(self, group: dict[str, Any]) -> None:
        """geoopt's stabilization: parameters back onto the manifold, momenta onto its tangent space."""
        for p in group["params"]:
            manifold = _manifold(p)
            if manifold is None:
                continue
            p.copy_(manifold.projx(p))
            buffer = self.state[p].get("momentum_buffer") if group["momentum"] > 0 else None
            if buffer is not None:
                buffer.copy_(manifold.proju(p, buffer))
