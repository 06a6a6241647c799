"""S-GMM-QF against SB3 DQN (RL Zoo hyperparameters): score, live parameters, wall-clock ratio.

    python -m sgmmq.benchmark                       # the full plan below, resumable
    python -m sgmmq.benchmark --tasks CartPole-v1   # one task
    python -m sgmmq.benchmark --ablation            # each option against the defaults, CartPole-v1
    python -m sgmmq.benchmark --timing              # wall-clock only, on an otherwise idle machine

The ablation (``results/ablation``) trains S-GMM-QF on CartPole-v1 with one option changed at a
time (seeds 0-2 each), which is how the defaults were chosen.

Plan: CartPole-v1 (50k steps) S-GMM-QF on seeds 0-9, DQN on seeds 0-2; Acrobot-v1 (100k) and
MountainCar-v0 (120k) S-GMM-QF on seeds 0-2, DQN on seed 0. Runs go one at a time, in the order
DQN seed s, S-GMM-QF seed s, ..., so the two methods share the machine's state and the wall-clock
ratio compares like with like. Each run is one JSON in ``results/agent/per_run`` (written
atomically; finished runs are skipped, so an interrupted benchmark resumes), and
``results/agent/README.md`` is regenerated after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.logger import Logger
from tqdm import tqdm

from sgmmq.baselines.run import train_and_evaluate
from sgmmq.evaluation import count_parameters, evaluate, score_summary
from sgmmq.envs import Task, get_task
from sgmmq.envs.factory import make_vec_env
from sgmmq.files import write_json_atomic, write_text_atomic
from sgmmq.provenance import machine, versions
from sgmmq.runs import build_model as build_sgmmq

PLAN: dict[str, tuple[list[int], list[int]]] = {  # task: (S-GMM-QF seeds, DQN seeds)
    "CartPole-v1": (list(range(10)), [0, 1, 2]),
    "Acrobot-v1": ([0, 1, 2], [0]),
    "MountainCar-v0": ([0, 1, 2], [0]),
}


ABLATIONS: dict[str, dict[str, Any]] = {
    "constant_lr": dict(learning_rate=1e-2),
    "residual_target": dict(target="residual"),
    "replay_window_20k": dict(window_size=20_000),
    "onehot_actions": dict(policy_kwargs=dict(action_encoding="onehot")),
    "normalized_bumps": dict(policy_kwargs=dict(normalized=True)),
    "data_means": dict(mean_init="data"),
    "rsgd": dict(policy_kwargs=dict(optimizer_class="rsgd"), learning_rate=1e-3),
    "positive_factors": dict(policy_kwargs=dict(factor_signs="positive")),
    "no_offset": dict(policy_kwargs=dict(offset=False)),
}
ABLATION_SEEDS = [0, 1, 2]


def run_sgmmq(task: Task | str, seed: int, n_timesteps: int | None = None, **overrides: Any) -> dict[str, Any]:
    """Train S-GMM-QF with its defaults (and the task's gamma), evaluate like every baseline."""
    torch.set_num_threads(1)
    task = task if isinstance(task, Task) else get_task(task)
    n_timesteps = n_timesteps or task.budget
    hyperparameters = {"gamma": task.gamma, **overrides}
    model = build_sgmmq(task, seed, hyperparameters, env=make_vec_env(task, n_envs=1, seed=seed))
    model.set_logger(Logger(folder=None, output_formats=[]))
    start = time.perf_counter()
    model.learn(n_timesteps)
    train_s = time.perf_counter() - start
    returns = evaluate(model, task, seed)
    return {
        "method": "sgmmq",
        "env_id": task.env_id,
        "seed": seed,
        "n_timesteps": n_timesteps,
        **score_summary(task, returns),
        "params": count_parameters(model),
        "live_components": model.live_components,
        "prune_events": [list(event) for event in model.prune_events],
        "train_seconds": train_s,
        "training_episode_returns": [float(info["r"]) for info in model.ep_info_buffer],
        "hyperparameters": {key: repr(value) for key, value in hyperparameters.items()},
    }


def plan(tasks: list[str]) -> list[dict[str, Any]]:
    runs = []
    for env_id in tasks:
        sgmmq_seeds, dqn_seeds = PLAN[env_id]
        for seed in sorted(set(sgmmq_seeds) | set(dqn_seeds)):
            if seed in dqn_seeds:
                runs.append(dict(method="dqn_zoo", env_id=env_id, seed=seed))
            if seed in sgmmq_seeds:
                runs.append(dict(method="sgmmq", env_id=env_id, seed=seed))
    return runs


def run_name(run: dict[str, Any]) -> str:
    return f"{run['env_id']}_{run['method']}_s{run['seed']}"


def write_readme(out: Path) -> None:
    results = [json.loads(p.read_text()) for p in sorted((out / "per_run").glob("*.json"))]
    lines = [
        "# S-GMM-QF against DQN (RL Zoo hyperparameters)",
        "",
        "Final score: mean return of 20 deterministic episodes on a separately seeded env after training.",
        "Every seed that ran is listed. Live parameters: `sgmmq.baselines.counting.count_parameters`",
        "(S-GMM-QF: live components x (1 + D + D(D+1)/2) + 1 offset; DQN: the online Q-network).",
        "Wall-clock: training only, one torch thread, runs one at a time, DQN and S-GMM-QF interleaved;",
        "ratio = S-GMM-QF seconds per 1,000 steps / DQN seconds per 1,000 steps on this machine.",
        "",
        "Commands (each invocation, with what else shared the machine):",
        "",
        *[f"- `{line}`" for line in command_log(out)],
        "",
        f"Versions: {versions()}.",
        "",
        f"Machine: {machine()}.",
        "",
    ]
    for env_id in dict.fromkeys(r["env_id"] for r in results):
        task = get_task(env_id)
        lines += [f"## {env_id}", "", "| method | steps | seed: score | mean | seeds >= threshold | live params | train s/run | s per 1k steps |",
                  "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
        per_k = {}
        for method in ("sgmmq", "dqn_zoo"):
            rs = sorted((r for r in results if r["env_id"] == env_id and r["method"] == method), key=lambda r: r["seed"])
            if not rs:
                continue
            per_k[method] = np.mean([r["train_seconds"] / r["n_timesteps"] * 1000 for r in rs])
            lives = [r["params"]["inference"] for r in rs]
            lines.append(
                f"| {method} | {rs[0]['n_timesteps']:,} | " + "; ".join(f"{r['seed']}: {r['score_mean']:.1f}" for r in rs)
                + f" | {np.mean([r['score_mean'] for r in rs]):.1f} | {sum(r['score_mean'] >= task.success_threshold for r in rs)}/{len(rs)} (>= {task.success_threshold:g})"
                + f" | {min(lives):,}-{max(lives):,} | {np.mean([r['train_seconds'] for r in rs]):.0f} | {per_k[method]:.2f} |"
            )
        if len(per_k) == 2:
            lines += ["", f"Wall-clock ratio S-GMM-QF / DQN per 1,000 steps: **{per_k['sgmmq'] / per_k['dqn_zoo']:.2f}**."]
        lines.append("")
    timing = out / "timing.json"
    if timing.exists():
        t = json.loads(timing.read_text())
        lines += [
            "## Wall-clock on an idle machine",
            "",
            f"`python -m sgmmq.benchmark --timing`: CartPole-v1, {t['steps']:,} training steps per run, DQN (zoo) and",
            "S-GMM-QF alternated with nothing else running (the runs above shared the machine).",
            "",
            "| method | seconds per run | s per 1k steps |",
            "| --- | --- | ---: |",
            *[f"| {m} | {', '.join(f'{x:.1f}' for x in xs)} | {np.mean(xs) / t['steps'] * 1000:.2f} |" for m, xs in t["seconds"].items()],
            "",
            f"Ratio S-GMM-QF / DQN: **{np.mean(t['ratios']):.2f}** (per repeat: {', '.join(f'{r:.2f}' for r in t['ratios'])}).",
            "",
        ]
    lines += [f"{len(results)} runs; raw results (episode returns, pruning events, counts) in `per_run/*.json`.", ""]
    write_text_atomic(out / "README.md", "\n".join(lines))


def command_log(out: Path) -> list[str]:
    log = out / "commands.txt"
    return log.read_text().splitlines() if log.exists() else []


def log_command(out: Path, command: str, note: str | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "commands.txt", "a") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M')} {command}" + (f"  ({note})" if note else "") + "\n")


def write_ablation_readme(out: Path, command: str) -> None:
    results = [json.loads(p.read_text()) for p in sorted((out / "per_run").glob("*.json"))]
    lines = [
        "# Which options are the defaults: CartPole-v1, 50,000 steps, one option changed at a time",
        "",
        "Final score: mean return of 20 deterministic episodes on a separately seeded env. Every seed listed.",
        "`defaults` are the runs of `results/agent` (same code, same seeds).",
        "",
        f"Command: `{command}`",
        "",
        f"Versions: {versions()}. Machine: {machine()}.",
        "",
        "| variant | change | seed: score | mean | live params | train s/run |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    defaults = Path("results/agent/per_run")
    rows = {"defaults": [json.loads(p.read_text()) for p in sorted(defaults.glob("CartPole-v1_sgmmq_s*.json"))]}
    rows["defaults"] = [r for r in rows["defaults"] if r["seed"] in ABLATION_SEEDS]
    for name in ABLATIONS:
        rows[name] = [r for r in results if r.get("variant") == name]
    for name, rs in rows.items():
        if not rs:
            continue
        rs = sorted(rs, key=lambda r: r["seed"])
        lives = [r["params"]["inference"] for r in rs]
        lines.append(
            f"| {name} | {ABLATIONS.get(name, {})} | " + "; ".join(f"{r['seed']}: {r['score_mean']:.1f}" for r in rs)
            + f" | {np.mean([r['score_mean'] for r in rs]):.1f} | {min(lives)}-{max(lives)} | {np.mean([r['train_seconds'] for r in rs]):.0f} |"
        )
    lines.append("")
    write_text_atomic(out / "README.md", "\n".join(lines))


def run_ablation(out: Path, command: str) -> None:
    runs = [(name, seed) for name in ABLATIONS for seed in ABLATION_SEEDS]
    runs = [(name, seed) for name, seed in runs if not (out / "per_run" / f"{name}_s{seed}.json").exists()]
    for name, seed in tqdm(runs, desc="ablation runs", unit="run"):
        result = run_sgmmq("CartPole-v1", seed, **ABLATIONS[name])
        result["variant"] = name
        write_json_atomic(out / "per_run" / f"{name}_s{seed}.json", result)
        write_ablation_readme(out, command)
        tqdm.write(f"{name} s{seed}: {result['score_mean']:.1f} live={result['params']['inference']}")
    write_ablation_readme(out, command)


def run_timing(out: Path, steps: int = 20_000, repeats: int = 2, device: str = "cpu") -> None:
    """Training wall-clock of S-GMM-QF and DQN (zoo) on CartPole-v1, alternated, nothing else measured,
    both on ``device`` (written to timing.json, or timing_<device>.json off the CPU)."""
    from sgmmq.baselines.dense import build_model

    torch.set_num_threads(1)
    task = get_task("CartPole-v1")
    seconds: dict[str, list[float]] = {"sgmmq": [], "dqn_zoo": []}
    for repeat in range(repeats):
        for method in ("dqn_zoo", "sgmmq"):
            if method == "sgmmq":
                model = build_sgmmq(task, repeat, {"device": device}, env=make_vec_env(task, n_envs=1, seed=repeat))
                model.set_logger(Logger(folder=None, output_formats=[]))
            else:
                model, _ = build_model(method, task, repeat, overrides={"device": device},
                                       logger=Logger(folder=None, output_formats=[]))
            start = time.perf_counter()
            model.learn(steps)
            seconds[method].append(time.perf_counter() - start)
            tqdm.write(f"{method} repeat {repeat}: {seconds[method][-1]:.1f} s for {steps:,} steps")
    ratios = [s / d for s, d in zip(seconds["sgmmq"], seconds["dqn_zoo"])]
    name = "timing.json" if device == "cpu" else f"timing_{device.split(':')[0]}.json"
    write_json_atomic(out / name, {"steps": steps, "device": device, "seconds": seconds, "ratios": ratios,
                                   "machine": machine(), "versions": versions()})
    print(f"S-GMM-QF / DQN wall-clock ratio: {', '.join(f'{r:.2f}' for r in ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(PLAN), choices=list(PLAN))
    parser.add_argument("--ablation", action="store_true", help="CartPole-v1, one option changed at a time")
    parser.add_argument("--out", type=Path, default=None, help="default: results/agent (results/ablation with --ablation)")
    parser.add_argument("--timing", action="store_true", help="CartPole-v1 wall-clock of both methods, alternated (run it alone)")
    parser.add_argument("--device", default="cpu", help="with --timing: torch device of both methods (e.g. cuda)")
    parser.add_argument("--steps", type=int, default=20_000, help="with --timing: training steps per run")
    parser.add_argument("--note", default=None, help="what else ran on the machine meanwhile (goes into the README)")
    parser.add_argument("--readme-only", action="store_true", help="regenerate the README from the finished runs")
    args = parser.parse_args()
    os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="sb3_"))
    command = "python -m sgmmq.benchmark " + " ".join(sys.argv[1:])
    if args.ablation:
        return run_ablation(args.out or Path("results/ablation"), command)
    args.out = args.out or Path("results/agent")
    if args.readme_only:
        return write_readme(args.out)
    if args.timing:
        return run_timing(args.out, steps=args.steps, device=args.device)
    log_command(args.out, command, args.note)
    runs = [run for run in plan(args.tasks) if not (args.out / "per_run" / f"{run_name(run)}.json").exists()]
    for run in tqdm(runs, desc="benchmark runs", unit="run"):
        if run["method"] == "sgmmq":
            result = run_sgmmq(run["env_id"], run["seed"])
        else:
            result = train_and_evaluate(run["method"], run["env_id"], run["seed"])
        write_json_atomic(args.out / "per_run" / f"{run_name(run)}.json", result)
        write_readme(args.out)
        tqdm.write(f"{run_name(run)}: {result['score_mean']:.1f} live={result['params']['inference']} {result['train_seconds']:.0f}s")
    write_readme(args.out)


if __name__ == "__main__":
    main()
