"""2-D navigation: the paths to several goals at each stage of adaptation (the MAML paper's
navigation figure): one panel per goal, the start, the goal, one colour per stage."""

import numpy as np

from experiments.pictures.style import (
    figure_legend,
    last_valid,
    panel_grid,
    save,
    stage_colors,
)


def navigation_figure(path: str, trajectories, positions: np.ndarray, max_tasks: int) -> str:
    """`positions` [S, N, T + 1, 2]: each episode's positions from the start to after its last
    action (the replayed observations); a path ends at its episode's last valid step."""
    labels = trajectories.stage_labels
    goals = np.asarray(trajectories.tasks.goal)
    num_tasks = min(max_tasks, goals.shape[0])
    lengths = last_valid(trajectories.valid)  # [S, N]
    colors = stage_colors(len(labels))
    fig, axes = panel_grid(num_tasks)
    for n, ax in enumerate(axes):
        drawn = [goals[n][None], np.zeros((1, 2))]
        for s, label in enumerate(labels):
            steps = positions[s, n, : lengths[s, n] + 1]
            drawn.append(steps)
            ax.plot(steps[:, 0], steps[:, 1], "-", color=colors[s], lw=1.6, label=label, zorder=2)
            ax.plot(*steps[-1], "o", color=colors[s], ms=3.5, zorder=2)
        ax.plot(0.0, 0.0, "s", color="0.5", ms=7, label="start", zorder=1.5)
        ax.plot(*goals[n], "*", color="tab:green", ms=15, mec="k", mew=0.6, label="goal")
        _square_limits(ax, np.concatenate(drawn))
        ax.set_title(f"goal ({goals[n][0]:+.2f}, {goals[n][1]:+.2f})", fontsize=10)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.grid(alpha=0.3)
    figure_legend(fig, axes[0])
    fig.suptitle("2-D navigation: paths at each stage of adaptation", fontsize=12)
    return save(fig, path)


def _square_limits(ax, points: np.ndarray) -> None:
    finite = points[np.isfinite(points).all(axis=1)]
    low, high = finite.min(axis=0), finite.max(axis=0)
    centre, half = (low + high) / 2, max(float((high - low).max()) / 2, 0.1) * 1.15
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_aspect("equal")
