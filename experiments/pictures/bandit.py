"""Bandits: the arm pulled at each step of the trial against the arms' probabilities.

One panel per task: a row per arm shaded by its success probability, the best arm's row
outlined, a dot per pull (filled: reward 1, hollow: reward 0), the trial's stages (episodes, or
adaptation steps) side by side on the time axis, separated by dashed lines and headed by how
often they pulled the best arm.
"""

import numpy as np
from matplotlib.patches import Rectangle

from experiments.pictures.style import figure_legend, last_valid, panel_grid, save

PROBABILITY_CMAP = "Greens"
SHADE = 0.6  # the shading's opacity: a dot stays visible on the likeliest arm's row


def bandit_figure(path: str, trajectories, max_tasks: int) -> str:
    probs = np.asarray(trajectories.tasks.arm_probs)
    num_tasks = min(max_tasks, probs.shape[0])
    lengths = last_valid(trajectories.valid)  # [S, N]
    fig, axes = panel_grid(num_tasks, width=5.4, height=0.42 * probs.shape[1] + 1.7, max_columns=2)
    for n, ax in enumerate(axes):
        image = _bandit_panel(ax, trajectories, n, probs[n], lengths[:, n])
    fig.colorbar(image, ax=axes, shrink=0.8, label="arm's success probability")
    figure_legend(fig, axes[0])
    fig.suptitle("Bandits: the arm pulled at each step of the trial")
    return save(fig, path)


def _bandit_panel(ax, trajectories, n: int, probs: np.ndarray, lengths: np.ndarray):
    num_arms = probs.shape[0]
    best = int(np.argmax(probs))
    pulls, rewards, starts = _trial(trajectories, n, lengths)
    total = max(len(pulls), 1)
    image = ax.imshow(
        probs[:, None],
        extent=(0.5, total + 0.5, -0.5, num_arms - 0.5),
        origin="lower",
        aspect="auto",
        cmap=PROBABILITY_CMAP,
        vmin=0.0,
        vmax=1.0,
        alpha=SHADE,
    )
    ax.add_patch(
        Rectangle((0.5, best - 0.5), total, 1.0, fill=False, ec="tab:red", lw=1.6, label="best arm")
    )
    steps = np.arange(1, len(pulls) + 1)
    won = rewards > 0
    ax.scatter(steps[won], pulls[won], s=20, c="k", zorder=3, label="pull, reward 1")
    ax.scatter(
        steps[~won],
        pulls[~won],
        s=20,
        facecolors="white",
        edgecolors="k",
        zorder=3,
        label="pull, reward 0",
    )
    ends = [*starts[1:], len(pulls)]
    for start, end, label in zip(starts, ends, trajectories.stage_labels, strict=True):
        if start > 0:
            ax.axvline(start + 0.5, color="0.25", ls="--", lw=1.0)
        share = float(np.mean(pulls[start:end] == best)) if end > start else 0.0
        ax.text(start + 1, num_arms - 0.4, f"{label}: best {share:.0%}", fontsize=8, va="bottom")
    ax.set_yticks(range(num_arms), [f"arm {a} (p={p:.2f})" for a, p in enumerate(probs)])
    ax.set_xlim(0.5, total + 0.5)
    ax.set_ylim(-0.5, num_arms + 0.3)
    ax.set_xlabel("pull in the trial")
    ax.set_title(f"task {n}", fontsize=10)
    return image


def _trial(trajectories, n: int, lengths: np.ndarray):
    """Task n's valid pulls and rewards, stage after stage, and where each stage starts."""
    actions = np.asarray(trajectories.actions)[:, n]
    rewards = np.asarray(trajectories.rewards)[:, n]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    pulls = np.concatenate([actions[s, : lengths[s]] for s in range(len(lengths))])
    won = np.concatenate([rewards[s, : lengths[s]] for s in range(len(lengths))])
    return pulls.astype(int), won, starts
