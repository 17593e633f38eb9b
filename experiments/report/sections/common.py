"""What several sections share: the list of runs, the table of final returns per member,
grouping by environment, and the final return against the number of training tasks (a, b)."""

import math
from collections import defaultdict
from typing import NamedTuple

from experiments.report.figures import (
    draw_levels,
    env_levels,
    errorbar,
    figure_and_reading,
    panels,
    quantity,
    style_final_return_axes,
)
from experiments.report.formatting import ci_range, ci_text, join_distinct, num
from experiments.report.formatting import table as markdown_table
from experiments.report.loading import ALL, Member, Run, sweep_sort_key
from experiments.report.member_stats import INFERENCE_GAIN, MemberStats, StatsTable
from metarl_jax.io import report_stats as stats


def describe_runs(runs: list[Run]) -> list[str]:
    """What was run: environments, algorithms, seeds, iterations; one bullet per run."""
    seeds = sorted(set().union(*(set(m.seeds) for r in runs for m in r.members)))
    iterations = sorted({r.final_iteration for r in runs})
    lines = [
        f"What was run: {len(runs)} run(s); environments {join_distinct(r.env for r in runs)}; "
        f"algorithms {join_distinct(r.algo for r in runs)}; seeds {join_distinct(seeds)}; final "
        f"logged iteration {join_distinct(iterations)}.",
        "",
    ]
    for run in runs:
        sweep = "; ".join(
            f"{c} {join_distinct(m.sweep[c] for m in run.members)}" for c in run.sweep_columns
        )
        planned = run.num_iterations
        unfinished = (
            f" (unfinished: {planned} planned)" if planned and planned > run.final_iteration else ""
        )
        horizon = run.flags.get("horizon")
        extra = f", horizon {horizon}" if horizon not in (None, "0") else ""
        if run.env == "bandit":
            extra += f", {run.flags.get('num_arms', '?')} arms"
        lines.append(
            f"- `{run.path}`: {run.algo} on {run.env}{extra}; train tasks `{run.train_tasks}`, "
            f"eval tasks `{run.eval_tasks}`; seeds {join_distinct(run.members[0].seeds)}; "
            f"{run.final_iteration} iterations{unfinished}; sweep: {sweep}."
        )
    return [*lines, ""]


def member_table(runs: list[Run], table: StatsTable) -> list[str]:
    """Final evaluation return of every sweep member with its 95% CI over seeds (and a column of
    its swept settings' values where a run has some)."""
    with_swept = any(run.swept_settings for run in runs)
    header = [
        "algo",
        "env",
        "train tasks",
        "meta-batch",
        "training tasks (k)",
        *(["swept settings"] if with_swept else []),
        "seeds",
        "iteration",
        "env steps",
        f"final {quantity(runs)}",
        "95% CI half-width",
        "95% CI",
    ]
    with_gain = any(INFERENCE_GAIN in run.rows[0] for run in runs)
    if with_gain:
        header.append(f"final {INFERENCE_GAIN} (95% CI)")
    header.append("converged (last-quarter change)")
    header.append("between the levels (lower 0 → upper 1)")
    rows = []
    for run in runs:
        for member in run.members:
            headline = table.headline(run, member)
            iv = headline.interval
            rows.append(
                [
                    run.algo,
                    run.env,
                    f"`{run.train_tasks}`",
                    member.sweep.get("meta_batch_size", "—"),
                    member.sweep.get("num_train_tasks", "—"),
                    *([swept_text(run, member)] if with_swept else []),
                    str(iv.n if iv else 0),
                    str(run.final_iteration),
                    str(member.env_steps),
                    num(iv.mean) if iv else "—",
                    (num(iv.half_width) if iv.has_interval else "n/a (1 seed)") if iv else "—",
                    ci_range(iv),
                ]
            )
            if with_gain:
                gain = table.find(run, member, INFERENCE_GAIN)
                rows[-1].append(ci_text(gain.interval) if gain else "—")
            rows[-1].append(plateau_text(headline.plateau))
            rows[-1].append(position_text(headline))
    lines = markdown_table(header, rows)
    seeds_at = header.index("seeds")
    if any(row[seeds_at] == "1" for row in rows):
        lines += ["Members with one seed have no confidence interval.", ""]
    lines += [f"Convergence check: {stats.PLATEAU_TEST}.", ""]
    return lines + levels_lines(runs)


def swept_text(run: Run, member: Member) -> str:
    return ", ".join(f"{s}={member.sweep[s]}" for s in run.swept_settings) or "—"


def levels_lines(runs: list[Run], prefix: str = "eval") -> list[str]:
    """The reference levels of each run's `prefix` evaluation (computed on its evaluation tasks),
    as the member tables' last column uses them."""
    lines = []
    for run in runs:
        levels = run.levels_of(prefix)
        if levels is None:
            lines.append(f"- {run.name}: no reference levels (none in its summary.json).")
            continue
        values = "; ".join(
            f"{name} {num(v)}{frame_mark(levels, name)}" for name, v in levels["values"].items()
        )
        lines.append(f"- {run.name}, `{levels['metric']}`: {values}.")
    return ["Reference levels (computed on the run's own evaluation tasks):", "", *lines, ""]


def frame_mark(levels: dict, name: str) -> str:
    return {levels["lower"]: " (lower)", levels["upper"]: " (upper)"}.get(name, "")


def position_text(row: MemberStats) -> str:
    """Where a final value sits between its run's lower (0) and upper (1) levels."""
    levels = row.levels
    if levels is None or row.interval is None:
        return "—"
    if row.position is None:
        return f"no upper level (lower {levels['lower']} {num(levels['values'][levels['lower']])})"
    return f"{row.position:.2f}"


def levels_phrase(levels: dict | None, points: list[tuple[str, MemberStats]]) -> str:
    """For a reading: where each (label, member's row) sits between the levels, or ''."""
    if levels is None or not points:
        return ""
    lower = levels["lower"]
    low = f"{lower} ({num(levels['values'][lower])})"
    upper = levels["upper"]
    if upper is None:
        return f" The lower reference level is {low}; no upper level is known for this env."
    high = f"{upper} ({num(levels['values'][upper])})"
    placed = [(label, row.position) for label, row in points if row.position is not None]
    where = ", ".join(f"{label} at {p:.2f}" for label, p in placed)
    return f" Between the levels {low} = 0 and {high} = 1: {where}."


def unconverged(table: StatsTable, run: Run, members: list[Member]) -> list[Member]:
    """The members that did not pass the plateau test (failed, or it cannot tell)."""
    return [m for m in members if not table.headline(run, m).converged]


def short_label(run: Run, member: Member) -> str:
    """A member named by the sweep columns that vary within its run (all of them if none do)."""
    varying = [c for c in run.sweep_columns if len({m.sweep[c] for m in run.members}) > 1]
    return ", ".join(f"{c}={member.sweep[c]}" for c in varying) or member.label or "run"


class GlanceRow(NamedTuple):
    """One answer of the report, for the summary table at its top."""

    experiment: str
    env: str
    line: str
    converged: str
    answer: str


def answer(table: StatsTable, glance: list, experiment, env, line, pairs, reading: str) -> str:
    """Record a reading in the report's summary table, and return it marked *provisional* when
    the answer rests on a member (of `pairs`: [(run, its members)]) that has not plateaued."""
    open_parts = []
    for run, members in pairs:
        names = ", ".join(short_label(run, m) for m in unconverged(table, run, members))
        if names:
            open_parts.append(f"{run.name}: {names}" if len(pairs) > 1 else names)
    converged = "yes" if not open_parts else "no (" + "; ".join(open_parts) + ")"
    glance.append(GlanceRow(experiment, env, line, converged, reading))
    if not open_parts:
        return reading
    return (
        f"*Provisional* (not converged by the plateau test: {'; '.join(open_parts)}; so this "
        f"is no finding yet): {reading}"
    )


def glance_table(glance: list[GlanceRow]) -> list[str]:
    """The report's first table: every answer, whether it rests on converged runs, and (in the
    answer) its confidence intervals and where it sits between the reference levels."""
    if not glance:
        return []
    header = ["experiment", "env", "algorithm (line)", "converged", "answer"]
    rows = [[f"({g.experiment})", g.env, g.line, g.converged, g.answer] for g in glance]
    return [
        "## At a glance",
        "",
        "Every answer of the sections below in one table; an answer whose runs have not "
        "converged by the plateau test is provisional, not a finding.",
        "",
        *markdown_table(header, rows),
    ]


def plateau_text(test: stats.PlateauTest | None) -> str:
    if test is None or test.change is None:
        return "—"
    verdict = {True: "yes", False: "no", None: "cannot tell"}[test.converged]
    return f"{verdict} ({test.change:+.3g})"


def by_env(runs: list[Run]) -> dict[str, list[Run]]:
    groups = defaultdict(list)
    for run in sorted(runs, key=lambda r: (r.env, r.algo, not r.is_full, r.train_tasks)):
        groups[run.env].append(run)
    return dict(sorted(groups.items()))


def lines_along(run: Run, axis: str) -> dict[str, list[Member]]:
    """The run's members as lines along sweep column `axis`: one line per combination of the
    other sweep columns (named only when they vary)."""
    others = [
        c for c in run.sweep_columns if c != axis and len({m.sweep[c] for m in run.members}) > 1
    ]
    lines = defaultdict(list)
    for member in run.members:
        suffix = ", ".join(f"{c}={member.sweep[c]}" for c in others)
        label = run.algo + (f" ({suffix})" if suffix else "")
        if not run.is_full:
            label += f", train {run.train_tasks}"
        lines[label].append(member)
    for members in lines.values():
        members.sort(key=lambda m: sweep_sort_key(m.sweep[axis]))
    return dict(lines)


def num_tasks_figure(runs, table, figures_dir, used, glance, name, xlabel, reading_of) -> list:
    """Final return against k, one panel per environment, one line per run (and meta-batch)."""
    envs = by_env(runs)
    fig, axes = panels(len(envs))
    reading = []
    for ax, (env, env_runs) in zip(axes, envs.items(), strict=True):
        finite = sorted(
            {
                int(m.sweep["num_train_tasks"])
                for r in env_runs
                for m in r.members
                if m.sweep["num_train_tasks"] != ALL
            }
        )
        x_position = {k: math.log2(k) if k > 0 else 0.0 for k in finite}
        all_position = (max(x_position.values()) if x_position else 0.0) + 1.0
        has_all = False
        for run in env_runs:
            for label, members in lines_along(run, "num_train_tasks").items():
                rows = [(m, table.headline(run, m)) for m in members]
                rows = [(m, row) for m, row in rows if row.interval]
                points = [(m, row.interval) for m, row in rows]
                has_all |= any(m.sweep["num_train_tasks"] == ALL for m, _ in points)
                xs = [
                    all_position
                    if m.sweep["num_train_tasks"] == ALL
                    else x_position[int(m.sweep["num_train_tasks"])]
                    for m, _ in points
                ]
                errorbar(ax, xs, [iv for _, iv in points], label)
                framed = [(f"k={m.sweep['num_train_tasks']}", row) for m, row in rows]
                text = reading_of(env, label, points) + levels_phrase(run.levels_of(), framed)
                pairs = [(run, [m for m, _ in points])]
                reading.append(answer(table, glance, run.experiment, env, label, pairs, text))
        ticks = [*x_position.values(), *([all_position] if has_all else [])]
        ax.set_xticks(ticks, [*map(str, finite), *([ALL] if has_all else [])])
        draw_levels(ax, env_levels(env_runs))
        style_final_return_axes(ax, xlabel, env, env_runs)
    return figure_and_reading(
        fig, figures_dir, used, name, "final return against the number of training tasks", reading
    )
