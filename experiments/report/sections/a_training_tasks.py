"""Section (a): the final return against the number of distinct training tasks k."""

from experiments.report.figures import curves_block
from experiments.report.formatting import signed, value_with_ci
from experiments.report.loading import ALL, Run
from experiments.report.member_stats import StatsTable
from experiments.report.sections.common import describe_runs, member_table, num_tasks_figure
from metarl_jax.io import report_stats as stats


def section_a(
    runs: list[Run], table: StatsTable, figures_dir: str, used: set, glance: list
) -> list[str]:
    lines = describe_runs(runs)
    lines += ["Final evaluation return per number of training tasks k:", ""]
    lines += member_table(runs, table)
    lines += num_tasks_figure(
        runs,
        table,
        figures_dir,
        used,
        glance,
        "a_num_train_tasks.png",
        "number of training tasks k (log scale; all = the whole distribution)",
        _reading_a,
    )
    return lines + curves_block(runs, figures_dir, used)


def _reading_a(env: str, label: str, points) -> str:
    if not points:
        return f"On {env}, {label}: no evaluation values."
    finite = [(m, iv) for m, iv in points if m.sweep["num_train_tasks"] != ALL]
    full = [(m, iv) for m, iv in points if m.sweep["num_train_tasks"] == ALL]
    if full:
        reference, ref_name, ref_short = full[0], "the full distribution (all)", "the full one"
    else:
        largest = points[-1][0].sweep["num_train_tasks"]
        reference, ref_short = points[-1], f"k={largest}"
        ref_name = f"the largest pool, k={largest} (no full-distribution member was run)"
        finite = finite[:-1]
    if not finite:
        return (
            f"On {env}, {label}: only {ref_name} was run, final return "
            f"{value_with_ci(reference[1])}."
        )
    first_member, first = finite[0]
    ref = reference[1]
    text = (
        f"On {env}, {label}: the final eval return goes from {value_with_ci(first)} with the "
        f"fewest tasks (k={first_member.sweep['num_train_tasks']}) to {value_with_ci(ref)} with "
        f"{ref_name}, a change of {signed(ref.mean - first.mean)}."
    )
    overlaps = [(m, stats.intervals_overlap(iv, ref)) for m, iv in finite]
    if any(o is None for _, o in overlaps):
        return text + " Confidence intervals cannot be compared with one seed."
    hit = next((m for m, o in overlaps if o), None)
    if hit is None:
        return text + f" No smaller k has a 95% CI overlapping that of {ref_short}."
    return (
        text + f" The smallest k whose 95% CI overlaps that of {ref_short} is "
        f"k={hit.sweep['num_train_tasks']}."
    )
