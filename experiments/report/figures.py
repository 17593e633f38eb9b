"""The report's matplotlib figures: learning curves of a run, and the helpers every section's
figure uses (panels, error bars, axes style, saving under a unique name)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from experiments.report.formatting import slug
from experiments.report.loading import Run, sweep_sort_key
from metarl_jax.io.plots import draw_levels, group_over_seeds, x_axis

__all__ = ["draw_levels"]


def learning_curves(run: Run, figures_dir: str, used: set) -> str:
    """eval/return against env steps (mean over seeds, one line per member), beside the final
    evaluation curve within a task (MAML: gradient steps; RL², PEARL: episodes of a trial)."""
    curve, curve_label = run.curves.get("eval", ([], ""))
    panels = 2 if curve else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    styles = [("eval", "-", "out-of-sample " if run.experiment == "d" else "")]
    if run.experiment == "d":
        styles.append(("eval_train", "--", "in-sample "))
    for prefix, style, what in styles:
        grouped = group_over_seeds(run.rows, run.sweep_columns, run.headline[prefix])
        ordered = sorted(grouped.items(), key=lambda kv: _label_key(kv[0]))
        for i, (label, (steps, values)) in enumerate(ordered):
            ax.plot(
                steps,
                values.mean(axis=0),
                style,
                color=f"C{i % 10}",
                marker=".",
                label=f"{what}{label or 'run'}",
            )
    draw_levels(ax, run.levels_of())
    ax.set_xlabel(f"{x_axis(run.rows)[1]} (per member)")
    ax.set_ylabel(f"{run.headline['eval']} (mean over seeds)")
    ax.set_title(f"{run.algo} on {run.env}: evaluation return", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if curve:
        ax = axes[0, 1]
        if run.headline["eval"] == "eval/return":  # the curve's points are episodes' returns too
            draw_levels(ax, run.levels_of())
        for member in run.members:
            means = [np.mean(list(member.final[c].values())) for c in curve if member.final[c]]
            ax.plot(range(len(means)), means, marker="o", label=member.label or "run")
        ax.set_xlabel(curve_label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("evaluation return (mean over seeds)")
        where = " (out of sample)" if run.experiment in ("d", "e") else ""
        ax.set_title(
            f"final iteration ({run.final_iteration}): evaluation curve{where}", fontsize=10
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    name = unique_name(
        f"curves_{run.experiment or 'other'}_{slug(run.env)}_{slug(run.algo)}_"
        f"{slug(run.train_tasks)}.png",
        used,
    )
    save(fig, os.path.join(figures_dir, name))
    return name


def _label_key(label: str):
    return [sweep_sort_key(part.partition("=")[2]) for part in label.split(", ")]


def unique_name(name: str, used: set) -> str:
    """`name`, or with a number added if a figure already has it; recorded as used."""
    stem, ext = os.path.splitext(name)
    candidate, i = name, 1
    while candidate in used:
        i += 1
        candidate = f"{stem}_{i}{ext}"
    used.add(candidate)
    return candidate


def save(fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def curves_block(runs: list[Run], figures_dir: str, used: set) -> list[str]:
    lines = ["Learning curves (evaluation return against environment steps, mean over seeds):", ""]
    for run in runs:
        name = learning_curves(run, figures_dir, used)
        lines += [f"![learning curves: {run.name}](figures/{name})", ""]
    return lines


def panels(n: int, width: float = 5.5):
    fig, axes = plt.subplots(1, n, figsize=(width * n, 4.2), squeeze=False)
    return fig, list(axes[0])


def panel_grid(rows: int, columns: int, height: float, width: float = 5.5):
    """A figure of rows × columns panels (axes indexed [row, column]), `width` per column."""
    return plt.subplots(rows, columns, figsize=(width * columns, height), squeeze=False)


def errorbar(ax, xs, ivs, label, **kwargs):
    means = [iv.mean for iv in ivs]
    errors = [iv.half_width if iv.has_interval else 0.0 for iv in ivs]
    ax.errorbar(xs, means, yerr=errors, marker="o", capsize=3, label=label, **kwargs)


def env_levels(runs: list[Run], prefix: str = "eval") -> dict | None:
    """The level set a panel of one environment draws: its first run's that has one (runs of one
    experiment and env share their evaluation tasks' distribution)."""
    return next((r.levels_of(prefix) for r in runs if r.levels_of(prefix)), None)


def quantity(runs: list[Run], prefix: str = "eval") -> str:
    """The one quantity a panel shows (runs on one env share their headline metric)."""
    return " / ".join(dict.fromkeys(r.headline[prefix] for r in runs if prefix in r.headline))


def style_final_return_axes(ax, xlabel: str, title: str, runs: list[Run]) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"final {quantity(runs)} (95% CI over seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def figure_and_reading(fig, figures_dir, used, name, alt, reading) -> list[str]:
    """Save `fig` as figures/`name`; the Markdown lines that show it and give its reading."""
    save(fig, os.path.join(figures_dir, name))
    used.add(name)
    return [f"![{alt}](figures/{name})", "", "Reading: " + " ".join(reading), ""]
