"""Wall-clock per environment step of S-GMM-QF against SB3 DQN (RL Zoo hyperparameters), side by side.

    python -m sgmmq.speed                                # CartPole-v1, 20,480 timed steps a method
    python -m sgmmq.speed --tasks CartPole-v1 Acrobot-v1 --steps 10240 --note "what else ran"
    python -m sgmmq.speed --before old/speed.json        # beside a run of older code (its speed.json)
    python -m sgmmq.speed --optimizer-only               # one optimizer step, geoopt's against sgmmq.optim's
    python -m sgmmq.speed --batched --steps 2000         # S seeds in one process (sgmmq.batched) against one SGMMQ

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
    ("    gradient in closed form (no autograd)", "sgmmq/agent.py", "closed_form_gradients"),
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


def _timed(fn: Any) -> tuple[float, float]:
    start, cpu_start = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu_start


def batched_throughput(env_id: str, seed_counts: list[int], steps: int) -> dict[str, Any]:
    """Environment steps per second of S agents trained in lockstep (:mod:`sgmmq.batched`), per seed
    and in all, against one SGMMQ trained for the same steps in this process (before and after the
    batched runs; their mean is the reference). Each run is a whole training of ``steps`` steps from
    scratch, ``learning_starts`` included, with every default."""
    from sgmmq.batched import BatchedSGMMQ

    singles = []
    for _ in range(2 if seed_counts else 1):
        model = build("sgmmq", env_id, 0)
        singles.append(_timed(lambda: model.learn(steps)))
        if len(singles) == 1:
            print(f"{env_id}: single SGMMQ {steps / singles[0][0]:.0f} steps/s", flush=True)
            rows = []
            for n in seed_counts:
                trainer = BatchedSGMMQ(env_id, list(range(n)))
                wall, cpu = _timed(lambda: trainer.learn(steps))
                rows.append({"seeds": n, "wall_s": wall, "cpu_s": cpu})
                print(f"{env_id}: S = {n}: {steps / wall:.0f} steps/s per seed, {n * steps / wall:.0f} in all", flush=True)
    single_wall = statistics.mean(w for w, _ in singles)
    single_cpu = statistics.mean(c for _, c in singles)
    for row in rows:
        row["steps_per_s_per_seed"] = steps / row["wall_s"]
        row["steps_per_s_total"] = row["seeds"] * steps / row["wall_s"]
        row["total_over_single"] = row["seeds"] * single_wall / row["wall_s"]
        row["cpu_total_over_single"] = row["seeds"] * single_cpu / row["cpu_s"]
    return {"env_id": env_id, "steps": steps, "single_wall_s": [w for w, _ in singles], "single_cpu_s": [c for _, c in singles],
            "single_steps_per_s": steps / single_wall, "rows": rows}


def write_batched_readme(out: Path, record: dict[str, Any]) -> None:
    """``batched.md``: the throughput table of a ``--batched`` run."""
    lines = ["# Many seeds in one process: throughput of sgmmq.batched against one SGMMQ", "",
             f"Command: `{record['command']}`" + (f" ({record['note']})" if record.get("note") else ""), "",
             f"Versions: {record['versions']}.", "", f"Machine: {record['machine']}. One torch thread.", "",
             "Each row trains S agents from scratch for the given steps each (every default, `learning_starts` included) in one "
             "process; the single agent (SGMMQ, the same defaults) trains the same steps in the same process before and after "
             "the batched rows, and their mean is the reference. Ratios: S x single wall-clock / batched wall-clock, i.e. "
             "environment steps per second in all over the single agent's (process CPU time alike).", "",
             "| task | S | steps each | wall-clock s | env steps/s per seed | env steps/s in all | **in all / single** | CPU-time ratio |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for result in record["batched"]:
        walls = " and ".join(f"{w:.1f}" for w in result["single_wall_s"])
        lines.append(f"| {result['env_id']} | single SGMMQ | {result['steps']:,} | {walls} | {result['single_steps_per_s']:.0f} | "
                     f"{result['single_steps_per_s']:.0f} | 1 | 1 |")
        for row in result["rows"]:
            lines.append(f"| {result['env_id']} | {row['seeds']} | {result['steps']:,} | {row['wall_s']:.1f} | "
                         f"{row['steps_per_s_per_seed']:.0f} | {row['steps_per_s_total']:.0f} | **{row['total_over_single']:.2f}** | "
                         f"{row['cpu_total_over_single']:.2f} |")
    lines.append("")
    notes = out / "batched_notes.md"  # hand-written reading of the numbers, kept across regenerations
    if notes.exists():
        lines += [notes.read_text()]
    (out / "batched.md").write_text("\n".join(lines) + "\n")


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
    parser.add_argument("--readme-only", action="store_true",
                        help="rewrite README.md from --out/speed.json (and --before); with --batched: batched.md from batched.json")
    parser.add_argument("--optimizer-only", action="store_true", help="only time one optimizer step, geoopt's against sgmmq.optim's")
    parser.add_argument("--batched", action="store_true",
                        help="throughput of S seeds in one process (sgmmq.batched) against one SGMMQ, --steps each; "
                             "writes batched.json and batched.md in --out")
    parser.add_argument("--seed-counts", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32], help="S values for --batched")
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
    if args.batched and args.readme_only:
        if not (args.out / "batched.json").exists():
            parser.error(f"--readme-only --batched: no batched.json in {args.out}")
        write_batched_readme(args.out, json.loads((args.out / "batched.json").read_text()))
        return 0
    if args.batched:
        if min(args.seed_counts) < 1:
            parser.error("--seed-counts must be >= 1")
        torch.set_num_threads(1)
        command = "python -m sgmmq.speed " + " ".join(sys.argv[1:] if argv is None else argv)
        record = {"command": command, "note": args.note, "machine": machine(), "versions": versions(),
                  "batched": [batched_throughput(env_id, args.seed_counts, args.steps) for env_id in args.tasks]}
        args.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.out / "batched.json", record)
        write_batched_readme(args.out, record)
        print(f"wrote {args.out / 'batched.md'}")
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
