"""Wall-clock per environment step of S-GMM-QF against SB3 DQN (RL Zoo hyperparameters), side by side.

    python -m sgmmq.speed                                # CartPole-v1, 20k steps a run, 3 alternations
    python -m sgmmq.speed --tasks CartPole-v1 Acrobot-v1 --steps 10000 --repeats 2 --note "what else ran"
    python -m sgmmq.speed --profile-only --profile-json before.json   # where one step's microseconds go

Both methods train in this one process with one torch thread, alternating (DQN, S-GMM-QF, DQN,
...), so a busy machine slows both alike and the ratio stays meaningful where absolute times do
not. Training only, from a fresh model, for ``--steps`` environment steps (learning starts and
exploration schedules as in a full run of the task's budget are not reproduced: the per-step
cost after ``learning_starts`` is what is compared). The profile runs S-GMM-QF under cProfile for
a few thousand steps after ``learning_starts`` and attributes the time per step to its parts;
cProfile inflates Python-heavy parts, so read it for where time goes, the timing for how much.
``results/speed/README.md`` gets the command, versions, machine, ratios and profile.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.logger import Logger

from sgmmq.envs import get_task
from sgmmq.envs.factory import make_vec_env
from sgmmq.provenance import machine, versions, write_json_atomic
from sgmmq.runs import build_model as build_sgmmq

# (label, file suffix, function name): the parts of one step, outermost first
PARTS = [
    ("whole step (SB3 learn loop)", "off_policy_algorithm.py", "learn"),
    ("  rollout: SB3 collect_rollouts", "off_policy_algorithm.py", "collect_rollouts"),
    ("    acting: SGMMQ.predict", "sgmmq/agent.py", "predict"),
    ("    environment: VecEnv.step", "base_vec_env.py", "step"),
    ("  train: SGMMQ.train (one gradient step)", "sgmmq/agent.py", "train"),
    ("    sample from the window", "buffers.py", "sample"),
    ("    Q-function evaluations (acting, snapshot, Q)", "sgmmq/mixture.py", "q_z"),
    ("    loss.backward", "torch/_tensor.py", "backward"),
    ("    optimizer.step (sgmmq.optim)", "sgmmq/optim.py", "step"),
    ("    optimizer.step (geoopt)", "geoopt/optim/radam.py", "step"),
    ("    optimizer.zero_grad", "torch/optim/optimizer.py", "zero_grad"),
]


def _quiet(model: Any) -> Any:
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def build(method: str, env_id: str, seed: int) -> Any:
    """A fresh model: ``"sgmmq"`` with its defaults (and the task's gamma), or ``"dqn_zoo"``."""
    task = get_task(env_id)
    if method == "sgmmq":
        return _quiet(build_sgmmq(task, seed, {"gamma": task.gamma}, env=make_vec_env(task, n_envs=1, seed=seed)))
    from sgmmq.baselines.dense import build_model

    model, _ = build_model(method, task, seed, logger=Logger(folder=None, output_formats=[]))
    return model


def seconds_per_step(method: str, env_id: str, seed: int, steps: int) -> float:
    model = build(method, env_id, seed)
    start = time.perf_counter()
    model.learn(steps)
    return (time.perf_counter() - start) / steps


def compare(env_id: str, steps: int, repeats: int) -> dict[str, Any]:
    """Per-step seconds of both methods, alternated ``repeats`` times, and their ratios."""
    seconds: dict[str, list[float]] = {"dqn_zoo": [], "sgmmq": []}
    for repeat in range(repeats):
        for method in seconds:
            seconds[method].append(seconds_per_step(method, env_id, repeat, steps))
            print(f"{env_id} {method} repeat {repeat}: {seconds[method][-1] * 1e6:.0f} us/step", flush=True)
    ratios = [s / d for s, d in zip(seconds["sgmmq"], seconds["dqn_zoo"])]
    return {"env_id": env_id, "steps": steps, "seconds_per_step": seconds, "ratios": ratios}


def profile(env_id: str = "CartPole-v1", steps: int = 3_000, seed: int = 0) -> dict[str, Any]:
    """Microseconds per environment step of each part of S-GMM-QF's step, under cProfile."""
    model = build("sgmmq", env_id, seed)
    model.learn(model.learning_starts + 500)  # past learning_starts: every step now trains
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    plain = (time.perf_counter() - start) / steps
    profiler = cProfile.Profile()
    profiler.enable()
    model.learn(steps, reset_num_timesteps=False)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    parts = {}
    for label, suffix, name in PARTS:
        total = sum(ct for (file, _, func), (_, _, _, ct, _) in stats.items() if func == name and file.endswith(suffix))
        if total:
            parts[label] = total / steps * 1e6
    return {"env_id": env_id, "steps": steps, "us_per_step_unprofiled": plain * 1e6, "parts_us_per_step": parts}


def write_readme(out: Path, command: str, note: str | None, results: list[dict[str, Any]],
                 after: dict[str, Any] | None, before: dict[str, Any] | None) -> None:
    lines = [
        "# Wall-clock per environment step: S-GMM-QF against DQN (RL Zoo hyperparameters)",
        "",
        f"Command: `{command}`" + (f" ({note})" if note else ""),
        "",
        f"Versions: {versions()}.",
        "",
        f"Machine: {machine()}. One torch thread; both methods in one process, alternated.",
        "",
    ]
    if results:
        lines += ["| task | steps a run | DQN zoo us/step | S-GMM-QF us/step | ratio S-GMM-QF / DQN per repeat | median ratio |",
                  "| --- | ---: | --- | --- | --- | ---: |"]
        for r in results:
            fmt = lambda xs: ", ".join(f"{x * 1e6:.0f}" for x in xs)  # noqa: E731
            lines.append(f"| {r['env_id']} | {r['steps']:,} | {fmt(r['seconds_per_step']['dqn_zoo'])} | {fmt(r['seconds_per_step']['sgmmq'])} | "
                         + ", ".join(f"{x:.2f}" for x in r["ratios"]) + f" | **{statistics.median(r['ratios']):.2f}** |")
        lines.append("")
    if after:
        lines += [f"## Where one S-GMM-QF step's microseconds go ({after['env_id']}, cProfile, {after['steps']:,} steps after learning_starts)", ""]
        header = "| part | " + ("before us/step | " if before else "") + "after us/step |"
        lines += [header, "| --- | " + ("---: | " if before else "") + "---: |"]
        for label, *_ in PARTS:
            values = [d["parts_us_per_step"].get(label) for d in ([before] if before else []) + [after]]
            if any(v is not None for v in values):
                cells = " | ".join("-" if v is None else f"{v:.0f}" for v in values)
                lines.append(f"| {label.strip()} {'(' + str(label.count('  ')) + ')' if label.startswith('  ') else ''} | {cells} |")
        plain = [d["us_per_step_unprofiled"] for d in ([before] if before else []) + [after]]
        lines += ["| same steps without the profiler | " + " | ".join(f"{v:.0f}" for v in plain) + " |", ""]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["CartPole-v1"])
    parser.add_argument("--steps", type=int, default=20_000, help="environment steps a run")
    parser.add_argument("--repeats", type=int, default=3, help="alternations of the two methods")
    parser.add_argument("--profile-steps", type=int, default=3_000)
    parser.add_argument("--profile-only", action="store_true", help="only the profile (e.g. of an older checkout)")
    parser.add_argument("--profile-json", type=Path, default=None, help="also write the profile here")
    parser.add_argument("--before", type=Path, default=None, help="a profile JSON of the code before, shown beside")
    parser.add_argument("--note", default=None, help="what else ran on the machine (goes into the README)")
    parser.add_argument("--out", type=Path, default=Path("results/speed"))
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1 or args.profile_steps < 1:
        parser.error("--steps, --repeats and --profile-steps must be >= 1")
    torch.set_num_threads(1)
    os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="sb3_"))
    after = profile(steps=args.profile_steps)
    print(json.dumps(after, indent=1))
    if args.profile_json:
        write_json_atomic(args.profile_json, after)
    if args.profile_only:
        return 0
    results = [compare(env_id, args.steps, args.repeats) for env_id in args.tasks]
    before = json.loads(args.before.read_text()) if args.before else None
    command = "python -m sgmmq.speed " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "speed.json", {"command": command, "note": args.note, "results": results, "profile": after,
                                                "profile_before": before, "machine": machine(), "versions": versions()})
    write_readme(args.out, command, args.note, results, after, before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
