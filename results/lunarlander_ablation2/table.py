"""TABLE.md: issue 16's LunarLander-v3 ablation with one code (2026-12-06), every seed listed, from run files:
each registered default alone on SGMMQ's signature defaults (this folder's runs, `sgmmq bench
studies/lunarlander_ablation2.yml`), the four of the first screening together (`base` of
results/lunarlander_screen2) and all five, today's defaults (the study's k64 rows, results/study).

    python results/lunarlander_ablation2/table.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from scipy.stats import trim_mean

HERE = Path(__file__).parent
RESULTS = HERE.parent
SEEDS = range(5)


def bench_row(folder: Path, label: str) -> list[tuple[float, int, int]]:
    """(final score, live components, live parameters) per seed of a bench row, from its run files."""
    rows = []
    for seed in SEEDS:
        run = json.loads((folder / "runs" / f"LunarLander-v3__{label}__k64__s{seed}.json").read_text())
        rows.append((run["score_mean"], run["live_components"], run["params"]["inference"]))
    return rows


def train_row(prefix: str) -> list[tuple[float, int, int]]:
    """The same, from the run folders `sgmmq train --seeds` wrote (results/lunarlander_screen2)."""
    rows = []
    for seed in SEEDS:
        final = json.loads((RESULTS / "lunarlander_screen2" / f"{prefix}-LunarLander-v3-s{seed}" / "run.json").read_text())["final_evaluation"]
        rows.append((final["score_mean"], final["live_components"], final["parameters"]))
    return rows


def main() -> None:
    table = [
        ("SGMMQ's signature defaults (k64)", "lunarlander_ablation2 `sgmmq k64`", bench_row(HERE, "sgmmq")),
        ("+ data-placed means alone (`mean_init=\"data\"`)", "lunarlander_ablation2 `data_init k64`", bench_row(HERE, "data_init")),
        ("+ 3-step returns alone (`n_steps=3`)", "lunarlander_ablation2 `n3 k64`", bench_row(HERE, "n3")),
        ("+ a 50k window alone (`window_size=50_000`)", "lunarlander_ablation2 `window50k k64`", bench_row(HERE, "window50k")),
        ("+ double-Q targets alone (`double_q=True`)", "lunarlander_ablation2 `double_q k64`", bench_row(HERE, "double_q")),
        ("the four together (the defaults of 2026-12-01)", "lunarlander_screen2 `base`", train_row("base")),
        ("the four + two gradient steps per step (today's defaults)", "study `sgmmq k64` (seeds 0-4)", bench_row(RESULTS / "study", "sgmmq")),
    ]
    lines = ["| configuration (k64, seeds 0-4) | run files | normalized IQM | median live params | final score per seed (live components) |",
             "| --- | --- | ---: | ---: | --- |"]
    for name, where, rows in table:
        normalized = [(score + 200) / 400 for score, _, _ in rows]
        per_seed = ", ".join(f"{score:+.1f} ({components})" for score, components, _ in rows)
        lines.append(f"| {name} | {where} | {trim_mean(normalized, 0.25):.2f} | {statistics.median(p for _, _, p in rows):,.0f} | {per_seed} |")
    (HERE / "TABLE.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
