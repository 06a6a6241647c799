"""Write FOLDER/README.md: a table of the run folders ``sgmmq train TASK --seeds ...`` wrote in FOLDER.

    python results/runs_table.py FOLDER --title TITLE

FOLDER/NOTES.md, if there, is hand-written and copied in under the title (what the runs are for, caveats).

Each run folder's ``run.json`` holds the command that trained it and (``sgmmq train`` since
2026-12-01) the final evaluation; a folder from before has it computed here from its ``model.zip`` by
the same function (``sgmmq.evaluation.evaluate``: the task's deterministic evaluation episodes on an env
seeded ``seed + EVAL_SEED_OFFSET``, as ``sgmmq train`` prints them). Every run folder is listed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

from scipy.stats import trim_mean

from sgmmq.runs import resolve_task


def final_evaluation(folder: Path, run: dict) -> dict:
    if "final_evaluation" in run:
        return run["final_evaluation"]
    from sgmmq import SGMMQ
    from sgmmq.evaluation import evaluate

    model = SGMMQ.load(folder / "model.zip")
    returns = evaluate(model, resolve_task(run["task"]), run["seed"])
    return {"score_mean": float(returns.mean()), "score_std": float(returns.std()), "episode_returns": [float(r) for r in returns],
            "live_components": int(model.live_components), "parameters": int(model.num_parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--title", required=True)
    args = parser.parse_args()
    here = args.folder
    groups: dict[tuple[str, str], list[tuple[int, dict, dict]]] = {}
    for path in sorted(here.glob("*/run.json")):
        run = json.loads(path.read_text())
        command = run.get("batched", {}).get("command", "sgmmq train")
        groups.setdefault((run["task"], command), []).append((run["seed"], run, final_evaluation(path.parent, run)))
    command = "python " + shlex.join(["results/runs_table.py", *sys.argv[1:]])
    lines = [f"# {args.title}", "", f"This README: `{command}` (every run folder here, one row each).", ""]
    if (here / "NOTES.md").exists():
        lines += [(here / "NOTES.md").read_text().strip(), ""]
    for (task, command), rows in groups.items():
        rows.sort(key=lambda row: row[0])
        wall = rows[0][1].get("batched", {}).get("wall_clock_s")
        scores = [final["score_mean"] for _, _, final in rows]
        lines += [f"## {task}", "", f"Command: `{command}`" + (f" ({wall:.0f} s of training for all {len(rows)} seeds)" if wall else ""), "",
                  "| seed | final score | live components | parameters |", "| ---: | ---: | ---: | ---: |"]
        lines += [f"| {seed} | {final['score_mean']:.1f} +- {final['score_std']:.1f} | {final['live_components']} | {final['parameters']:,} |"
                  for seed, _, final in rows]
        scores.sort()
        normalized = [resolve_task(task).normalize(score) for score in scores]
        params = [final["parameters"] for _, _, final in rows]
        lines += ["", f"{len(rows)} seeds: median {statistics.median(scores):.1f}, min {scores[0]:.1f}, max {scores[-1]:.1f}; normalized IQM "
                  f"{trim_mean(normalized, 0.25):.3f} (the task's score range; IQM = the 25%-trimmed mean, as rliable's); "
                  f"median live parameters {statistics.median(params):,.0f}.", ""]
    (here / "README.md").write_text("\n".join(lines))
    sys.stdout.write("\n".join(lines))


if __name__ == "__main__":
    main()
