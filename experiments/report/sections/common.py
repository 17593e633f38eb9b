"""What several sections share: the list of runs, the table of final returns per member,
grouping by environment, and the final return against the number of training tasks (a, b)."""

import math
from collections import defaultdict

from experiments.report.figures import (
    errorbar,
    figure_and_reading,
    panels,
    style_final_return_axes,
)
from experiments.report.formatting import ci_range, ci_text, join_distinct, num, table
from experiments.report.loading import ALL, Member, Run, sweep_sort_key
from metarl_jax.io import report_stats as stats
from metarl_jax.io import summary


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
        lines += [f"  - note: {note}" for note in run.notes]
    return [*lines, ""]


def member_table(runs: list[Run], metric_prefix: str = "eval") -> list[str]:
    """Final evaluation return of every sweep member with its 95% CI over seeds."""
    header = [
        "algo",
        "env",
        "train tasks",
        "meta-batch",
        "training tasks (k)",
        "seeds",
        "iteration",
        "env steps",
        f"final {metric_prefix}/return",
        "95% CI half-width",
        "95% CI",
    ]
    gain = f"{metric_prefix}/inference_gain"  # PEARL: posterior episodes minus the prior one
    with_gain = any(gain in run.rows[0] for run in runs)
    if with_gain:
        header.append(f"final {gain} (95% CI)")
    header.append("converged (last-quarter change)")
    rows = []
    for run in runs:
        column = run.headline[metric_prefix]
        for member in run.members:
            iv = member.interval(column)
            rows.append(
                [
                    run.algo,
                    run.env,
                    f"`{run.train_tasks}`",
                    member.sweep.get("meta_batch_size", "—"),
                    member.sweep.get("num_train_tasks", "—"),
                    str(iv.n if iv else 0),
                    str(run.final_iteration),
                    str(member.env_steps),
                    num(iv.mean) if iv else "—",
                    (num(iv.half_width) if iv.has_interval else "n/a (1 seed)") if iv else "—",
                    ci_range(iv),
                ]
            )
            if with_gain:
                rows[-1].append(ci_text(member.interval(gain)) if gain in member.final else "—")
            rows[-1].append(plateau_text(member_plateau(run, member, column)))
    lines = table(header, rows)
    if any(row[5] == "1" for row in rows):
        lines += ["Members with one seed have no confidence interval.", ""]
    return [*lines, f"Convergence check: {stats.PLATEAU_TEST}.", ""]


def member_plateau(run: Run, member: Member, column: str) -> stats.PlateauTest | None:
    """The plateau test of a member's logged `column`, seed by seed (None: nothing logged)."""
    series = summary.seed_series(run.rows, member.sweep, column)
    return stats.plateau_test(series) if series and series[0] else None


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


def num_tasks_figure(runs, figures_dir, used, name, xlabel, reading_of) -> list[str]:
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
        position = {k: math.log2(k) if k > 0 else 0.0 for k in finite}
        all_position = (max(position.values()) if position else 0.0) + 1.0
        has_all = False
        for run in env_runs:
            for label, members in lines_along(run, "num_train_tasks").items():
                points = [(m, m.interval(run.headline["eval"])) for m in members]
                points = [(m, iv) for m, iv in points if iv]
                has_all |= any(m.sweep["num_train_tasks"] == ALL for m, _ in points)
                xs = [
                    all_position
                    if m.sweep["num_train_tasks"] == ALL
                    else position[int(m.sweep["num_train_tasks"])]
                    for m, _ in points
                ]
                errorbar(ax, xs, [iv for _, iv in points], label)
                reading.append(reading_of(env, label, points))
        ticks = [*position.values(), *([all_position] if has_all else [])]
        ax.set_xticks(ticks, [*map(str, finite), *([ALL] if has_all else [])])
        style_final_return_axes(ax, xlabel, env)
    return figure_and_reading(
        fig, figures_dir, used, name, "final return against the number of training tasks", reading
    )
