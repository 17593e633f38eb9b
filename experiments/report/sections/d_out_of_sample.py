"""Section (d): the final return out of sample against in sample, and the gap between them."""

import os

from experiments.report.figures import (
    curves_block,
    draw_levels,
    env_levels,
    errorbar,
    panel_grid,
    quantity,
    save,
)
from experiments.report.formatting import (
    ci_range,
    ci_text,
    num,
    overlap_text,
    signed,
    value_with_ci,
)
from experiments.report.formatting import table as markdown_table
from experiments.report.loading import Run
from experiments.report.member_stats import GAP, IN_SAMPLE, StatsTable
from experiments.report.sections.common import (
    answer,
    by_env,
    describe_runs,
    levels_phrase,
)
from metarl_jax.io import report_stats as stats


def section_d(
    runs: list[Run], table: StatsTable, figures_dir: str, used: set, glance: list
) -> list[str]:
    lines = describe_runs(runs)
    lines += [
        "Final return out of sample (`eval/`, on the evaluation tasks) and in sample "
        "(`eval_train/`, fresh tasks of the training region), and the gap out − in (paired by "
        "seed; its 95% CI is over the per-seed differences):",
        "",
    ]
    header = [
        "algo",
        "env",
        "train tasks",
        "eval tasks",
        "member",
        "seeds",
        "out-of-sample",
        "out 95% CI",
        "in-sample",
        "in 95% CI",
        "gap (out − in)",
        "gap 95% CI",
        "CIs overlap",
    ]
    cells, reading = [], []
    envs = by_env(runs)
    fig, axes = panel_grid(2, len(envs), height=7.0)
    for col, (env, env_runs) in enumerate(envs.items()):
        ax, gap_ax = axes[0, col], axes[1, col]
        ticks = []
        for run in env_runs:
            for member in run.members:
                out_row, in_row = table.headline(run, member), table.find(run, member, IN_SAMPLE)
                out, inside = out_row.interval, in_row.interval
                gap = table.interval(run, member, GAP)
                label = run.algo + (f" ({member.label})" if len(run.members) > 1 else "")
                overlap = stats.intervals_overlap(out, inside) if out and inside else None
                cells.append(
                    [
                        run.algo,
                        env,
                        f"`{run.train_tasks}`",
                        f"`{run.eval_tasks}`",
                        member.label or "run",
                        str(out.n if out else 0),
                        ci_text(out),
                        ci_range(out),
                        ci_text(inside),
                        ci_range(inside),
                        ci_text(gap),
                        ci_range(gap),
                        overlap_text(overlap) if out and inside else "—",
                    ]
                )
                x = len(ticks)
                ticks.append(label)
                if out:
                    errorbar(
                        ax,
                        [x + 0.1],
                        [out],
                        "out-of-sample" if x == 0 else None,
                        color="tab:red",
                        linestyle="none",
                    )
                if inside:
                    errorbar(
                        ax,
                        [x - 0.1],
                        [inside],
                        "in-sample" if x == 0 else None,
                        color="tab:blue",
                        linestyle="none",
                    )
                if gap:
                    errorbar(gap_ax, [x], [gap], None, color="tab:purple", linestyle="none")
                text = _reading_d(run, label, out, inside, gap, overlap)
                text += levels_phrase(out_row.levels, [("out of sample", out_row)] if out else [])
                text += levels_phrase(in_row.levels, [("in sample", in_row)] if inside else [])
                pairs = [(run, [member])]
                reading.append(answer(table, glance, "d", env, label, pairs, text))
        for a in (ax, gap_ax):
            a.set_xticks(range(len(ticks)), ticks, fontsize=8)
            a.set_xlim(-0.6, len(ticks) - 0.4)
            a.grid(alpha=0.3)
        draw_levels(ax, env_levels(env_runs))
        ax.set_ylabel(f"final {quantity(env_runs)} (95% CI over seeds)")
        ax.set_title(f"{env}: out-of-sample vs in-sample")
        ax.legend(fontsize=8)
        gap_ax.axhline(0.0, color="black", linewidth=0.8)
        gap_ax.set_ylabel("gap out − in (paired 95% CI)")
    save(fig, os.path.join(figures_dir, "d_out_of_sample.png"))
    used.add("d_out_of_sample.png")
    lines += markdown_table(header, cells)
    lines += ["![out-of-sample vs in-sample final return](figures/d_out_of_sample.png)"]
    lines += ["", "Reading: " + " ".join(reading), ""]
    return lines + curves_block(runs, figures_dir, used)


def _reading_d(run: Run, label, out, inside, gap, overlap) -> str:
    head = f"On {run.env}, {label} trained on `{run.train_tasks}`"
    if not (out and inside):
        return f"{head}: missing out-of-sample or in-sample values."
    gap_ci = f" (paired 95% CI [{num(gap.low)}, {num(gap.high)}] over {gap.n} seeds)"
    if not gap.has_interval:
        gap_ci = " (one seed, no interval)"
    return (
        f"{head}: the final return out of sample (`{run.eval_tasks}`) is {value_with_ci(out)}, "
        f"in sample {value_with_ci(inside)}; the gap out − in is {signed(gap.mean)}{gap_ci}, "
        f"and the two confidence intervals {overlap_text(overlap)}."
    )
