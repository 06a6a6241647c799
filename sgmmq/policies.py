"""The S-GMM-QF policy: observation scaling, the Q-function, its evaluation snapshot, the optimizer."""

from __future__ import annotations

import pathlib
import pickle
from typing import Any

import geoopt
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import get_device

from sgmmq.mixture import GMMQFunction
from sgmmq.optim import FusedRiemannianAdam, FusedRiemannianSGD
from sgmmq.sparsity import extend_optimizer_state, slice_optimizer_state

# "radam"/"rsgd" take the same steps as geoopt's classes, to the bit (tests/test_optim.py), in one
# batched pass; geoopt's own stay reachable (and models saved with them load with them).
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "radam": FusedRiemannianAdam,
    "rsgd": FusedRiemannianSGD,
    "geoopt_radam": geoopt.optim.RiemannianAdam,
    "geoopt_rsgd": geoopt.optim.RiemannianSGD,
}


def optimizer_name(optimizer_class: type[torch.optim.Optimizer] | str) -> type[torch.optim.Optimizer] | str:
    """The name a file holds for a known optimizer class (files hold names, not classes); another class as is."""
    for name, known in OPTIMIZERS.items():
        if optimizer_class is known:
            return name
    return optimizer_class


def check_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Raise a ValueError naming the problem when S-GMM-QF cannot handle a space."""
    if isinstance(action_space, spaces.Box):
        if len(action_space.shape) != 1:
            raise ValueError(f"SGMMQ needs 1-D Box actions, got shape {action_space.shape} (flatten the action space first)")
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError(
                f"SGMMQ needs a bounded Box action space (finite low and high, to scale actions to [-1, 1]), got {action_space}"
            )
        if not np.all(action_space.high > action_space.low):
            raise ValueError(f"SGMMQ needs high > low in every action coordinate, got {action_space}")
    elif not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"SGMMQ needs a Discrete or a bounded 1-D Box action space, got {action_space}")
    if not isinstance(observation_space, spaces.Box) or is_image_space(observation_space):
        raise ValueError(f"SGMMQ needs a flat continuous (Box) observation space, got {observation_space}")
    if len(observation_space.shape) != 1:
        raise ValueError(f"SGMMQ needs 1-D observations, got shape {observation_space.shape} (flatten them first)")


def resolve_obs_bounds(observation_space: spaces.Box, obs_bounds: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The fixed box ``(low, high)`` mapped to ``[-1, 1]``: given, or the space's own if finite."""
    if obs_bounds is None:
        low, high = observation_space.low, observation_space.high
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(
                f"The observation space {observation_space} has infinite bounds and the task is not declared in "
                "sgmmq.envs: pass policy_kwargs=dict(obs_bounds=(low, high)) with the box to scale observations from"
            )
    else:
        low, high = obs_bounds
    low = np.asarray(low, dtype=np.float32).reshape(-1)
    high = np.asarray(high, dtype=np.float32).reshape(-1)
    if low.shape != observation_space.shape or high.shape != observation_space.shape:
        raise ValueError(f"obs_bounds must have the observation shape {observation_space.shape}, got {low.shape} and {high.shape}")
    if not np.all(high > low):
        raise ValueError(f"obs_bounds need high > low in every coordinate, got low={low}, high={high}")
    return low, high


class GMMPolicy(BasePolicy):
    """Greedy policy of an S-GMM-Q-function, with the frozen snapshot used for policy improvement.

    With a Box action space the action is scaled to ``[-1, 1]`` (SB3's ``squash_output``: the
    window stores scaled actions, ``predict`` maps them back) and the greedy action is the
    mixture's maximizer over the box (:meth:`GMMQFunction.greedy`).

    :param obs_bounds: ``(low, high)``, the fixed box observations are scaled from (to ``[-1, 1]``,
        then clipped). ``None``: the task's declared box (set by SGMMQ) or the space's finite bounds.
    :param lr_schedule: SB3's learning-rate schedule; optional, so that a policy saved alone
        (``policy.save``) loads without its algorithm (the optimizer then starts at lr 0).
    :param optimizer_class: a (geoopt-style) Riemannian optimizer class, or one of ``OPTIMIZERS``:
        ``"radam"`` / ``"rsgd"`` (:mod:`sgmmq.optim`, geoopt's arithmetic batched), ``"geoopt_radam"`` /
        ``"geoopt_rsgd"`` (geoopt's own).
    :param q_kwargs: remaining keyword arguments go to :class:`sgmmq.mixture.GMMQFunction`
        (``n_components``, ``action_encoding``, ``normalized``, ``offset``, ``precision``, ``init_std``,
        ``std_bounds``, ``factor_init``, ``factor_signs``; continuous actions: ``argmax_steps``).
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Discrete | spaces.Box,
        lr_schedule: Schedule | None = None,
        obs_bounds: Any = None,
        optimizer_class: type[torch.optim.Optimizer] | str = "radam",
        optimizer_kwargs: dict[str, Any] | None = None,
        **q_kwargs: Any,
    ) -> None:
        check_spaces(observation_space, action_space)
        if isinstance(optimizer_class, str):
            if optimizer_class not in OPTIMIZERS:
                raise ValueError(f"optimizer_class must be a class or one of {list(OPTIMIZERS)}, got {optimizer_class!r}")
            optimizer_class = OPTIMIZERS[optimizer_class]
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=False,
            squash_output=isinstance(action_space, spaces.Box),
        )
        low, high = resolve_obs_bounds(observation_space, obs_bounds)
        self.obs_bounds = (low.tolist(), high.tolist())
        self.register_buffer("obs_center", torch.as_tensor((high + low) / 2))
        self.register_buffer("obs_half_width", torch.as_tensor((high - low) / 2))
        self.q_kwargs = q_kwargs
        if isinstance(action_space, spaces.Box):
            actions: dict[str, Any] = {"n_actions": None, "action_dim": int(action_space.shape[0])}
        else:
            actions = {"n_actions": int(action_space.n)}
        self.q_net = GMMQFunction(observation_space.shape[0], **actions, **q_kwargs)
        self.q_net_target = GMMQFunction(observation_space.shape[0], **actions, **q_kwargs)
        self.refresh_snapshot()
        self.q_net_target.requires_grad_(False)
        self.optimizer = self.optimizer_class(self.q_net.parameters(), lr=lr_schedule(1) if lr_schedule else 0.0, **self.optimizer_kwargs)

    def scale(self, obs: torch.Tensor, check: bool = True) -> torch.Tensor:
        """Map observations from the fixed box to ``[-1, 1]`` (clipped), refusing NaN and inf."""
        obs = obs.float()
        if check and not torch.isfinite(obs).all():
            raise ValueError(f"Observation contains NaN or infinite values: {obs.cpu().numpy()}")
        return ((obs - self.obs_center) / self.obs_half_width).clamp(-1.0, 1.0)

    @property
    def continuous(self) -> bool:
        return self.q_net.continuous

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values of every action, ``(B, n_actions)`` (continuous actions: at the fixed box points)."""
        return self.q_net(self.scale(obs))

    def set_training_mode(self, mode: bool) -> None:
        """No dropout or batch-norm here: skip SB3's walk over the modules (a hot path)."""
        self.training = mode

    def _predict(self, observation: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Greedy actions; ``self.forward`` without ``nn.Module.__call__`` (no hooks here, a hot path)."""
        if self.q_net.continuous:  # scaled to [-1, 1]; predict() unscales (squash_output)
            return self.q_net.greedy(self.scale(observation))[0]
        return self.q_net.forward(self.scale(observation)).argmax(dim=1).reshape(-1)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict``, minus its generic conversions for a flat observation or a batch of them.

        Called at every environment step; SB3's version (dict and image handling, copies, module
        hooks) cost more than the Q-function itself. Anything else goes to SB3's version.
        """
        shape = self.observation_space.shape
        if not (isinstance(observation, np.ndarray) and observation.ndim in (1, 2) and observation.shape[-1:] == shape
                and self.device.type == "cpu" and not self.q_net.continuous):  # continuous: SB3 unscales the action
            return super().predict(observation, state, episode_start, deterministic)
        self.training = False
        with torch.no_grad():
            actions = self._predict(torch.as_tensor(observation.reshape(-1, shape[0])), deterministic)
        return actions.numpy() if observation.ndim == 2 else actions.numpy().reshape(()), state

    @torch.no_grad()
    def refresh_snapshot(self) -> None:
        """Policy improvement: the greedy policy becomes greedy w.r.t. the current Q."""
        self.q_net_target.load_state_dict(self.q_net.state_dict())

    @torch.no_grad()
    def keep_components(self, keep: torch.Tensor) -> None:
        """Prune the live Q-function and its optimizer state (the snapshot keeps its own until refreshed)."""
        slice_optimizer_state(self.optimizer, self.q_net.component_parameters(), keep)
        self.q_net.keep_components(keep)

    @torch.no_grad()
    def add_components(self, means: torch.Tensor, xi: torch.Tensor) -> None:
        """Births: new components in the live Q-function, with zero optimizer moments."""
        n_before = self.q_net.n_components
        self.q_net.add_components(means, xi)
        extend_optimizer_state(self.optimizer, self.q_net.component_parameters(), n_before, means.shape[0])

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        n_before = self.q_net.n_components
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        if self.q_net.n_components != n_before:
            self.optimizer.state.clear()  # stale moments of another size; a saved optimizer state loads next
        return result

    def num_parameters(self) -> int:
        return self.q_net.num_parameters()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        del data["normalize_images"]  # always False here, not a constructor argument
        data.update(
            obs_bounds=self.obs_bounds,
            optimizer_class=optimizer_name(self.optimizer_class),
            optimizer_kwargs=self.optimizer_kwargs,
            **self.q_kwargs,
        )
        return data

    def save(self, path: str | pathlib.Path) -> None:
        """SB3's policy-only file, with the spaces as plain values so that :meth:`load` unpickles nothing."""
        data = self._get_constructor_parameters()
        data["observation_space"] = {"low": self.observation_space.low.tolist(), "high": self.observation_space.high.tolist(),
                                     "dtype": str(self.observation_space.dtype)}
        data["action_space"] = {"n": int(self.action_space.n), "start": int(self.action_space.start)}
        torch.save({"state_dict": self.state_dict(), "data": data}, path)

    @classmethod
    def load(cls, path: str | pathlib.Path, device: torch.device | str = "auto") -> GMMPolicy:  # type: ignore[override]
        """A policy written by :meth:`save`, read with ``torch.load(weights_only=True)`` (no code runs)."""
        device = get_device(device)
        try:
            saved = torch.load(path, map_location=device, weights_only=True)
        except pickle.UnpicklingError:
            raise ValueError(f"{path} holds pickled objects, not a policy saved by GMMPolicy.save; refused (unpickling can run any code)") from None
        data = dict(saved["data"])
        box, discrete = data.pop("observation_space"), data.pop("action_space")
        dtype = np.dtype(box["dtype"])
        data["observation_space"] = spaces.Box(np.asarray(box["low"], dtype), np.asarray(box["high"], dtype), dtype=dtype)
        data["action_space"] = spaces.Discrete(discrete["n"], start=discrete["start"])
        model = cls(**data)
        model.load_state_dict(saved["state_dict"])
        return model.to(device)
