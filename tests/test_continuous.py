"""Continuous actions: the greedy argmax over the action box, gradients, the agent, save/load, errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger

from sgmmq import SGMMQ
from sgmmq.envs import TASKS, make_env, make_vec_env
from sgmmq.mixture import GMMQFunction, MixtureValue


def random_mixture(state_dim: int, action_dim: int, seed: int, n_components: int = 6) -> GMMQFunction:
    """A mixture with weights of both signs, means spread a little past the box, random anisotropic precisions."""
    torch.manual_seed(seed)
    q = GMMQFunction(state_dim, None, action_dim=action_dim, n_components=n_components).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        d = q.dim
        q.euclidean[:, 0] = torch.randn(n_components, generator=g, dtype=torch.float64)
        q.euclidean[:, 1] = torch.randn(n_components, generator=g, dtype=torch.float64).abs() + 0.2
        q.euclidean[:, 2:] = torch.rand(n_components, d, generator=g, dtype=torch.float64) * 2.4 - 1.2
        a = torch.randn(n_components, d, d, generator=g, dtype=torch.float64)
        scale = torch.rand(n_components, 1, 1, generator=g, dtype=torch.float64) * 8 + 1
        q.precisions.copy_(scale * (a @ a.transpose(-1, -2) / d + 0.5 * torch.eye(d, dtype=torch.float64)))
        q.offset.fill_(0.3)
    return q


def dense_grid(action_dim: int, n: int) -> torch.Tensor:
    axis = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    return torch.cartesian_prod(*[axis] * action_dim).reshape(-1, action_dim)


@pytest.mark.parametrize("action_dim, grid_points, n_mixtures", [(1, 2001, 20), (2, 161, 10)])
def test_greedy_reaches_the_dense_grid_maximum_and_stays_in_the_box(action_dim, grid_points, n_mixtures):
    grid = dense_grid(action_dim, grid_points)
    worst = 1.0
    for seed in range(n_mixtures):
        q = random_mixture(3, action_dim, seed)
        states = torch.rand(8, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1
        actions, values = q.greedy(states)
        assert actions.shape == (8, action_dim)
        assert (actions.abs() <= 1.0).all()
        torch.testing.assert_close(values, q.q_sa(states, actions))  # the value is Q at the returned action
        with torch.no_grad():
            on_grids = q.q_z(torch.cat([states.repeat_interleave(len(grid), 0), grid.repeat(8, 1)], 1)).reshape(8, -1)
        for i, on_grid in enumerate(on_grids):
            fraction = (values[i] - on_grid.min()) / (on_grid.max() - on_grid.min())
            worst = min(worst, float(fraction))
    assert worst >= 0.999, f"worst greedy value at {worst:.5f} of the grid's range"


def test_greedy_without_polish_is_only_the_best_candidate():
    """The polish steps matter: with none, some states fall short of the grid maximum (so the test above can fail)."""
    grid = dense_grid(1, 2001)
    shortfalls = 0
    for seed in range(20):
        q = random_mixture(3, 1, seed)
        q.argmax_steps = 0
        states = torch.rand(8, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1
        _, values = q.greedy(states)
        with torch.no_grad():
            on_grids = q.q_z(torch.cat([states.repeat_interleave(len(grid), 0), grid.repeat(8, 1)], 1)).reshape(8, -1)
        for i, on_grid in enumerate(on_grids):
            shortfalls += int((values[i] - on_grid.min()) / (on_grid.max() - on_grid.min()) < 0.999)
    assert shortfalls > 0


@pytest.mark.parametrize("normalized", [False, True])
def test_the_conditional_mixture_over_the_action_matches_the_joint_one_and_autograd(normalized):
    q = random_mixture(2, 2, 0)
    q.normalized = normalized
    states = torch.rand(5, 2, dtype=torch.float64) * 2 - 1
    actions = (torch.rand(5, 3, 2, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    value = q.q_sa(states.repeat_interleave(3, 0), actions.reshape(15, 2)).reshape(5, 3)
    (grad,) = torch.autograd.grad(value.sum(), actions)
    value_and_grad, centres = q.conditional(states)
    got_value, got_grad = value_and_grad(actions.detach())
    torch.testing.assert_close(got_value, value.detach())
    torch.testing.assert_close(got_grad, grad)
    # each centre is its component's conditional maximizer: the joint bump's action-gradient vanishes there
    for k in range(q.n_components):  # d/da exp(-(z - m)^T P (z - m) / 2) is zero where (P (z - m))_a is
        z = torch.cat([states, centres[:, k]], 1)
        slope = ((z - q.means[k].detach()) @ q.precisions[k].detach())[:, 2:]
        torch.testing.assert_close(slope, torch.zeros(5, 2, dtype=torch.float64))


@pytest.mark.parametrize("action_dim", [1, 2])
def test_continuous_mixture_gradients_match_finite_differences(action_dim):
    q = random_mixture(2, action_dim, 1, n_components=3)
    states = torch.rand(4, 2, dtype=torch.float64) * 2 - 1
    actions = torch.rand(4, action_dim, dtype=torch.float64) * 2 - 1
    z = q.encode(states, actions).requires_grad_(True)
    euclidean = q.euclidean.detach().clone().requires_grad_(True)
    offset = q.offset.detach().clone().requires_grad_(True)
    precisions = q.precisions.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda *args: MixtureValue.apply(*args, False), (z, euclidean, offset, precisions))


@pytest.mark.parametrize(
    "space, message",
    [
        (spaces.Box(-np.inf, np.inf, shape=(1,)), "bounded Box action space"),
        (spaces.Box(np.array([-1.0, -np.inf]), np.array([1.0, 1.0])), "bounded Box action space"),
        (spaces.Box(-1.0, 1.0, shape=(2, 2)), "1-D Box actions"),
        (spaces.MultiDiscrete([2, 3]), "Discrete or a bounded 1-D Box"),
    ],
)
def test_unsupported_action_spaces_get_a_clear_error(space, message):
    class Env(gym.Env):
        observation_space = spaces.Box(-1.0, 1.0, shape=(2,))
        action_space = space

    with pytest.raises(ValueError, match=message):
        SGMMQ("GMMPolicy", Env())


def test_exploration_noise_is_refused_for_discrete_actions():
    with pytest.raises(ValueError, match="exploration_noise is for Box"):
        SGMMQ("GMMPolicy", make_vec_env("CartPole-v1"), exploration_noise=0.1)


def test_both_forms_of_the_box_action_tasks():
    for env_id in ("Pendulum-v1", "MountainCarContinuous-v0", "LunarLanderContinuous-v3"):
        assert isinstance(make_env(env_id).action_space, spaces.Discrete)
        assert isinstance(make_env(env_id, continuous=True).action_space, spaces.Box)
    lander = make_env("LunarLanderContinuous-v3", continuous=True)
    assert lander.action_space.shape == (2,) and lander.unwrapped.continuous
    assert make_env("LunarLanderContinuous-v3").action_space.n == 9
    assert TASKS["LunarLanderContinuous-v3"].box[0].tolist() == TASKS["LunarLander-v3"].box[0].tolist()
    assert isinstance(make_vec_env("LunarLanderContinuous-v3", n_envs=2, continuous=True).action_space, spaces.Box)
    with pytest.raises(ValueError, match="has discrete actions: it has no continuous form"):
        make_env("CartPole-v1", continuous=True)


def quiet(model: SGMMQ) -> SGMMQ:
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def test_pendulum_trains_on_a_vec_env_and_save_load_reproduces_actions(tmp_path):
    torch.set_num_threads(1)
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0, continuous=True)
    model = quiet(SGMMQ("GMMPolicy", env, seed=0, learning_starts=100, window_size=500, prune_interval=50,
                        pool="adaptive", prune_min_support=0.5, exploration_noise=0.1, double_q=True,
                        policy_kwargs=dict(n_components=8)))
    assert model.policy.q_net.dim == 4
    model.learn(600)
    assert sum(born for _, born, _, _ in model.pool_events) > 0  # births at visited (state, action) points
    assert model.replay_buffer.actions.dtype == np.float32 and np.abs(model.replay_buffer.actions).max() <= 1.0
    obs = env.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (2, 1) and np.all(np.abs(actions) <= 2.0)
    model.save(tmp_path / "model.zip")
    loaded = SGMMQ.load(tmp_path / "model.zip")
    assert loaded.policy.q_net.continuous and loaded.num_parameters() == model.num_parameters()
    observations = np.random.default_rng(0).uniform([-1, -1, -8], [1, 1, 8], size=(50, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0],
                                  model.predict(observations, deterministic=True)[0])
    mean, _ = evaluate_policy(loaded, make_env("Pendulum-v1", seed=1, continuous=True), n_eval_episodes=1)
    assert np.isfinite(mean)


def test_residual_target_and_two_dimensional_actions_train():
    env = make_vec_env("LunarLanderContinuous-v3", n_envs=1, seed=0, continuous=True)
    model = quiet(SGMMQ("GMMPolicy", env, seed=0, learning_starts=50, target="residual", mean_init="data",
                        policy_kwargs=dict(n_components=4)))
    model.learn(120)
    assert model.policy.q_net.dim == 10
    action, _ = model.predict(env.reset(), deterministic=True)
    assert action.shape == (1, 2) and np.all(np.abs(action) <= 1.0)


def test_the_picture_of_a_2d_state_shows_the_continuous_greedy_action(tmp_path):
    from sgmmq import inspection

    env = make_vec_env("MountainCarContinuous-v0", n_envs=1, seed=0, continuous=True)
    model = quiet(SGMMQ("GMMPolicy", env, seed=0, learning_starts=50, policy_kwargs=dict(n_components=5)))
    model.learn(100)
    rows = inspection.components(model)
    assert len(rows) == 5 and all(row["action"].shape == (1,) for row in rows)
    states = np.array([[-0.5, 0.2], [0.3, -0.9]], dtype=np.float32)
    expected = np.rint((model.policy.q_net.greedy(torch.as_tensor(states))[0][:, 0].numpy() + 1) * 10).astype(int)
    np.testing.assert_array_equal(inspection.greedy_colors(model.policy.q_net, states), expected)
    inspection.draw(model, tmp_path / "g.png")
    inspection.draw(model, tmp_path / "r.png", "title")
    assert (tmp_path / "g.png").stat().st_size > 0 and (tmp_path / "r.png").stat().st_size > 0


def test_the_study_runs_the_continuous_method_and_refuses_it_on_discrete_tasks():
    from sgmmq.study import config, runner

    sweep = {"name": "c", "tasks": ["Pendulum-v1"], "seeds": 1, "steps": 300, "eval_every": 150, "eval_episodes": 1,
             "final_eval_episodes": 1, "methods": [{"method": "sgmmq_continuous", "n_components": [4],
                                                     "overrides": {"learning_starts": 100}}]}
    (run,) = config.expand(sweep)
    assert run.id == "Pendulum-v1__sgmmq_continuous__k4__s0"
    outcome = runner.execute(run.settings())
    result = outcome["result"].to_json()
    assert result["status"] == "ok", result.get("error")
    assert result["params"]["inference"] == 4 * (1 + 4 + 10) + 1 and outcome["model_zip"]
    with pytest.raises(ValueError, match="needs Box-action tasks"):
        config.check({**sweep, "tasks": ["Pendulum-v1", "CartPole-v1"]})
    with pytest.raises(ValueError, match="needs Box-action tasks"):
        config.check({**sweep, "tasks": ["CartPole-v1"], "methods": [{"method": "td3_zoo"}]})
    config.read("studies/continuous.yml")  # the study config of the issue is valid


def test_cli_trains_evaluates_and_resumes_the_continuous_form(tmp_path):
    import subprocess
    import sys

    def sgmmq(*args):
        return subprocess.run([sys.executable, "-m", "sgmmq.cli", *map(str, args)], capture_output=True, text=True, timeout=300)

    out = tmp_path / "p"
    tiny = ["--steps", "400", "--checkpoint-every", "200", "--eval-episodes", "1", "--no-progress",
            "--set", "learning_starts=100", "--set", "policy_kwargs.n_components=4"]
    stopped = sgmmq("train", "Pendulum-v1", "--continuous", "--out", out, *tiny, "--stop-after", "200")
    assert stopped.returncode == 0, stopped.stderr
    resumed = sgmmq("train", "--resume", "--out", out, "--eval-episodes", "1", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    model = SGMMQ.load(out / "model.zip")
    assert isinstance(model.action_space, spaces.Box) and model.num_timesteps == 400
    assert "Pendulum-v1: score" in resumed.stdout  # evaluated on the Box-action form the model acts in
    # (CartPole-v1 --continuous, which has no Box form, is refused in tests/test_cli.py)


def test_tuning_scores_the_continuous_form():
    from sgmmq import tuning

    hyperparameters = {"learning_starts": 50, "policy_kwargs": {"n_components": 4}}
    score = tuning.score(TASKS["Pendulum-v1"], hyperparameters, seed=0, steps=100, eval_episodes=1, continuous=True)
    assert np.isfinite(score)
    with pytest.raises(ValueError, match="no continuous form"):
        tuning.score(TASKS["CartPole-v1"], hyperparameters, seed=0, steps=100, eval_episodes=1, continuous=True)


def test_export_refuses_a_continuous_model_with_a_clear_error(tmp_path):
    from sgmmq.export import export

    model = SGMMQ("GMMPolicy", "Pendulum-v1", policy_kwargs=dict(n_components=4), seed=0)
    with pytest.raises(ValueError, match="continuous"):
        export(model, "npz", tmp_path / "p.npz")
    assert not (tmp_path / "p.npz").exists()
