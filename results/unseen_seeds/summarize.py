"""Write results/unseen_seeds/README.md from the run folders ``sgmmq train TASK --seeds ...`` wrote here.

    python results/unseen_seeds/summarize.py

Issue 16 asks for the final defaults on seeds never used for choosing anything: the study used seeds
0-9 on CartPole-v1 and 0-4 on the other tasks. Each run folder's ``run.json`` holds the command that
trained it and (``sgmmq train`` since this folder was made) the final evaluation; a folder from before
has it computed here from its ``model.zip`` by the same function (``sgmmq.evaluation.evaluate``: the
task's 20 deterministic episodes on an env seeded ``seed + EVAL_SEED_OFFSET``, as ``sgmmq train`` prints).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def final_evaluation(folder: Path, run: dict) -> dict:
    if "final_evaluation" in run:
        return run["final_evaluation"]
    from sgmmq import SGMMQ
    from sgmmq.evaluation import evaluate
    from sgmmq.runs import resolve_task

    model = SGMMQ.load(folder / "model.zip")
    returns = evaluate(model, resolve_task(run["task"]), run["seed"])
    return {"score_mean": float(returns.mean()), "score_std": float(returns.std()), "episode_returns": [float(r) for r in returns],
            "live_components": int(model.live_components), "parameters": int(model.num_parameters())}


def main() -> None:
    groups: dict[tuple[str, str], list[tuple[int, dict, dict]]] = {}
    for path in sorted(HERE.glob("*/run.json")):
        run = json.loads(path.read_text())
        command = run.get("batched", {}).get("command", "sgmmq train")
        groups.setdefault((run["task"], command), []).append((run["seed"], run, final_evaluation(path.parent, run)))
    lines = ["# Seeds nobody tuned for (issue 16)", "",
             "Each task's S-GMM-QF defaults on seeds outside the study's (the study: CartPole-v1 seeds 0-9, the other tasks 0-4),",
             "trained many seeds in one process (`sgmmq train TASK --seeds ...`, `sgmmq.batched`). Final score: the mean return of",
             "the task's 20 deterministic evaluation episodes. This README: `python results/unseen_seeds/summarize.py`.", "",
             "The runs were made on 2026-12-01 with the code of b39c07b (CartPole-v1) and d7ab412 (the others), before each",
             "batched agent drew from its own random generators (1da94b8): the same commands with today's code give other",
             "per-seed numbers from the same distribution. They ran into a scratch folder (`--out` in the commands) and were",
             "moved here; `*.log` is what each command printed. Every seed run is listed.", ""]
    for (task, command), rows in groups.items():
        rows.sort(key=lambda row: row[0])
        wall = rows[0][1].get("batched", {}).get("wall_clock_s")
        scores = [final["score_mean"] for _, _, final in rows]
        lines += [f"## {task}", "", f"Command: `{command}`" + (f" ({wall:.0f} s of training for all {len(rows)} seeds)" if wall else ""), "",
                  "| seed | final score | live components | parameters |", "| ---: | ---: | ---: | ---: |"]
        lines += [f"| {seed} | {final['score_mean']:.1f} +- {final['score_std']:.1f} | {final['live_components']} | {final['parameters']:,} |"
                  for seed, _, final in rows]
        scores.sort()
        median = (scores[(len(scores) - 1) // 2] + scores[len(scores) // 2]) / 2
        lines += ["", f"{len(rows)} seeds: median {median:.1f}, min {scores[0]:.1f}, max {scores[-1]:.1f}.", ""]
    (HERE / "README.md").write_text("\n".join(lines))
    sys.stdout.write("\n".join(lines))


if __name__ == "__main__":
    main()
