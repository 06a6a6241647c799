"""Write results/batched/README.md from the batched runs' logs and the single agent's runs.

    python results/batched/summarize.py

Reads ``cartpole_10x50k.log`` (what ``sgmmq train CartPole-v1 --seeds 0-9 --steps 50000`` printed),
``cartpole_10x50k.time`` (``/usr/bin/time -v`` of that command), the same for the ``--compile`` run
(``cartpole_10x50k_compile.*``), and the single agent's runs with the same code and defaults,
one process per seed (``single_k32/runs/``, ``sgmmq bench results/batched/single_k32.yml --no-batch``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SINGLE = HERE / "single_k32" / "runs"


def read(name: str) -> tuple[str, str, int, float, str, float]:
    """The log, the command, the seed count, the training seconds, the whole command's wall-clock and CPU seconds of a run."""
    log = (HERE / f"{name}.log").read_text()
    timing = (HERE / f"{name}.time").read_text()
    command = json.loads((HERE / name / "CartPole-v1-s0" / "run.json").read_text())["batched"]["command"]
    trained = re.search(r"trained (\d+) seeds x ([\d,]+) steps in ([\d.]+) s", log)
    elapsed = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", timing)[1]
    cpu = float(re.search(r"User time \(seconds\): ([\d.]+)", timing)[1]) + float(re.search(r"System time \(seconds\): ([\d.]+)", timing)[1])
    return log, command, int(trained[1]), float(trained[3]), elapsed, cpu


def scores(log: str) -> dict[int, tuple[int, int, float, float]]:
    """Per seed: live components, parameters, score mean and std, as ``sgmmq train --seeds`` printed them."""
    return {int(m[1]): (int(m[2]), int(m[3].replace(",", "")), float(m[4]), float(m[5]))
            for m in re.finditer(r"seed (\d+): live components (\d+), parameters ([\d,]+); CartPole-v1: score ([\d.]+) \+- ([\d.]+)", log)}


def main() -> None:
    log, command, n_seeds, train_s, elapsed, cpu = read("cartpole_10x50k")
    compiled_log, compiled_command, _, compiled_s, compiled_elapsed, compiled_cpu = read("cartpole_10x50k_compile")
    rows, compiled = scores(log), scores(compiled_log)
    single = {}
    for seed in rows:
        path = SINGLE / f"CartPole-v1__sgmmq__k32__s{seed}.json"
        if path.exists():
            run = json.loads(path.read_text())
            single[seed] = (run["score_mean"], run["live_components"], run["params"]["inference"], run["train_seconds"])
    lines = [
        "# Ten CartPole-v1 seeds in one process (sgmmq.batched)", "",
        f"Command: `/usr/bin/time -v {command}` (stdout: `cartpole_10x50k.log`, time's report: `cartpole_10x50k.time`), "
        "on this project's 2-core machine with nothing else running. This README: `python results/batched/summarize.py`.", "",
        f"**{n_seeds} seeds x 50,000 steps trained in {train_s:.0f} s of wall-clock** ({train_s / n_seeds:.1f} s per seed); the "
        f"whole command, the final evaluation of every seed included: {elapsed} wall-clock, {cpu:.0f} s of CPU time. Every default "
        "(32 components, the task's gamma), as `sgmmq train CartPole-v1 --seed S` uses them.", "",
        f"With `--compile` (`/usr/bin/time -v {compiled_command}`, `cartpole_10x50k_compile.*`): **{compiled_s:.0f} s** of training "
        f"(the first update's compilation included); the whole command {compiled_elapsed} wall-clock, {compiled_cpu:.0f} s of CPU time.", "",
        "Scores: 20 deterministic episodes per seed (`sgmmq train`'s own evaluation). Single agent: the same code and defaults, one "
        "process per seed (`sgmmq bench results/batched/single_k32.yml --out results/batched/single_k32 --workers 2 --no-batch`, "
        "two runs at a time on the two cores, the same hour as the batched runs; each command wrote to a scratch folder, copied here); `train_seconds` is each run's training time, "
        "its evaluations every 2,500 steps excluded.", "",
        "| seed | batched score | live components | parameters | compiled: score | live components | single-agent score | live components | parameters | single-agent train s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for seed, (live, params, score, std) in sorted(rows.items()):
        s = single.get(seed)
        other = f"{s[0]:.1f} | {s[1]} | {s[2]} | {s[3]:.0f}" if s else "- | - | - | -"
        c = compiled.get(seed)
        with_compile = f"{c[2]:.1f} +- {c[3]:.1f} | {c[0]}" if c else "- | -"
        lines.append(f"| {seed} | {score:.1f} +- {std:.1f} | {live} | {params} | {with_compile} | {other} |")
    solved = sum(score >= 475 for _, _, score, _ in rows.values())
    single_solved = sum(s[0] >= 475 for s in single.values())
    single_train = [s[3] for s in single.values()]
    compiled_solved = sum(score >= 475 for _, _, score, _ in compiled.values())
    lines += ["", f"Seeds at >= 475: batched {solved} of {len(rows)}, compiled {compiled_solved} of {len(compiled)}, "
              f"single agent {single_solved} of {len(single)}. "
              f"Single-agent training time per seed: {min(single_train):.0f}-{max(single_train):.0f} s "
              f"(sum over the ten seeds {sum(single_train):.0f} s), against {train_s:.0f} s ({compiled_s:.0f} s compiled) for all ten here. "
              "The ratio of throughputs measured side by side in one process is in `results/speed/batched.md`.", ""]
    notes = HERE / "notes.md"  # hand-written reading, kept across regenerations
    if notes.exists():
        lines += [notes.read_text()]
    (HERE / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
