"""The task registry: the suite fills it, the agent reads it, the core never imports the suite."""

import ast
import pathlib

import gymnasium as gym
import pytest
from stable_baselines3.common.env_util import make_vec_env

from sgmmq import SGMMQ, registry
from sgmmq.envs import TASKS

FAKE = "RegistryFakeCartPole-v0"
BOX = ((-1.0, -2.0, -0.5, -4.0), (1.0, 2.0, 0.5, 4.0))
ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_task():
    gym.register(FAKE, entry_point="gymnasium.envs.classic_control:CartPoleEnv", max_episode_steps=50)
    registry.register_task(FAKE, *BOX, hyperparameters={"batch_size": 16, "policy_kwargs": {"n_components": 8}})
    yield FAKE
    registry.unregister_task(FAKE)
    del gym.registry[FAKE]


def test_every_suite_task_is_registered_with_its_box_and_its_declared_defaults():
    for env_id, task in TASKS.items():
        assert registry.declared_box(env_id) == (task.obs_low, task.obs_high)
        assert registry.task_hyperparameters(env_id) == task.sgmmq_defaults
    # only LunarLander has defaults of its own (issue 16); the classic-control tasks take the signature's
    assert [env_id for env_id, task in TASKS.items() if task.sgmmq_defaults] == ["LunarLander-v3"]


def test_lunarlander_trains_with_its_registered_defaults_unless_told_otherwise():
    pytest.importorskip("Box2D")
    model = SGMMQ("GMMPolicy", "LunarLander-v3")
    assert (model.mean_init, model.buffer_size, model.double_q, model.n_steps) == ("data", 50_000, True, 3)
    assert model.policy.q_net.n_components == 64
    # the batched trainer builds its agents the same way (one ordinary SGMMQ per seed)
    from sgmmq.batched import BatchedSGMMQ
    batched = BatchedSGMMQ("LunarLander-v3", [0, 1], learning_starts=10)
    assert (batched.window_size, batched.double_q, batched.n_steps, batched.q_net.n_components) == (50_000, True, 3, 64)
    assert not batched._means_initialized  # data-placed means wait for the first visited points
    explicit = SGMMQ("GMMPolicy", "LunarLander-v3", mean_init="uniform", window_size=1_000, n_steps=1,
                     policy_kwargs={"n_components": 8})
    assert (explicit.mean_init, explicit.buffer_size, explicit.double_q, explicit.n_steps) == ("uniform", 1_000, True, 1)
    assert explicit.policy.q_net.n_components == 8


def test_a_registered_task_gives_its_box_and_hyperparameters(fake_task):
    model = SGMMQ("GMMPolicy", fake_task, learning_starts=10)
    assert [list(b) for b in model.policy.obs_bounds] == [list(b) for b in BOX]
    assert model.batch_size == 16 and model.policy.q_net.n_components == 8
    assert model.learning_starts == 10  # an argument the task does not set keeps the caller's value
    # a VecEnv of the task is recognized by its spec, as SB3 wraps it
    vec = SGMMQ("GMMPolicy", make_vec_env(fake_task, n_envs=1, seed=0))
    assert vec.batch_size == 16


def test_explicit_arguments_win_even_when_equal_to_the_default(fake_task):
    model = SGMMQ("GMMPolicy", fake_task, batch_size=32, policy_kwargs={"n_components": 4})
    assert model.batch_size == 32 and model.policy.q_net.n_components == 4
    # the model's changes (obs_bounds added to policy_kwargs) never reach the registry
    SGMMQ("GMMPolicy", fake_task)
    assert registry.task_hyperparameters(fake_task) == {"batch_size": 16, "policy_kwargs": {"n_components": 8}}


def test_unregistered_envs_take_the_signature_defaults():
    model = SGMMQ("GMMPolicy", "CartPole-v1")
    assert model.batch_size == 32 and model.policy.obs_bounds[1][1] == pytest.approx(3.0)


def test_bad_registrations_are_refused(fake_task):
    with pytest.raises(ValueError, match="obs_low has 1 entries and obs_high 2"):
        registry.register_task("X-v0", [0.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="below its obs_high"):
        registry.register_task("X-v0", [1.0], [0.0])
    registry.register_task(fake_task, *BOX, hyperparameters={"batch_sise": 16})
    with pytest.raises(ValueError, match="'batch_sise', which is not an SGMMQ argument"):
        SGMMQ("GMMPolicy", fake_task)


def _sgmmq_imports(path: pathlib.Path) -> set[str]:
    """The sgmmq modules a file imports (absolute imports, at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.split(".")[0] == "sgmmq"}


def _file_of(module: str) -> pathlib.Path | None:
    parts = module.split(".")[1:]
    folder = ROOT / "sgmmq"
    if parts[:1] in (["envs"], ["baselines"]):
        folder, parts = ROOT / parts[0], parts[1:]
    for candidate in (folder.joinpath(*parts).with_suffix(".py"), folder.joinpath(*parts) / "__init__.py"):
        if parts and candidate.is_file():
            return candidate
    return None


def test_the_core_does_not_import_the_suite_or_the_baselines():
    """Everything sgmmq.agent imports, transitively, stays out of sgmmq.envs and sgmmq.baselines
    (``import sgmmq`` itself imports the suite, which registers its tasks: the other direction)."""
    seen, todo = set(), ["sgmmq.agent"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)  # every name imported, whether or not it is a module of its own
        path = _file_of(module)
        todo += sorted(_sgmmq_imports(path)) if path is not None else []
    assert {"sgmmq.agent", "sgmmq.registry", "sgmmq.policies", "sgmmq.mixture"} <= seen
    assert not [m for m in seen if m.startswith(("sgmmq.envs", "sgmmq.baselines"))], sorted(seen)


@pytest.fixture
def cartpole_defaults():
    """CartPole-v1's registration with one default hyperparameter, restored afterwards."""
    box = registry.declared_box("CartPole-v1")
    registry.register_task("CartPole-v1", *box, hyperparameters={"batch_size": 16})
    yield
    registry.register_task("CartPole-v1", *box, hyperparameters={})


def test_train_tuning_the_study_and_the_zoo_get_the_registered_defaults(cartpole_defaults) -> None:
    from sgmmq import runs, zoo
    from sgmmq.methods import build

    task = runs.resolve_task("CartPole-v1")
    assert runs.build_model(task, 0, {}).batch_size == 16  # sgmmq train and sgmmq tune (tuning.score) build here
    assert runs.build_model(task, 0, {"batch_size": 32}).batch_size == 32
    model, recorded = build("sgmmq", task, 0, "n_components", 8)  # the study's builder
    assert model.batch_size == 16 and "batch_size" not in recorded
    import rl_zoo3

    zoo.register()  # the Zoo constructs ALGOS["sgmmq"](env=..., **its yml row): the class itself
    assert rl_zoo3.ALGOS["sgmmq"] is SGMMQ and rl_zoo3.ALGOS["sgmmq"]("GMMPolicy", "CartPole-v1").batch_size == 16


def test_a_sweep_can_train_without_the_registered_defaults(cartpole_defaults) -> None:
    """Ablations are measured against the signature's defaults (``task_defaults: false``), and their
    finished runs keep matching after a task gains defaults of its own."""
    from sgmmq.methods import build
    from sgmmq.study import config

    sweep = {"name": "t", "tasks": ["CartPole-v1"], "seeds": 1, "steps": 100,
             "methods": [{"method": "sgmmq", "n_components": [4]}, {"method": "sgmmq", "label": "b8", "n_components": [4],
                                                                   "overrides": {"batch_size": 8}}]}
    with_defaults, without = config.expand(sweep), config.expand({**sweep, "task_defaults": False})
    assert [run.task_defaults for run in with_defaults] == [{"batch_size": 16}] * 2
    assert all("task_defaults" not in run.settings() for run in without)  # as files written before any defaults
    for run, batch in zip(with_defaults, (16, 8)):
        assert build(run.method, run.task, 0, run.budget_key, run.budget, run.overrides, task_defaults=run.task_defaults)[0].batch_size == batch
    for run, batch in zip(without, (32, 8)):  # the signature's 32 unless the entry sets it
        model, recorded = build(run.method, run.task, 0, run.budget_key, run.budget, run.overrides, task_defaults=run.task_defaults)
        assert model.batch_size == batch and recorded["batch_size"] == batch
    # the batched jobs' arguments come from the same function
    from sgmmq.methods import sgmmq_hyperparameters

    assert sgmmq_hyperparameters("n_components", 4, {}, "CartPole-v1", {}) == {"policy_kwargs": {"n_components": 4}, "batch_size": 32}
    assert sgmmq_hyperparameters("n_components", 4, {}, "CartPole-v1", {"batch_size": 16}) == {"policy_kwargs": {"n_components": 4}}
    with pytest.raises(ValueError, match="task_defaults must be true or false"):
        config.expand({**sweep, "task_defaults": "no"})
