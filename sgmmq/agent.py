"""SGMMQ: online policy iteration with a sparse GMM Q-function, as a Stable-Baselines3 algorithm.

At every environment step (SPEC section 2):
  1. act epsilon-greedily w.r.t. the current Q;
  2. append the transition to a short streaming window (SB3's circular ``ReplayBuffer`` of size
     ``window_size``; a large window is the off-policy replay variant);
  3. take one Riemannian gradient step on ``(Q(s, a) - y)^2 + lambda/2 (|u|^2 + |v|^2)`` over a
     mini-batch from the window, ``y = r + gamma (1 - terminated) Q_eval(s', pi(s'))``;
every ``target_update_interval`` steps the snapshot that defines ``pi`` is refreshed (policy
improvement), and every ``prune_interval`` steps components with ``|xi_k| < prune_threshold``
are removed.
"""

from __future__ import annotations

import functools
import inspect
import io
import pathlib
import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from sgmmq import modelfile, registry
from sgmmq.mixture import MEAN_INITS, GMMQFunction, mixture_gradients, mixture_terms
from sgmmq.policies import GMMPolicy, check_spaces
from sgmmq.pool import POOLS, birth_sites, support
from sgmmq.sparsity import Pruner, hadamard_penalty

SelfSGMMQ = TypeVar("SelfSGMMQ", bound="SGMMQ")

TARGETS = ("snapshot", "residual")
LOSSES = ("squared", "huber")
FORMAT_VERSION = modelfile.FORMAT_VERSION  # 2: every pickled field also saved as plain JSON (sgmmq.modelfile)
PLAIN_KEY = modelfile.PLAIN_KEY


def _with_task_defaults(init: Any) -> Any:
    """Every argument the caller did not pass takes the task's registered value (sgmmq.registry), if
    it has one, before the signature's default: explicit arguments always win. "Not passed" is read
    from the call itself (``Signature.bind``), so passing a value equal to the default still counts."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        given = signature.bind(self, *args, **kwargs).arguments
        env_id = _env_id(given.get("env"))
        for name, value in registry.task_hyperparameters(env_id).items():
            if name not in signature.parameters or name in ("self", "policy", "env"):
                raise ValueError(f"the registered defaults of {env_id} set {name!r}, which is not an SGMMQ argument")
            if name not in given:
                kwargs[name] = value  # a copy: the model may change it (policy_kwargs)
        init(self, *args, **kwargs)

    return wrapper


class SGMMQ(OffPolicyAlgorithm):
    """Online policy iteration with a sparse Gaussian-mixture-model Q-function (Vu & Slavakis).

    :param policy: ``"GMMPolicy"`` (or the class).
    :param env: the environment (a Gymnasium id, env or VecEnv) with a Discrete or a bounded Box
        action space (continuous actions: the greedy action is the mixture's maximizer over the box).
    :param learning_rate: step size of the Riemannian optimizer (float or schedule of the remaining
        progress). Default: linear decay 1e-2 -> 1e-3 over training, which kept the final greedy
        policy stable where a constant 1e-2 let it degrade late (CartPole seed 2: 212 -> 500).
    :param window_size: transitions kept, the most recent ones (a streaming window). Make it
        large (e.g. 50_000) for the off-policy replay-memory variant.
    :param learning_starts: steps of uniform-random actions before the first update.
    :param batch_size: mini-batch drawn from the window per gradient step.
    :param gamma: discount factor.
    :param train_freq: update every ``train_freq`` environment steps.
    :param gradient_steps: gradient steps per update.
    :param target: ``"snapshot"``: ``y`` uses the frozen snapshot, no gradient through it;
        ``"residual"``: the full Bellman residual, ``Q_eval`` is the current Q with gradient
        through both terms, ``pi`` still greedy w.r.t. the snapshot.
    :param target_update_interval: environment steps between snapshot refreshes (policy improvement).
    :param exploration_fraction: fraction of training over which epsilon decays linearly.
    :param exploration_initial_eps: initial epsilon.
    :param exploration_final_eps: final epsilon.
    :param exploration_noise: continuous actions only: standard deviation (in the scaled box, width 2)
        of Gaussian noise added to the greedy action when it is not replaced by a uniform one.
        Default 0: epsilon-uniform only, the same exploration as the discrete form.
    :param sparsity_lambda: strength of the Hadamard penalty (the L1 strength on ``xi``).
    :param prune_threshold: components with ``|xi_k|`` below this are candidates for removal.
    :param prune_interval: gradient steps between pruning checks.
    :param prune_patience: consecutive checks below threshold before a component is removed.
    :param mean_init: ``"uniform"`` (means spread over the box) or ``"data"`` (means set to the
        first visited ``z``'s at the first update).
    :param pool: ``"fixed"`` (the papers' pool: it only shrinks) or ``"adaptive"`` (idle components
        move, and free slots up to ``n_components`` fill, where the Bellman residual is largest;
        see :mod:`sgmmq.pool`).
    :param prune_min_support: activation mass, over ``pool_sample_size`` window points, a component
        needs before the pruning rule judges it (0: every component is judged, as in the papers).
    :param pool_sample_size: window points drawn at each pruning check for support and births.
    :param max_births: components born or moved per pruning check (``pool="adaptive"``).
    :param birth_gain: a newborn's weight is ``-birth_gain`` times the residual where it is born.
    :param birth_threshold: only points whose residual exceeds this many times the sample's RMS
        residual get a component.
    :param loss: ``"squared"`` (the papers') or ``"huber"`` (smooth L1 with delta 1, as SB3's DQN).
    :param double_q: bootstrap with the snapshot's value of the current Q's greedy action (double
        Q-learning) instead of the snapshot's own maximum.
    :param n_steps: n-step returns (SB3's ``NStepReplayBuffer``); 1 is the one-step target.
    :param policy_kwargs: for :class:`GMMPolicy` (``n_components``, ``action_encoding``,
        ``normalized``, ``offset``, ``init_std``, ``std_bounds``, ``factor_init``,
        ``factor_signs``, ``precision``, ``optimizer_class``, ``optimizer_kwargs``, ``obs_bounds``; continuous
        actions: ``argmax_steps``, the polish steps of the greedy argmax).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"GMMPolicy": GMMPolicy, "MlpPolicy": GMMPolicy}
    policy: GMMPolicy

    @_with_task_defaults
    def __init__(
        self,
        policy: str | type[GMMPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = LinearSchedule(1e-2, 1e-3, 1.0),
        window_size: int = 1_000,
        learning_starts: int = 500,
        batch_size: int = 32,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        target: str = "snapshot",
        target_update_interval: int = 200,
        exploration_fraction: float = 0.2,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.02,
        exploration_noise: float = 0.0,
        sparsity_lambda: float = 1e-3,
        prune_threshold: float = 1e-2,
        prune_interval: int = 1_000,
        prune_patience: int = 3,
        mean_init: str = "uniform",
        pool: str = "fixed",
        prune_min_support: float = 0.0,
        pool_sample_size: int = 256,
        max_births: int = 4,
        birth_gain: float = 0.5,
        birth_threshold: float = 2.0,
        loss: str = "squared",
        double_q: bool = False,
        n_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "cpu",
        _init_setup_model: bool = True,
    ) -> None:
        _check_hyperparameters(locals())
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size=window_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=1.0,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=None,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            supported_action_spaces=None,  # checked in _setup_model with a clearer message
            support_multi_env=True,
            n_steps=n_steps,
        )
        self.target = target
        self.target_update_interval = target_update_interval
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.exploration_noise = exploration_noise
        self.sparsity_lambda = sparsity_lambda
        self.prune_threshold = prune_threshold
        self.prune_interval = prune_interval
        self.prune_patience = prune_patience
        self.mean_init = mean_init
        self.pool = pool
        self.prune_min_support = prune_min_support
        self.pool_sample_size = pool_sample_size
        self.max_births = max_births
        self.birth_gain = birth_gain
        self.birth_threshold = birth_threshold
        self.loss = loss
        self.double_q = double_q
        self.pool_events: list[tuple[int, int, int, int]] = []  # (timestep, born, moved, live)
        self.exploration_rate = 0.0
        self.prune_events: list[tuple[int, int, int]] = []  # (timestep, removed, live)
        self.sgmmq_format_version = FORMAT_VERSION
        self._n_calls = 0
        self._means_initialized = mean_init != "data"
        if _init_setup_model:
            self._setup_model()

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> Any:
        """Check the spaces as the user gave them, before SB3 transposes an image space (its error
        would show the transposed shape) or asserts on an unbounded Box."""
        check_spaces(env.observation_space, env.action_space)
        return OffPolicyAlgorithm._wrap_env(env, verbose, monitor_wrapper)

    @property
    def window_size(self) -> int:
        return self.buffer_size

    def _setup_model(self) -> None:
        check_spaces(self.observation_space, self.action_space)
        if self.exploration_noise > 0 and not isinstance(self.action_space, spaces.Box):
            raise ValueError(f"exploration_noise is for Box (continuous) actions, got {self.action_space}; use epsilon")
        if "obs_bounds" not in self.policy_kwargs and self.env is not None:
            self.policy_kwargs = {**self.policy_kwargs, "obs_bounds": _declared_box(self.env, self.observation_space)}
        super()._setup_model()
        if getattr(self, "pruner", None) is None:  # a loaded model brings its pruner (strike counts) along
            self.pruner = Pruner(self.prune_threshold, self.prune_patience)
        self.exploration_schedule = LinearSchedule(
            self.exploration_initial_eps, self.exploration_final_eps, self.exploration_fraction
        )

    def _on_step(self) -> None:
        self._n_calls += 1
        if self._n_calls % max(self.target_update_interval // self.n_envs, 1) == 0:
            self.policy.refresh_snapshot()
        self.exploration_rate = self.exploration_schedule(self._current_progress_remaining)
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    def train(self, gradient_steps: int, batch_size: int = 32) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        q_net = self.policy.q_net
        if not self._means_initialized:
            self._init_means_from_window()
        losses = []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            # the window holds only finite observations (checked in _store_transition)
            states = self.policy.scale(data.observations, check=False)
            actions = self._actions(data)
            if self.target == "snapshot":  # the target is a constant: the gradient in closed form, no autograd graph
                td_loss = closed_form_gradients(q_net, q_net.encode(states, actions), self._td_target(data), self.loss,
                                                self.sparsity_lambda)
            else:  # full Bellman residual: gradient flows through Q(s', pi(s')) too
                next_states = self.policy.scale(data.next_observations, check=False)
                next_actions = self.policy.q_net_target.greedy(next_states)[0]
                both = q_net.q_z(torch.cat([q_net.encode(states, actions), q_net.encode(next_states, next_actions)]))
                q_sa, q_next = both.split(states.shape[0])
                td_error = q_sa - data.rewards.reshape(-1) - self._discounts(data) * (1.0 - data.dones.reshape(-1)) * q_next
                td_loss = temporal_difference_loss(td_error, self.loss)
                self.policy.optimizer.zero_grad(set_to_none=True)
                (td_loss + hadamard_penalty(q_net.u, q_net.v, self.sparsity_lambda)).backward()
            self.policy.optimizer.step()
            losses.append(td_loss.item())
            self._n_updates += 1
            if self._n_updates % self.prune_interval == 0:
                self._prune_and_log()
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))

    def _actions(self, data: Any) -> torch.Tensor:
        """The window's actions as ``encode`` takes them: indices, or scaled continuous actions."""
        return data.actions if self.policy.continuous else data.actions.long().reshape(-1)

    def _discounts(self, data: Any) -> Any:
        """``gamma``, or ``gamma^k`` per sample for n-step returns (k steps until the episode ended)."""
        return data.discounts.reshape(-1) if data.discounts is not None else self.gamma

    def _td_target(self, data: Any) -> torch.Tensor:
        """:func:`td_target` on a window sample."""
        next_states = self.policy.scale(data.next_observations, check=False)
        return td_target(self.policy.q_net_target, next_states, data.rewards.reshape(-1), data.dones.reshape(-1),
                         self._discounts(data), q_net=self.policy.q_net if self.double_q else None)

    def _prune_and_log(self) -> None:
        q_net = self.policy.q_net
        judged = born = moved = None
        if self.prune_min_support > 0 or self.pool == "adaptive":
            with torch.no_grad():
                data = self.replay_buffer.sample(self.pool_sample_size, env=self._vec_normalize_env)
                z = q_net.encode(self.policy.scale(data.observations, check=False), self._actions(data))
                judged = support(q_net.bumps(z)) >= self.prune_min_support
        keep = self.pruner.check(q_net.xi, judged)
        if keep is not None:
            removed = int((~keep).sum())
            self.policy.keep_components(keep)
            judged = judged[keep] if judged is not None else None
            self.prune_events.append((self.num_timesteps, removed, q_net.n_components))
            if self.verbose >= 1:
                print(f"step {self.num_timesteps}: pruned {removed} components, {q_net.n_components} live")
        if self.pool == "adaptive":
            born, moved = self._births(data, z, judged)
        eigvals = torch.linalg.eigvalsh(q_net.precisions.detach())
        self.logger.record("train/live_components", q_net.n_components)
        self.logger.record("train/n_parameters", q_net.num_parameters())
        self.logger.record("train/precision_eig_min", float(eigvals.min()))
        self.logger.record("train/precision_eig_max", float(eigvals.max()))
        self.logger.record("train/abs_xi_max", float(q_net.xi.detach().abs().max()))
        if judged is not None:
            self.logger.record("train/idle_components", int((~judged).sum()))

    @torch.no_grad()
    def _births(self, data: Any, z: torch.Tensor, judged: torch.Tensor) -> tuple[int, int]:
        """Move idle components, and fill free slots, at the worst-fit window points (``pool="adaptive"``)."""
        q_net = self.policy.q_net
        idle = int((~judged).sum())
        free = q_net.capacity - q_net.n_components
        residual = q_net.q_z(z) - self._td_target(data)
        sites = birth_sites(z, residual, min(self.max_births, idle + max(free, 0)), q_net.init_std, self.birth_threshold)
        if len(sites) == 0:
            return 0, 0
        moved = min(idle, max(len(sites) - max(free, 0), 0))
        if moved:  # the idle components go first to make room: they are moved, not judged
            keep = torch.ones(q_net.n_components, dtype=torch.bool)
            keep[torch.nonzero(~judged).squeeze(1)[:moved]] = False
            self.policy.keep_components(keep)
            self.pruner.keep_only(keep)
        self.policy.add_components(z[sites], -self.birth_gain * residual[sites])
        self.pruner.extend(len(sites))
        born = len(sites) - moved
        self.pool_events.append((self.num_timesteps, born, moved, q_net.n_components))
        if self.verbose >= 1:
            print(f"step {self.num_timesteps}: {born} components born, {moved} moved, {q_net.n_components} live")
        return born, moved

    @torch.no_grad()
    def _init_means_from_window(self) -> None:
        """``mean_init="data"``: put the means on visited (state, action) points."""
        q_net = self.policy.q_net
        data = self.replay_buffer.sample(q_net.n_components, env=self._vec_normalize_env)
        z = q_net.encode(self.policy.scale(data.observations), self._actions(data))
        q_net.means.copy_(z)
        self.policy.refresh_snapshot()
        self._means_initialized = True

    def _store_transition(self, replay_buffer, buffer_action, new_obs, reward, dones, infos) -> None:  # type: ignore[override]
        if not (np.all(np.isfinite(new_obs)) and np.all(np.isfinite(reward))):
            raise ValueError(f"The environment returned a NaN or infinite observation or reward: obs={new_obs}, reward={reward}")
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Greedy action, or with probability epsilon (only when not deterministic) a random one;
        continuous greedy actions get ``exploration_noise`` when not deterministic."""
        if not deterministic and np.random.rand() < self.exploration_rate:
            if self.policy.is_vectorized_observation(observation):
                action = np.array([self.action_space.sample() for _ in range(np.asarray(observation).shape[0])])
            else:
                action = np.array(self.action_space.sample())
            return action, state
        action, state = self.policy.predict(observation, state, episode_start, deterministic)
        if not deterministic and self.exploration_noise > 0 and isinstance(self.action_space, spaces.Box):
            low, high = self.action_space.low, self.action_space.high
            noise = np.random.normal(0.0, self.exploration_noise, size=np.shape(action)) * (high - low) / 2
            action = np.clip(action + noise, low, high).astype(self.action_space.dtype)
        return action, state

    def learn(
        self: SelfSGMMQ,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "SGMMQ",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSGMMQ:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def num_parameters(self) -> int:
        """Live inference-time parameters (SPEC section 3): components x (1 + D + D(D+1)/2) + offset."""
        return self.policy.num_parameters()

    def num_training_parameters(self) -> int:
        """Numbers the optimizer updates (``u`` and ``v`` counted separately)."""
        return self.policy.q_net.num_training_parameters()

    @property
    def live_components(self) -> int:
        return self.policy.q_net.n_components

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "exploration_schedule"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    def set_parameters(self, *args: Any, **kwargs: Any) -> None:
        super().set_parameters(*args, **kwargs)
        # torch's Optimizer.load_state_dict turns geoopt's integer ``step`` into a float tensor,
        # which moves Adam's bias correction in the last bits: resumed training would drift.
        for state in self.policy.optimizer.state.values():
            if isinstance(state.get("step"), torch.Tensor) and state["step"].dim() == 0:  # sgmmq.optim's are per component
                state["step"] = int(state["step"].item())

    def save(self, path: str | pathlib.Path | io.BufferedIOBase, exclude: Any = None, include: Any = None) -> None:
        """SB3's zip, plus a plain-JSON copy of every field SB3 pickles (read by the safe loader)."""
        self.sgmmq_format_version = FORMAT_VERSION
        self.sgmmq_plain = modelfile.plain_fields(self)
        try:
            super().save(path, exclude=exclude, include=include)
        finally:
            del self.sgmmq_plain

    @classmethod
    def load(  # type: ignore[override]
        cls,
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: torch.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        trusted: bool = False,
        **kwargs: Any,
    ) -> SGMMQ:
        """SB3's ``load``, without unpickling anything from the file unless ``trusted=True``.

        A shared model file can carry code in a pickle; by default each pickled field is rebuilt
        from plain values instead (:mod:`sgmmq.modelfile`) and tensors load ``weights_only``. A
        file that cannot be read that way raises a ValueError naming the field; ``trusted=True``
        unpickles it as SB3 does, for files from a source you trust.
        """
        raw, name = modelfile.read_archive(path)
        data = modelfile.read_data(raw, name)
        version = modelfile.check_version(data, name)
        objects = {PLAIN_KEY: None}
        if not trusted:
            modelfile.check_tensors(raw, name)
            objects = modelfile.safe_objects(data, version, name, given=custom_objects or {})
        objects.update(custom_objects or {})
        with warnings.catch_warnings():
            # SB3 warns that n_steps is "ignored" when the saved replay_buffer_class is NStepReplayBuffer:
            # the saved replay_buffer_kwargs already carry n_steps and gamma, so the loaded buffer is n-step.
            warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored because a custom `replay_buffer_class`")
            model = super().load(io.BytesIO(raw), env=env, device=device, custom_objects=objects,
                                 print_system_info=print_system_info, force_reset=force_reset, **kwargs)
        model.__dict__.pop(PLAIN_KEY, None)
        return model


@torch.no_grad()
def td_target(snapshot: GMMQFunction, next_states: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor,
              discounts: Any, q_net: GMMQFunction | None = None) -> torch.Tensor:
    """``y = r + gamma (1 - terminated) Q_snapshot(s', pi(s'))``, ``pi`` greedy w.r.t. the snapshot
    (or, given ``q_net``: double Q-learning, w.r.t. the current Q). Shared by :class:`SGMMQ` and
    :mod:`sgmmq.batched` (stacked agents: a leading seed axis on everything)."""
    if q_net is not None and q_net.continuous:
        next_value = snapshot.q_sa(next_states, q_net.greedy(next_states)[0])
    elif q_net is not None:  # as before continuous actions, to the bit
        next_value = snapshot(next_states).gather(-1, q_net(next_states).argmax(dim=-1, keepdim=True)).squeeze(-1)
    else:
        next_value = snapshot.greedy(next_states)[1]
    return rewards + discounts * (1.0 - terminated) * next_value


def temporal_difference_loss(td_error: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean of the squared (or Huber) TD errors over the mini-batch, the last axis: one value per
    stacked agent in :mod:`sgmmq.batched`, a scalar for :class:`SGMMQ`."""
    if loss == "huber" and td_error.dim() > 1:  # stacked agents: each agent's own mean
        return F.smooth_l1_loss(td_error, torch.zeros_like(td_error), reduction="none").mean(-1)
    if loss == "huber":  # the single agent's, as before to the bit
        return F.smooth_l1_loss(td_error, torch.zeros_like(td_error))
    return td_error.square().mean(-1)


@torch.no_grad()
def closed_form_gradients(q_net: GMMQFunction, z: torch.Tensor, target: torch.Tensor, loss: str, sparsity_lambda: float) -> torch.Tensor:
    """Set ``.grad`` of every parameter of ``q_net`` to the gradient of the TD loss of ``Q(z)`` against the
    constant ``target`` plus the Hadamard penalty (:func:`td_gradients`); returns the TD loss (one value per
    stacked agent). Shared by :class:`SGMMQ` and :mod:`sgmmq.batched`."""
    td_loss, *grads = td_gradients(q_net, z, target, loss, sparsity_lambda)
    set_gradients(q_net, grads)
    return td_loss


def set_gradients(q_net: GMMQFunction, grads: Any) -> None:
    """``(dL/d euclidean, dL/d offset, dL/d precisions)`` into the parameters' ``.grad``."""
    q_net.euclidean.grad, offset_grad, q_net.precisions.grad = grads
    if q_net.offset is not None:
        q_net.offset.grad = offset_grad


def td_gradients(q_net: GMMQFunction, z: torch.Tensor, target: torch.Tensor, loss: str, sparsity_lambda: float) -> tuple[torch.Tensor, ...]:
    """``(TD loss, dL/d euclidean, dL/d offset, dL/d precisions)`` of the TD loss of ``Q(z)`` against the constant
    ``target`` plus the Hadamard penalty, a pure function of its inputs (no ``.grad`` written, no autograd graph).

    The same gradient as ``(temporal_difference_loss(q_net.q_z(z) - target, loss) + hadamard_penalty(...)).backward()``
    (tested): ``dL/dq`` is ``2 (Q - y) / B`` (squared) or ``clip(Q - y, -1, 1) / B`` (Huber),
    :func:`~sgmmq.mixture.mixture_gradients` carries it to the parameters, and the penalty adds
    ``lambda u`` and ``lambda v``.
    """
    features, bumps, q = mixture_terms(z, q_net.euclidean, q_net.offset_or_zero(), q_net.precisions, q_net.normalized)
    td_error = q - target
    td_loss = temporal_difference_loss(td_error, loss)
    grad_q = (td_error.clamp(-1.0, 1.0) if loss == "huber" else 2.0 * td_error) / td_error.shape[-1]
    _, grad_euclidean, grad_offset, grad_precisions = mixture_gradients(
        grad_q, z, q_net.euclidean, q_net.precisions, features, bumps, q_net.normalized, q_net.precision == "diagonal")
    grad_euclidean[..., :2] += sparsity_lambda * q_net.euclidean[..., :2]  # d/d(u, v) of lambda/2 (|u|^2 + |v|^2)
    return td_loss, grad_euclidean, grad_offset, grad_precisions


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_hyperparameters(args: dict[str, Any]) -> None:
    """Raise a ValueError naming the first nonsensical hyperparameter (wrong type or out of range).

    Each check is a function of the arguments, run in order, so a wrong type is reported as such
    instead of failing inside a later comparison (``"0.01" > 0`` is a TypeError without a name)."""

    def integer(name: str, minimum: int) -> tuple[str, Any, str]:
        return name, lambda v: _is_int(v) and v >= minimum, f"an integer >= {minimum}"

    def real(name: str, low: float, high: float = float("inf")) -> tuple[str, Any, str]:
        span = f">= {low}" if high == float("inf") else f"in [{low}, {high}]"
        return name, lambda v: _is_real(v) and low <= v <= high, f"a number {span}"

    def choice(name: str, options: tuple[str, ...]) -> tuple[str, Any, str]:
        return name, lambda v: isinstance(v, str) and v in options, f"one of {options}"

    checks = [
        ("learning_rate", lambda v: callable(v) or (_is_real(v) and v > 0), "a number > 0 or a schedule (a callable)"),
        integer("batch_size", 1),
        integer("window_size", 1),
        ("window_size", lambda v: v >= args["batch_size"], "at least batch_size (the mini-batch is drawn from the window)"),
        integer("learning_starts", 0),
        real("gamma", 0.0, 1.0),
        ("train_freq", lambda v: (_is_int(v) and v >= 1) or (isinstance(v, (tuple, list)) and len(v) == 2 and _is_int(v[0])
                                                           and v[0] >= 1 and v[1] in ("step", "episode")),
         "an integer >= 1 or a pair (n, 'step' or 'episode')"),
        ("gradient_steps", lambda v: _is_int(v) and (v >= 1 or v == -1), "an integer >= 1, or -1 (as many as environment steps)"),
        choice("target", TARGETS),
        integer("target_update_interval", 1),
        real("exploration_fraction", 0.0, 1.0),
        real("exploration_initial_eps", 0.0, 1.0),
        real("exploration_final_eps", 0.0, 1.0),
        real("exploration_noise", 0.0),
        real("sparsity_lambda", 0.0),
        real("prune_threshold", 0.0),
        integer("prune_interval", 1),
        integer("prune_patience", 1),
        choice("mean_init", MEAN_INITS),
        choice("pool", POOLS),
        real("prune_min_support", 0.0),
        integer("pool_sample_size", 1),
        integer("max_births", 0),
        real("birth_gain", 0.0),
        real("birth_threshold", 0.0),
        choice("loss", LOSSES),
        ("double_q", lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
        integer("n_steps", 1),
        ("policy_kwargs", lambda v: v is None or isinstance(v, dict), "a dict of GMMPolicy arguments or None"),
    ]
    for name, ok, expected in checks:
        if not ok(args[name]):
            raise ValueError(f"{name} must be {expected}, got {name}={args[name]!r}")


def _env_id(env: Any) -> str | None:
    """The Gymnasium id of an env given as an id, an env or a VecEnv (None when it has none)."""
    if env is None or isinstance(env, str):
        return env
    try:
        spec = env.get_attr("spec")[0] if isinstance(env, VecEnv) else env.spec
    except Exception:  # a VecEnv that cannot reach its env's spec
        return None
    return getattr(spec, "id", None)


def _declared_box(env: Any, observation_space: spaces.Space) -> Any:
    """The task's declared observation box when the env's id is registered (sgmmq.registry), else None."""
    box = registry.declared_box(_env_id(env))
    if box is None or len(box[0]) != observation_space.shape[0]:
        return None
    return [list(box[0]), list(box[1])]
