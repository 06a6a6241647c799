"""The report's figures: return versus live parameters, learning curves, live components over training
(the picture of the Gaussians is :func:`sgmmq.inspection.draw`, shared with ``sgmmq inspect``)."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from sgmmq.envs.tasks import get_task
from sgmmq.files import save_figure
from sgmmq.methods import SGMMQ_METHODS
from sgmmq.study.record import RunRecord
from sgmmq.study.statistics import Stats, iqm_curves


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
