"""The section of runs outside the study: their final returns, nothing compared."""

from experiments.report.figures import curves_block
from experiments.report.formatting import value_with_ci
from experiments.report.loading import Run
from experiments.report.member_stats import StatsTable
from experiments.report.sections.common import describe_runs, member_table


def section_other(
    runs: list[Run], table: StatsTable, figures_dir: str, used: set, glance: list
) -> list[str]:
    del glance  # nothing is compared, so nothing is answered
    lines = describe_runs(runs)
    lines += ["Final evaluation return per sweep member:", ""]
    lines += member_table(runs, table)
    points = [
        (run, m, table.headline(run, m).interval)
        for run in runs
        for m in run.members
        if table.headline(run, m).interval
    ]
    name = lambda p: p[0].name + (f" ({p[1].label})" if p[1].label else "")
    if len(points) == 1:
        lines += [
            f"Reading: the only member ({name(points[0])}) ends at a final eval return of "
            f"{value_with_ci(points[0][2])}; it belongs to no study question, so nothing is "
            "compared.",
            "",
        ]
    elif points:
        best = max(points, key=lambda p: p[2].mean)
        worst = min(points, key=lambda p: p[2].mean)
        lines += [
            f"Reading: across these runs the final eval return ranges from "
            f"{value_with_ci(worst[2])} ({name(worst)}) to {value_with_ci(best[2])} "
            f"({name(best)}); they belong to no study question, so nothing is compared.",
            "",
        ]
    return lines + curves_block(runs, figures_dir, used)
