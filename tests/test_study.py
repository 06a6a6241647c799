"""The study: sweep configs, the resumable runner (process pool and Ray) and the report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from sgmmq.study import config, report, runner, statistics, tables
from sgmmq.study.record import RunRecord

TINY = {
    "name": "tiny",
    "tasks": ["CartPole-v1"],
    "seeds": 2,
    "steps": 300,
    "eval_every": 150,
    "eval_episodes": 2,
    "final_eval_episodes": 3,
    "methods": [
        {"method": "sgmmq", "n_components": [4], "overrides": {"learning_starts": 100}},
        {"method": "dqn_zoo", "net_arch": [[8]]},
        # passes the config's checks (the key exists), fails when the run builds its model
        {"method": "sgmmq", "label": "broken", "overrides": {"policy_kwargs": {"action_encoding": "binary"}}},
    ],
}
OK_IDS = [f"CartPole-v1__{c}__s{s}" for s in (0, 1) for c in ("sgmmq__k4", "dqn_zoo__w8")]
FAILED_IDS = [f"CartPole-v1__broken__default__s{s}" for s in (0, 1)]


def bench(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "SB3_LOGDIR": os.environ.get("SB3_LOGDIR", "/tmp/sb3_test_study")}
    return subprocess.run([sys.executable, "-m", "sgmmq.cli", "bench", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


def read(out: Path, run_id: str) -> dict:
    return json.loads((out / "runs" / f"{run_id}.json").read_text())


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("study")
    path = folder / "tiny.yml"
    path.write_text(yaml.safe_dump(TINY))
    out = folder / "out"
    done = bench(path, "--out", out, "--workers", "2", "--no-progress")
    assert done.returncode == 0, done.stderr
    return path, out, done.stdout


def test_the_grid_has_one_run_per_task_method_budget_and_seed_with_stable_ids() -> None:
    sweep = {"tasks": ["CartPole-v1", "MountainCar-v0"], "seeds": {"default": 2, "CartPole-v1": 3},
             "steps": {"default": None, "CartPole-v1": 1000},
             "methods": [{"method": "sgmmq", "n_components": [4, 8]}, {"method": "dqn_zoo", "net_arch": [[4], [16, 16]]},
                         {"method": "dqn_rigl", "live_budget": [500], "tasks": ["MountainCar-v0"]}]}
    runs = config.expand(sweep)
    assert len(runs) == 3 * 4 + 2 * 5
    assert len({r.id for r in runs}) == len(runs) and [r.id for r in runs] == [r.id for r in config.expand(sweep)]
    ids = {r.id for r in runs}
    assert {"CartPole-v1__sgmmq__k8__s2", "CartPole-v1__dqn_zoo__w16x16__s0", "MountainCar-v0__dqn_rigl__b500__s1"} <= ids
    assert "CartPole-v1__dqn_rigl__b500__s0" not in ids
    car = next(r for r in runs if r.task == "MountainCar-v0")
    assert car.steps == 120_000 and car.final_eval_episodes == 20  # the task's budget and evaluation
    assert next(r for r in runs if r.task == "CartPole-v1").steps == 1000
    first_of = lambda task, seed: next(i for i, r in enumerate(runs) if (r.task, r.seed) == (task, seed))  # noqa: E731
    assert first_of("MountainCar-v0", 0) < first_of("CartPole-v1", 1)  # a partial sweep covers every task
    assert runs[-1].task == "CartPole-v1" and runs[-1].seed == 2  # the task with more seeds finishes last
    full = config.expand(config.read("studies/full.yml"))
    assert {r.seed for r in full if r.task == "CartPole-v1"} == set(range(10))
    assert {r.seed for r in full if r.task == "Acrobot-v1"} == set(range(5))
    for bad in ({**sweep, "tasks": ["Foo-v0"]}, {**sweep, "methods": [{"method": "sgmmq", "net_arch": [[4]]}]},
                {**sweep, "typo": 1}, {**sweep, "methods": [{"method": "dqn_zoo"}, {"method": "dqn_zoo"}]}):
        with pytest.raises(ValueError):
            config.expand(bad)


def test_an_entry_can_run_a_subset_of_its_tasks_seeds() -> None:
    sweep = {"tasks": ["CartPole-v1", "MountainCar-v0"], "seeds": {"default": 3, "CartPole-v1": 5},
             "methods": [{"method": "sgmmq", "n_components": [4]},
                         {"method": "dqn_zoo", "net_arch": [[4]], "seeds": {"default": 2, "MountainCar-v0": [0, 2]}}]}
    runs = config.expand(sweep)
    seeds = lambda task, method: sorted(r.seed for r in runs if (r.task, r.method) == (task, method))  # noqa: E731
    assert seeds("CartPole-v1", "sgmmq") == [0, 1, 2, 3, 4] and seeds("MountainCar-v0", "sgmmq") == [0, 1, 2]
    assert seeds("CartPole-v1", "dqn_zoo") == [0, 1] and seeds("MountainCar-v0", "dqn_zoo") == [0, 2]
    for entry_seeds, problem in ((6, "6 seeds, but CartPole-v1 has 5"), ([0, 7], "[7] are not among"), (0, "a count >= 1")):
        bad = {**sweep, "methods": [{"method": "dqn_zoo", "seeds": entry_seeds}]}
        with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
            config.expand(bad)


def test_a_sweep_writes_complete_runs_and_records_a_failing_one(swept: tuple[Path, Path, str]) -> None:
    _, out, stdout = swept
    assert "6 runs: 0 already done, 4 finished now, 2 failed" in stdout
    for run_id in OK_IDS:
        result = read(out, run_id)
        assert result["status"] == "ok" and result["n_timesteps"] >= 300
        steps = [p["step"] for p in result["curve"]]
        assert steps[0] == 0 and 150 in steps and steps[-1] == result["n_timesteps"] and steps == sorted(set(steps))
        assert result["curve"][-1]["score"] == result["score_mean"] and len(result["episode_returns"]) == 3
        assert result["params"]["inference"] > 0 and result["params"]["training"] >= result["params"]["inference"]
        assert result["train_seconds"] > 0 and "torch" in result["versions"] and result["settings"]["steps"] == 300
    sgmmq_run = read(out, OK_IDS[0])
    assert sgmmq_run["live_components"] == 4 and sgmmq_run["curve"][0]["live_components"] == 4
    assert sgmmq_run["settings"]["overrides"] == {"learning_starts": 100} and (out / sgmmq_run["model"]).exists()
    assert read(out, OK_IDS[1])["params"]["inference"] == 4 * 8 + 8 + 8 * 2 + 2  # dqn [8] on CartPole
    for run_id in FAILED_IDS:
        failed = read(out, run_id)
        assert failed["status"] == "failed" and "action_encoding" in failed["error"]


def test_a_tasks_registered_defaults_are_part_of_its_sgmmq_runs_settings(swept: tuple[Path, Path, str], monkeypatch) -> None:
    """A finished S-GMM-QF run made under other task defaults is not taken for one planned under today's."""
    from sgmmq import registry

    _, out, _ = swept
    planned = config.expand(TINY)
    sgmmq_runs = [run for run in planned if run.method == "sgmmq" and runner.is_complete(out, run)]
    assert sgmmq_runs and all("task_defaults" not in run.settings() for run in planned)
    box = registry.declared_box("CartPole-v1")
    monkeypatch.setitem(registry._TASKS, "CartPole-v1", registry.TaskEntry(*box, {"batch_size": 16}))
    replanned = {run.id: run for run in config.expand(TINY)}
    for run in sgmmq_runs:
        assert replanned[run.id].settings()["task_defaults"] == {"batch_size": 16}
        assert not runner.is_complete(out, replanned[run.id])
    baselines = [run for run in planned if run.method != "sgmmq" and runner.is_complete(out, run)]
    assert baselines and all(runner.is_complete(out, replanned[run.id]) for run in baselines)


def test_a_rerun_skips_finished_runs_and_redoes_broken_ones(swept: tuple[Path, Path, str]) -> None:
    path, out, _ = swept
    before = {run_id: (out / "runs" / f"{run_id}.json").stat().st_mtime_ns for run_id in OK_IDS}
    truncated = out / "runs" / f"{OK_IDS[2]}.json"
    score = read(out, OK_IDS[2])["score_mean"]
    truncated.write_text(truncated.read_text()[:200])  # a run killed mid-write (without the atomic rename)
    (out / "runs" / "leftover.tmp").write_text("{")
    done = bench(path, "--out", out, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "6 runs: 3 already done, 1 finished now, 2 failed" in done.stdout  # failed runs are retried
    assert not list((out / "runs").glob("*.tmp"))
    assert read(out, OK_IDS[2])["score_mean"] == score  # redone, same seed, same score
    for run_id in (OK_IDS[0], OK_IDS[1], OK_IDS[3]):
        assert (out / "runs" / f"{run_id}.json").stat().st_mtime_ns == before[run_id]


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc for the workers")
def test_killing_a_sweep_stops_its_workers_and_keeps_it_resumable(tmp_path: Path) -> None:
    import psutil

    path = tmp_path / "long.yml"
    # two workers: the S-GMM-QF seeds' batched job and a DQN run
    path.write_text(yaml.safe_dump({**TINY, "steps": 200_000, "methods": TINY["methods"][:2]}))
    env = {**os.environ, "SB3_LOGDIR": str(tmp_path / "sb3")}
    driver = subprocess.Popen([sys.executable, "-m", "sgmmq.cli", "bench", str(path), "--out", str(tmp_path / "out"),
                               "--workers", "2", "--no-progress"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    parent = psutil.Process(driver.pid)
    deadline = time.monotonic() + 120
    while len([c for c in parent.children() if "spawn_main" in " ".join(c.cmdline())]) < 2:
        assert time.monotonic() < deadline and driver.poll() is None, "the sweep did not start its workers"
        time.sleep(0.5)
    workers = [c for c in parent.children() if "spawn_main" in " ".join(c.cmdline())]
    driver.terminate()  # SIGTERM, as `kill` sends
    stdout, _ = driver.communicate(timeout=30)
    assert driver.returncode != 0 and "rerun the same command to resume" in stdout
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers still running after the sweep was killed: {alive}"
    assert not list((tmp_path / "out" / "runs").glob("*.json"))  # nothing half-finished was recorded


def test_the_ray_backend_gives_the_same_results_as_the_local_pool(swept: tuple[Path, Path, str], tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    _, out, _ = swept
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # a local instance, started here
    try:
        counts = runner.sweep(TINY, tmp_path, backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert counts == {"runs": 6, "skipped": 0, "ok": 4, "failed": 2}
    for run_id in OK_IDS:
        mine, theirs = read(tmp_path, run_id), read(out, run_id)
        assert mine["episode_returns"] == theirs["episode_returns"]
        assert [p["score"] for p in mine["curve"]] == [p["score"] for p in theirs["curve"]]
        assert mine["params"] == theirs["params"]
    assert read(tmp_path, FAILED_IDS[0])["status"] == "failed"


def test_the_report_writes_tables_and_pictures(swept: tuple[Path, Path, str]) -> None:
    _, out, _ = swept
    readme = report.report(out, reps=200, curve_reps=100)
    text = readme.read_text()
    for png in ("return_vs_params.png", "live_components.png", "learning_curves_CartPole-v1.png", "gaussians_CartPole-v1.png"):
        assert (out / png).stat().st_size > 10_000 and f"]({png})" in text
    table = [line for line in text.splitlines() if line.startswith("| sgmmq | k4 |") or line.startswith("| dqn_zoo | w8 |")]
    assert len(table) == 2 and all("| 2 |" in line for line in table)  # one row per (method, budget), 2 seeds
    assert "| baseline | sgmmq k4 |" in text and "| dqn_zoo w8 | 2 |" in text  # improvement; aggregate
    assert text.count("| CartPole-v1__broken__default__s") == 2
    assert "Partial: 4 of 6 planned runs are in." in text  # the failing config's runs are missing
    for config in ("sgmmq k4", "dqn_zoo w8"):  # every run's final score, by seed
        scores = [read(out, f"CartPole-v1__{config.replace(' ', '__')}__s{s}")["score_mean"] for s in (0, 1)]
        assert f"| {config} | {scores[0]:.1f} | {scores[1]:.1f} |" in text
    runs = {run_id: read(out, run_id) for run_id in OK_IDS}
    per_1k = lambda config: np.mean([1000 * r["train_seconds"] / r["n_timesteps"]  # noqa: E731
                                     for r in runs.values() if r["config"] == config])
    ratio = per_1k("sgmmq k4") / per_1k("dqn_zoo w8")  # the only DQN width of this sweep is the reference
    assert f"| k4: {ratio:.2f} |" in text
    verdict = next(line for line in text.splitlines() if line.startswith("| CartPole-v1 | sgmmq k4 "))
    assert "dqn_zoo w8" in verdict and any(word in verdict for word in ("wins by", "loses by", "tie on score"))


def test_the_report_can_write_its_readme_elsewhere_with_relative_links(swept: tuple[Path, Path, str], tmp_path: Path) -> None:
    import shutil

    _, out, _ = swept
    shutil.copytree(out, tmp_path / "study")
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "README.md").write_text("# The agent's benchmark\n")
    readme = tmp_path / "README.md"
    done = subprocess.run([sys.executable, "-m", "sgmmq.cli", "report", str(tmp_path / "study"), "--readme", str(readme),
                           "--reps", "100", "--curve-reps", "50"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert "](study/return_vs_params.png)" in text and "](study/learning_curves_CartPole-v1.png)" in text
    assert "- [agent/](agent/README.md): The agent's benchmark" in text
    assert f"Generated by `sgmmq report {tmp_path / 'study'} --readme {readme} --reps 100 --curve-reps 50` from `study/runs/*.json`" in text
    assert (tmp_path / "study" / "return_vs_params.png").exists() and not (tmp_path / "return_vs_params.png").exists()
    fresh = report.report(tmp_path / "study", reps=50, curve_reps=20, readme=tmp_path / "new" / "README.md")
    assert "](../study/return_vs_params.png)" in fresh.read_text()  # its folder was made


def test_the_report_rewrites_only_the_summary_block_of_another_readme(swept: tuple[Path, Path, str], tmp_path: Path) -> None:
    _, out, _ = swept
    before, after = "# Project\n\nHand-written text.\n", "\n## Layout\n\nMore text.\n"
    main = tmp_path / "README.md"
    main.write_text(f"{before}{report.SUMMARY_BEGIN}\nstale numbers\n{report.SUMMARY_END}{after}")
    readme = report.report(out, reps=50, curve_reps=20, readme=tmp_path / "results" / "README.md", summary=main)
    text = main.read_text()
    assert text.startswith(f"{before}{report.SUMMARY_BEGIN}\n") and text.endswith(f"{report.SUMMARY_END}{after}")
    block = text[len(before) + len(report.SUMMARY_BEGIN) + 1:-len(report.SUMMARY_END + after)]
    assert "stale numbers" not in block and block.startswith("4 of 6 planned runs are in")
    assert "[results/README.md](results/README.md)" in block
    row = next(line for line in block.splitlines() if line.startswith("| CartPole-v1 |"))
    # the same verdict as the full table of the report, whose difference column decides it
    full = next(line for line in readme.read_text().splitlines() if line.startswith("| CartPole-v1 | sgmmq k4 "))
    diff = float(full.split(" | ")[3])
    assert ("tie" in row) == (abs(diff) <= 0.05) and ("loses by" in row) == (diff < -0.05)
    if abs(diff) <= 0.05:  # the only baseline, so also the cheapest match
        assert f"| tie ({diff:+.2f}); cheapest match dqn_zoo w8, " in row
    else:
        assert f" by {abs(diff):.2f}" in row and ("already matches it" in row) == (diff < 0)
    runs = [read(out, run_id) for run_id in OK_IDS]
    per_1k = {c: np.mean([1000 * r["train_seconds"] / r["n_timesteps"] for r in runs if r["config"] == c])
              for c in ("sgmmq k4", "dqn_zoo w8")}
    assert f"CartPole-v1 {per_1k['sgmmq k4'] / per_1k['dqn_zoo w8']:.2f}." in block
    report.report(out, reps=50, curve_reps=20, readme=readme, summary=main)
    assert main.read_text() == text  # regenerating changes nothing


def test_verdicts_of_a_partial_sweep_compare_methods_on_the_seeds_all_have_finished() -> None:
    def run(config: str, seed: int) -> RunRecord:
        return RunRecord(id=f"{config}{seed}", status="ok", settings={}, task="A", label=config, config=config, seed=seed)
    grouped = {"A": {"x": [run("x", s) for s in (0, 1, 2, 3)], "y": [run("y", s) for s in (1, 3)]},
               "B": {"x": [run("x", 0)], "y": [run("y", 1)]}}
    matched = statistics.matched_seeds(grouped)
    assert list(matched) == ["A"]  # B's configs share no seed
    assert {c: [r.seed for r in rs] for c, rs in matched["A"].items()} == {"x": [1, 3], "y": [1, 3]}


def test_compute_ratios_use_the_seeds_dqn_and_every_sgmmq_budget_share() -> None:
    def run(method: str, budget: object, seed: int, seconds: float) -> RunRecord:
        return RunRecord(id=f"{method}{budget}{seed}", status="ok", settings={}, task="MadeUp-v0", label=method, config=method,
                         seed=seed, method=method, budget=budget, train_seconds=seconds, n_timesteps=1000)
    configs = {"dqn_zoo w8": [run("dqn_zoo", [8], s, 2.0) for s in (0, 1)],
               # seed 2 ran later on a machine three times slower; DQN has not run it yet
               "sgmmq k4": [run("sgmmq", 4, s, t) for s, t in ((0, 1.0), (1, 1.0), (2, 3.0))],
               "sgmmq k8": [run("sgmmq", 8, s, t) for s, t in ((0, 3.0), (1, 1.0), (2, 3.0))]}
    reference, dqn, own, n = statistics.compute_ratios({"MadeUp-v0": configs})["MadeUp-v0"]
    assert (reference, dqn, own, n) == ("dqn_zoo w8", 2.0, {"k4": 1.0, "k8": 2.0}, 2)
    assert "| MadeUp-v0 | 2.00 (w8, 2 seeds) | k4: 1.00, k8: 2.00 | k4: 0.50, k8: 1.00 |" in tables.compute_table(
        {"MadeUp-v0": (reference, dqn, own, n)})


@pytest.mark.parametrize("content", ["# No markers\n", f"{report.SUMMARY_END}\nx\n{report.SUMMARY_BEGIN}\n",
                                     f"{report.SUMMARY_BEGIN}\n{report.SUMMARY_BEGIN}\n{report.SUMMARY_END}\n"])
def test_a_summary_file_without_one_ordered_pair_of_markers_is_refused_before_any_work(
        swept: tuple[Path, Path, str], tmp_path: Path, content: str) -> None:
    _, out, _ = swept
    main = tmp_path / "README.md"
    main.write_text(content)
    with pytest.raises(ValueError, match="summary begins.*left unchanged"):
        report.report(out, reps=50, curve_reps=20, readme=tmp_path / "new" / "README.md", summary=main)
    assert main.read_text() == content and not (tmp_path / "new").exists()
    with pytest.raises(FileNotFoundError, match="no such file"):
        report.report(out, reps=50, curve_reps=20, readme=tmp_path / "new" / "README.md", summary=tmp_path / "absent.md")


def test_iqm_intervals_and_improvement_are_rliables() -> None:
    from rliable import library, metrics
    from scipy.stats import trim_mean

    scores = np.random.default_rng(0).normal(size=(10, 3))
    other = scores + 0.5
    ours = statistics.iqm_intervals({"a": scores}, reps=300, seed=1)["a"]
    assert statistics.iqm_intervals({"a": scores}, reps=300, seed=1)["a"] == ours  # reproducible
    np.random.seed(1)  # rliable 1.2 bootstraps with NumPy's global generator
    _, interval = library.get_interval_estimates({"a": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]),
                                                 reps=300, random_state=np.random.RandomState(1))
    assert ours[0] == pytest.approx(trim_mean(scores.ravel(), 0.25))
    assert ours[1:] == pytest.approx(tuple(interval["a"][:, 0]))
    assert ours[1] < ours[0] < ours[2]
    poi = statistics.improvement({"b>a": (other, scores)}, reps=300, seed=1)["b>a"]
    assert poi[0] == pytest.approx(metrics.probability_of_improvement(other, scores)) and poi[0] > 0.5


def test_probability_of_improvement_and_curve_iqm_equal_rliables_per_call_metrics() -> None:
    from rliable import metrics

    rng = np.random.default_rng(3)
    for nx, ny, tasks in [(5, 5, 1), (10, 4, 3), (3, 7, 6)]:
        x = rng.integers(0, 4, size=(nx, tasks)).astype(float)  # small integers: many ties
        y = rng.integers(0, 4, size=(ny, tasks)).astype(float)
        assert statistics.probability_of_improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y), abs=1e-12)
        assert statistics.probability_of_improvement(x, x) == 0.5
    assert statistics.probability_of_improvement(np.ones((3, 2)), np.zeros((4, 2))) == 1.0
    curves = rng.normal(size=(7, 12))
    iqm, low, high = statistics.iqm_curves(curves, reps=100, seed=2)
    assert iqm == pytest.approx([metrics.aggregate_iqm(curves[:, t]) for t in range(12)])
    assert np.all(low <= iqm) and np.all(iqm <= high) and np.any(low < high)


def test_the_gaussians_of_a_2d_task_are_drawn_over_the_greedy_action(tmp_path: Path) -> None:
    from sgmmq import inspection, runs
    from sgmmq.envs import get_task

    task = get_task("MountainCar-v0")
    model = runs.build_model(task, 0, {"policy_kwargs": {"n_components": 5}})
    inspection.draw(model, tmp_path / "car.png", "untrained")
    assert (tmp_path / "car.png").stat().st_size > 10_000


def test_coverage_is_the_mahalanobis_distance_to_the_nearest_visited_state_under_the_state_marginal() -> None:
    """Closed forms on a hand-built 2-component model of MountainCar (state 2-D): a component whose
    state mean is a visited state is at 0; one 0.3 from the nearest visited state along s0, with state
    std 0.1 and a state-action correlation (so the conditional precision P_xx would say more), is at 3."""
    import torch

    from sgmmq import inspection, runs
    from sgmmq.envs import get_task

    model = runs.build_model(get_task("MountainCar-v0"), 0, {"policy_kwargs": {"n_components": 2}})
    q_net, policy = model.policy.q_net, model.policy
    scaled = torch.tensor([[0.0, 0.0], [0.5, -0.5]])
    raw = (scaled * policy.obs_half_width.cpu() + policy.obs_center.cpu()).numpy()
    np.testing.assert_allclose(inspection.scaled_states(model, raw), scaled.numpy(), atol=1e-6)
    d, dim = q_net.state_dim, q_net.dim
    covariance = torch.eye(dim, dtype=torch.float64) * 0.1**2
    covariance[0, d] = covariance[d, 0] = 0.8 * 0.1**2  # s0 correlated with the first action coordinate
    with torch.no_grad():
        q_net.euclidean[:, :2] = torch.tensor([[2.0, 1.0], [1.0, 1.0]])  # xi 2 and 1: components() order 0, 1
        q_net.euclidean[0, 2:2 + d] = torch.as_tensor(inspection.scaled_states(model, raw[1:]))[0]
        q_net.euclidean[1, 2:2 + d] = torch.tensor([0.5 + 0.3, -0.5])  # nearest visited state: (0.5, -0.5)
        q_net.precisions[1] = torch.linalg.inv(covariance).float()
    distances = inspection.coverage(model, raw)
    assert distances[0] == pytest.approx(0.0, abs=1e-6)
    assert distances[1] == pytest.approx(3.0, rel=1e-5)
    conditional = float(torch.linalg.inv(covariance)[0, 0].sqrt() * 0.3)  # 3 / sqrt(1 - 0.8^2) = 5: not what is asked
    assert conditional == pytest.approx(5.0) and distances[1] != pytest.approx(conditional)
    with pytest.raises(ValueError, match=r"shape \(N, 2\), got shape \(2, 3\)"):
        inspection.coverage(model, np.zeros((2, 3)))


def test_the_visited_states_are_every_observation_of_greedy_episodes_and_are_drawn(tmp_path: Path) -> None:
    """``visited_states`` sees every reset and step of the episodes SB3's ``evaluate_policy`` plays on
    the same seeded env; ``draw`` puts them in the picture (another picture than without them)."""
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import DummyVecEnv

    from sgmmq import inspection, runs
    from sgmmq.envs import get_task
    from sgmmq.envs.factory import make_env

    task = get_task("MountainCar-v0")
    model = runs.build_model(task, 0, {"policy_kwargs": {"n_components": 5}})
    states = inspection.visited_states(model, "MountainCar-v0", episodes=2, seed=3)
    reference = DummyVecEnv([lambda: make_env(task)])
    reference.seed(3)  # its first reset is reset(seed=3), the later ones continue the stream
    _, lengths = evaluate_policy(model, reference, n_eval_episodes=2, deterministic=True, return_episode_rewards=True)
    assert states.shape == (sum(lengths) + 2, 2)
    np.testing.assert_array_equal(states[0], make_env(task).reset(seed=3)[0])
    inspection.draw(model, tmp_path / "without.png", "untrained")
    inspection.draw(model, tmp_path / "with.png", "untrained", states=states)
    assert (tmp_path / "with.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "with.png").read_bytes() != (tmp_path / "without.png").read_bytes()
    with pytest.raises(ValueError, match="non-empty array of observations"):
        inspection.draw(model, tmp_path / "empty.png", states=np.zeros((0, 2)))
    assert not (tmp_path / "empty.png").exists()
    with pytest.raises(ValueError, match="episodes must be >= 1, got 0"):
        inspection.visited_states(model, episodes=0)


def test_the_full_verdict_says_which_side_needs_more_parameters_to_match() -> None:
    def runs(config: str, method: str, live: int) -> list[RunRecord]:
        return [RunRecord(id=config, status="ok", settings={}, task="?", label=method, config=config, seed=0, method=method,
                          params={"inference": live})]
    grouped = {"Cheap-v0": {"sgmmq k4": runs("sgmmq k4", "sgmmq", 100), "dqn w4": runs("dqn w4", "dqn", 400)},
               "Costly-v0": {"sgmmq k64": runs("sgmmq k64", "sgmmq", 600), "dqn w4": runs("dqn w4", "dqn", 50)}}
    stats = {"Cheap-v0": {"normalized_score": {"sgmmq k4": (0.9, 0.8, 1.0), "dqn w4": (0.88, 0.7, 1.0)}},
             "Costly-v0": {"normalized_score": {"sgmmq k64": (0.2, 0.1, 0.3), "dqn w4": (0.5, 0.4, 0.6)}}}
    cheap, costly = tables.summary_table(grouped, stats)[2:]
    assert cheap.endswith("| tie on score; baselines need 4.0x the live parameters to match |")
    assert costly.endswith("| S-GMM-QF loses by 0.30; dqn w4 matches it with 12.0x fewer live parameters |")


# ---- ARS (sb3-contrib), the linear-policy baseline --------------------------------------------------
def test_ars_builds_through_the_study_builder_on_every_task_and_trains() -> None:
    import torch

    from sgmmq.evaluation import count_parameters
    from sgmmq.envs import TASKS, get_task

    torch.set_num_threads(1)
    for env_id in TASKS:
        for method, key, budget in (("ars_linear", None, None), ("ars_zoo", "net_arch", [16])):
            run = config.Run(task=env_id, method=method, label=method, budget_key=key, budget=budget, seed=0, steps=300,
                             eval_every=150, eval_episodes=1, final_eval_episodes=1)
            model, hyperparameters = runner._build(run, get_task(env_id))
            model.learn(total_timesteps=300)
            assert model.num_timesteps >= 300 and json.loads(json.dumps(hyperparameters)) == hyperparameters
            obs_dim, actions = model.observation_space.shape[0], int(model.action_space.n)
            expected = obs_dim * actions if method == "ars_linear" else obs_dim * 16 + 16 + 16 * actions + actions
            assert count_parameters(model)["inference"] == expected, (env_id, method)
            assert hyperparameters["n_timesteps"] == 300 and hyperparameters["method"] == method


def test_a_tiny_ars_sweep_runs_end_to_end_and_joins_the_report(tmp_path: Path) -> None:
    sweep = {**{k: v for k, v in TINY.items() if k != "methods"}, "name": "tiny_ars", "seeds": 1, "methods": [
        TINY["methods"][0], {"method": "ars_linear"}, {"method": "ars_zoo", "net_arch": [[16], [32]]}]}
    out = tmp_path / "out"
    counts = runner.sweep(sweep, out, workers=1, progress=False)
    assert counts == {"runs": 4, "skipped": 0, "ok": 4, "failed": 0}
    linear = read(out, "CartPole-v1__ars_linear__default__s0")
    assert linear["params"]["inference"] == 8 and linear["budget_key"] is None and linear["n_timesteps"] >= 300
    assert [p["step"] for p in linear["curve"]][0] == 0 and linear["curve"][-1]["score"] == linear["score_mean"]
    assert linear["hyperparameters"]["algo_kwargs"]["n_delta"] == 4
    assert read(out, "CartPole-v1__ars_zoo__w32__s0")["params"]["inference"] == 4 * 32 + 32 + 32 * 2 + 2
    text = report.report(out, reps=50, curve_reps=20).read_text()
    assert "| ars_linear | default |" in text and "| ars_zoo | w16 |" in text
    verdict = next(line for line in text.splitlines() if line.startswith("| CartPole-v1 | sgmmq k4 "))
    assert "ars_" in verdict  # ARS is a baseline of the verdicts
    assert (out / "return_vs_params.png").stat().st_size > 10_000


def test_ars_entries_are_checked_before_any_run() -> None:
    base = {"tasks": ["CartPole-v1"], "methods": []}
    config.check({**base, "methods": [{"method": "ars_linear", "overrides": {"n_delta": 2, "delta_std": 0.1}},
                                      {"method": "ars_zoo", "net_arch": [[16], [32]]}]})
    bad = {"n_deltas": "'n_deltas' is not a hyperparameter of ars_linear (did you mean 'n_delta'?)",
           "net_arch": "ars_linear is a linear policy", "live_budget": "ars_zoo budgets are net_arch",
           "box": "ars_linear_continuous needs Box-action tasks; ['CartPole-v1'] have discrete actions"}
    entries = {"n_deltas": {"method": "ars_linear", "overrides": {"n_deltas": 2}},
               "net_arch": {"method": "ars_linear", "net_arch": [[16]]},
               "live_budget": {"method": "ars_zoo", "live_budget": [100]},
               "box": {"method": "ars_linear_continuous"}}
    for name, entry in entries.items():
        with pytest.raises(ValueError, match=re.escape(bad[name])):
            config.check({**base, "methods": [entry]})
    runs = config.expand(config.read("studies/ars.yml"))
    assert len(runs) == 10 + 3 * 5 * (1 + 3)  # CartPole: ars_linear only, 10 seeds; others 5 seeds, 1 + 3 widths
    assert {r.steps for r in runs if r.task == "MountainCar-v0"} == {120_000}
