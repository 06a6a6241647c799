"""The report's Markdown: tables, the summary block another README carries, progress and failures."""

from __future__ import annotations

import pathlib
from collections import defaultdict
from typing import Any

import numpy as np

from sgmmq.files import write_text_atomic
from sgmmq.study.config import expand
from sgmmq.study.record import RunRecord
from sgmmq.study.statistics import Ratios, Stats, verdicts


def _ci(values: tuple[float, float, float], fmt: str = ".1f") -> str:
    return f"{values[0]:{fmt}} [{values[1]:{fmt}}, {values[2]:{fmt}}]"


def seed_counts(matched: dict[str, dict[str, list[RunRecord]]]) -> str:
    return ", ".join(f"{task} {len(next(iter(configs.values())))}" for task, configs in matched.items())


def task_table(configs: dict[str, list[RunRecord]], stats: dict[str, dict[str, tuple[float, float, float]]],
               failed: int) -> list[str]:
    raw, norm = stats["score_mean"], stats["normalized_score"]
    lines = ["| method | budget | seeds | final score IQM [95% CI] | normalized IQM [95% CI] | live params median [min, max] "
             "| training params (median) | train s/run (mean) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for config, rs in configs.items():
        live = [r.params["inference"] for r in rs]
        lines.append(
            f"| {rs[0].label} | {config.split(' ', 1)[1]} | {len(rs)} | {_ci(raw[config])} | {_ci(norm[config], '.2f')} "
            f"| {np.median(live):,.0f} [{min(live):,}, {max(live):,}] | {np.median([r.params['training'] for r in rs]):,.0f} "
            f"| {np.mean([r.train_seconds for r in rs]):.1f} |"
        )
    if failed:
        lines += ["", f"{failed} failed run(s) of this task are listed at the end."]
    return lines


def seed_table(configs: dict[str, list[RunRecord]]) -> list[str]:
    """Every run's final score, folded away: the IQM hides which seeds succeed (a task that only some
    seeds solve), and every seed run is reported."""
    seeds = sorted({r.seed for rs in configs.values() for r in rs})
    lines = ["<details><summary>Final score of every run (by seed)</summary>", "",
             "| method budget | " + " | ".join(f"s{s}" for s in seeds) + " |", "| --- |" + " ---: |" * len(seeds)]
    for config, rs in configs.items():
        by_seed = {r.seed: r.score_mean for r in rs}
        lines.append(f"| {config} | " + " | ".join(f"{by_seed[s]:.1f}" if s in by_seed else "" for s in seeds) + " |")
    return [*lines, "", "</details>"]


def compute_table(ratios: Ratios) -> list[str]:
    """Per task: S-GMM-QF's training wall-clock per 1,000 env steps over DQN's, runs of the same sweep."""
    lines = ["| task | DQN (zoo net) s per 1k steps | S-GMM-QF s per 1k steps, by initial budget | ratio S-GMM-QF / DQN |",
             "| --- | ---: | --- | --- |"]
    for task, (reference, dqn, own, n) in ratios.items():
        lines.append(f"| {task} | {dqn:.2f} ({reference.split(' ', 1)[1]}, {n} seed{'s' if n != 1 else ''}) | "
                     + ", ".join(f"{b}: {v:.2f}" for b, v in own.items()) + " | "
                     + ", ".join(f"{b}: {v / dqn:.2f}" for b, v in own.items()) + " |")
    return lines


def summary_table(grouped: dict[str, dict[str, list[RunRecord]]], stats: Stats, tie: float = 0.05) -> list[str]:
    lines = ["| task | best S-GMM-QF: normalized IQM [95% CI] (live params) | best baseline: normalized IQM [95% CI] (live params) "
             "| difference | cheapest baseline within 0.05 of S-GMM-QF (live params) | verdict |",
             "| --- | --- | --- | ---: | --- | --- |"]
    for v in verdicts(grouped, stats, tie):
        norm, live, mine, theirs, cheapest = v["norm"], v["live"], v["mine"], v["theirs"], v["cheapest"]
        verdict = "tie on score" if v["outcome"] == "tie" else f"S-GMM-QF {v['outcome']} by {abs(v['diff']):.2f}"
        if cheapest is not None:
            ratio = live[cheapest] / live[mine]
            verdict += (f"; baselines need {ratio:.1f}x the live parameters to match" if ratio >= 1
                        else f"; {cheapest} matches it with {1 / ratio:.1f}x fewer live parameters")
        lines.append(
            f"| {v['task']} | {mine} {_ci(norm[mine], '.2f')} ({live[mine]:,.0f}) "
            f"| {theirs} {_ci(norm[theirs], '.2f')} ({live[theirs]:,.0f}) | {v['diff']:+.2f} "
            f"| {f'{cheapest} ({live[cheapest]:,.0f})' if cheapest else 'none'} | {verdict} |"
        )
    return lines


SUMMARY_BEGIN = "<!-- sgmmq report: summary begins (generated; edits between these lines are overwritten) -->"


SUMMARY_END = "<!-- sgmmq report: summary ends -->"


def summary_lines(matched: dict[str, dict[str, list[RunRecord]]], stats: Stats, ok: list[RunRecord],
                  config: dict[str, Any], report_link: str, ratios: Ratios,
                  tie: float = 0.05) -> list[str]:
    """The short form of the verdicts (on ``matched_seeds`` and their ``stats``) and compute ratios
    (``compute_ratios``, on the seeds they share) that another README carries (``--summary``)."""
    planned = _planned(config)
    lines = [f"{len(ok)}{f' of {len(planned)} planned' if planned else ''} runs are in. Per task, by normalized IQM [95% CI] on the seeds that every method",
             f"and budget has finished ({seed_counts(matched)}), S-GMM-QF's best budget against the best baseline at any budget;",
             f"within {tie} is a tie (full tables, curves and statistics: [{report_link}]({report_link})):", "",
             "| task | S-GMM-QF best (live params) | best baseline (live params) | verdict |", "| --- | --- | --- | --- |"]
    for v in verdicts(matched, stats, tie):
        norm, live, mine, theirs = v["norm"], v["live"], v["mine"], v["theirs"]
        diff, cheapest = v["diff"], v["cheapest"]
        if v["outcome"] == "wins":
            verdict = f"wins by {diff:.2f}"
        elif v["outcome"] == "loses":
            verdict = f"**loses by {-diff:.2f}**; {cheapest} ({live[cheapest]:,.0f}) already matches it"
        else:
            verdict = f"tie ({diff:+.2f}); cheapest match {cheapest}, {live[cheapest] / live[mine]:.1f}x the live parameters"
        lines.append(f"| {v['task']} | {_ci(norm[mine], '.2f')} ({live[mine]:,.0f}, {mine.split(' ', 1)[1]}) "
                     f"| {_ci(norm[theirs], '.2f')} ({live[theirs]:,.0f}, {theirs}) | {verdict} |")
    if ratios:
        spans = []
        for task, (_, dqn, own, _) in ratios.items():
            low, high = min(own.values()) / dqn, max(own.values()) / dqn
            spans.append(f"{task} {low:.2f}" + (f"-{high:.2f}" if f"{high:.2f}" != f"{low:.2f}" else ""))
        lines += ["", "Wall-clock per 1,000 training steps, S-GMM-QF over DQN with the RL Zoo's network in the same sweep",
                  f"(range over S-GMM-QF's budgets; a batched job's time divided by its seeds): {'; '.join(spans)}."]
    return lines


def summary_span(path: pathlib.Path) -> tuple[list[str], int, int]:
    """``path``'s lines and the indices of its two summary markers: each must stand once, in order,
    on a line of its own."""
    if not path.is_file():
        raise FileNotFoundError(f"--summary {path}: no such file")
    rows = path.read_text().splitlines(keepends=True)
    begins = [i for i, row in enumerate(rows) if row.strip() == SUMMARY_BEGIN]
    ends = [i for i, row in enumerate(rows) if row.strip() == SUMMARY_END]
    if len(begins) != 1 or len(ends) != 1 or begins[0] > ends[0]:
        raise ValueError(f"--summary {path}: needs the line {SUMMARY_BEGIN!r} once, followed later by the line "
                         f"{SUMMARY_END!r} once (found {len(begins)} and {len(ends)}); the file was left unchanged")
    return rows, begins[0], ends[0]


def write_summary(path: str | pathlib.Path, lines: list[str]) -> None:
    """Replace what lies between the summary markers of ``path`` by ``lines``, and nothing else."""
    path = pathlib.Path(path)
    rows, begin, end = summary_span(path)
    new = "".join(rows[:begin + 1]) + "".join(f"{line}\n" for line in lines) + "".join(rows[end:])
    write_text_atomic(path, new)


def _last_line(error: str) -> str:
    return error.strip().splitlines()[-1].replace("|", "\\|") if error.strip() else "?"


def failed_table(failed: list[RunRecord]) -> list[str]:
    return ["| run | error (last line) |", "| --- | --- |", *[f"| {r.id} | {_last_line(r.error)} |" for r in failed]]


def aggregate_table(matrices: dict[str, np.ndarray], intervals: dict[str, tuple[float, float, float]]) -> list[str]:
    """Normalized IQM over tasks per (method, budget), with the seeds each task contributes."""
    return ["| method budget | seeds per task | normalized IQM [95% CI] |", "| --- | ---: | ---: |",
            *[f"| {c} | {m.shape[0]} | {_ci(intervals[c], '.3f')} |" for c, m in matrices.items()]]


def improvement_table(poi: dict[str, tuple[float, float, float]], mine: list[str], theirs: list[str]) -> list[str]:
    """P(S-GMM-QF budget ``m`` beats baseline ``t``), keyed ``"m|t"``: one row per baseline."""
    return ["| baseline | " + " | ".join(mine) + " |", "| --- |" + " ---: |" * len(mine),
            *[f"| {t} | " + " | ".join(_ci(poi[f'{m}|{t}'], '.2f') for m in mine) + " |" for t in theirs]]


def other_results(readme: pathlib.Path, results: pathlib.Path) -> list[str]:
    """The result folders beside a README written outside ``results``, each by its README's title."""
    others = sorted(d for d in readme.parent.iterdir() if (d / "README.md").exists() and d.resolve() != results.resolve())
    return [f"- [{d.name}/]({d.name}/README.md): {_title(d / 'README.md')}" for d in others]


def _title(path: pathlib.Path) -> str:
    first = next((line for line in path.read_text().splitlines() if line.strip()), "")
    return first.lstrip("# ").strip()


def _planned(config: dict[str, Any]) -> list[Any]:
    """The runs the sweep's saved config plans ([] where it names none or no longer expands)."""
    if not config.get("tasks"):
        return []
    try:
        return expand(config)
    except ValueError:
        return []


def progress_lines(config: dict[str, Any], ok: list[RunRecord]) -> list[str]:
    """How much of the configured sweep is in: a partial study says what is missing."""
    planned = _planned(config)
    if not planned:
        return []
    done = {r.id for r in ok}
    missing: dict[str, list[int]] = defaultdict(list)
    for run in planned:
        if run.id not in done:
            missing[run.task].append(run.seed)
    if not missing:
        return [f"All {len(planned)} runs of the sweep are in.", ""]
    lines = [f"**Partial: {len(planned) - sum(map(len, missing.values()))} of {len(planned)} planned runs are in.** Missing, per task:", ""]
    for task in config["tasks"]:
        if task in missing:
            seeds = sorted(set(missing[task]))
            lines.append(f"- {task}: {len(missing[task])} runs (seeds {', '.join(map(str, seeds))} of some or all configs)")
    return [*lines, ""]
