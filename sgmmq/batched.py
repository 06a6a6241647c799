"""Many seeds in one process: S independent SGMMQ agents trained in lockstep.

A CartPole agent holds a few hundred numbers, so one agent's step is nearly all per-call overhead
(tensor dispatch, the optimizer's bookkeeping, the rollout loop). Stacking S agents on a leading
seed axis makes every one of those calls serve S agents:

- parameters ``euclidean (S, K, 2 + D)``, ``offset (S, 1)``, ``precisions (S, K, D, D)`` in one
  :class:`~sgmmq.mixture.GMMQFunction` (its math takes the seed axis first), updated by one
  :class:`~sgmmq.optim.FusedRiemannianAdam` step (``component_dims = 2``: the same steps as S
  separate optimizers);
- the loss is the sum over agents of each agent's SGMMQ loss, so each agent's gradient is its own:
  :meth:`GMMQFunction.encode`, :func:`sgmmq.agent.td_target` and :func:`sgmmq.agent.td_gradients`
  (the TD loss and the Hadamard penalty's gradient without an autograd graph) are the single agent's
  functions, called on the stack;
- the S environments are one Gymnasium vector env (CartPole-v1: gymnasium's numpy
  ``CartPoleVectorEnv``; other tasks: a ``SyncVectorEnv`` of the task's env), reset in the same
  step as an episode ends, so every step is a transition for every agent, as in SGMMQ;
- pruning is per agent (:class:`~sgmmq.sparsity.Pruner`, one per agent): a removed component
  gets ``u = v = 0`` and zero optimizer moments, so it adds exactly nothing to Q and never moves
  again; :meth:`BatchedSGMMQ.models` drops it when it writes each agent back as an ``SGMMQ``.

Each agent starts from exactly the parameters ``SGMMQ(seed=s)`` starts from (it is built by
:func:`sgmmq.runs.build_model`, the same defaults and per-task settings) and follows SGMMQ's step
order: act (uniformly before ``learning_starts``, then epsilon-greedily), store the transition in
its own window, refresh its snapshot every ``target_update_interval`` steps, then one gradient
step with the scheduled learning rate, and a pruning check every ``prune_interval`` updates.
Options beyond the defaults, each tested equal to the single agent's for S = 1 and S = 3:
``mean_init="data"`` (every agent's means on ``K`` of its own window points at the first update,
then its snapshot refreshed), ``double_q=True`` (:func:`~sgmmq.agent.td_target` on the stack),
``loss="huber"``, ``n_steps > 1`` (:func:`n_step_sample`: SB3's ``NStepReplayBuffer`` arithmetic on the stacked windows,
which keep each step's ``truncated`` flag for it), ``policy_kwargs=dict(precision="diagonal")``,
any ``window_size`` (the windows are ``S x window_size`` arrays), and ``continuous=True`` (a Box-action
task's native actions: the greedy argmax of :meth:`~sgmmq.mixture.GMMQFunction.greedy` on the stack,
epsilon-uniform exploration over the box and ``exploration_noise`` on the greedy actions, actions stored scaled
to ``[-1, 1]`` as SB3 stores them).
Refused by name (:data:`SUPPORTED`): ``pool="adaptive"``, ``target="residual"``, ``prune_min_support > 0``,
geoopt's own optimizers.
Each agent's randomness is its own, so agent ``s``'s run depends only on ``s`` and the hyperparameters,
never on the other seeds in the batch (a seed redone in another batch repeats its result bit for bit):
its env is seeded with ``s`` (each sub-env keeps its own generator for every later reset, as a lone
``gym.make(...).reset(seed=s)`` env does), and :func:`agent_rng` gives it one generator for its
exploration, warm-up actions, mini-batch indices and data mean init. Agent ``s`` still does not replay
the exact trajectory of a single ``SGMMQ`` run with seed ``s`` (SB3 draws from numpy's global state).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils import seeding

from sgmmq.agent import SGMMQ, set_gradients, td_gradients, td_target
from sgmmq.optim import FusedRiemannianAdam, FusedRiemannianSGD

# options the batched trainer follows; any other value is refused by name
SUPPORTED = {
    "target": ("snapshot",),
    "loss": ("squared", "huber"),
    "pool": ("fixed",),
    "mean_init": ("uniform", "data"),
    "double_q": (False, True),
    "prune_min_support": (0, 0.0),
}
REFUSED_KEYS = ("replay_buffer_class", "replay_buffer_kwargs", "env", "seed", "policy")
# tells an agent's generator apart from its env's, which gymnasium seeds with the bare seed
AGENT_STREAM = 17


def agent_rng(seed: int) -> np.random.Generator:
    """Agent ``seed``'s own generator (exploration, warm-up actions, mini-batch indices, data mean init):
    a function of its seed alone, so what the agent draws does not depend on the seeds batched with it."""
    return np.random.default_rng([seed, AGENT_STREAM])


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"0,3,5-7"`` -> a list of distinct non-negative seeds, in the given order."""
    seeds: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if match is None:
            raise ValueError(f"--seeds takes integers and ranges such as 0-9 or 0,3,5-7, got {text!r}")
        first, last = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if last < first:
            raise ValueError(f"--seeds range {part.strip()!r} runs backwards")
        seeds.extend(range(first, last + 1))
    check_seeds(seeds)
    return seeds


def check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise ValueError("the batched trainer needs at least one seed, got none (S = 0)")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {seeds}")
    repeated = sorted({int(s) for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"seeds must be distinct (a repeated seed would train the same agent twice), repeated: {repeated}")
    return [int(s) for s in seeds]


def check_supported(model: SGMMQ) -> None:
    """Raise a ValueError naming an option the batched trainer does not follow (yet)."""
    for name, allowed in SUPPORTED.items():
        value = getattr(model, name)
        if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
            supported = " or ".join(f"{name}={option!r}" for option in dict.fromkeys(allowed))
            raise ValueError(f"{name}={value!r} is not supported by the batched trainer yet (it supports {supported}); "
                             "train those seeds one at a time with SGMMQ")
    if model.device.type != "cpu":
        raise ValueError(f"device={str(model.device)!r} is not supported by the batched trainer yet (CPU only)")
    freq = model.train_freq
    if freq.unit.value != "step":
        raise ValueError(f"train_freq={(freq.frequency, freq.unit.value)!r} is not supported by the batched trainer yet (steps only)")
    if model.gradient_steps < 1:
        raise ValueError(f"gradient_steps={model.gradient_steps} is not supported by the batched trainer yet (an integer >= 1)")
    if model.policy.optimizer_class not in (FusedRiemannianAdam, FusedRiemannianSGD):
        raise ValueError(f"optimizer_class={model.policy.optimizer_class.__name__} is not supported by the batched trainer "
                         "(it needs sgmmq.optim's fused optimizers: 'radam' or 'rsgd')")


class _SameStepCartPole(gym.vector.VectorEnv):
    """gymnasium's numpy ``CartPoleVectorEnv``, resetting an env in the step that ends its episode, each
    env from its own generator.

    gymnasium's version resets on the *next* call (its ``NEXT_STEP`` mode: that call ignores the
    action and returns no transition), which would cost an agent one environment step per episode.
    Here an ended episode's last observation goes to ``info["final_obs"]`` (``SAME_STEP``, as
    ``SyncVectorEnv`` does) and the new episode starts at once. gymnasium's version draws every
    env's start from one shared generator; here env ``i`` draws from its own, seeded as ``reset(seed=...)``
    seeds a ``SyncVectorEnv``'s (a list: one seed per env; an int: ``seed + i``), so env ``i`` starts every
    episode where a lone ``CartPole-v1`` reset with that seed would, whatever the other envs do.
    """

    def __init__(self, num_envs: int) -> None:
        self.env = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="vector_entry_point")
        inner = self.env.unwrapped
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = inner.single_observation_space, inner.single_action_space
        self.observation_space, self.action_space = inner.observation_space, inner.action_space
        self.env_rngs: list[np.random.Generator] = []

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None or isinstance(seed, (int, np.integer)):
            seed = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        if len(seed) != self.num_envs:
            raise ValueError(f"reset takes one seed per env ({self.num_envs}), got {len(seed)}")
        self.env.reset(options=options)  # bounds, step counts, no pending resets
        self.env_rngs = [seeding.np_random(None if s is None else int(s))[0] for s in seed]  # CartPoleEnv.reset(seed=s)'s
        inner = self.env.unwrapped
        for i in range(self.num_envs):
            self._start(i)
        return inner.state.T.astype(np.float32), {}

    def _start(self, i: int) -> None:
        """Env ``i``'s new episode, drawn from its own generator as ``CartPoleEnv.reset`` draws it."""
        inner = self.env.unwrapped
        inner.state[:, i] = self.env_rngs[i].uniform(low=inner.low, high=inner.high, size=(4,))
        inner.steps[i] = 0

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, rewards, terminated, truncated, _ = self.env.step(actions)
        done = terminated | truncated
        info: dict[str, Any] = {}
        if done.any():
            inner = self.env.unwrapped
            info = {"final_obs": obs.copy(), "_final_obs": done}
            for i in np.flatnonzero(done):
                self._start(i)
            inner.prev_done[:] = False  # nothing left to reset on the next call
            obs = inner.state.T.astype(np.float32)
        return obs, rewards, terminated, truncated, info

    def close(self, **kwargs: Any) -> None:
        self.env.close()


def make_vector_env(task: Any, n_envs: int, continuous: bool = False) -> gym.vector.VectorEnv:
    """The task's S envs as one vector env that resets an ended episode in the same step
    (``continuous``: the task's Box-action form)."""
    from sgmmq.envs.factory import make_env

    if task.env_id == "CartPole-v1" and task.make_id is None and not task.make_kwargs:
        return _SameStepCartPole(n_envs)
    factory: Callable[[], gym.Env] = lambda: make_env(task, monitor=False, continuous=continuous)  # noqa: E731
    return gym.vector.SyncVectorEnv([factory] * n_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


class BatchedSGMMQ:
    """S SGMMQ agents, one per seed, trained in lockstep in this process.

    :param env_id: a task of :mod:`sgmmq.envs` (its observation box, gamma, ...) or a registered
        Gymnasium id, as ``sgmmq train`` takes it.
    :param seeds: distinct non-negative seeds, one agent each.
    :param continuous: a Box-action task's native actions (``sgmmq train --continuous``), not its bins.
    :param compile: run the TD target and the gradient (:meth:`td_gradients`), and the discrete greedy actions
        (:meth:`greedy`), through ``torch.compile``: a few seconds
        of compilation at the first update, then fewer, fused kernels every step (see ``results/speed``); the same
        math, other float rounding. Needs a C compiler (torch's inductor backend).
    :param hyperparameters: SGMMQ's keyword arguments (``policy_kwargs`` included), the same for every
        agent; an option the batched trainer does not follow is refused by name.
    """

    def __init__(self, env_id: str, seeds: Sequence[int], continuous: bool = False, compile: bool = False, **hyperparameters: Any) -> None:
        from sgmmq import runs

        self.seeds = check_seeds(seeds)
        for key in REFUSED_KEYS:
            if key in hyperparameters:
                raise ValueError(f"{key} is set by the batched trainer itself, not a hyperparameter it takes")
        self.task = runs.resolve_task(env_id)
        self.hyperparameters = hyperparameters
        # one ordinary SGMMQ per seed: its initial parameters, schedules, pruner, and the model it is written back to
        self._models = [runs.build_model(self.task, seed, hyperparameters, continuous=continuous) for seed in self.seeds]
        first = self._models[0]
        check_supported(first)
        self.n_seeds = len(self.seeds)
        self.policy = first.policy  # its scale() serves every agent: the same task box
        self.continuous = first.policy.continuous
        if self.continuous:  # actions live scaled in [-1, 1]^d_a (SB3's buffer convention); the env takes its own units
            self.action_dim = int(first.action_space.shape[0])
        else:
            self.n_actions = int(first.action_space.n)
        self.gamma, self.batch_size, self.window_size = first.gamma, first.batch_size, first.buffer_size
        self.learning_starts, self.train_freq, self.gradient_steps = first.learning_starts, first.train_freq.frequency, first.gradient_steps
        self.target_update_interval, self.prune_interval = first.target_update_interval, first.prune_interval
        self.sparsity_lambda = first.sparsity_lambda
        self.double_q, self.n_steps, self.loss = first.double_q, first.n_steps, first.loss
        self.exploration_noise = first.exploration_noise  # std in the scaled box (continuous only; SGMMQ checks it)
        self._means_initialized = first.mean_init != "data"
        self.lr_schedule, self.exploration_schedule = first.lr_schedule, first.exploration_schedule

        self.q_net = copy.deepcopy(first.policy.q_net)
        with torch.no_grad():
            for name, param in self.q_net.named_parameters():
                param.data = torch.stack([dict(m.policy.q_net.named_parameters())[name].data for m in self._models])
                param.component_dims = 2  # (seed, component, ...): one step count per agent's component
        self.snapshot = copy.deepcopy(self.q_net).requires_grad_(False)
        self.optimizer = first.policy.optimizer_class(self.q_net.parameters(), lr=self.lr_schedule(1.0), **first.policy.optimizer_kwargs)
        self.alive = torch.ones(self.n_seeds, self.q_net.n_components, dtype=torch.bool)
        self.snapshot_alive = self.alive.clone()
        # the pool keeps its size (pruned components are silenced, not cut), so every step has the same shapes
        self._gradients = torch.compile(self.td_gradients, dynamic=False) if compile else self.td_gradients
        self._greedy = torch.compile(self.greedy, dynamic=False) if compile and not self.continuous else self.greedy

        obs_dim = first.observation_space.shape[0]
        s, w = self.n_seeds, self.window_size
        # every field of a transition in one float32 row, so that a mini-batch is one gather; ``window[key]``
        # are views of it (a discrete action's index is stored exactly as a float)
        widths = {"obs": obs_dim, "next_obs": obs_dim, "actions": self.action_dim if self.continuous else None,
                  "rewards": None, "terminated": None, "truncated": None}  # None: one scalar column
        self._packed = np.zeros((s, w, sum(width or 1 for width in widths.values())), np.float32)
        self._columns: dict[str, Any] = {}
        start = 0
        for key, width in widths.items():
            self._columns[key] = slice(start, start + width) if width else start
            start += width or 1
        self.window = {key: self._packed[:, :, column] for key, column in self._columns.items()}
        self.pos, self.full = 0, False
        self._rows = np.arange(s)[:, None]
        self.rngs = [agent_rng(seed) for seed in self.seeds]  # each agent's own draws
        self.num_timesteps = self._n_updates = 0
        self.total_timesteps = 1
        self.progress_remaining = 1.0
        self.exploration_rate = 0.0
        self.curves: list[list[tuple[int, float]]] = [[] for _ in self.seeds]  # (step, return) per ended episode
        self.env: gym.vector.VectorEnv | None = None

    # --- one environment step for all agents ---------------------------------------------------
    def _uniform(self, rng: np.random.Generator) -> Any:
        """A uniform action: an index, or a point of the scaled box."""
        return rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32) if self.continuous else rng.integers(self.n_actions)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Each agent's action: uniform before ``learning_starts``, then epsilon-greedy (as SGMMQ.predict);
        continuous: scaled to ``[-1, 1]`` (:meth:`env_actions` gives the env's units)."""
        if self.num_timesteps < self.learning_starts:
            return np.array([self._uniform(rng) for rng in self.rngs])
        states = self.policy.scale(torch.as_tensor(obs), check=False).unsqueeze(1)  # (S, 1, d_x)
        if self.continuous:
            actions = self.q_net.greedy(states)[0].squeeze(1).numpy().astype(np.float32)
        else:
            actions = self._greedy(states).squeeze(1).numpy()
        for s, rng in enumerate(self.rngs):  # each agent's own draws: one uniform, and an action if it explores
            if rng.random() < self.exploration_rate:
                actions[s] = self._uniform(rng)
            elif self.exploration_noise:  # SGMMQ.predict: Gaussian noise on a greedy continuous action, clipped to the box
                actions[s] = np.clip(actions[s] + rng.normal(0.0, self.exploration_noise, self.action_dim), -1.0, 1.0)
        return actions

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        """What the envs take: the indices, or the scaled actions in the box's units (SB3's ``unscale_action``)."""
        return self.policy.unscale_action(actions).astype(np.float32) if self.continuous else actions

    def store(self, obs: np.ndarray, next_obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: np.ndarray,
              truncated: np.ndarray | None = None) -> None:
        """One transition per agent into its window (the most recent ``window_size`` are kept); ``truncated``
        (a time limit, not a terminal state) only ends the n-step sums."""
        if not (np.all(np.isfinite(next_obs)) and np.all(np.isfinite(rewards))):
            raise ValueError(f"The environment returned a NaN or infinite observation or reward: obs={next_obs}, reward={rewards}")
        truncated = np.zeros(self.n_seeds, np.float32) if truncated is None else truncated
        for key, value in (("obs", obs), ("next_obs", next_obs), ("actions", actions), ("rewards", rewards), ("terminated", terminated),
                           ("truncated", truncated)):
            self.window[key][:, self.pos] = value
        self.pos = (self.pos + 1) % self.window_size
        self.full = self.full or self.pos == 0

    # --- learning -----------------------------------------------------------------------------
    def _draw(self, size: int) -> np.ndarray:
        """``size`` window indices per agent, uniform over what the window holds (SB3's ``sample``), each
        agent's from its own generator."""
        upper = self.window_size if self.full else self.pos
        return np.stack([rng.integers(0, upper, size=size) for rng in self.rngs])

    @torch.no_grad()
    def init_means_from_window(self, indices: np.ndarray | None = None) -> None:
        """``mean_init="data"`` (SGMMQ's ``_init_means_from_window``): each agent's means on ``K`` of its own
        visited ``(state, action)`` points (``indices (S, K)`` into the windows, drawn when not given)."""
        if indices is None:
            indices = self._draw(self.q_net.n_components)
        states = self.policy.scale(torch.as_tensor(self.window["obs"][self._rows, indices]), check=False)
        self.q_net.means.copy_(self.q_net.encode(states, torch.as_tensor(self.window["actions"][self._rows, indices])))
        self.refresh_snapshot()  # every agent's first update is the same step: all snapshots at once
        self._means_initialized = True

    def sample(self, indices: np.ndarray) -> tuple[dict[str, torch.Tensor], Any]:
        """Each agent's mini-batch at ``indices (S, B)`` and the bootstrap discounts: ``gamma``, or for
        ``n_steps > 1`` SB3's ``NStepReplayBuffer`` arithmetic per agent (see :func:`n_step_sample`)."""
        if self.n_steps == 1:
            rows = torch.from_numpy(self._packed[self._rows, indices])  # (S, B, fields): one gather
            keys = ("obs", "next_obs", "actions", "rewards", "terminated")
            return {key: rows[..., self._columns[key]] for key in keys}, self.gamma
        batch = n_step_sample(self.window, indices, self.n_steps, self.gamma, self.pos, self.window_size)
        discounts = torch.as_tensor(batch.pop("discounts"))
        return {key: torch.as_tensor(value) for key, value in batch.items()}, discounts

    def train_step(self, indices: np.ndarray | None = None) -> torch.Tensor:
        """One gradient step for every agent on its own mini-batch (``indices (S, B)`` into the windows,
        drawn uniformly when not given); returns each agent's TD loss."""
        for group in self.optimizer.param_groups:  # SB3's _update_learning_rate
            group["lr"] = self.lr_schedule(self.progress_remaining)
        if not self._means_initialized:  # SGMMQ.train: before the first mini-batch is drawn
            self.init_means_from_window()
        if indices is None:
            indices = self._draw(self.batch_size)
        batch, discounts = self.sample(indices)
        with torch.no_grad():
            td_loss, *grads = self._gradients(batch["obs"], batch["next_obs"], batch["actions"], batch["rewards"], batch["terminated"], discounts)
        set_gradients(self.q_net, grads)
        self.optimizer.step()
        self._n_updates += 1
        if self._n_updates % self.prune_interval == 0:
            self.prune()
        return td_loss.detach()

    def greedy(self, states: torch.Tensor) -> torch.Tensor:
        """Each agent's greedy discrete actions at scaled states ``(S, B, d_x)``: ``(S, B)``."""
        return self.q_net.forward(states).argmax(dim=-1)

    def td_gradients(self, obs: torch.Tensor, next_obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
                     terminated: torch.Tensor, discounts: Any) -> tuple[torch.Tensor, ...]:
        """Each agent's TD loss and the gradient of the sum over agents of their losses (so each agent's
        gradient is its own): :func:`sgmmq.agent.td_target` and :func:`sgmmq.agent.td_gradients`, the single
        agent's functions, on the stack."""
        states, next_states = self.policy.scale(obs, check=False), self.policy.scale(next_obs, check=False)
        target = td_target(self.snapshot, next_states, rewards, terminated, discounts, q_net=self.q_net if self.double_q else None)
        return td_gradients(self.q_net, self.q_net.encode(states, actions), target, self.loss, self.sparsity_lambda)

    @torch.no_grad()
    def refresh_snapshot(self) -> None:
        """Policy improvement for every agent (SGMMQ's ``refresh_snapshot``)."""
        for target, live in zip(self.snapshot.parameters(), self.q_net.parameters()):
            target.data.copy_(live.data)
        self.snapshot_alive = self.alive.clone()

    @torch.no_grad()
    def prune(self) -> None:
        """Each agent's pruning check on its live components; removed ones are silenced, not cut."""
        xi = self.q_net.xi
        for s, model in enumerate(self._models):
            live = torch.nonzero(self.alive[s]).squeeze(1)
            keep = model.pruner.check(xi[s, live])
            if keep is None:
                continue
            dead = live[~keep]
            self.q_net.euclidean.data[s, dead, :2] = 0.0  # u = v = 0: xi = 0 and no gradient reaches the component
            for param in self.q_net.component_parameters():
                for key, value in self.optimizer.state.get(param, {}).items():
                    if key != "step" and torch.is_tensor(value):
                        value[s, dead] = 0.0  # no momentum left to move it
            self.alive[s, dead] = False
            model.prune_events.append((self.num_timesteps, len(dead), int(self.alive[s].sum())))

    @property
    def live_components(self) -> list[int]:
        return self.alive.sum(1).tolist()

    def learn(self, total_timesteps: int, progress_bar: bool = False, callback: Callable[[BatchedSGMMQ], Any] | None = None) -> BatchedSGMMQ:
        """Train every agent for ``total_timesteps`` environment steps (each), in lockstep.

        ``callback(self)``, if given, runs after every step (for progress displays).
        """
        if not isinstance(total_timesteps, (int, np.integer)) or isinstance(total_timesteps, bool) or total_timesteps < 1:
            raise ValueError(f"total_timesteps must be an integer >= 1, got {total_timesteps!r}")
        if self.num_timesteps:
            raise ValueError("this BatchedSGMMQ has already trained; build a new one (continuing is not supported yet)")
        from tqdm.auto import tqdm

        self.total_timesteps = int(total_timesteps)
        self.env = env = make_vector_env(self.task, self.n_seeds, self.continuous)
        obs, _ = env.reset(seed=self.seeds)  # env s seeded with s: its resets are its own
        returns, lengths = np.zeros(self.n_seeds), np.zeros(self.n_seeds, np.int64)
        bar = tqdm(total=self.total_timesteps, disable=not progress_bar, unit="step",
                   desc=f"{self.task.env_id} x {self.n_seeds} seeds")
        try:
            while self.num_timesteps < self.total_timesteps:
                actions = self.act(obs)
                new_obs, rewards, terminated, truncated, info = env.step(self.env_actions(actions))
                next_obs = new_obs.copy()
                done = terminated | truncated
                if done.any():
                    final = info["_final_obs"]
                    next_obs[final] = np.stack(info["final_obs"][final]).astype(np.float32)
                self.store(obs, next_obs, actions, rewards, terminated, truncated)
                obs = new_obs
                self.num_timesteps += 1
                returns += rewards
                lengths += 1
                for s in np.flatnonzero(done):
                    self.curves[s].append((self.num_timesteps, float(returns[s])))
                    returns[s], lengths[s] = 0.0, 0
                self.progress_remaining = 1.0 - self.num_timesteps / self.total_timesteps
                if self.num_timesteps % self.target_update_interval == 0:
                    self.refresh_snapshot()
                self.exploration_rate = self.exploration_schedule(self.progress_remaining)
                if self.num_timesteps > self.learning_starts and self.num_timesteps % self.train_freq == 0:
                    for _ in range(self.gradient_steps):
                        self.train_step()
                bar.update(1)
                if callback is not None:
                    callback(self)
        finally:
            bar.close()
            env.close()
        return self

    # --- the agents as ordinary SGMMQ models -----------------------------------------------------
    @torch.no_grad()
    def models(self) -> list[SGMMQ]:
        """Each agent written back into its own ``SGMMQ`` (live components only, optimizer moments,
        snapshot, window, counters): ``save``, ``SGMMQ.load``, ``evaluate_policy`` and ``sgmmq eval`` read it."""
        filled = self.window_size if self.full else self.pos
        for s, model in enumerate(self._models):
            policy = model.policy
            for net, stack, alive in ((policy.q_net, self.q_net, self.alive[s]), (policy.q_net_target, self.snapshot, self.snapshot_alive[s])):
                net.euclidean.data = stack.euclidean.data[s, alive].clone()
                net.precisions.data = stack.precisions.data[s, alive].clone()
                if net.offset is not None:
                    net.offset.data = stack.offset.data[s].clone()
            optimizer = policy.optimizer
            optimizer.state.clear()
            for param, stacked in zip(policy.q_net.parameters(), self.q_net.parameters()):
                rows = self.alive[s] if stacked.dim() > 2 else slice(None)  # offset (S, 1): no component axis to cut
                optimizer.state[param] = {key: value[s][rows].clone() for key, value in self.optimizer.state.get(stacked, {}).items()}
            if hasattr(optimizer, "_counts"):
                optimizer._counts = {}
            for group in optimizer.param_groups:
                group["lr"] = self.optimizer.param_groups[0]["lr"]
            buffer = model.replay_buffer
            buffer.observations[:filled, 0] = self.window["obs"][s, :filled]
            buffer.next_observations[:filled, 0] = self.window["next_obs"][s, :filled]
            buffer.actions[:filled, 0] = self.window["actions"][s, :filled].reshape(filled, *buffer.actions.shape[2:])
            buffer.rewards[:filled, 0] = self.window["rewards"][s, :filled]
            terminated, truncated = self.window["terminated"][s, :filled] > 0, self.window["truncated"][s, :filled] > 0
            buffer.dones[:filled, 0] = terminated | truncated  # as SB3 stores them: done, and a timeout that is not terminal
            buffer.timeouts[:filled, 0] = truncated & ~terminated
            buffer.pos, buffer.full = self.pos, self.full
            model.num_timesteps = model._n_calls = self.num_timesteps
            model._n_updates = self._n_updates
            model._total_timesteps = self.total_timesteps
            model._current_progress_remaining = self.progress_remaining
            model.exploration_rate = self.exploration_rate
            model._episode_num = len(self.curves[s])
            model._means_initialized = self._means_initialized
            model._last_obs = None  # a later learn() starts from a fresh episode of the model's own env
        return list(self._models)


def n_step_sample(window: dict[str, np.ndarray], indices: np.ndarray, n_steps: int, gamma: float, pos: int,
                  window_size: int) -> dict[str, np.ndarray]:
    """SB3's ``NStepReplayBuffer._get_samples`` on stacked windows ``(S, W)`` at ``indices (S, B)``, the same
    numpy operations on a leading seed axis: rewards summed with ``gamma^i`` up to ``n_steps`` steps,
    stopping after the step that ends the episode (terminated or truncated) or the newest stored one,
    ``discounts = gamma^k`` for the ``k`` steps used, ``next_obs`` and ``terminated`` of the last step used."""
    rows = np.arange(indices.shape[0])[:, None, None]
    steps = np.arange(n_steps)
    sequence = (indices[..., None] + steps) % window_size  # (S, B, n)
    # the newest transition ends every sum (SB3 marks it truncated while sampling): never wrap into the oldest
    ended = np.logical_or(window["terminated"][rows, sequence], window["truncated"][rows, sequence]) | (sequence == (pos - 1) % window_size)
    last = np.where(ended.any(-1), ended.argmax(-1), n_steps - 1)
    mask = steps <= last[..., None]
    discounts = gamma ** mask.sum(-1).astype(np.float32)
    returns = (window["rewards"][rows, sequence] * gamma ** np.arange(n_steps, dtype=np.float32) * mask).sum(-1)
    final = (indices + last) % window_size
    rows = rows[..., 0]
    return {"obs": window["obs"][rows, indices], "next_obs": window["next_obs"][rows, final], "actions": window["actions"][rows, indices],
            "rewards": returns, "terminated": window["terminated"][rows, final], "discounts": discounts}


def train_seeds(env_id: str, seeds: Sequence[int], total_timesteps: int, progress_bar: bool = False, continuous: bool = False,
                compile: bool = False, **hyperparameters: Any) -> list[SGMMQ]:
    """Train one SGMMQ per seed, all in lockstep in this process; the trained agents as ``SGMMQ`` models.

    >>> models = train_seeds("CartPole-v1", range(10), 50_000)   # doctest: +SKIP
    >>> models = train_seeds("Pendulum-v1", range(5), 100_000, continuous=True)   # doctest: +SKIP
    """
    batched = BatchedSGMMQ(env_id, seeds, continuous=continuous, compile=compile, **hyperparameters)
    batched.learn(total_timesteps, progress_bar=progress_bar)
    return batched.models()
