"""Section (b): MACAW's final return against the number of training tasks (offline buffers)."""

from experiments.report.figures import curves_block
from experiments.report.formatting import value_with_ci
from experiments.report.loading import ALL, Run
from experiments.report.member_stats import StatsTable
from experiments.report.sections.common import describe_runs, member_table, num_tasks_figure
from metarl_jax.io import report_stats as stats


def section_b(
    runs: list[Run], table: StatsTable, figures_dir: str, used: set, glance: list
) -> list[str]:
    lines = describe_runs(runs)
    lines += ["Final evaluation return per number of training tasks (offline buffers) k:", ""]
    lines += member_table(runs, table)
    lines += num_tasks_figure(
        runs,
        table,
        figures_dir,
        used,
        glance,
        "b_num_offline_tasks.png",
        "number of training tasks / offline buffers k (log scale)",
        _reading_b,
    )
    return lines + curves_block(runs, figures_dir, used)


def _reading_b(env: str, label: str, points) -> str:
    """Which k is best, and whether too few (< 5) or too many (> 20) tasks fall below it."""
    if not points:
        return f"On {env}, {label}: no evaluation values."
    best_member, best = max(points, key=lambda point: point[1].mean)
    best_k = best_member.sweep["num_train_tasks"]
    text = (
        f"On {env}, {label}: the best final eval return is {value_with_ci(best)} with "
        f"k={best_k} training tasks/buffers."
    )
    finite = [(m, iv) for m, iv in points if m.sweep["num_train_tasks"] != ALL]
    for name, keep in (("fewer than 5", lambda k: k < 5), ("more than 20", lambda k: k > 20)):
        group = [(m, iv) for m, iv in finite if keep(int(m.sweep["num_train_tasks"]))]
        if not group:
            continue
        below = [
            m.sweep["num_train_tasks"]
            for m, iv in group
            if m is not best_member and stats.intervals_overlap(iv, best) is False
        ]
        ks = ", ".join(m.sweep["num_train_tasks"] for m, _ in group)
        if below:
            text += (
                f" With {name} tasks (k={ks}) the return is below the best with "
                f"non-overlapping 95% CIs at k={', '.join(below)}."
            )
        else:
            text += f" With {name} tasks (k={ks}) no member is clearly below the best."
    return text
