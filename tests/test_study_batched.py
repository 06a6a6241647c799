"""The study's batched jobs: an S-GMM-QF (task, config)'s seeds trained in one process, one run file per seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sgmmq.study import config, record, report, runner

SEEDS = (0, 1, 2)
SUPPORTED = {"method": "sgmmq", "n_components": [4], "overrides": {"learning_starts": 100}}
UNSUPPORTED = {"method": "sgmmq", "label": "adaptive", "n_components": [4], "overrides": {"learning_starts": 100, "pool": "adaptive"}}
TINY = {"name": "tiny-batched", "tasks": ["CartPole-v1"], "seeds": len(SEEDS), "steps": 300, "eval_every": 150,
        "eval_episodes": 2, "final_eval_episodes": 3, "methods": [SUPPORTED, UNSUPPORTED]}
BATCHED_IDS = [f"CartPole-v1__sgmmq__k4__s{s}" for s in SEEDS]
SINGLE_IDS = [f"CartPole-v1__adaptive__k4__s{s}" for s in SEEDS]


def bench(path: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SB3_LOGDIR": os.environ.get("SB3_LOGDIR", "/tmp/sb3_test_study")}
    return subprocess.run([sys.executable, "-m", "sgmmq.cli", "bench", str(path), "--out", str(out), "--no-progress", *args],
                          capture_output=True, text=True, timeout=300, env=env)


def read(out: Path, run_id: str) -> dict:
    return json.loads((out / "runs" / f"{run_id}.json").read_text())


def write_config(folder: Path, sweep: dict) -> Path:
    path = folder / f"{sweep['name']}.yml"
    path.write_text(yaml.safe_dump(sweep))
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("batched")
    path, out = write_config(folder, TINY), folder / "out"
    done = bench(path, out, "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "6 runs: 0 already done, 6 finished now, 0 failed" in done.stdout
    return path, out


def test_the_plan_batches_supported_seeds_and_runs_everything_else_alone() -> None:
    runs = config.expand({**TINY, "methods": [*TINY["methods"], {"method": "dqn_zoo", "net_arch": [[8]]}]})
    jobs = runner.plan(runs)
    assert [[run.id for run in job.runs] for job in jobs if job.batched] == [BATCHED_IDS]
    assert all(len(job.runs) == 1 for job in jobs if not job.batched)
    assert sorted(run.id for job in jobs if not job.batched for run in job.runs) == sorted(
        [*SINGLE_IDS, *(f"CartPole-v1__dqn_zoo__w8__s{s}" for s in SEEDS)])
    assert all(len(job.runs) == 1 and not job.batched for job in runner.plan(runs, batch=False))
    lone = [run for run in runs if run.id == BATCHED_IDS[1]]
    # one unfinished seed still trains batched (S = 1): a redone seed repeats the run of its first batch
    assert runner.plan(lone) == [runner.Job(lone, batched=True)]
    assert runner.plan(lone, batch=False) == [runner.Job(lone, batched=False)]


def test_the_continuous_method_is_batched_too() -> None:
    sweep = {**TINY, "tasks": ["Pendulum-v1"], "methods": [{"method": "sgmmq_continuous", "n_components": [4]},
                                                           {"method": "sgmmq_continuous", "label": "noisy", "n_components": [4],
                                                            "overrides": {"exploration_noise": 0.1}}]}
    jobs = runner.plan(config.expand(sweep))
    assert [[run.id for run in job.runs] for job in jobs] == [[f"Pendulum-v1__{label}__k4__s{s}" for s in SEEDS]
                                                              for label in ("sgmmq_continuous", "noisy")]
    assert all(job.batched for job in jobs)
    outcomes = runner.execute_seeds([run.settings() for run in jobs[0].runs[:2]])  # 300 steps each, one process
    for outcome in outcomes:
        result = outcome["result"]
        assert result.status == "ok", result.error
        assert result.batched["seeds"] == [0, 1] and result.params["inference"] > 0 and len(result.episode_returns) == 3


def test_a_batched_job_writes_the_single_runs_files(swept: tuple[Path, Path]) -> None:
    from sgmmq.agent import SGMMQ
    from sgmmq.envs.tasks import get_task
    from sgmmq.evaluation import count_parameters, evaluate

    _, out = swept
    planned = {run.id: run for run in config.expand(TINY)}
    for run_id in SINGLE_IDS:
        assert "batched" not in read(out, run_id) and read(out, run_id)["status"] == "ok"
    single_keys = set(read(out, SINGLE_IDS[0]))
    for run_id, seed in zip(BATCHED_IDS, SEEDS):
        result = read(out, run_id)
        assert result["status"] == "ok" and result["id"] == run_id and result["seed"] == seed
        assert result["settings"] == planned[run_id].settings() and runner.is_complete(out, planned[run_id])
        assert set(result) == single_keys | {"batched"}
        assert result["batched"]["seeds"] == list(SEEDS)
        assert result["wall_seconds"] == pytest.approx(result["batched"]["wall_seconds"] / len(SEEDS))
        assert 0 < result["train_seconds"] * len(SEEDS) < result["batched"]["wall_seconds"]
        assert [p["step"] for p in result["curve"]] == [0, 150, 300] and result["n_timesteps"] == 300
        assert all(set(p) == {"step", "score", "live_params", "live_components"} for p in result["curve"])
        assert result["curve"][-1]["score"] == result["score_mean"] and len(result["episode_returns"]) == 3
        assert result["hyperparameters"] == {"gamma": 0.99, "learning_starts": 100, "policy_kwargs": {"n_components": 4}}
        # the saved model is the one evaluated: the same deterministic episodes, the same live parameters
        model = SGMMQ.load(out / result["model"])
        assert count_parameters(model) == result["params"] and model.live_components == result["live_components"]
        returns = evaluate(model, get_task("CartPole-v1"), seed, n_episodes=3)
        assert returns.tolist() == result["episode_returns"]
    assert len({json.dumps(read(out, run_id)["episode_returns"]) for run_id in BATCHED_IDS}) > 1  # independent agents
    assert len({read(out, run_id)["pid"] for run_id in BATCHED_IDS}) == 1  # one process trained all three


def test_ray_runs_a_batched_job_as_one_remote_call_with_the_local_pools_results(swept: tuple[Path, Path], tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    _, out = swept
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # a local instance, started here
    try:
        counts = runner.sweep({**TINY, "methods": [SUPPORTED]}, tmp_path, backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert counts == {"runs": 3, "skipped": 0, "ok": 3, "failed": 0}
    assert len({read(tmp_path, run_id)["pid"] for run_id in BATCHED_IDS}) == 1  # one process trained all three
    for run_id in BATCHED_IDS:
        mine, theirs = read(tmp_path, run_id), read(out, run_id)
        assert mine["batched"]["seeds"] == theirs["batched"]["seeds"] == list(SEEDS)
        assert mine["episode_returns"] == theirs["episode_returns"] and mine["curve"] == theirs["curve"]


def test_a_resumed_bench_batches_only_the_missing_seeds(swept: tuple[Path, Path]) -> None:
    path, out = swept
    kept = {run_id: (out / "runs" / f"{run_id}.json").stat().st_mtime_ns for run_id in [BATCHED_IDS[0], *SINGLE_IDS]}
    first = {run_id: read(out, run_id) for run_id in BATCHED_IDS[1:]}
    for run_id in BATCHED_IDS[1:]:
        (out / "runs" / f"{run_id}.json").unlink()
    done = bench(path, out, "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "6 runs: 4 already done, 2 finished now, 0 failed" in done.stdout
    for run_id, mtime in kept.items():
        assert (out / "runs" / f"{run_id}.json").stat().st_mtime_ns == mtime
    for run_id in BATCHED_IDS[1:]:
        redone = read(out, run_id)
        assert redone["status"] == "ok" and redone["batched"]["seeds"] == [1, 2]
        # batched without seed 0 now, yet the same run: each agent's randomness is its own
        assert redone["curve"] == first[run_id]["curve"] and redone["episode_returns"] == first[run_id]["episode_returns"]


def test_the_report_reads_batched_runs(swept: tuple[Path, Path]) -> None:
    _, out = swept
    text = report.report(out, reps=100, curve_reps=50).read_text()
    rows = [line for line in text.splitlines() if line.startswith(("| sgmmq | k4 |", "| adaptive | k4 |"))]
    assert len(rows) == 2 and all(f"| {len(SEEDS)} |" in line for line in rows)
    scores = [read(out, run_id)["score_mean"] for run_id in BATCHED_IDS]
    assert "| sgmmq k4 | " + " | ".join(f"{score:.1f}" for score in scores) + " |" in text


def test_no_batch_runs_one_process_per_seed_with_the_same_fields(swept: tuple[Path, Path], tmp_path: Path) -> None:
    _, batched_out = swept
    path = write_config(tmp_path, {**TINY, "name": "single", "seeds": 2, "methods": [SUPPORTED]})
    done = bench(path, tmp_path / "out", "--workers", "2", "--no-batch")
    assert done.returncode == 0, done.stderr
    for run_id in BATCHED_IDS[:2]:
        single, batched = read(tmp_path / "out", run_id), read(batched_out, run_id)
        assert "batched" not in single and set(single) | {"batched"} == set(batched)
        assert single["settings"] == batched["settings"]
    assert config.expand({**TINY, "batch": False}) == config.expand(TINY)  # the key plans no other runs
    with pytest.raises(ValueError, match="batch must be true or false"):
        config.check({**TINY, "batch": "no"})


def test_the_config_key_batch_false_runs_singly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    submitted: list[list[str]] = []

    def local(jobs: list, workers: int):  # records the jobs instead of training them
        submitted.extend([run.id for run in job.runs] for job in jobs)
        yield from ()

    monkeypatch.setattr(runner, "_local", local)
    sweep = {**TINY, "methods": [SUPPORTED]}
    runner.sweep({**sweep, "batch": False}, tmp_path / "a", progress=False)
    assert submitted == [[run_id] for run_id in BATCHED_IDS]
    submitted.clear()
    runner.sweep(sweep, tmp_path / "b", progress=False)
    assert submitted == [BATCHED_IDS]
    submitted.clear()
    runner.sweep(sweep, tmp_path / "c", progress=False, batch=False)  # --no-batch wins over the config
    assert submitted == [[run_id] for run_id in BATCHED_IDS]


def test_a_failing_batched_job_records_every_seed_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sgmmq.batched import BatchedSGMMQ

    def broken(self: BatchedSGMMQ, *args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(BatchedSGMMQ, "learn", broken)
    runs = [run for run in config.expand(TINY) if run.id in BATCHED_IDS[:2]]
    outcomes = runner.execute_seeds([run.settings() for run in runs])
    assert [outcome["result"].id for outcome in outcomes] == BATCHED_IDS[:2]
    for outcome, run in zip(outcomes, runs):
        result = runner._save(tmp_path, outcome)  # noqa: SLF001 -- as the sweep saves it
        assert result.status == "failed" and "RuntimeError: injected failure" in result.error and outcome["model_zip"] is None
        assert result.settings == run.settings() and result.batched["seeds"] == [0, 1]
        assert record.read(tmp_path / "runs" / f"{run.id}.json") == result and not runner.is_complete(tmp_path, run)
    mixed = [runs[0].settings(), {**runs[1].settings(), "steps": 400}]  # not seeds of one config
    assert all("differ only by seed" in outcome["result"].error for outcome in runner.execute_seeds(mixed))


def test_writing_the_agents_back_for_the_curve_does_not_change_their_training() -> None:
    import torch

    from sgmmq.batched import BatchedSGMMQ

    def train(callback: object) -> list[torch.Tensor]:
        job = BatchedSGMMQ("CartPole-v1", [0, 1], learning_starts=100, policy_kwargs={"n_components": 4})
        job.learn(400, callback=callback)
        return [param.detach().clone() for param in job.q_net.parameters()]

    untouched = train(None)
    written_back = train(lambda job: job.models() if job.num_timesteps % 100 == 0 else None)  # as execute_seeds' curve
    assert all(torch.equal(a, b) for a, b in zip(untouched, written_back))


def test_the_config_key_compile_reaches_the_batched_trainer_and_its_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    compiled: list[str] = []

    def fake_compile(fn, **kwargs):  # records what the trainer compiles, runs it eagerly
        compiled.append(fn.__name__)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    runs = [run for run in config.expand(TINY) if run.id in BATCHED_IDS[:2]]
    assert [job.compile for job in runner.plan(runs, compile=True)] == [True]
    assert [job.compile for job in runner.plan(runs)] == [False]
    outcomes = runner.execute_seeds([run.settings() for run in runs], compile=True)
    assert compiled == ["td_gradients", "greedy"]
    assert all(outcome["result"].ok and outcome["result"].batched["compiled"] is True for outcome in outcomes)
    assert "compiled" not in runner.execute_seeds([runs[0].settings()])[0]["result"].batched
    with pytest.raises(ValueError, match="compile must be true or false"):
        config.check({**TINY, "compile": "yes"})
