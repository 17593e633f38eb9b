"""What every picture of adaptation shares: arrays on the host, stage colours, task titles."""

import matplotlib

matplotlib.use("Agg")

import jax
import matplotlib.pyplot as plt
import numpy as np

# the start of the trial and the end of adaptation stand apart: a sequential map, dark to bright
STAGE_CMAP = "plasma"


def host(trajectories):
    """The trajectories with every array as numpy (tasks too)."""
    return jax.tree.map(np.asarray, trajectories)


def stage_colors(num_stages: int) -> list:
    """One colour per stage, from the first (dark) to the last (bright, not yellow)."""
    cmap = plt.get_cmap(STAGE_CMAP)
    if num_stages == 1:
        return [cmap(0.0)]
    return [cmap(0.85 * s / (num_stages - 1)) for s in range(num_stages)]


def task_at(tasks, index: int):
    return jax.tree.map(lambda leaf: np.asarray(leaf)[index], tasks)


def task_title(env, task) -> str:
    """The task's coordinates as their space names them, e.g. "goal_x=0.21, goal_y=-0.40"."""
    coords = np.asarray(env.task_space.coords(task), dtype=np.float64).reshape(-1)
    return ", ".join(
        f"{name}={value:.3g}"
        for name, value in zip(env.task_space.coord_names, coords, strict=True)
    )


def panel_grid(num_panels: int, width: float = 3.6, height: float = 3.4, max_columns: int = 3):
    """A figure with one axes per panel (the spare ones hidden), returned flat."""
    columns = min(int(np.ceil(np.sqrt(num_panels))), max_columns)
    rows = -(-num_panels // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(width * columns, height * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[num_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:num_panels])


def figure_legend(fig, ax, columns: int = 6) -> None:
    """The legend of `ax`'s labelled artists once, under the panels."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(columns, len(labels)))


def save(fig, path: str) -> str:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def last_valid(valid: np.ndarray) -> np.ndarray:
    """The number of valid steps of each episode (valid [..., T] -> [...])."""
    return (np.asarray(valid) > 0).sum(axis=-1)
