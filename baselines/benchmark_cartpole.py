"""Short CartPole-v1 benchmark of every baseline at its budget: final score and live parameters.

    nice -n 19 python -m sgmmq.baselines.benchmark_cartpole --seeds 0 1 2

Writes one JSON per run to ``results/baselines_cartpole/per_run/`` (atomically; finished runs are
skipped, so an interrupted benchmark resumes) and regenerates
``results/baselines_cartpole/README.md`` after every run. Runs are sequential, one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sgmmq.baselines.run import train_and_evaluate
from sgmmq.files import write_json_atomic, write_text_atomic
from sgmmq.provenance import machine, versions

ENV_ID = "CartPole-v1"
WIDTHS = ([4], [8], [16, 16], [64, 64])  # [256, 256] is dqn_zoo itself
SPARSE = ("dqn_static", "dqn_gmp", "dqn_set", "dqn_rigl")


def plan(seeds: list[int], budgets: list[int], widths: bool = True) -> list[dict[str, Any]]:
    """The runs, cheapest-per-insight first: DQN and PPO, sparse DQN, A2C (5e5 steps), the width sweep."""
    runs = []
    for method in ("dqn_zoo", "dqn_sb3", "ppo_zoo"):
        runs += [dict(method=method, seed=s) for s in seeds]
    for budget in budgets:
        for method in SPARSE:
            runs += [dict(method=method, live_budget=budget, seed=s) for s in seeds]
    runs += [dict(method="a2c_zoo", seed=s) for s in seeds]
    if widths:
        for arch in WIDTHS:
            runs += [dict(method="dqn_zoo", net_arch=list(arch), seed=s) for s in seeds]
    return runs


def run_id(run: dict[str, Any]) -> str:
    parts = [run["method"]]
    if run.get("net_arch"):
        parts.append("w" + "x".join(map(str, run["net_arch"])))
    if run.get("live_budget"):
        parts.append(f"live{run['live_budget']}")
    parts.append(f"s{run['seed']}")
    return "_".join(parts)


def write_readme(out: Path, command: str, planned: list[str] | None = None) -> None:
    results = [json.loads(p.read_text()) for p in sorted((out / "per_run").glob("*.json"))]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        arch = "x".join(map(str, r["net_arch"])) if r["net_arch"] else "64x64 (SB3 default)"
        groups[(r["method"], arch, r["live_budget"] or "")].append(r)
    lines = [
        "# Deep-RL baselines on CartPole-v1",
        "",
        "Each baseline at its own budget (the RL Zoo's n_timesteps; SB3-default DQN at the task budget 5e4),",
        "evaluated on 20 deterministic episodes of a separately seeded env after training. Every seed is",
        "listed; nothing is dropped. Parameters follow `sgmmq.baselines.counting.count_parameters`:",
        "`live` = live (unpruned) trainable numbers of the acting network (DQN: online Q-net; PPO/A2C: actor),",
        "`training` = what the learner keeps and updates (DQN: online + target; PPO/A2C: actor + critic).",
        "Sparse DQN (`dqn_static/gmp/set/rigl`): the zoo DQN row on a [64, 64] net, ERK masks, live budget =",
        "live weights + dense biases. Width sweep: `dqn_zoo` with only `net_arch` changed.",
        "PPO/A2C: SB3's default separate 64x64 actor and critic (the zoo rows set no net_arch).",
        "Reference: RL Zoo benchmark.md (one run each): DQN 500.0 +- 0.0 @50k, PPO 500.0 @100k, A2C 500.0 @500k.",
        "",
        f"Command: `{command}`",
        "",
        f"Versions: {versions()}.",
        "",
        f"Machine: {machine()}.",
        "One torch thread, `nice -n 19`, one run at a time; the machine was shared",
        "with another process (tests and training of the main agent), so wall-clock is informational only.",
        "",
        "| method | net | live budget | steps | score per seed (seed: mean +- std) | mean over seeds | live params | training params | train s (mean) |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for (method, arch, budget), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        per_seed = "; ".join(f"{r['seed']}: {r['score_mean']:.1f} +- {r['score_std']:.1f}" for r in rs)
        live = sorted({r["params"]["inference"] for r in rs})
        training = sorted({r["params"]["training"] for r in rs})
        lines.append(
            f"| {method} | {arch} | {budget} | {rs[0]['n_timesteps']:,} | {per_seed} | "
            f"{np.mean([r['score_mean'] for r in rs]):.1f} | {'/'.join(f'{v:,}' for v in live)} | "
            f"{'/'.join(f'{v:,}' for v in training)} | {np.mean([r['train_seconds'] for r in rs]):.0f} |"
        )
    lines += ["", f"{len(results)} runs; raw results (episode returns, spec, counts) in `per_run/*.json`."]
    missing = [r for r in planned or [] if not (out / "per_run" / f"{r}.json").exists()]
    if missing:
        lines += ["", f"Planned but not run yet ({len(missing)}; rerun the command to resume): " + ", ".join(missing) + "."]
    lines.append("")
    write_text_atomic(out / "README.md", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", type=int, nargs="+", default=[1000])
    parser.add_argument("--no-widths", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="run only these methods")
    parser.add_argument("--out", default="results/baselines_cartpole")
    parser.add_argument("--readme-only", action="store_true", help="only regenerate README.md from per_run/")
    parser.add_argument("--command", default=None, help="the command to print in README.md (default: this one)")
    args = parser.parse_args()
    os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="sb3_"))
    out = Path(args.out)
    command = args.command or "python -m sgmmq.baselines.benchmark_cartpole " + " ".join(sys.argv[1:])
    runs = [r for r in plan(args.seeds, args.budgets, not args.no_widths) if not args.only or r["method"] in args.only]
    if args.readme_only:
        write_readme(out, command, [run_id(r) for r in runs])
        return
    todo = [r for r in runs if not (out / "per_run" / f"{run_id(r)}.json").exists()]
    print(f"{len(runs)} runs planned, {len(runs) - len(todo)} already done", flush=True)
    for run in tqdm(todo, desc="baselines"):
        kwargs = {k: v for k, v in run.items() if k != "method"}
        result = train_and_evaluate(run["method"], ENV_ID, **kwargs)
        write_json_atomic(out / "per_run" / f"{run_id(run)}.json", result)
        tqdm.write(f"{run_id(run)}: {result['score_mean']:.1f} +- {result['score_std']:.1f}, "
                   f"live {result['params']['inference']}, {result['train_seconds']:.0f} s")
        write_readme(out, command, [run_id(r) for r in runs])
    write_readme(out, command, [run_id(r) for r in runs])


if __name__ == "__main__":
    main()
