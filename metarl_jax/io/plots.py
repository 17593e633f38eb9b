"""Plots of a run: curves against env steps, mean and spread over seeds, one line per member."""

import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from metarl_jax.io.metrics import curve_columns, headline_metrics


def x_axis(rows: list[dict]) -> tuple[str, str]:
    """(column, axis label) of the curves' x-axis: env steps, or the iteration for an offline
    algorithm, which takes no env steps while it trains."""
    if any(float(row["env_steps"]) != float(rows[0]["env_steps"]) for row in rows):
        return "env_steps", "environment steps"
    return "iteration", "training iterations (offline: no environment steps)"


def group_over_seeds(rows: list[dict], sweep_columns: list[str], metric: str):
    """{member label: (x [I], values [seeds, I])} for rows of metrics.csv; x = `x_axis`."""
    x_column, _ = x_axis(rows) if rows else ("env_steps", "")
    series = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        if row.get(metric, "") in ("", None):
            continue
        label = ", ".join(f"{c}={row[c]}" for c in sweep_columns)
        series[label][row["seed"]][int(row["iteration"])] = (
            float(row[x_column]),
            float(row[metric]),
        )
    grouped = {}
    for label, by_seed in series.items():
        iterations = sorted(set.intersection(*(set(v) for v in by_seed.values())))
        steps = np.array([next(iter(by_seed.values()))[i][0] for i in iterations])
        values = np.array([[by_seed[s][i][1] for i in iterations] for s in sorted(by_seed)])
        grouped[label] = (steps, values)
    return grouped


def draw_levels(ax, levels: dict | None) -> None:
    """A run's reference levels (`baselines.levels`) as labelled horizontal lines: the lower and
    upper ones solid, the others dotted."""
    if not levels:
        return
    framing = (levels["lower"], levels["upper"])
    for i, (name, value) in enumerate(levels["values"].items()):
        style = "-" if name in framing else ":"
        ax.axhline(value, color="0.35", linestyle=style, linewidth=0.9, zorder=0)
        ax.annotate(
            name,
            (1.0, value),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 1 + 8 * (i % 2)),
            textcoords="offset points",
            ha="right",
            fontsize=6,
            color="0.3",
        )


def levels_for(levels: dict | None, metric: str) -> dict | None:
    """The level set (of summary.json's `levels`) whose metric is `metric`, if any."""
    return next((s for s in (levels or {}).values() if s["metric"] == metric), None)


def plot_curves(rows, sweep_columns, metric: str, path: str, title: str = "", levels=None) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    draw_levels(ax, levels)
    for label, (steps, values) in sorted(group_over_seeds(rows, sweep_columns, metric).items()):
        mean, spread = values.mean(axis=0), values.std(axis=0)
        ax.plot(steps, mean, label=label or "run")
        ax.fill_between(steps, mean - spread, mean + spread, alpha=0.2)
    ax.set_xlabel(x_axis(rows)[1] if rows else "environment steps")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    if sweep_columns:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_adaptation(final_curves: dict, path: str, xlabel: str, levels=None) -> None:
    """final_curves: {member label: values [seeds, K]}: return at each point of the curve;
    `levels`: a level set in the same quantity (an episode's return), drawn when given."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    draw_levels(ax, levels)
    for label, values in sorted(final_curves.items()):
        steps = np.arange(values.shape[1])
        mean, spread = values.mean(axis=0), values.std(axis=0)
        ax.errorbar(steps, mean, yerr=spread, marker="o", capsize=3, label=label or "run")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("evaluation return")
    ax.set_title("evaluation return (final iteration, mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(
    out_dir: str, rows: list[dict], sweep_columns: list[str], levels: dict | None = None
) -> list[str]:
    """A plot per headline metric (with its reference levels, when `levels` has them), and the
    final evaluation curve."""
    plots_dir = os.path.join(out_dir, "plots")
    os.makedirs(plots_dir, exist_ok=True)
    columns = list(rows[0]) if rows else []
    eval_curve, curve_label = curve_columns(columns)
    written = []
    framed = [s["metric"] for s in (levels or {}).values() if s["metric"] in columns]
    for metric in dict.fromkeys([*headline_metrics(columns), *framed]):
        path = os.path.join(plots_dir, metric.replace("/", "_") + ".png")
        plot_curves(rows, sweep_columns, metric, path, levels=levels_for(levels, metric))
        written.append(path)
    if eval_curve:
        last = max(int(r["iteration"]) for r in rows)
        final = [r for r in rows if int(r["iteration"]) == last]
        curves = defaultdict(list)
        for row in final:
            label = ", ".join(f"{c}={row[c]}" for c in sweep_columns)
            curves[label].append([float(row[c]) for c in eval_curve])
        path = os.path.join(plots_dir, "eval_curve.png")
        episode_levels = levels_for(levels, "eval/return")  # a curve point is an episode's return
        plot_adaptation(
            {k: np.array(v) for k, v in curves.items()}, path, curve_label, episode_levels
        )
        written.append(path)
    return sorted(set(written))
