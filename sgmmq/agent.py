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

import io
import json
import pathlib
import zipfile
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import LinearSchedule

from sgmmq.envs import TASKS
from sgmmq.mixture import MEAN_INITS
from sgmmq.policies import GMMPolicy, check_spaces
from sgmmq.sparsity import Pruner, hadamard_penalty

SelfSGMMQ = TypeVar("SelfSGMMQ", bound="SGMMQ")

TARGETS = ("snapshot", "residual")
FORMAT_VERSION = 1


class SGMMQ(OffPolicyAlgorithm):
    """Online policy iteration with a sparse Gaussian-mixture-model Q-function (Vu & Slavakis).

    :param policy: ``"GMMPolicy"`` (or the class).
    :param env: the environment (a Gymnasium id, env or VecEnv) with a Discrete action space.
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
    :param sparsity_lambda: strength of the Hadamard penalty (the L1 strength on ``xi``).
    :param prune_threshold: components with ``|xi_k|`` below this are candidates for removal.
    :param prune_interval: gradient steps between pruning checks.
    :param prune_patience: consecutive checks below threshold before a component is removed.
    :param mean_init: ``"uniform"`` (means spread over the box) or ``"data"`` (means set to the
        first visited ``z``'s at the first update).
    :param policy_kwargs: for :class:`GMMPolicy` (``n_components``, ``action_encoding``,
        ``normalized``, ``offset``, ``init_std``, ``std_bounds``, ``factor_init``,
        ``factor_signs``, ``optimizer_class``, ``optimizer_kwargs``, ``obs_bounds``).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"GMMPolicy": GMMPolicy, "MlpPolicy": GMMPolicy}
    policy: GMMPolicy

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
        sparsity_lambda: float = 1e-3,
        prune_threshold: float = 1e-2,
        prune_interval: int = 1_000,
        prune_patience: int = 3,
        mean_init: str = "uniform",
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
        )
        self.target = target
        self.target_update_interval = target_update_interval
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.sparsity_lambda = sparsity_lambda
        self.prune_threshold = prune_threshold
        self.prune_interval = prune_interval
        self.prune_patience = prune_patience
        self.mean_init = mean_init
        self.exploration_rate = 0.0
        self.prune_events: list[tuple[int, int, int]] = []  # (timestep, removed, live)
        self.sgmmq_format_version = FORMAT_VERSION
        self._n_calls = 0
        self._means_initialized = mean_init != "data"
        if _init_setup_model:
            self._setup_model()

    @property
    def window_size(self) -> int:
        return self.buffer_size

    def _setup_model(self) -> None:
        check_spaces(self.observation_space, self.action_space)
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
        q_net, snapshot = self.policy.q_net, self.policy.q_net_target
        if not self._means_initialized:
            self._init_means_from_window()
        losses = []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            # the window holds only finite observations (checked in _store_transition)
            states = self.policy.scale(data.observations, check=False)
            next_states = self.policy.scale(data.next_observations, check=False)
            actions = data.actions.long().reshape(-1)
            not_done = 1.0 - data.dones.reshape(-1)
            rewards = data.rewards.reshape(-1)
            with torch.no_grad():
                next_q_snapshot = snapshot(next_states)
            if self.target == "snapshot":
                td_target = rewards + self.gamma * not_done * next_q_snapshot.max(dim=1).values
                td_error = q_net.q_sa(states, actions) - td_target
            else:  # full Bellman residual: gradient flows through Q(s', pi(s')) too
                next_actions = next_q_snapshot.argmax(dim=1)
                both = q_net.q_z(torch.cat([q_net.encode(states, actions), q_net.encode(next_states, next_actions)]))
                q_sa, q_next = both.split(states.shape[0])
                td_error = q_sa - rewards - self.gamma * not_done * q_next
            td_loss = td_error.square().mean()
            loss = td_loss + hadamard_penalty(q_net.u, q_net.v, self.sparsity_lambda)
            self.policy.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.policy.optimizer.step()
            losses.append(td_loss.item())
            self._n_updates += 1
            if self._n_updates % self.prune_interval == 0:
                self._prune_and_log()
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))

    def _prune_and_log(self) -> None:
        q_net = self.policy.q_net
        keep = self.pruner.check(q_net.xi)
        if keep is not None:
            removed = int((~keep).sum())
            self.policy.keep_components(keep)
            self.prune_events.append((self.num_timesteps, removed, q_net.n_components))
            if self.verbose >= 1:
                print(f"step {self.num_timesteps}: pruned {removed} components, {q_net.n_components} live")
        eigvals = torch.linalg.eigvalsh(q_net.precisions.detach())
        self.logger.record("train/live_components", q_net.n_components)
        self.logger.record("train/n_parameters", q_net.num_parameters())
        self.logger.record("train/precision_eig_min", float(eigvals.min()))
        self.logger.record("train/precision_eig_max", float(eigvals.max()))
        self.logger.record("train/abs_xi_max", float(q_net.xi.detach().abs().max()))

    @torch.no_grad()
    def _init_means_from_window(self) -> None:
        """``mean_init="data"``: put the means on visited (state, action) points."""
        q_net = self.policy.q_net
        data = self.replay_buffer.sample(q_net.n_components, env=self._vec_normalize_env)
        z = q_net.encode(self.policy.scale(data.observations), data.actions.long().reshape(-1))
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
        """Greedy action, or with probability epsilon (only when not deterministic) a random one."""
        if not deterministic and np.random.rand() < self.exploration_rate:
            if self.policy.is_vectorized_observation(observation):
                action = np.array([self.action_space.sample() for _ in range(np.asarray(observation).shape[0])])
            else:
                action = np.array(self.action_space.sample())
            return action, state
        return self.policy.predict(observation, state, episode_start, deterministic)

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

    @classmethod
    def load(cls, path: str | pathlib.Path | io.BufferedIOBase, *args: Any, **kwargs: Any) -> SGMMQ:  # type: ignore[override]
        """SB3's ``load``, after checking the file is an SGMMQ save this version can read."""
        _check_save_file(path)
        return super().load(path, *args, **kwargs)


def _check_hyperparameters(args: dict[str, Any]) -> None:
    """Raise a ValueError naming the first nonsensical hyperparameter."""
    problems = [
        (not callable(args["learning_rate"]) and not args["learning_rate"] > 0, "learning_rate must be > 0"),
        (args["batch_size"] < 1, "batch_size must be >= 1"),
        (args["window_size"] < args["batch_size"], "window_size must be >= batch_size (the mini-batch is drawn from the window)"),
        (args["learning_starts"] < 0, "learning_starts must be >= 0"),
        (not 0.0 <= args["gamma"] <= 1.0, "gamma must be in [0, 1]"),
        (args["target"] not in TARGETS, f"target must be one of {TARGETS}"),
        (args["target_update_interval"] < 1, "target_update_interval must be >= 1"),
        (not 0.0 <= args["exploration_fraction"] <= 1.0, "exploration_fraction must be in [0, 1]"),
        (not 0.0 <= args["exploration_initial_eps"] <= 1.0, "exploration_initial_eps must be in [0, 1]"),
        (not 0.0 <= args["exploration_final_eps"] <= 1.0, "exploration_final_eps must be in [0, 1]"),
        (args["sparsity_lambda"] < 0, "sparsity_lambda must be >= 0"),
        (args["prune_threshold"] < 0, "prune_threshold must be >= 0"),
        (args["prune_interval"] < 1, "prune_interval must be >= 1"),
        (args["prune_patience"] < 1, "prune_patience must be >= 1"),
        (args["mean_init"] not in MEAN_INITS, f"mean_init must be one of {MEAN_INITS}"),
    ]
    for bad, message in problems:
        if bad:
            name = message.split()[0]
            raise ValueError(f"{message}, got {name}={args[name]!r}")


def _declared_box(env: Any, observation_space: spaces.Space) -> Any:
    """The task's declared observation box when the env is one of sgmmq.envs' tasks, else None."""
    try:
        spec = env.get_attr("spec")[0]
    except Exception:  # a VecEnv that cannot reach its env's spec
        return None
    task = TASKS.get(getattr(spec, "id", None))
    if task is None or len(task.obs_low) != observation_space.shape[0]:
        return None
    return [list(task.obs_low), list(task.obs_high)]


def _check_save_file(path: str | pathlib.Path | io.BufferedIOBase) -> None:
    if isinstance(path, (str, pathlib.Path)):
        path = pathlib.Path(path)
        if not path.exists() and path.with_suffix(".zip").exists():
            path = path.with_suffix(".zip")
        if not path.exists():
            raise FileNotFoundError(f"No saved model at {path}")
    position = path.tell() if isinstance(path, io.IOBase) else None
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an SB3/SGMMQ save file (not a zip archive; corrupt or truncated?)")
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a readable SB3 save file: {error}") from None
    if position is not None:
        path.seek(position)
    version = data.get("sgmmq_format_version")
    if version is None:
        policy = data.get("policy_class", {})
        origin = policy.get("__module__", "another algorithm") if isinstance(policy, dict) else "another algorithm"
        raise ValueError(f"{path} was not saved by SGMMQ (its policy comes from {origin}); load it with that algorithm")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} was saved in SGMMQ format version {version}; this sgmmq reads up to {FORMAT_VERSION}: upgrade sgmmq")
