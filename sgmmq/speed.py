"""Wall-clock per environment step of S-GMM-QF against SB3 DQN (RL Zoo hyperparameters), side by side.

    python -m sgmmq.speed                                # CartPole-v1, 20,480 timed steps a method
    python -m sgmmq.speed --tasks CartPole-v1 Acrobot-v1 --steps 10240 --note "what else ran"
    python -m sgmmq.speed --before old/speed.json        # beside a run of older code (its speed.json)
    python -m sgmmq.speed --optimizer-only               # one optimizer step, geoopt's against sgmmq.optim's

Both methods train in this one process with one torch thread, in alternating chunks of 512 steps
(DQN, S-GMM-QF, DQN, ...), so a busy machine slows both alike and the ratio of neighbouring chunks
stays meaningful where absolute times do not. Training only, after ``learning_starts``: the per-step
cost of the learning phase is compared (each chunk is a ``learn`` call that continues its model). The profile runs S-GMM-QF under cProfile for
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

from sgmmq.files import write_json_atomic
from sgmmq.provenance import machine, versions
from sgmmq.methods import build as build_model

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


def build(method: str, env_id: str, seed: int) -> Any:
    """A fresh model: ``"sgmmq"`` with its defaults (and the task's gamma), or ``"dqn_zoo"``."""
    return build_model(method, env_id, seed, logger=Logger(folder=None, output_formats=[]))[0]


def compare(env_id: str, steps: int, chunk: int = 512, seed: int = 0) -> dict[str, Any]:
    """Per-step seconds of both methods, timed in alternating chunks of ``chunk`` steps.

    Both models first pass their ``learning_starts``; then each ``learn(chunk)`` call continues its
    model (``reset_num_timesteps=False``), DQN's chunk then S-GMM-QF's, so neighbouring chunks
    share the machine's state. ``chunk`` is a multiple of DQN's ``train_freq`` (256 on CartPole):
    every chunk holds the same share of its gradient steps.
    """
    models = {method: build(method, env_id, seed) for method in ("dqn_zoo", "sgmmq")}
    for model in models.values():
        warmup = -(-max(m.learning_starts for m in models.values()) // chunk) * chunk
        model.learn(warmup)
    seconds: dict[str, list[float]] = {method: [] for method in models}
    cpu_seconds: dict[str, list[float]] = {method: [] for method in models}
    for _ in range(max(steps // chunk, 1)):
        for method, model in models.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            model.learn(chunk, reset_num_timesteps=False)
            seconds[method].append((time.perf_counter() - start) / chunk)
            cpu_seconds[method].append((time.process_time() - cpu_start) / chunk)
    ratios = [s / d for s, d in zip(seconds["sgmmq"], seconds["dqn_zoo"])]
    cpu_ratios = [s / d for s, d in zip(cpu_seconds["sgmmq"], cpu_seconds["dqn_zoo"])]
    medians = {method: statistics.median(values) for method, values in seconds.items()}
    cpu_medians = {method: statistics.median(values) for method, values in cpu_seconds.items()}
    print(f"{env_id}: " + ", ".join(f"{m} {v * 1e6:.0f} us/step ({cpu_medians[m] * 1e6:.0f} CPU)" for m, v in medians.items())
          + f", median ratio {statistics.median(ratios):.2f} (CPU time {statistics.median(cpu_ratios):.2f})", flush=True)
    return {"env_id": env_id, "steps": steps, "chunk": chunk, "seconds_per_step": seconds, "ratios": ratios,
            "median_us_per_step": {m: v * 1e6 for m, v in medians.items()}, "median_ratio": statistics.median(ratios),
            "cpu_seconds_per_step": cpu_seconds, "cpu_ratios": cpu_ratios,
            "median_cpu_us_per_step": {m: v * 1e6 for m, v in cpu_medians.items()}, "median_cpu_ratio": statistics.median(cpu_ratios)}


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


def _ratio_rows(results: list[dict[str, Any]], label: str) -> list[str]:
    rows = []
    for r in results:
        cells = []
        for kind in ("", "cpu_"):
            ratios = r.get(f"{kind}ratios")
            if ratios is None:
                cells.append("-")
                continue
            q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios * 3)
            us = r[f"median_{kind}us_per_step"]
            cells.append(f"{us['dqn_zoo']:.0f} / {us['sgmmq']:.0f}: **{r[f'median_{kind}ratio']:.2f}** ({q1:.2f}-{q3:.2f})")
        rows.append(f"| {r['env_id']} | {label} | {r['steps']:,} ({len(r['ratios'])} x {r['chunk']}) | " + " | ".join(cells) + " |")
    return rows


def optimizer_step_us(n_components: int = 16, blocks: int = 40, calls: int = 50) -> dict[str, float]:
    """Microseconds of one optimizer step on a CartPole-sized Q-function, geoopt's against sgmmq.optim's.

    No profiler: blocks of ``calls`` steps alternate between the optimizers and the fastest block
    of each counts (the least disturbed by other jobs).
    """
    import copy

    import geoopt

    from sgmmq.mixture import GMMQFunction
    from sgmmq.optim import FusedRiemannianAdam

    torch.manual_seed(0)
    q = GMMQFunction(4, 2, n_components=n_components)
    optimizers = {}
    for name, cls in (("geoopt RiemannianAdam", geoopt.optim.RiemannianAdam), ("sgmmq FusedRiemannianAdam", FusedRiemannianAdam)):
        model = copy.deepcopy(q)
        for p in model.parameters():
            grad = torch.randn_like(p) * 1e-3
            p.grad = grad + grad.transpose(-1, -2) if p.dim() == 3 else grad
        optimizers[name] = cls(model.parameters(), lr=1e-3)
    best = {name: float("inf") for name in optimizers}
    for _ in range(blocks):
        for name, optimizer in optimizers.items():
            start = time.perf_counter()
            for _ in range(calls):
                optimizer.step()
            best[name] = min(best[name], (time.perf_counter() - start) / calls * 1e6)
    return best


def write_readme(out: Path, record: dict[str, Any], before: dict[str, Any] | None) -> None:
    """``README.md`` from this run's record and, if given, the record of a run of the code before."""
    lines = [
        "# Wall-clock per environment step: S-GMM-QF against DQN (RL Zoo hyperparameters)",
        "",
        f"Command: `{record['command']}`" + (f" ({record['note']})" if record.get("note") else ""),
        "",
        f"Versions: {record['versions']}.",
        "",
        f"Machine: {record['machine']}. One torch thread; both methods in one process, in alternating chunks.",
        "",
    ]
    if before:
        lines += [f"Before: `{before['command']}`" + (f" ({before['note']})" if before.get("note") else ""), ""]
    lines += ["Each cell: DQN / S-GMM-QF microseconds per environment step (medians over chunks): **ratio S-GMM-QF / DQN**, "
              "median (quartiles) over neighbouring chunks. Wall-clock is what a user waits; process CPU time is what the "
              "code costs, and moves far less when other jobs share the cores.", "",
              "| task | code | timed steps a method (chunks) | wall-clock | process CPU time |",
              "| --- | --- | ---: | --- | --- |"]
    lines += _ratio_rows(before["results"], "before") if before else []
    lines += _ratio_rows(record["results"], "after" if before else "this")
    lines.append("")
    runs = ([before["profile"]] if before else []) + [record["profile"]]
    after = record["profile"]
    lines += [f"## Where one S-GMM-QF step's microseconds go ({after['env_id']}, cProfile, {after['steps']:,} steps after learning_starts)", "",
              "Cumulative time per environment step of each part (nested parts are inside the part above them).", "",
              "| part | " + ("before us/step | after us/step |" if before else "us/step |"),
              "| --- |" + " ---: |" * len(runs)]
    for label, *_ in PARTS:
        values = [run["parts_us_per_step"].get(label) for run in runs]
        if any(v is not None for v in values):
            depth = (len(label) - len(label.lstrip())) // 2
            lines.append(f"| {'&nbsp;&nbsp;' * depth}{label.strip()} | " + " | ".join("-" if v is None else f"{v:.0f}" for v in values) + " |")
    lines += ["| the same steps without the profiler | " + " | ".join(f"{run['us_per_step_unprofiled']:.0f}" for run in runs) + " |", ""]
    notes = out / "notes.md"  # hand-written reading of the numbers, kept across regenerations
    if notes.exists():
        lines += [notes.read_text()]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["CartPole-v1"])
    parser.add_argument("--steps", type=int, default=20_480, help="timed environment steps a method")
    parser.add_argument("--chunk", type=int, default=512, help="steps a turn (a multiple of DQN's train_freq)")
    parser.add_argument("--profile-steps", type=int, default=3_000)
    parser.add_argument("--before", type=Path, default=None, help="speed.json of a run of the code before, shown beside")
    parser.add_argument("--note", default=None, help="what else ran on the machine (goes into the README)")
    parser.add_argument("--out", type=Path, default=Path("results/speed"))
    parser.add_argument("--readme-only", action="store_true", help="rewrite README.md from --out/speed.json (and --before)")
    parser.add_argument("--optimizer-only", action="store_true", help="only time one optimizer step, geoopt's against sgmmq.optim's")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.chunk < 1 or args.profile_steps < 1:
        parser.error("--steps, --chunk and --profile-steps must be >= 1")
    if args.before is not None and not args.before.exists():
        parser.error(f"--before: no file at {args.before}")
    before = json.loads(args.before.read_text()) if args.before else None
    if args.optimizer_only:
        torch.set_num_threads(1)
        print(json.dumps(optimizer_step_us(), indent=1))
        return 0
    if args.readme_only:
        if not (args.out / "speed.json").exists():
            parser.error(f"--readme-only: no speed.json in {args.out}")
        write_readme(args.out, json.loads((args.out / "speed.json").read_text()), before)
        return 0
    torch.set_num_threads(1)
    os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="sb3_"))
    command = "python -m sgmmq.speed " + " ".join(sys.argv[1:] if argv is None else argv)
    record = {"command": command, "note": args.note, "machine": machine(), "versions": versions(),
              "profile": profile(steps=args.profile_steps),
              "results": [compare(env_id, args.steps, args.chunk) for env_id in args.tasks]}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "speed.json", record)
    write_readme(args.out, record, before)
    print(f"wrote {args.out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
