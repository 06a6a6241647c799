"""What a trained S-GMM-Q-function holds: a table of its live Gaussians and a picture of them.

Everything is in the scaled space ``[-1, 1]^d`` the Gaussians live in. A component's standard
deviations are the square roots of its covariance eigenvalues (``C_k = P_k^{-1}``); its action is
the action code nearest to its mean's action coordinates (continuous actions: those coordinates,
in the action box scaled to ``[-1, 1]``).

Where the Gaussians sit relative to the data: :func:`visited_states` rolls the greedy policy out,
``draw(..., states=...)`` puts those states under the ellipses, and :func:`coverage` gives each
component's Mahalanobis distance to its nearest visited state.
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


def draw(model: Any, path: str | pathlib.Path, title: str | None = None, n: int = 120,
         states: np.ndarray | None = None) -> None:
    """1-std ellipses of every live Gaussian on pairs of state coordinates, coloured by action, over
    the greedy action (background) on the plane through the box centre (the whole state for 2-D).

    The one picture of the Gaussians: ``sgmmq inspect`` and the study report both draw it. Axes are
    the scaled box ``[-1, 1]``, labelled with the observation box the model scales from.
    Continuous actions: colours run over the first action coordinate, from -1 to 1 (scaled).
    ``states``: raw observations ``(N, obs_dim)`` (e.g. :func:`visited_states`), drawn as grey dots
    under the ellipses, scaled as the model scales them (so states outside the box sit on its edge).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse

    q_net = model.policy.q_net
    d, n_actions = q_net.state_dim, q_net.codes.shape[0]
    low, high = model.policy.obs_bounds
    visited = None if states is None else scaled_states(model, states)
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
        plane = np.zeros((n * n, d), dtype=np.float32)
        plane[:, i], plane[:, j] = xx.ravel(), yy.ravel()
        greedy = greedy_colors(q_net, plane).reshape(n, n)
        ax.imshow(colors[greedy][..., :3], extent=(-1, 1, -1, 1), origin="lower", alpha=0.3)
        if visited is not None:
            ax.scatter(visited[:, i], visited[:, j], s=3, color="0.2", alpha=0.4, linewidths=0, zorder=1)
        for row in rows:
            row = {**row, "action": color_index(q_net, row["action"])}
            cov = row["covariance"][np.ix_([i, j], [i, j])]
            eigvals, eigvecs = np.linalg.eigh(cov)
            angle = np.degrees(np.arctan2(eigvecs[1, 1], eigvecs[0, 1]))
            width, height = 2 * np.sqrt(eigvals[::-1])
            ax.add_patch(Ellipse((row["mean"][i], row["mean"][j]), width, height, angle=angle, fill=False,
                                 edgecolor=colors[row["action"]], lw=0.6 + 2 * abs(row["xi"]) / top, zorder=2))
            ax.plot(row["mean"][i], row["mean"][j], "+", color=colors[row["action"]], ms=5, zorder=3)
        ax.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal",
               xlabel=f"s{i} in [{low[i]:.3g}, {high[i]:.3g}]", ylabel=f"s{j} in [{low[j]:.3g}, {high[j]:.3g}]")
    for ax in axes.ravel()[len(pairs):]:
        ax.axis("off")
    if q_net.continuous:
        handles = [plt.Line2D([], [], color=colors[i], lw=3, label=f"action[0] = {v:+.1f}") for i, v in ((0, -1), (10, 0), (20, 1))]
    else:
        handles = [plt.Line2D([], [], color=colors[a], lw=3, label=f"action {a}") for a in range(n_actions)]
    if visited is not None:
        handles.append(plt.Line2D([], [], color="0.2", marker=".", ls="", label=f"{len(visited):,} visited states"))
    fig.legend(handles=handles, loc="upper right", fontsize=7)
    where = "greedy action over the state space" if d == 2 else "greedy action on the plane through the box centre (other coordinates 0)"
    title = title or f"{getattr(model, 'task_id', None) or 'model'}, {model.num_parameters():,} parameters"
    dots = "" if visited is None else f"; grey dots: {len(visited):,} visited states"
    fig.suptitle(f"{title}\n{q_net.n_components} live Gaussians (1-std ellipses, line width ~ |xi|){dots}\nbackground: {where}", fontsize=9)
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


def scaled_states(model: Any, states: np.ndarray) -> np.ndarray:
    """Raw observations ``(N, obs_dim)`` in the scaled space the Gaussians live in (``policy.scale``)."""
    states = np.asarray(states, dtype=np.float32)
    d = model.policy.q_net.state_dim
    if states.ndim != 2 or states.shape[1] != d or len(states) == 0:
        raise ValueError(f"states must be a non-empty array of observations, shape (N, {d}), got shape {states.shape}")
    with torch.no_grad():
        return model.policy.scale(torch.as_tensor(states)).cpu().numpy()


def visited_states(model: Any, task: Any = None, episodes: int = 5, seed: int = 0) -> np.ndarray:
    """The raw observations ``(N, obs_dim)`` the model's greedy policy visits in ``episodes`` episodes
    of its task (default: the task it records), every reset and every step: where its data is.

    One env in the action form the model acts in; the first episode starts at ``reset(seed=seed)``,
    the others continue that stream.
    """
    from sgmmq.envs import get_task
    from sgmmq.envs.factory import is_continuous, make_env

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    task = task if task is not None else getattr(model, "task_id", None)
    if task is None:
        raise ValueError("the model does not record its task; pass one")
    task = get_task(task) if isinstance(task, str) else task
    env = make_env(task, continuous=task.has_continuous_form and is_continuous(model.action_space))
    observations = []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed if episode == 0 else None)
            observations.append(obs)
            done = False
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, _, terminated, truncated, _ = env.step(action)
                observations.append(obs)
                done = terminated or truncated
    finally:
        env.close()
    return np.asarray(observations, dtype=np.float32)


def coverage(model: Any, states: np.ndarray) -> list[float]:
    """For each live component (in :func:`components`' order, largest ``|xi|`` first), the Mahalanobis
    distance from its state mean to the nearest of ``states`` (raw observations, scaled as the model
    scales them), under its state marginal: covariance ``Sigma_xx``, the state block of ``P^{-1}``.

    A component many of its own standard deviations from every visited state is one the pool placed
    off the data: the data give it (almost) no gradient. In float64.
    """
    q_net = model.policy.q_net
    d = q_net.state_dim
    visited = torch.as_tensor(scaled_states(model, states), dtype=torch.float64)
    with torch.no_grad():
        means = q_net.means[:, :d].double().cpu()
        marginal = torch.linalg.inv(q_net.precisions.double().cpu())[:, :d, :d]
    chol = torch.linalg.cholesky(marginal)  # Sigma_xx = L L^T: (s - m)^T Sigma_xx^-1 (s - m) = |L^-1 (s - m)|^2
    distances = []
    for row in components(model):
        white = torch.linalg.solve_triangular(chol[row["k"]], (visited - means[row["k"]]).T, upper=False)
        distances.append(float(white.square().sum(0).min().sqrt()))
    return distances
