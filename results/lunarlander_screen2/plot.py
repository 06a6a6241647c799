"""training_returns.png: each configuration's training-episode return over environment steps (mean over its
seeds of the returns in 10k-step bins; exploration included), from the run folders' curve.csv.

    python results/lunarlander_screen2/plot.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

HERE = Path(__file__).parent
BIN = 10_000


def binned(path: Path) -> np.ndarray:
    rows = [(int(float(r["step"])), float(r["return"])) for r in csv.DictReader(path.open())]
    steps, returns = np.array(rows).T
    return np.array([returns[(steps >= a) & (steps < a + BIN)].mean() for a in range(0, 100_000, BIN)])


def main() -> None:
    groups: dict[str, list[np.ndarray]] = {}
    for path in sorted(HERE.glob("*-LunarLander-v3-s*/curve.csv")):
        name = path.parent.name.split("-LunarLander")[0].removesuffix("_s59")  # seeds 5-9 join their row
        groups.setdefault(name, []).append(binned(path))
    fig, ax = plt.subplots(figsize=(8, 5))
    x = np.arange(BIN // 2, 100_000, BIN)
    for name, curves in sorted(groups.items(), key=lambda item: -np.mean(item[1], axis=0)[-1]):
        highlight = name in ("base", "gs2")
        ax.plot(x, np.mean(curves, axis=0), lw=2.5 if highlight else 1, alpha=1 if highlight else 0.6,
                label=f"{name} ({len(curves)} seeds)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("training episode return (10k-step bins, mean over seeds)")
    ax.set_title("LunarLander-v3, second screening: each change on top of the previous defaults (base)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(HERE / "training_returns.png", dpi=110)


if __name__ == "__main__":
    main()
