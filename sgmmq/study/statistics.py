"""The report's numbers: IQMs with stratified-bootstrap intervals (rliable), probabilities of
improvement, the grouping of runs into (task, method budget), verdicts and compute ratios.

Over tasks a method's matrix is (seeds x tasks): every task contributes its first ``n`` seeds,
``n`` the smallest seed count among them, and only (method, budget)s run on every task enter the
aggregate.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Any

import numpy as np

from sgmmq.methods import SGMMQ_METHODS
from sgmmq.study.record import RunRecord


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


Stats = dict[str, dict[str, dict[str, tuple[float, float, float]]]]  # {task: {score key: {config: (IQM, low, high)}}}


def task_iqms(grouped: dict[str, dict[str, list[RunRecord]]], reps: int) -> Stats:
    """Every config's IQM interval of raw and normalized final scores, per task: computed once,
    read by the tables and the headline figure."""
    return {task: {key: iqm_intervals({c: np.array([[getattr(r, key)] for r in rs]) for c, rs in configs.items()}, reps)
                   for key in ("score_mean", "normalized_score")}
            for task, configs in grouped.items()}


def normalized_matrices(grouped: dict[str, dict[str, list[RunRecord]]]) -> dict[str, np.ndarray]:
    """(seeds x tasks) normalized final scores of each config run on every task."""
    tasks = list(grouped)
    common = [c for c in next(iter(grouped.values())) if all(c in grouped[t] for t in tasks)]
    matrices = {}
    for config in common:
        n = min(len(grouped[t][config]) for t in tasks)
        matrices[config] = np.array([[grouped[t][config][i].normalized_score for t in tasks] for i in range(n)])
    return matrices


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
