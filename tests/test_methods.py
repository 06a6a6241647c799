"""The one builder and the one evaluation/parameter count that every runner shares."""

import numpy as np
import pytest

from sgmmq.evaluation import EVAL_SEED_OFFSET, count_parameters, evaluate, score_summary
from sgmmq.envs import get_task
from sgmmq.methods import build


def test_sgmmq_builds_with_the_tasks_gamma_and_its_budget_unless_overridden() -> None:
    model, recorded = build("sgmmq", "MountainCar-v0", 0, "n_components", 8)
    assert model.gamma == 0.98 and model.policy.q_net.n_components == 8
    assert recorded == {"gamma": 0.98, "policy_kwargs": {"n_components": 8}}
    model, recorded = build("sgmmq", "MountainCar-v0", 0, overrides={"gamma": 0.9, "batch_size": 16})
    assert model.gamma == 0.9 and model.batch_size == 16 and recorded == {"gamma": 0.9, "batch_size": 16}
    # the size is S-GMM-QF's (components x (1 + D + D(D+1)/2) + offset), counted by the shared rule
    d = 2 + 1  # MountainCar: 2 state dimensions + the scalar action encoding
    assert count_parameters(model)["inference"] == model.policy.q_net.n_components * (1 + d + d * (d + 1) // 2) + 1


def test_a_baseline_builds_at_its_width_and_records_its_step_budget() -> None:
    model, recorded = build("dqn_zoo", "CartPole-v1", 0, "net_arch", [16, 16], steps=1_000)
    assert recorded["n_timesteps"] == 1_000 and recorded["algo_kwargs"]["policy_kwargs"]["net_arch"] == [16, 16]
    assert count_parameters(model)["inference"] == 4 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2


def test_evaluation_runs_deterministic_episodes_on_its_own_seed() -> None:
    task = get_task("CartPole-v1")
    model, _ = build("sgmmq", task, 0)
    first, again = evaluate(model, task, 3, n_episodes=2), evaluate(model, task, 3, n_episodes=2)
    assert len(first) == 2 and np.array_equal(first, again)
    summary = score_summary(task, first)
    assert summary["score_mean"] == pytest.approx(first.mean()) and summary["normalized_score"] == pytest.approx(first.mean() / 500)
    assert EVAL_SEED_OFFSET == 100_000  # recorded runs were evaluated on seed + 100000: changing it changes every score
