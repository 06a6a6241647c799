"""The experiments that had their own runners are configs of the study engine: they run end to end."""

import copy
import json
import pathlib

import pytest

from sgmmq.study import config, report, runner

STUDIES = pathlib.Path(__file__).resolve().parents[1] / "studies"


def test_an_entry_sets_its_own_step_budget_and_its_evaluation_interval_follows() -> None:
    runs = config.expand(config.read(STUDIES / "cartpole_baselines.yml"))
    steps = {run.method: run.steps for run in runs}
    assert steps["a2c_zoo"] == 500_000 and steps["ppo_zoo"] == 100_000 and steps["dqn_zoo"] == steps["dqn_sb3"] == 50_000
    assert {run.eval_every for run in runs if run.method == "a2c_zoo"} == {50_000}
    per_task = {"name": "x", "tasks": ["CartPole-v1", "Acrobot-v1"], "steps": 1000,
                "methods": [{"method": "dqn_zoo", "steps": {"default": 300, "Acrobot-v1": 700}}, {"method": "sgmmq"}]}
    assert {(r.task, r.method): r.steps for r in config.expand(per_task)} == {
        ("CartPole-v1", "dqn_zoo"): 300, ("Acrobot-v1", "dqn_zoo"): 700, ("CartPole-v1", "sgmmq"): 1000, ("Acrobot-v1", "sgmmq"): 1000}


@pytest.mark.parametrize("steps, message", [
    (0, r"methods\[0\]: steps must be an integer >= 1, got 0"),
    ("5e5", r"methods\[0\]: steps must be an integer >= 1, got '5e5'"),
    (None, r"methods\[0\]: steps must be an integer >= 1, got None"),
    ({"MountainCar-v0": 100}, r"methods\[0\]: steps.MountainCar-v0: 'MountainCar-v0' is not one of this config's tasks"),
])
def test_bad_entry_steps_are_refused_before_any_run(steps, message) -> None:
    bad = {"tasks": ["CartPole-v1"], "methods": [{"method": "a2c_zoo", "steps": steps}]}
    with pytest.raises(ValueError, match=message):
        config.check(bad)


def _tiny(path: pathlib.Path) -> dict:
    """The config at a tiny budget: one seed, 200 steps for every entry, short evaluations."""
    tiny = copy.deepcopy(config.read(path))
    tiny.update(seeds=1, steps=200, eval_every=100, eval_episodes=1, final_eval_episodes=2)
    for entry in tiny["methods"]:
        if "steps" in entry:
            entry["steps"] = 200
    return tiny


@pytest.mark.parametrize("name", ["ablation", "cartpole_baselines", "timing"])
def test_the_retired_runners_configs_run_end_to_end_and_report(name: str, tmp_path: pathlib.Path) -> None:
    tiny = _tiny(STUDIES / f"{name}.yml")
    counts = runner.sweep(tiny, tmp_path, workers=2, progress=False)
    planned = config.expand(tiny)
    assert counts == {"runs": len(planned), "skipped": 0, "ok": len(planned), "failed": 0}
    records = [json.loads((tmp_path / "runs" / f"{run.id}.json").read_text()) for run in planned]
    assert all(r["n_timesteps"] >= 200 and len(r["episode_returns"]) == 2 for r in records)
    readme = report.report(tmp_path, reps=50, curve_reps=20)
    text = readme.read_text()
    assert all(f"| {run.config_name} |" in text for run in planned)
