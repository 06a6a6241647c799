"""The batched trainer (sgmmq.batched): each stacked agent takes SGMMQ's own steps."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger

from sgmmq import SGMMQ, cli, runs
from sgmmq.batched import BatchedSGMMQ, _SameStepCartPole, parse_seeds, train_seeds
from sgmmq.envs import get_task, make_env

TASK = get_task("CartPole-v1")


@pytest.fixture(autouse=True)
def one_thread():
    """Small models: one torch thread (as the CLI sets), or a busy machine's threads fight."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _window(seed: int, n: int) -> dict[str, np.ndarray]:
    """``n`` made-up CartPole transitions (inside the task box, some terminal)."""
    rng = np.random.default_rng(seed)
    low, high = TASK.box
    return {"obs": rng.uniform(low, high, (n, 4)).astype(np.float32), "next_obs": rng.uniform(low, high, (n, 4)).astype(np.float32),
            "actions": rng.integers(0, 2, n), "rewards": rng.normal(1.0, 0.5, n).astype(np.float32),
            "terminated": (rng.random(n) < 0.1).astype(np.float32), "truncated": (rng.random(n) < 0.05).astype(np.float32)}


def _single(seed: int, window: dict[str, np.ndarray], **hyperparameters) -> SGMMQ:
    model = runs.build_model(TASK, seed, hyperparameters)
    model.set_logger(Logger(folder=None, output_formats=[]))
    for i in range(len(window["obs"])):  # as SB3's rollout stores them: done, and a timeout that is not terminal
        terminated, truncated = bool(window["terminated"][i]), bool(window["truncated"][i])
        model.replay_buffer.add(window["obs"][i : i + 1], window["next_obs"][i : i + 1], window["actions"][i : i + 1, None],
                                window["rewards"][i : i + 1], np.array([terminated or truncated], np.float32),
                                [{"TimeLimit.truncated": truncated and not terminated}])
    return model


def _fill(batched: BatchedSGMMQ, windows: list[dict[str, np.ndarray]]) -> None:
    for i in range(len(windows[0]["obs"])):
        batched.store(*(np.stack([w[key][i] for w in windows]) for key in ("obs", "next_obs", "actions", "rewards", "terminated", "truncated")))


def _indices(seed: int, step: int, upper: int, batch: int) -> np.ndarray:
    """The window indices SB3's ReplayBuffer.sample draws after ``np.random.seed(1000 * seed + step)``."""
    return np.random.RandomState(1000 * seed + step).randint(0, upper, size=batch)


def _assert_close(single: SGMMQ, batched_net, s: int, alive: torch.Tensor) -> None:
    q = single.policy.q_net
    assert q.n_components == int(alive.sum())
    torch.testing.assert_close(batched_net.euclidean.data[s, alive], q.euclidean.data, rtol=0, atol=1e-6)
    torch.testing.assert_close(batched_net.precisions.data[s, alive], q.precisions.data, rtol=0, atol=1e-6)
    torch.testing.assert_close(batched_net.offset.data[s], q.offset.data, rtol=0, atol=1e-6)


def _step_side_by_side(batched: BatchedSGMMQ, singles: list[SGMMQ], seeds: list[int], windows: list[dict], steps: int) -> None:
    """Each single agent and the stack on the same windows and mini-batch indices; equal after every step."""
    _fill(batched, windows)
    upper = len(windows[0]["obs"])
    for step in range(steps):
        for s, single in zip(seeds, singles):
            np.random.seed(1000 * s + step)
            single.train(gradient_steps=1, batch_size=32)
        batched.train_step(np.stack([_indices(s, step, upper, 32) for s in seeds]))
        for s, single in enumerate(singles):
            _assert_close(single, batched.q_net, s, batched.alive[s])


OPTIONS = [{}, {"double_q": True}, {"n_steps": 3}, {"policy_kwargs": {"precision": "diagonal"}}, {"loss": "huber"}]


@pytest.mark.parametrize("options", OPTIONS)
def test_one_update_equals_the_single_agents(options):
    """S = 1: the same window and mini-batch indices give the single agent's update (and its optimizer state)."""
    window = _window(0, 300)
    single = _single(4, window, **options)
    batched = BatchedSGMMQ("CartPole-v1", [4], **options)
    torch.testing.assert_close(batched.q_net.euclidean.data[0], single.policy.q_net.euclidean.data, rtol=0, atol=0)  # SGMMQ(seed=4)'s start
    _fill(batched, [window])
    for step in range(3):
        np.random.seed(1000 * 4 + step)
        single.train(gradient_steps=1, batch_size=32)
        batched.train_step(_indices(4, step, 300, 32)[None])
        _assert_close(single, batched.q_net, 0, batched.alive[0])
    exported = batched.models()[0]
    state, reference = exported.policy.optimizer.state, single.policy.optimizer.state
    for p, q in zip(exported.policy.q_net.parameters(), single.policy.q_net.parameters()):
        for key in reference[q]:
            torch.testing.assert_close(state[p][key], reference[q][key], rtol=0, atol=1e-6)


@pytest.mark.parametrize("options", OPTIONS)
def test_three_agents_each_take_their_single_agents_steps_and_prune_apart(options):
    """S = 3, each agent on its own window and indices, through pruning checks: each equals its own
    single agent, and the agents end with different pool sizes."""
    hyperparameters = {"prune_interval": 2, "prune_threshold": 0.01, "prune_patience": 1, "sparsity_lambda": 0.05,
                       **options, "policy_kwargs": {"n_components": 12, **options.get("policy_kwargs", {})}}
    seeds = [0, 1, 2]
    windows = [_window(10 + s, 200) for s in seeds]
    singles = [_single(s, w, **hyperparameters) for s, w in zip(seeds, windows)]
    batched = BatchedSGMMQ("CartPole-v1", seeds, **hyperparameters)
    _step_side_by_side(batched, singles, seeds, windows, 6)
    sizes = batched.live_components
    assert max(sizes) < 12 and (len(set(sizes)) > 1 or options), sizes  # pruned; apart at least with the defaults
    for model, single in zip(batched.models(), singles):
        assert model.live_components == single.live_components
        assert [event[1:] for event in model.prune_events] == [event[1:] for event in single.prune_events]
        torch.testing.assert_close(model.policy.q_net.euclidean.data, single.policy.q_net.euclidean.data, rtol=0, atol=1e-6)


def test_a_compiled_update_takes_the_eager_steps():
    """compile=True: the same update through torch.compile, equal to the eager one to float rounding over a few
    steps (the same windows and indices for both)."""
    seeds = [0, 1]
    windows = [_window(10 + s, 200) for s in seeds]
    runs_ = []
    for compile_ in (False, True):
        batched = BatchedSGMMQ("CartPole-v1", seeds, compile=compile_, policy_kwargs={"n_components": 8})
        _fill(batched, windows)
        rng = np.random.default_rng(3)
        losses = [batched.train_step(rng.integers(0, 200, (2, batched.batch_size))) for _ in range(4)]
        runs_.append((batched, torch.stack(losses)))
    (eager, eager_losses), (compiled, compiled_losses) = runs_
    torch.testing.assert_close(compiled_losses, eager_losses, rtol=1e-5, atol=1e-6)
    for a, b in zip(eager.q_net.parameters(), compiled.q_net.parameters()):
        torch.testing.assert_close(b.data, a.data, rtol=1e-5, atol=1e-6)
    assert not torch.equal(eager.q_net.euclidean.data, BatchedSGMMQ("CartPole-v1", seeds).q_net.euclidean.data)  # it moved


def test_trained_agents_save_load_and_predict_as_before(tmp_path):
    models = train_seeds("CartPole-v1", [3, 7], 700, learning_starts=100, prune_interval=100, prune_threshold=0.05, sparsity_lambda=0.05)
    obs = np.random.default_rng(0).uniform(*TASK.box, (64, 4)).astype(np.float32)
    for i, model in enumerate(models):
        assert isinstance(model, SGMMQ) and model.num_timesteps == 700 and model.task_id == "CartPole-v1"
        path = tmp_path / f"m{i}.zip"
        model.save(path)
        loaded = SGMMQ.load(path)
        np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
        with torch.no_grad():
            torch.testing.assert_close(loaded.policy(torch.as_tensor(obs)), model.policy(torch.as_tensor(obs)), rtol=0, atol=0)
        assert loaded.live_components == model.live_components
        mean, _ = evaluate_policy(loaded, make_env(TASK, seed=0), n_eval_episodes=1, deterministic=True)
        assert mean > 0
    assert cli.main(["eval", str(tmp_path / "m0.zip"), "--episodes", "1"]) == 0


def test_same_step_cartpole_follows_cartpole_and_resets_in_the_ending_step():
    """Every step is CartPole's step; an ended episode restarts in the same step, and env ``i`` starts each
    episode where a lone CartPole-v1 reset with its seed would (its own generator, whatever the others do)."""
    seeds = [7, 0, 11, 3]
    env = _SameStepCartPole(4)
    reference = gym.make("CartPole-v1").unwrapped
    lone = [gym.make("CartPole-v1").unwrapped for _ in seeds]  # each env's episode starts, alone
    obs, _ = env.reset(seed=seeds)
    for i, seed in enumerate(seeds):
        np.testing.assert_array_equal(obs[i], lone[i].reset(seed=seed)[0])
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(300):
        actions = rng.integers(0, 2, 4)
        new_obs, rewards, terminated, truncated, info = env.step(actions)
        done = terminated | truncated
        final = new_obs.copy()
        if done.any():
            final[done] = info["final_obs"][done]
            for i in np.flatnonzero(done):  # a fresh episode, at once, from env i's own generator
                np.testing.assert_array_equal(new_obs[i], lone[i].reset()[0])
            ended += int(done.sum())
        assert np.all(rewards == 1.0)  # no reset step without a transition
        for i in range(4):
            reference.state, reference.steps_beyond_terminated = obs[i].astype(np.float64), None
            expected, _, end, _, _ = reference.step(int(actions[i]))
            np.testing.assert_allclose(final[i], expected, atol=1e-5)
            assert end == terminated[i]
        obs = new_obs
    assert ended > 4  # every env's generator was used after its first episode
    again, _ = env.reset(seed=5)  # an int seeds env i with 5 + i, as SyncVectorEnv does
    np.testing.assert_array_equal(again[2], gym.make("CartPole-v1").unwrapped.reset(seed=7)[0])


def test_a_short_cartpole_run_learns():
    """3,000 steps, two agents: the greedy policies beat a random one (about 22) by far."""
    models = train_seeds("CartPole-v1", [0, 1], 3_000, learning_starts=300)
    scores = [evaluate_policy(m, make_env(TASK, seed=100), n_eval_episodes=3, deterministic=True)[0] for m in models]
    assert max(scores) >= 100, scores


@pytest.mark.parametrize(
    ("seeds", "kwargs", "message"),
    [
        ([], {}, "at least one seed"),
        ([1, 2, 1], {}, "repeated: [1]"),
        ([0, -1], {}, "non-negative"),
        ([0], {"pool": "adaptive"}, "pool='adaptive' is not supported by the batched trainer"),
        ([0], {"target": "residual"}, "target='residual' is not supported"),
        ([0], {"prune_min_support": 0.5}, "prune_min_support=0.5 is not supported"),
        ([0], {"policy_kwargs": {"optimizer_class": "geoopt_radam"}}, "optimizer_class=RiemannianAdam is not supported"),
        ([0], {"seed": 3}, "seed is set by the batched trainer"),
        ([0], {"no_such_option": 1}, "bad hyperparameter"),
    ],
)
def test_bad_input_is_refused_by_name(seeds, kwargs, message):
    with pytest.raises(ValueError) as error:
        train_seeds("CartPole-v1", seeds, 10, **kwargs)
    assert message in str(error.value)


def test_unknown_task_and_bad_seed_lists():
    with pytest.raises(ValueError, match="Unknown task"):
        train_seeds("NoSuchTask-v0", [0], 10)
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    for text, message in (("3-1", "runs backwards"), ("0-2,2", "repeated: [2]"), ("a", "integers and ranges"), ("", "integers")):
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_seeds(text)


def test_cli_writes_one_run_folder_per_seed_and_keeps_existing_runs(tmp_path, capsys):
    argv = ["train", "CartPole-v1", "--seeds", "0-1", "--steps", "600", "--out", str(tmp_path), "--no-progress",
            "--eval-episodes", "1", "--set", "learning_starts=100"]
    assert cli.main(argv) == 0
    for seed in (0, 1):
        folder = tmp_path / f"CartPole-v1-s{seed}"
        model = SGMMQ.load(folder / runs.MODEL_FILE)
        assert model.num_timesteps == 600 and model.learning_starts == 100
        run = runs.json.loads((folder / runs.RUN_FILE).read_text())
        assert run["seed"] == seed and run["steps"] == 600 and run["batched"]["seeds"] == [0, 1]
        final = run["final_evaluation"]  # the printed score, kept with each seed's run
        assert len(final["episode_returns"]) == 1 and final["parameters"] == model.num_parameters()
        assert (folder / runs.CURVE_FILE).read_text().startswith("step,return\n")
    capsys.readouterr()
    assert cli.main(argv) == 2
    assert "already hold a run; pass --overwrite" in capsys.readouterr().err
    assert cli.main([*argv[:-2], "--seed", "3"]) == 2
    assert "does not take --seed" in capsys.readouterr().err
    assert cli.main([*argv, "--overwrite", "--set", "pool=adaptive"]) == 2  # refused before anything is replaced
    assert "not supported by the batched trainer" in capsys.readouterr().err
    assert (tmp_path / "CartPole-v1-s0" / runs.MODEL_FILE).exists()
    assert cli.main(["train", "--resume", "--out", str(tmp_path / "CartPole-v1-s0")]) == 2
    assert "writes no checkpoints: it cannot be resumed" in capsys.readouterr().err


def test_speed_batched_mode_writes_its_table(tmp_path):
    from sgmmq import speed

    assert speed.main(["--batched", "--steps", "40", "--seed-counts", "1", "3", "--out", str(tmp_path)]) == 0
    record = runs.json.loads((tmp_path / "batched.json").read_text())
    result = record["batched"][0]
    assert [row["seeds"] for row in result["rows"]] == [1, 3] and len(result["single_wall_s"]) == 2
    single = sum(result["single_wall_s"]) / 2
    for row in result["rows"]:
        assert row["total_over_single"] == pytest.approx(row["seeds"] * single / row["wall_s"])
        assert row["steps_per_s_total"] == pytest.approx(row["seeds"] * row["steps_per_s_per_seed"])
    table = (tmp_path / "batched.md").read_text()
    assert record["command"] in table and "| CartPole-v1 | 3 | 40 |" in table


def test_a_batched_run_is_reproducible_from_its_seed_list():
    first, second = (train_seeds("Acrobot-v1", [5, 6], 400, learning_starts=100) for _ in range(2))
    for a, b in zip(first, second):
        assert torch.equal(a.policy.q_net.euclidean, b.policy.q_net.euclidean)
        assert torch.equal(a.policy.q_net.precisions, b.policy.q_net.precisions)
        np.testing.assert_array_equal(a.replay_buffer.observations, b.replay_buffer.observations)
    assert not torch.equal(first[0].policy.q_net.euclidean, first[1].policy.q_net.euclidean)


@pytest.mark.parametrize(
    ("env_id", "steps", "options"),
    [
        # the native vector env; warm-up, exploration, mini-batches and per-agent pruning
        ("CartPole-v1", 400, {"learning_starts": 100, "prune_interval": 100, "prune_threshold": 0.05, "sparsity_lambda": 0.05}),
        # a SyncVectorEnv (200-step episodes: resets after the first) and the first update's mean draws
        ("MountainCar-v0", 450, {"learning_starts": 100, "mean_init": "data"}),
        # continuous actions: a SyncVectorEnv of the Box form, the stacked greedy argmax, uniform draws in the box
        ("Pendulum-v1", 410, {"learning_starts": 100, "continuous": True, "policy_kwargs": {"n_components": 6}}),
    ],
)
def test_an_agents_run_does_not_depend_on_the_seeds_batched_with_it(env_id, steps, options):
    """Seed 3 trained beside 5, and beside 1 and 7: bit-identical parameters, optimizer moments, window and
    episode curve (its randomness is its own), so a seed redone in another batch repeats its result."""
    runs = []
    for seeds in ([3, 5], [1, 3, 7]):
        batched = BatchedSGMMQ(env_id, seeds, **options)
        batched.learn(steps)
        models = batched.models()
        runs.append((models[seeds.index(3)], batched.curves[seeds.index(3)], models[seeds.index(3) - 1]))
    (pair, pair_curve, other), (trio, trio_curve, _) = runs
    assert len(pair_curve) >= 2 and pair_curve == trio_curve
    for name in ("euclidean", "precisions", "offset"):
        assert torch.equal(getattr(pair.policy.q_net, name), getattr(trio.policy.q_net, name)), name
        assert torch.equal(getattr(pair.policy.q_net_target, name), getattr(trio.policy.q_net_target, name)), name
    for param, same in zip(pair.policy.q_net.parameters(), trio.policy.q_net.parameters()):
        for key, value in pair.policy.optimizer.state[param].items():
            assert torch.equal(value, trio.policy.optimizer.state[same][key]), key
    np.testing.assert_array_equal(pair.replay_buffer.observations, trio.replay_buffer.observations)
    np.testing.assert_array_equal(pair.replay_buffer.actions, trio.replay_buffer.actions)
    assert not torch.equal(pair.policy.q_net.euclidean, other.policy.q_net.euclidean)  # seed 5 (or 1) did train differently


@pytest.mark.parametrize("normalized", [False, True])
def test_stacked_mixture_values_and_gradients_are_each_agents_own(normalized):
    """MixtureValue with a leading seed axis: the values and the hand-derived gradients of S = 3
    stacked Q-functions are those of the three Q-functions alone."""
    from sgmmq.mixture import GMMQFunction, MixtureValue

    torch.manual_seed(0)
    singles = [GMMQFunction(4, 3, n_components=6, normalized=normalized) for _ in range(3)]
    with torch.no_grad():
        for q in singles:
            q.euclidean.add_(torch.randn_like(q.euclidean) * 0.3)
            q.offset.fill_(torch.randn(()).item())
    stacked = [torch.stack([getattr(q, name).detach() for q in singles]).requires_grad_() for name in ("euclidean", "offset", "precisions")]
    z = (torch.rand(3, 20, singles[0].dim) * 2 - 1).requires_grad_()
    weights = torch.randn(3, 20)
    values = MixtureValue.apply(z, *stacked[:2], stacked[2], normalized)
    (values * weights).sum().backward()
    for s, q in enumerate(singles):
        z_s = z.detach()[s].clone().requires_grad_()
        value = MixtureValue.apply(z_s, q.euclidean, q.offset, q.precisions, normalized)
        (value * weights[s]).sum().backward()
        torch.testing.assert_close(values[s].detach(), value.detach(), rtol=0, atol=1e-6)
        torch.testing.assert_close(z.grad[s], z_s.grad, rtol=0, atol=1e-6)
        for stacked_param, param in zip(stacked, (q.euclidean, q.offset, q.precisions)):
            torch.testing.assert_close(stacked_param.grad[s], param.grad, rtol=0, atol=1e-6)


def test_data_mean_init_equals_the_single_agents():
    """``mean_init="data"``: each agent's means go on its own window points at its first update, as the
    single agent's do (S = 2; the same window contents and the same drawn indices), then its updates follow."""
    seeds, k = [4, 9], 10
    options = {"mean_init": "data", "policy_kwargs": {"n_components": k}}
    windows = [_window(20 + s, 150) for s in seeds]
    singles = [_single(s, w, **options) for s, w in zip(seeds, windows)]
    batched = BatchedSGMMQ("CartPole-v1", seeds, **options)
    _fill(batched, windows)
    draws = [np.random.RandomState(s) for s in seeds]  # SB3's draws after np.random.seed(s): the K points, then the mini-batch
    mean_indices = np.stack([rs.randint(0, 150, size=k) for rs in draws])
    batch_indices = np.stack([rs.randint(0, 150, size=32) for rs in draws])
    before = batched.q_net.means.clone()
    batched.init_means_from_window(mean_indices)
    batched.train_step(batch_indices)
    for s, (seed, single) in enumerate(zip(seeds, singles)):
        np.random.seed(seed)
        single.train(gradient_steps=1, batch_size=32)
        _assert_close(single, batched.q_net, s, batched.alive[s])
        z = torch.cat([single.policy.scale(torch.as_tensor(windows[s]["obs"][mean_indices[s]])),
                       single.policy.q_net.codes[torch.as_tensor(windows[s]["actions"][mean_indices[s]])]], 1)
        torch.testing.assert_close(batched.snapshot.means[s], z, rtol=0, atol=1e-6)  # the snapshot took the new means
        torch.testing.assert_close(single.policy.q_net_target.means, z, rtol=0, atol=1e-6)
    assert not torch.allclose(before, batched.snapshot.means)
    assert all(m._means_initialized for m in batched.models())  # a later learn() does not move them again


def test_n_step_samples_equal_sb3s_n_step_replay_buffer():
    """``n_step_sample`` on stacked windows equals SB3's ``NStepReplayBuffer`` on each agent's stream: the
    same indices give the same returns, discounts, last next observations and terminal flags, through
    terminations, time limits, a window that has wrapped, and the newest transition."""
    from gymnasium import spaces
    from stable_baselines3.common.buffers import NStepReplayBuffer

    from sgmmq.batched import n_step_sample

    size, n, gamma = 50, 4, 0.9
    streams = [_window(30 + s, 130) for s in range(3)]
    for stream in streams:
        stream["truncated"] = (np.random.default_rng(1).random(130) < 0.1).astype(np.float32)  # plenty of both ends
    batched = BatchedSGMMQ("CartPole-v1", [0, 1, 2], window_size=size, n_steps=n, gamma=gamma)
    for stop in (37, 130):  # before and after the window wraps
        buffers = []
        for stream in streams:
            buffer = NStepReplayBuffer(size, spaces.Box(-np.inf, np.inf, (4,)), spaces.Discrete(2), n_steps=n, gamma=gamma)
            for i in range(stop):
                terminated, truncated = bool(stream["terminated"][i]), bool(stream["truncated"][i])
                buffer.add(stream["obs"][i], stream["next_obs"][i], stream["actions"][i : i + 1], stream["rewards"][i : i + 1],
                           np.array([terminated or truncated]), [{"TimeLimit.truncated": truncated and not terminated}])
            buffers.append(buffer)
        batched.window = {key: np.zeros_like(value) for key, value in batched.window.items()}
        batched.pos, batched.full = 0, False
        _fill(batched, [{key: value[:stop] for key, value in stream.items()} for stream in streams])
        upper = size if batched.full else batched.pos
        indices = np.random.default_rng(stop).integers(0, upper, (3, 200))
        indices[:, 0] = (batched.pos - 1) % size  # the newest transition
        ours = n_step_sample(batched.window, indices, n, gamma, batched.pos, size)
        for s, buffer in enumerate(buffers):
            theirs = buffer._get_samples(indices[s])
            np.testing.assert_array_equal(ours["rewards"][s], theirs.rewards.numpy()[:, 0])
            np.testing.assert_array_equal(ours["discounts"][s], theirs.discounts.numpy()[:, 0])
            np.testing.assert_array_equal(ours["terminated"][s], theirs.dones.numpy()[:, 0])
            np.testing.assert_array_equal(ours["next_obs"][s], theirs.next_observations.numpy())
            np.testing.assert_array_equal(ours["obs"][s], theirs.observations.numpy())
            assert len(set(theirs.discounts.numpy()[:, 0].round(6))) > 2  # sums cut short, and full ones
    for s, model in enumerate(batched.models()):  # the windows written back: the agent's own buffer samples the same
        written = model.replay_buffer._get_samples(indices[s])
        np.testing.assert_array_equal(ours["rewards"][s], written.rewards.numpy()[:, 0])
        np.testing.assert_array_equal(ours["terminated"][s], written.dones.numpy()[:, 0])


def test_a_stacked_diagonal_model_stays_diagonal():
    """``precision="diagonal"`` stacked: after updates every agent's precisions are still exactly diagonal."""
    options = {"policy_kwargs": {"precision": "diagonal", "n_components": 8}}
    windows = [_window(40 + s, 200) for s in range(3)]
    batched = BatchedSGMMQ("CartPole-v1", [0, 1, 2], **options)
    _fill(batched, windows)
    start = batched.q_net.precisions.data.clone()
    for _ in range(20):
        batched.train_step()
    precisions = batched.q_net.precisions.data
    off_diagonal = precisions - torch.diag_embed(torch.diagonal(precisions, dim1=-2, dim2=-1))
    assert torch.all(off_diagonal == 0)
    assert not torch.equal(precisions, start)  # they did move
    for model in batched.models():
        assert model.policy.q_net.precision == "diagonal"


PENDULUM = get_task("Pendulum-v1")


def _continuous_window(seed: int, n: int) -> dict[str, np.ndarray]:
    """``n`` made-up Pendulum transitions, actions scaled to [-1, 1] as SB3's buffer holds them."""
    rng = np.random.default_rng(seed)
    low, high = PENDULUM.box
    return {"obs": rng.uniform(low, high, (n, 3)).astype(np.float32), "next_obs": rng.uniform(low, high, (n, 3)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (n, 1)).astype(np.float32), "rewards": rng.normal(-5.0, 2.0, n).astype(np.float32),
            "terminated": np.zeros(n, np.float32), "truncated": (rng.random(n) < 0.05).astype(np.float32)}


def _continuous_single(seed: int, window: dict[str, np.ndarray], **hyperparameters) -> SGMMQ:
    model = runs.build_model(PENDULUM, seed, hyperparameters, continuous=True)
    model.set_logger(Logger(folder=None, output_formats=[]))
    for i in range(len(window["obs"])):
        truncated = bool(window["truncated"][i])
        model.replay_buffer.add(window["obs"][i : i + 1], window["next_obs"][i : i + 1], window["actions"][i : i + 1],
                                window["rewards"][i : i + 1], np.array([truncated], np.float32), [{"TimeLimit.truncated": truncated}])
    return model


@pytest.mark.parametrize("options", [{}, {"double_q": True}, {"n_steps": 3}])
def test_continuous_agents_take_their_single_agents_steps(options):
    """Box actions, S = 2: each agent's updates (the stacked greedy argmax inside the target) equal its
    own single continuous agent's on the same window and mini-batch indices, through a pruning check."""
    hyperparameters = {"prune_interval": 2, "prune_threshold": 0.01, "prune_patience": 1, "sparsity_lambda": 0.05,
                       "policy_kwargs": {"n_components": 8}, **options}
    seeds = [0, 1]
    windows = [_continuous_window(20 + s, 200) for s in seeds]
    singles = [_continuous_single(s, w, **hyperparameters) for s, w in zip(seeds, windows)]
    batched = BatchedSGMMQ("Pendulum-v1", seeds, continuous=True, **hyperparameters)
    assert batched.window["actions"].shape == (2, batched.window_size, 1)
    _step_side_by_side(batched, singles, seeds, windows, 4)
    for model, single in zip(batched.models(), singles):
        assert model.live_components == single.live_components
        np.testing.assert_array_equal(model.replay_buffer.actions[:200], single.replay_buffer.actions[:200])


def test_continuous_agents_act_in_the_box_save_load_and_evaluate(tmp_path):
    batched = BatchedSGMMQ("Pendulum-v1", [2, 5], continuous=True, learning_starts=100, policy_kwargs={"n_components": 6})
    batched.learn(400)
    assert (np.abs(batched.window["actions"][:, :400]) <= 1).all()  # stored scaled, as SB3 stores Box actions
    assert batched.window["actions"][:, :400].std() > 0.1  # not stuck on one action
    np.testing.assert_allclose(batched.env_actions(np.array([[-1.0], [1.0]], np.float32)), [[-2.0], [2.0]])  # Pendulum's torque box
    obs = np.random.default_rng(0).uniform(*PENDULUM.box, (32, 3)).astype(np.float32)
    for i, model in enumerate(batched.models()):
        assert isinstance(model.action_space, gym.spaces.Box) and model.num_timesteps == 400
        path = tmp_path / f"m{i}.zip"
        model.save(path)
        loaded = SGMMQ.load(path)
        actions = loaded.predict(obs, deterministic=True)[0]
        np.testing.assert_array_equal(actions, model.predict(obs, deterministic=True)[0])
        assert actions.shape == (32, 1) and (np.abs(actions) <= 2).all()
        mean, _ = evaluate_policy(loaded, make_env(PENDULUM, seed=0, continuous=True), n_eval_episodes=1, deterministic=True)
        assert np.isfinite(mean)
    noisy = BatchedSGMMQ("Pendulum-v1", [2, 5], continuous=True, learning_starts=0, exploration_noise=0.3, exploration_initial_eps=0.0,
                         exploration_final_eps=0.0, policy_kwargs={"n_components": 6})
    quiet = BatchedSGMMQ("Pendulum-v1", [2, 5], continuous=True, learning_starts=0, exploration_initial_eps=0.0,
                         exploration_final_eps=0.0, policy_kwargs={"n_components": 6})
    state = np.random.default_rng(1).uniform(*PENDULUM.box, (2, 3)).astype(np.float32)
    greedy, jittered = quiet.act(state), noisy.act(state)  # the same start (seeds 2 and 5): the noise alone differs
    assert (np.abs(jittered) <= 1).all() and 0.05 < np.abs(jittered - greedy).max() < 1.5
    with pytest.raises(ValueError, match="CartPole-v1 has discrete actions: it has no continuous form"):
        BatchedSGMMQ("CartPole-v1", [0], continuous=True)


def test_cli_trains_continuous_seeds_in_one_job(tmp_path, capsys):
    argv = ["train", "Pendulum-v1", "--seeds", "0-1", "--continuous", "--steps", "300", "--out", str(tmp_path), "--no-progress",
            "--eval-episodes", "1", "--set", "learning_starts=100", "--set", "policy_kwargs.n_components=4"]
    assert cli.main(argv) == 0
    for seed in (0, 1):
        folder = tmp_path / f"Pendulum-v1-s{seed}"
        run = runs.json.loads((folder / runs.RUN_FILE).read_text())
        assert run["continuous"] is True and run["batched"]["seeds"] == [0, 1]
        model = SGMMQ.load(folder / runs.MODEL_FILE)
        assert isinstance(model.action_space, gym.spaces.Box) and model.num_timesteps == 300
    capsys.readouterr()
    assert cli.main(["eval", str(tmp_path / "Pendulum-v1-s1" / runs.MODEL_FILE), "--episodes", "1"]) == 0
    assert "Pendulum-v1: score" in capsys.readouterr().out
