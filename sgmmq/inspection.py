"""What a trained S-GMM-Q-function holds: a table of its live Gaussians and a picture of them.

Everything is in the scaled space ``[-1, 1]^d`` the Gaussians live in. A component's standard
deviations are the square roots of its covariance eigenvalues (``C_k = P_k^{-1}``); its action is
the action code nearest to its mean's action coordinates (continuous actions: those coordinates,
in the action box scaled to ``[-1, 1]``).
"""

from __future__ import annotations

import itertools
import pathlib
from typing import Any

import numpy as np
import torch

from sgmmq.files import save_figure


def components(model: Any) -> list[dict[str, Any]]:
    """One dict per live component, largest ``|xi|`` first."""
    q_net = model.policy.q_net
    with torch.no_grad():
        xi = q_net.xi.numpy()
        means = q_net.means.numpy()
        covariances = torch.linalg.inv(q_net.precisions).numpy()
        codes = q_net.codes.numpy()
    rows = []
    for k in np.argsort(-np.abs(xi)):
        action_part = means[k, q_net.state_dim:]
        rows.append({
            "k": int(k),
            "xi": float(xi[k]),
            "mean": means[k, : q_net.state_dim],
            "action": action_part.copy() if q_net.continuous else int(np.argmin(((codes - action_part) ** 2).sum(1))),
            "std": np.sqrt(np.linalg.eigvalsh(covariances[k])),
            "covariance": covariances[k],
        })
    return rows


def print_table(model: Any, task: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    q_net = model.policy.q_net
    title = f"{getattr(task, 'env_id', 'model')}: {q_net.n_components} live components, {model.num_parameters():,} parameters"
    table = Table(title=title)
    action_column = "action (scaled)" if q_net.continuous else "action"
    for name in ("k", "xi = u*v", action_column, "mean (scaled state)", "std devs (covariance eigen)"):
        table.add_column(name, justify="right" if name in ("k", "xi = u*v", "action") else "left")

    def fmt(values: np.ndarray, sign: str = "+") -> str:
        return " ".join(f"{v:{sign}.2f}" for v in values)

    for row in components(model):
        action = fmt(row["action"]) if q_net.continuous else str(row["action"])
        table.add_row(str(row["k"]), f"{row['xi']:+.3f}", action, fmt(row["mean"]), fmt(row["std"], ""))
    console = Console(width=140)
    console.print(table)
    offset = q_net.offset
    console.print(f"offset b = {float(offset.detach()):+.3f}" if offset is not None else "no offset")
    low, high = (" ".join(f"{v:.4g}" for v in bound) for bound in model.policy.obs_bounds)
    console.print(f"observation box (mapped to [-1, 1]): low [{low}], high [{high}]")


def _pairs(state_dim: int) -> list[tuple[int, int]]:
    """The state-coordinate pairs drawn: every pair up to 4-D, then neighbours (0, 1), (2, 3), ..."""
    if state_dim <= 4:
        return list(itertools.combinations(range(state_dim), 2)) or [(0, 0)]
    return [(i, i + 1) for i in range(0, state_dim - 1, 2)]


def draw(model: Any, path: str | pathlib.Path, title: str | None = None, n: int = 120) -> None:
    """1-std ellipses of every live Gaussian on pairs of state coordinates, coloured by action, over
    the greedy action (background) on the plane through the box centre (the whole state for 2-D).

    The one picture of the Gaussians: ``sgmmq inspect`` and the study report both draw it. Axes are
    the scaled box ``[-1, 1]``, labelled with the observation box the model scales from.
    Continuous actions: colours run over the first action coordinate, from -1 to 1 (scaled).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse

    q_net = model.policy.q_net
    d, n_actions = q_net.state_dim, q_net.codes.shape[0]
    low, high = model.policy.obs_bounds
    if q_net.continuous:  # colours over the first action coordinate (color_index)
        colors = plt.get_cmap("coolwarm")(np.linspace(0, 1, 21))
    else:
        colors = plt.get_cmap("tab10")(np.arange(n_actions) % 10)
    pairs = _pairs(d)
    ncols = min(3, len(pairs))
    nrows = -(-len(pairs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 4.3 * nrows + 0.6), squeeze=False)
    rows = components(model)
    top = max((abs(r["xi"]) for r in rows), default=1.0) or 1.0
    grid = np.linspace(-1, 1, n, dtype=np.float32)
    xx, yy = np.meshgrid(grid, grid)
    for ax, (i, j) in zip(axes.ravel(), pairs):
        states = np.zeros((n * n, d), dtype=np.float32)
        states[:, i], states[:, j] = xx.ravel(), yy.ravel()
        greedy = greedy_colors(q_net, states).reshape(n, n)
        ax.imshow(colors[greedy][..., :3], extent=(-1, 1, -1, 1), origin="lower", alpha=0.3)
        for row in rows:
            row = {**row, "action": color_index(q_net, row["action"])}
            cov = row["covariance"][np.ix_([i, j], [i, j])]
            eigvals, eigvecs = np.linalg.eigh(cov)
            angle = np.degrees(np.arctan2(eigvecs[1, 1], eigvecs[0, 1]))
            width, height = 2 * np.sqrt(eigvals[::-1])
            ax.add_patch(Ellipse((row["mean"][i], row["mean"][j]), width, height, angle=angle, fill=False,
                                 edgecolor=colors[row["action"]], lw=0.6 + 2 * abs(row["xi"]) / top))
            ax.plot(row["mean"][i], row["mean"][j], "+", color=colors[row["action"]], ms=5)
        ax.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal",
               xlabel=f"s{i} in [{low[i]:.3g}, {high[i]:.3g}]", ylabel=f"s{j} in [{low[j]:.3g}, {high[j]:.3g}]")
    for ax in axes.ravel()[len(pairs):]:
        ax.axis("off")
    if q_net.continuous:
        handles = [plt.Line2D([], [], color=colors[i], lw=3, label=f"action[0] = {v:+.1f}") for i, v in ((0, -1), (10, 0), (20, 1))]
    else:
        handles = [plt.Line2D([], [], color=colors[a], lw=3, label=f"action {a}") for a in range(n_actions)]
    fig.legend(handles=handles, loc="upper right", fontsize=7)
    where = "greedy action over the state space" if d == 2 else "greedy action on the plane through the box centre (other coordinates 0)"
    title = title or f"{getattr(model, 'task_id', None) or 'model'}, {model.num_parameters():,} parameters"
    fig.suptitle(f"{title}\n{q_net.n_components} live Gaussians (1-std ellipses, line width ~ |xi|); background: {where}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def color_index(q_net: Any, action: Any) -> Any:
    """A discrete action's own colour; a continuous action's first coordinate in 21 levels over [-1, 1]."""
    if not q_net.continuous:
        return action
    return np.rint((np.asarray(action)[..., 0].clip(-1, 1) + 1) * 10).astype(int)


def greedy_colors(q_net: Any, states: np.ndarray) -> np.ndarray:
    """Colour indices of the greedy action at scaled states ``(N, d)`` (see :func:`color_index`)."""
    with torch.no_grad():
        actions = q_net.greedy(torch.as_tensor(states))[0].numpy()
    return color_index(q_net, actions)
