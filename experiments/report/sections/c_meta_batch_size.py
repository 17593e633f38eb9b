"""Section (c): the final return against the meta-batch size."""

from experiments.report.figures import (
    curves_block,
    draw_levels,
    env_levels,
    errorbar,
    figure_and_reading,
    panels,
    style_final_return_axes,
)
from experiments.report.formatting import overlap_text, signed, value_with_ci
from experiments.report.loading import Run
from experiments.report.member_stats import StatsTable
from experiments.report.sections.common import (
    answer,
    by_env,
    describe_runs,
    levels_phrase,
    lines_along,
    member_table,
)
from metarl_jax.io import report_stats as stats


def section_c(
    runs: list[Run], table: StatsTable, figures_dir: str, used: set, glance: list
) -> list[str]:
    lines = describe_runs(runs)
    lines += ["Final evaluation return per meta-batch size:", ""]
    lines += member_table(runs, table)
    envs = by_env(runs)
    fig, axes = panels(len(envs))
    reading = []
    for ax, (env, env_runs) in zip(axes, envs.items(), strict=True):
        sizes = set()
        for run in env_runs:
            for label, members in lines_along(run, "meta_batch_size").items():
                rows = [(m, table.headline(run, m)) for m in members]
                rows = [(m, row) for m, row in rows if row.interval]
                points = [(m, row.interval) for m, row in rows]
                xs = [int(m.sweep["meta_batch_size"]) for m, _ in points]
                sizes.update(xs)
                errorbar(ax, xs, [iv for _, iv in points], label)
                framed = [(f"meta-batch {m.sweep['meta_batch_size']}", row) for m, row in rows]
                text = _reading_c(env, label, points) + levels_phrase(run.levels_of(), framed)
                pairs = [(run, [m for m, _ in points])]
                reading.append(answer(table, glance, "c", env, label, pairs, text))
        ax.set_xscale("log")
        ax.set_xticks(sorted(sizes), [str(s) for s in sorted(sizes)])
        ax.minorticks_off()
        draw_levels(ax, env_levels(env_runs))
        xlabel = "meta-batch size (tasks per iteration, log scale)"
        style_final_return_axes(ax, xlabel, env, env_runs)
    lines += figure_and_reading(
        fig, figures_dir, used, "c_meta_batch_size.png",
        "final return against the meta-batch size", reading,
    )  # fmt: skip
    return lines + curves_block(runs, figures_dir, used)


def _reading_c(env: str, label: str, points) -> str:
    if not points:
        return f"On {env}, {label}: no evaluation values."
    if len(points) == 1:
        m, iv = points[0]
        return (
            f"On {env}, {label}: only meta-batch size {m.sweep['meta_batch_size']} was run, final "
            f"return {value_with_ci(iv)}."
        )
    best = max(points, key=lambda p: p[1].mean)
    worst = min(points, key=lambda p: p[1].mean)
    overlap = stats.intervals_overlap(best[1], worst[1])
    return (
        f"On {env}, {label}: the best meta-batch size is {best[0].sweep['meta_batch_size']} "
        f"with {value_with_ci(best[1])}, the worst {worst[0].sweep['meta_batch_size']} with "
        f"{value_with_ci(worst[1])} (difference {signed(best[1].mean - worst[1].mean)}); their "
        f"confidence intervals {overlap_text(overlap)}."
    )
