"""Turn a sweep's results folder into tables, statistics and pictures, and its README.md.

    sgmmq report results/study          # writes results/study/README.md and results/study/*.png

Statistics (rliable): interquartile mean (IQM) with 95% stratified-bootstrap (percentile)
intervals, per task on raw final scores and over tasks on normalized scores
(``Task.score_range``), and the probability of improvement of each S-GMM-QF budget over each
baseline. Over tasks a method's matrix is (seeds x tasks): every task contributes its first ``n``
seeds, ``n`` the smallest seed count among them, and only (method, budget)s run on every task
enter the aggregate.
"""

from __future__ import annotations

import json
import os
import pathlib
import warnings
from collections import defaultdict
from typing import Any

import numpy as np

from sgmmq.envs.tasks import get_task
from sgmmq.files import save_figure, write_text_atomic
from sgmmq.methods import SGMMQ_METHODS
from sgmmq.study import record
from sgmmq.study.config import expand
from sgmmq.study.record import RunRecord
from sgmmq.study.runner import RUNS_DIR

SGMMQ = "sgmmq"


# --- statistics -----------------------------------------------------------------------------------
def _rliable() -> tuple[Any, Any]:
    warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
    from rliable import library, metrics

    return library, metrics


def _estimates(score_dict: dict[str, Any], func: Any, reps: int, seed: int) -> tuple[dict, dict]:
    """rliable's ``get_interval_estimates``, reproducible: rliable 1.2's stratified bootstrap draws
    from NumPy's global generator (its ``random_state`` is not used), so seed that, then restore it."""
    library, _ = _rliable()
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return library.get_interval_estimates(score_dict, func, reps=reps, random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(state)


def iqm_intervals(scores: dict[str, np.ndarray], reps: int = 2000, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """``{name: (IQM, low, high)}`` of (runs x tasks) score matrices, 95% stratified bootstrap."""
    _, metrics = _rliable()
    point, interval = _estimates({k: np.asarray(v, dtype=float) for k, v in scores.items()},
                                 lambda x: np.array([metrics.aggregate_iqm(x)]), reps, seed)
    return {k: (float(point[k][0]), float(interval[k][0, 0]), float(interval[k][1, 0])) for k in scores}


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """rliable's ``probability_of_improvement`` (Mann-Whitney U / (n_x n_y) per task, averaged over
    tasks) as one array comparison: rliable calls ``scipy.stats.mannwhitneyu`` once per task and
    bootstrap sample, whose argument checking made this statistic most of the report's run time."""
    above = scores_x[:, None, :] > scores_y[None, :, :]
    tied = scores_x[:, None, :] == scores_y[None, :, :]
    per_task = (above.sum(axis=(0, 1)) + 0.5 * tied.sum(axis=(0, 1))) / (len(scores_x) * len(scores_y))
    return float(np.mean(per_task))


def improvement(pairs: dict[str, tuple[np.ndarray, np.ndarray]], reps: int = 2000, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """``{name: (P(X > Y), low, high)}`` for (runs x tasks) matrices X, Y (rliable's probability of improvement)."""
    point, interval = _estimates({k: [np.asarray(x, dtype=float), np.asarray(y, dtype=float)] for k, (x, y) in pairs.items()},
                                 probability_of_improvement, reps, seed)
    return {k: (float(np.ravel(point[k])[0]), *(float(v) for v in np.ravel(interval[k]))) for k in pairs}


def iqm_curves(curves: np.ndarray, reps: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM over runs at every evaluation point of a (runs x points) matrix, with 95% intervals."""
    from scipy.stats import trim_mean

    frames = np.asarray(curves, dtype=float)[:, None, :]  # (runs, 1 task, points), as rliable's sample-efficiency curves
    # rliable's aggregate_iqm at every point, in one call: trim_mean along the runs axis
    point, interval = _estimates({"c": frames}, lambda x: trim_mean(x[:, 0, :], 0.25, axis=0), reps, seed)
    return point["c"], interval["c"][0], interval["c"][1]


# --- loading ------------------------------------------------------------------------------------
def load(results: pathlib.Path) -> tuple[list[RunRecord], list[RunRecord]]:
    """(finished runs, failed runs) of a results folder; unreadable files count as neither."""
    ok, failed = [], []
    for path in sorted((results / RUNS_DIR).glob("*.json")):
        try:
            result = record.read(path)
        except ValueError:
            continue
        (ok if result.ok else failed).append(result)
    return ok, failed


def _budget_order(result: RunRecord) -> Any:
    budget = result.budget
    if isinstance(budget, list):
        return sum(budget), len(budget)
    return (budget or 0, 0)


def group(results: list[RunRecord]) -> dict[str, dict[str, list[RunRecord]]]:
    """``{task: {config: [runs sorted by seed]}}``, configs in method then budget order."""
    out: dict[str, dict[str, list[RunRecord]]] = defaultdict(dict)
    ordered = sorted(results, key=lambda r: (r.label not in SGMMQ_METHODS, r.label, _budget_order(r), r.seed))
    for r in ordered:
        out[r.task].setdefault(r.config, []).append(r)
    return dict(out)


def matched_seeds(grouped: dict[str, dict[str, list[RunRecord]]]) -> dict[str, dict[str, list[RunRecord]]]:
    """Each task's runs restricted to the seeds that every config of the task has finished, so that
    a partial sweep's verdicts compare methods on the same seeds."""
    return {task: shared for task, configs in grouped.items() if (shared := _on_shared_seeds(configs))}


def _on_shared_seeds(configs: dict[str, list[RunRecord]]) -> dict[str, list[RunRecord]]:
    """The configs' runs on the seeds all of them have finished; empty when they share none."""
    common = set.intersection(*({r.seed for r in rs} for rs in configs.values()))
    return {c: [r for r in rs if r.seed in common] for c, rs in configs.items()} if common else {}


def _seed_counts(matched: dict[str, dict[str, list[RunRecord]]]) -> str:
    return ", ".join(f"{task} {len(next(iter(configs.values())))}" for task, configs in matched.items())


# --- tables -------------------------------------------------------------------------------------
def _ci(values: tuple[float, float, float], fmt: str = ".1f") -> str:
    return f"{values[0]:{fmt}} [{values[1]:{fmt}}, {values[2]:{fmt}}]"


Stats = dict[str, dict[str, dict[str, tuple[float, float, float]]]]  # {task: {score key: {config: (IQM, low, high)}}}


def task_iqms(grouped: dict[str, dict[str, list[RunRecord]]], reps: int) -> Stats:
    """Every config's IQM interval of raw and normalized final scores, per task: computed once,
    read by the tables and the headline figure."""
    return {task: {key: iqm_intervals({c: np.array([[getattr(r, key)] for r in rs]) for c, rs in configs.items()}, reps)
                   for key in ("score_mean", "normalized_score")}
            for task, configs in grouped.items()}


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


def _reference_dqn(configs: dict[str, list[RunRecord]], task: str) -> str | None:
    """The DQN the compute ratio divides by: DQN with the RL Zoo's own network for ``task``, else the widest."""
    from sgmmq.baselines.configs import zoo_config

    dqns = [c for c, rs in configs.items() if rs[0].method == "dqn_zoo"]
    try:
        zoo_net = zoo_config("dqn", task)["policy_kwargs"]["net_arch"]
    except (ValueError, KeyError):
        zoo_net = None
    exact = [c for c in dqns if configs[c][0].budget == zoo_net]
    return (exact or sorted(dqns, key=lambda c: _budget_order(configs[c][0])))[-1] if dqns else None


def _seconds_per_1k(rs: list[RunRecord]) -> float:
    return float(np.mean([1000 * r.train_seconds / r.n_timesteps for r in rs]))


Ratios = dict[str, tuple[str, float, dict[str, float], int]]


def compute_ratios(grouped: dict[str, dict[str, list[RunRecord]]]) -> Ratios:
    """Per task: (reference DQN config, its seconds per 1,000 env steps, {S-GMM-QF budget: seconds},
    number of seeds), on the seeds that the reference and every S-GMM-QF budget have finished: a seed's
    runs ran together, so a sweep resumed on a slower machine shifts both sides of the ratio alike."""
    out = {}
    for task, configs in grouped.items():
        reference = _reference_dqn(configs, task)
        mine = [c for c, rs in configs.items() if rs[0].method in SGMMQ_METHODS]
        if reference is not None and mine:
            paired = _on_shared_seeds({c: configs[c] for c in [reference, *mine]})
            if paired:
                out[task] = (reference, _seconds_per_1k(paired[reference]),
                             {c.split(" ", 1)[1]: _seconds_per_1k(paired[c]) for c in mine},
                             len(paired[reference]))
    return out


def compute_table(ratios: Ratios) -> list[str]:
    """Per task: S-GMM-QF's training wall-clock per 1,000 env steps over DQN's, runs of the same sweep."""
    lines = ["| task | DQN (zoo net) s per 1k steps | S-GMM-QF s per 1k steps, by initial budget | ratio S-GMM-QF / DQN |",
             "| --- | ---: | --- | --- |"]
    for task, (reference, dqn, own, n) in ratios.items():
        lines.append(f"| {task} | {dqn:.2f} ({reference.split(' ', 1)[1]}, {n} seed{'s' if n != 1 else ''}) | "
                     + ", ".join(f"{b}: {v:.2f}" for b, v in own.items()) + " | "
                     + ", ".join(f"{b}: {v / dqn:.2f}" for b, v in own.items()) + " |")
    return lines


def verdicts(grouped: dict[str, dict[str, list[RunRecord]]], stats: Stats, tie: float = 0.05) -> list[dict[str, Any]]:
    """Per task, the best S-GMM-QF budget against the best baseline (normalized IQM) and the cheapest
    baseline that comes within ``tie`` of it: where S-GMM-QF wins, where it loses, and by how much."""
    rows = []
    for task, configs in grouped.items():
        norm = stats[task]["normalized_score"]
        live = {c: float(np.median([r.params["inference"] for r in rs])) for c, rs in configs.items()}
        mine = [c for c, rs in configs.items() if rs[0].method in SGMMQ_METHODS]
        theirs = [c for c, rs in configs.items() if rs[0].method not in SGMMQ_METHODS]
        if not mine or not theirs:
            continue
        best_mine = max(mine, key=lambda c: (norm[c][0], -live[c]))
        best_theirs = max(theirs, key=lambda c: (norm[c][0], -live[c]))
        diff = norm[best_mine][0] - norm[best_theirs][0]
        matching = [c for c in theirs if norm[c][0] >= norm[best_mine][0] - tie]
        cheapest = min(matching, key=lambda c: live[c]) if matching else None
        outcome = "wins" if diff > tie else "loses" if diff < -tie else "tie"  # a win leaves no baseline within tie
        rows.append({"task": task, "mine": best_mine, "theirs": best_theirs, "cheapest": cheapest, "diff": diff,
                     "outcome": outcome, "norm": norm, "live": live})
    return rows


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
             f"and budget has finished ({_seed_counts(matched)}), S-GMM-QF's best budget against the best baseline at any budget;",
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
                  f"(range over S-GMM-QF's budgets): {'; '.join(spans)}."]
    return lines


def _summary_span(path: pathlib.Path) -> tuple[list[str], int, int]:
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
    rows, begin, end = _summary_span(path)
    new = "".join(rows[:begin + 1]) + "".join(f"{line}\n" for line in lines) + "".join(rows[end:])
    write_text_atomic(path, new)


def normalized_matrices(grouped: dict[str, dict[str, list[RunRecord]]]) -> dict[str, np.ndarray]:
    """(seeds x tasks) normalized final scores of each config run on every task."""
    tasks = list(grouped)
    common = [c for c in next(iter(grouped.values())) if all(c in grouped[t] for t in tasks)]
    matrices = {}
    for config in common:
        n = min(len(grouped[t][config]) for t in tasks)
        matrices[config] = np.array([[grouped[t][config][i].normalized_score for t in tasks] for i in range(n)])
    return matrices


# --- figures ------------------------------------------------------------------------------------
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _aligned(rs: list[RunRecord], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Every run's curve of ``key`` on the first run's evaluation steps (interpolated if they differ)."""
    steps = np.array([p["step"] for p in rs[0].curve], dtype=float)
    rows = [np.interp(steps, [p["step"] for p in r.curve], [p.get(key, np.nan) for p in r.curve]) for r in rs]
    return steps, np.array(rows)


def plot_learning_curves(task: str, configs: dict[str, list[RunRecord]], path: pathlib.Path, reps: int) -> None:
    plt = _plt()
    labels = list(dict.fromkeys(rs[0].label for rs in configs.values()))
    fig, axes = plt.subplots(1, len(labels), figsize=(4.6 * len(labels), 3.6), squeeze=False, sharey=True)
    for ax, label in zip(axes[0], labels):
        for config, rs in configs.items():
            if rs[0].label != label:
                continue
            steps, scores = _aligned(rs, "score")
            iqm, low, high = iqm_curves(scores, reps)
            line, = ax.plot(steps, iqm, label=f"{config.split(' ', 1)[1]} ({np.median([r.params['inference'] for r in rs]):,.0f} p)")
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
        ax.axhline(get_task(task).success_threshold, color="gray", ls=":", lw=1)
        ax.set(title=label, xlabel="environment steps")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("return (IQM over seeds, 95% CI)")
    fig.suptitle(f"{task}: learning curves (deterministic evaluation episodes)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_return_vs_params(grouped: dict[str, dict[str, list[RunRecord]]], stats: Stats, path: pathlib.Path) -> None:
    """The headline: final score against live parameters, one line per method over its budgets."""
    plt = _plt()
    tasks = list(grouped)
    ncols = min(3, len(tasks))
    nrows = -(-len(tasks) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.9 * nrows), squeeze=False)
    for ax, task in zip(axes.ravel(), tasks):
        configs = grouped[task]
        raw = stats[task]["score_mean"]
        for label in dict.fromkeys(rs[0].label for rs in configs.values()):
            mine = [(np.median([r.params["inference"] for r in rs]), *raw[c]) for c, rs in configs.items() if rs[0].label == label]
            x, y, low, high = np.array(sorted(mine)).T
            ax.errorbar(x, y, yerr=[y - low, high - y], marker="o", capsize=3, label=label,
                        lw=2.5 if label in SGMMQ_METHODS else 1.2)
        ax.axhline(get_task(task).success_threshold, color="gray", ls=":", lw=1)
        ax.set(xscale="log", title=task, xlabel="live parameters (log)", ylabel="final return (IQM, 95% CI)")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(tasks):]:
        ax.axis("off")
    fig.suptitle("Return versus live parameters\n(dotted: the task's success threshold)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_live_components(grouped: dict[str, dict[str, list[RunRecord]]], path: pathlib.Path) -> bool:
    plt = _plt()
    tasks = [t for t in grouped if any(rs[0].method in SGMMQ_METHODS for rs in grouped[t].values())]
    if not tasks:
        return False
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for config, rs in grouped[task].items():
            if rs[0].method not in SGMMQ_METHODS:
                continue
            steps, live = _aligned(rs, "live_components")
            line, = ax.plot(steps, np.median(live, 0), label=config.split(" ", 1)[1])
            ax.fill_between(steps, live.min(0), live.max(0), color=line.get_color(), alpha=0.2)
        ax.set(title=task, xlabel="environment steps", ylabel="live components (median, min-max)")
        ax.legend(fontsize=7, title="initial budget", title_fontsize=7)
    fig.suptitle("S-GMM-QF: live components over training")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return True


# --- the README ---------------------------------------------------------------------------------
def _pick_model_run(configs: dict[str, list[RunRecord]]) -> RunRecord | None:
    """The median-score seed of the best S-GMM-QF budget (by mean final score)."""
    candidates = [rs for rs in configs.values() if rs[0].method in SGMMQ_METHODS and any(r.model is not None for r in rs)]
    if not candidates:
        return None
    best = max(candidates, key=lambda rs: np.mean([r.score_mean for r in rs]))
    with_model = sorted((r for r in best if r.model is not None), key=lambda r: r.score_mean)
    return with_model[(len(with_model) - 1) // 2]


def _last_line(error: str) -> str:
    return error.strip().splitlines()[-1].replace("|", "\\|") if error.strip() else "?"


def report(results: str | pathlib.Path, reps: int = 2000, curve_reps: int = 500,
           readme: str | pathlib.Path | None = None, command: str = "sgmmq report",
           summary: str | pathlib.Path | None = None, trusted: bool = False) -> pathlib.Path:
    """Write the README (``results/README.md`` unless ``readme`` names another file) and the PNGs
    (in ``results``); return the README's path. A README outside ``results`` links the PNGs
    relative to itself and lists the other result folders beside it that hold a README.md.
    ``summary`` names a file (the project's README) whose summary block gets the verdicts and
    compute ratios, so that they are never copied by hand; it is checked before any work.
    ``trusted`` lets the model files be unpickled (see ``SGMMQ.load``); by default they are not."""
    results = pathlib.Path(results)
    readme = pathlib.Path(readme) if readme is not None else results / "README.md"
    def link(name: str) -> str:  # a file of ``results`` as the README links it
        return os.path.relpath(results / name, readme.parent)

    if summary is not None:
        summary = pathlib.Path(summary)
        _summary_span(summary)
    ok, failed = load(results)
    if not ok:
        raise ValueError(f"{results / RUNS_DIR} holds no finished run")
    grouped = group(ok)
    config_path = results / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    commands = (results / "commands.txt").read_text().splitlines() if (results / "commands.txt").exists() else []
    lines = [
        f"# Parameter-efficiency study{': ' + config['name'] if config.get('name') else ''}",
        "",
        f"Generated by `{command}` from `{link('runs')}/*.json` (one file per run: evaluation curve, final score,",
        "live and training-time parameter counts, wall-clock, versions and the exact settings).",
        "",
        "- Final score: mean return of the final deterministic evaluation episodes on a separately seeded env.",
        "- IQM: interquartile mean over seeds; intervals: 95% stratified bootstrap (rliable, "
        f"{reps:,} resamples; curves {curve_reps:,}).",
        "- Normalized score: (score - low) / (high - low) with each task's `score_range` (`sgmmq.envs.TASKS`).",
        "- Live parameters: `sgmmq.evaluation.count_parameters` (`inference`); training parameters: its `training`.",
        "- Train s/run: training wall-clock without the evaluations, one torch thread per run.",
        "",
        f"{len(ok)} finished runs, {len(failed)} failed, {len(grouped)} task(s).",
        "",
        *_progress_lines(config, ok),
        "Commands:",
        "",
        *[f"- `{c}`" for c in commands],
        "",
        "Versions and machines:",
        "",
        *[f"- {v}" for v in sorted({f"{r.versions or '?'}; {r.machine or '?'}" for r in ok})],
        "",
    ]
    matrices = normalized_matrices(grouped)
    if matrices:
        agg = iqm_intervals(matrices, reps)
        n_seeds = {c: m.shape[0] for c, m in matrices.items()}
        lines += [f"## Over all tasks ({', '.join(grouped)}): normalized scores", "",
                  "| method budget | seeds per task | normalized IQM [95% CI] |", "| --- | ---: | ---: |",
                  *[f"| {c} | {n_seeds[c]} | {_ci(agg[c], '.3f')} |" for c in matrices], ""]
        mine = [c for c in matrices if c.split(" ")[0] in SGMMQ_METHODS]
        theirs = [c for c in matrices if c.split(" ")[0] not in SGMMQ_METHODS]
        if mine and theirs:
            poi = improvement({f"{m}|{t}": (matrices[m], matrices[t]) for m in mine for t in theirs}, reps)
            lines += ["### Probability of improvement of S-GMM-QF over each baseline", "",
                      "P(a random S-GMM-QF run scores above a random baseline run on the same task), averaged over tasks; 95% CI.", "",
                      "| baseline | " + " | ".join(mine) + " |", "| --- |" + " ---: |" * len(mine),
                      *[f"| {t} | " + " | ".join(_ci(poi[f'{m}|{t}'], '.2f') for m in mine) + " |" for t in theirs], ""]
    stats = task_iqms(grouped, reps)
    matched = matched_seeds(grouped)
    matched_stats = stats if matched == grouped else task_iqms(matched, reps)
    wins_table = summary_table(matched, matched_stats)
    if len(wins_table) > 2:
        lines += ["## Where S-GMM-QF wins and loses", "",
                  "Per task, the best S-GMM-QF budget against the best baseline at any budget, by normalized IQM; a difference",
                  "within 0.05 counts as a tie. The last columns: the baseline with the fewest live parameters that comes",
                  "within 0.05 of S-GMM-QF's best, and how many times more (or fewer) live parameters it has than S-GMM-QF.",
                  f"Only the seeds that every method and budget of a task has finished count here ({_seed_counts(matched)}).", "",
                  *wins_table, ""]
    ratios = compute_ratios(grouped)
    compute = compute_table(ratios)
    if len(compute) > 2:
        lines += ["## Compute: wall-clock per 1,000 environment steps", "",
                  "Training time without evaluations, mean over the seeds that DQN with the RL Zoo's network and every",
                  "S-GMM-QF budget have finished (a seed's runs ran together, on the same machine under the same load),",
                  "S-GMM-QF over that DQN on the same task. Runs shared the machine's cores with the other runs of the",
                  "sweep, one torch thread each.", "", *compute, ""]
    plot_return_vs_params(grouped, stats, results / "return_vs_params.png")
    lines += ["## Return versus live parameters", "", f"![return versus live parameters]({link('return_vs_params.png')})", ""]
    if plot_live_components(grouped, results / "live_components.png"):
        lines += ["## S-GMM-QF live components over training", "", f"![live components]({link('live_components.png')})", ""]
    failed_by_task: dict[str, int] = defaultdict(int)
    for r in failed:
        failed_by_task[r.task] += 1
    for task, configs in grouped.items():
        lines += [f"## {task}", "", *task_table(configs, stats[task], failed_by_task.get(task, 0)), "",
                  *seed_table(configs), ""]
        plot_learning_curves(task, configs, results / f"learning_curves_{task}.png", curve_reps)
        lines += [f"![learning curves {task}]({link(f'learning_curves_{task}.png')})", ""]
        chosen = _pick_model_run(configs)
        if chosen is not None:
            from sgmmq import SGMMQ as Model
            from sgmmq.inspection import draw as draw_gaussians

            png = f"gaussians_{task}.png"
            title = f"{task}, {chosen.config}, seed {chosen.seed} (score {chosen.score_mean:.1f})"
            draw_gaussians(Model.load(results / chosen.model, device="cpu", trusted=trusted), results / png, title)
            lines += [f"The learned Gaussians of {chosen.id} (the median seed of the best S-GMM-QF budget):", "",
                      f"![gaussians {task}]({link(png)})", ""]
    if failed:
        lines += ["## Failed runs", "", "| run | error (last line) |", "| --- | --- |",
                  *[f"| {r.id} | {_last_line(r.error)} |" for r in failed], ""]
    readme.parent.mkdir(parents=True, exist_ok=True)
    if readme.parent.resolve() != results.resolve():
        others = sorted(d for d in readme.parent.iterdir() if (d / "README.md").exists() and d.resolve() != results.resolve())
        if others:
            lines += ["## Other results in this folder", "",
                      *[f"- [{d.name}/]({d.name}/README.md): {_title(d / 'README.md')}" for d in others], ""]
    write_text_atomic(readme, "\n".join(lines))
    if summary is not None:
        write_summary(summary, summary_lines(matched, matched_stats, ok, config, os.path.relpath(readme, summary.parent), ratios))
    return readme


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


def _progress_lines(config: dict[str, Any], ok: list[RunRecord]) -> list[str]:
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
