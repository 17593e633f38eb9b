"""Section (f): the final return over a grid of one or two swept settings (step sizes), against
the run's reference setting (the setting's own flag in flags.txt, which the sweep overrides)."""

from experiments.report.figures import (
    curves_block,
    draw_levels,
    errorbar,
    figure_and_reading,
    panels,
    style_final_return_axes,
    unique_name,
)
from experiments.report.formatting import ci_range, ci_text, num, slug, value_with_ci
from experiments.report.formatting import table as markdown_table
from experiments.report.loading import Run
from experiments.report.member_stats import (
    ABOVE,
    BEATEN,
    BELOW,
    BEST,
    TIED,
    WITHIN,
    SettingLine,
    StatsTable,
    StepSizeGrid,
)
from experiments.report.sections.common import (
    answer,
    by_env,
    describe_runs,
    levels_phrase,
    member_table,
)

UNCONVERGED_MARK = "†"


def section_f(
    runs: list[Run], table: StatsTable, figures_dir: str, used: set, glance: list
) -> list[str]:
    lines = describe_runs(runs)
    lines += ["Final evaluation return per member of the swept grid:", ""]
    lines += member_table(runs, table)
    for env_runs in by_env(runs).values():
        for run in env_runs:
            grid = table.grids[run.path]
            lines += grid_table(grid)
            reading = answer(
                table, glance, "f", run.env, run.algo, [(run, run.members)], reading_f(grid)
            )
            name = unique_name(f"f_step_sizes_{slug(run.env)}_{slug(run.algo)}.png", used)
            lines += figure_and_reading(
                grid_figure(grid), figures_dir, used, name,
                f"final return over the swept settings: {run.name}", [reading],
            )  # fmt: skip
    return lines + curves_block(runs, figures_dir, used)


def cell_label(grid: StepSizeGrid, key: tuple[str, ...]) -> str:
    return ", ".join(f"{s}={v}" for s, v in zip(grid.settings, key, strict=True))


def reference_text(grid: StepSizeGrid) -> str:
    return ", ".join(
        f"{s}={'(unset)' if f is None else f}"
        for s, f in zip(grid.settings, grid.reference_flags, strict=True)
    )


def grid_table(grid: StepSizeGrid) -> list[str]:
    """Rows: the first setting's values; columns: the second's (or the one final return)."""
    run = grid.run
    first, values = grid.settings[0], grid.values
    columns = values[1] if len(values) > 1 else (None,)
    header = [first if len(values) == 1 else f"{first} ↓ \\ {grid.settings[1]} →"]
    header += [f"final {run.headline['eval']}" if v is None else v for v in columns]
    rows, unconverged = [], False
    for row_value in values[0]:
        cells = [row_value]
        for column_value in columns:
            key = (row_value,) if column_value is None else (row_value, column_value)
            row = grid.cells.get(key)
            text = ci_text(row.interval) if row else "—"
            if row and not row.converged:
                text += f" {UNCONVERGED_MARK}"
                unconverged = True
            if row is not None and row is grid.reference_cell:
                text = f"**{text}** (reference)"
            cells.append(text)
        rows.append(cells)
    intro = (
        f"{run.name}: final `{run.headline['eval']}` (mean ± 95% CI half-width over seeds) over "
        f"the swept grid; the reference setting from flags.txt is {reference_text(grid)}"
    )
    if grid.reference_cell is None:
        intro += ", which is no cell of the grid."
    else:
        reference_ci = ci_range(grid.reference_cell.interval)
        intro += f" (the cell marked **reference**, 95% CI {reference_ci})."
    lines = [intro, "", *markdown_table(header, rows)]
    if unconverged:
        lines += [f"{UNCONVERGED_MARK}: not converged by the plateau test.", ""]
    return lines


def grid_figure(grid: StepSizeGrid):
    """Final return against the first setting's value, one line per value of the second."""
    run = grid.run
    fig, (ax,) = panels(1, width=6.5)
    first = grid.settings[0]
    seconds = grid.values[1] if len(grid.settings) > 1 else (None,)
    for second in seconds:
        keys = [(v,) if second is None else (v, second) for v in grid.values[0]]
        present = [(float(k[0]), grid.cells[k].interval) for k in keys if k in grid.cells]
        label = run.algo if second is None else f"{grid.settings[1]}={second}"
        errorbar(ax, [x for x, _ in present], [iv for _, iv in present], label)
    if grid.reference_cell is not None:
        ax.plot(
            [float(grid.reference[0])],
            [grid.reference_cell.interval.mean],
            marker="*",
            markersize=16,
            markerfacecolor="none",
            markeredgecolor="black",
            linestyle="none",
            label=f"reference ({reference_text(grid)})",
        )
    xlabel = first
    if all(float(v) > 0 for v in grid.values[0]):
        ax.set_xscale("log")
        ax.set_xticks([float(v) for v in grid.values[0]], list(grid.values[0]))
        ax.minorticks_off()
        xlabel += " (log scale)"
    draw_levels(ax, run.levels_of())
    style_final_return_axes(ax, xlabel, f"{run.algo} on {run.env}", [run])
    return fig


def reading_f(grid: StepSizeGrid) -> str:
    """Per swept setting (the others at their reference values), the values whose mean lies
    within the reference cell's CI; then the reference cell against the grid's best."""
    run = grid.run
    head = f"On {run.env}, {run.algo}:"
    if not grid.cells:
        return f"{head} no evaluation values."
    ref, best = grid.reference_cell, grid.best_cell
    if ref is None:
        missing = [s for s, f in zip(grid.settings, grid.reference_flags, strict=True) if not f]
        why = (
            f"flags.txt gives no value of {', '.join(missing)}"
            if missing
            else f"the reference setting ({reference_text(grid)}) is not a cell of the grid"
        )
        return (
            f"{head} {why}, so nothing is compared with a reference; the best cell is "
            f"{cell_label(grid, grid.key(best.member))} with {value_with_ci(best.interval)}."
        )
    sentences = _untrained_sentences(grid)
    sentences += [_line_sentence(grid, line) for line in grid.lines]
    sentences.append(_standing_sentence(grid))
    framed = [("the reference", ref)] + ([("the best", best)] if best is not ref else [])
    return f"{head} " + " ".join(sentences) + levels_phrase(run.levels_of(), framed)


def _untrained_sentences(grid: StepSizeGrid) -> list[str]:
    """Cells whose mean lies at or below the lower reference level have not learned: a range
    "within the reference's CI" among them compares untrained policies."""
    levels = grid.run.levels_of()
    if levels is None:
        return []
    lower = f"{levels['lower']} ({num(levels['values'][levels['lower']])})"
    placed = [(key, row) for key, row in grid.cells.items() if row.position is not None]
    untrained = [key for key, row in placed if row.position <= 0]
    if not untrained:
        return []
    if len(untrained) == len(placed):
        return [
            f"No cell has learned: every cell's mean lies at or below the lower level {lower}, "
            "so the ranges below compare untrained policies and say nothing about the "
            "sensitivity to these settings at this budget."
        ]
    labels = "; ".join(cell_label(grid, key) for key in untrained)
    return [
        f"{len(untrained)} of {len(placed)} cells lie at or below the lower level {lower} "
        f"(not learned at this budget): {labels}."
    ]


def _line_sentence(grid: StepSizeGrid, line: SettingLine) -> str:
    axis = grid.settings.index(line.setting)
    others = [
        f"{s} at its reference value {grid.reference[i]}"
        for i, s in enumerate(grid.settings)
        if i != axis
    ]
    lead = f"With {' and '.join(others)}, " if others else ""
    ci = grid.reference_cell.interval
    if not ci.has_interval:
        return (
            f"{lead}{line.setting}: the reference cell has one seed and no confidence interval, "
            "so no range is given."
        )
    values = [value for value, _, _ in line.cells]
    at = values.index(grid.reference[axis])
    low = high = at
    while low > 0 and line.cells[low - 1][2] == WITHIN:
        low -= 1
    while high < len(values) - 1 and line.cells[high + 1][2] == WITHIN:
        high += 1
    where = f"the reference's 95% CI [{num(ci.low)}, {num(ci.high)}]"
    if low == high:
        text = f"{lead}only the reference value {line.setting}={values[at]} lies within {where}"
    else:
        text = f"{lead}{line.setting} from {values[low]} to {values[high]} stays within {where}"
    outside = [
        _outside(value, row, placement)
        for i, (value, row, placement) in enumerate(line.cells)
        if not low <= i <= high
    ]
    return text + ("; " + ", ".join(outside) if outside else "") + "."


def _outside(value: str, row, placement: str | None) -> str:
    if row is None:
        return f"{value} has no value"
    mean = num(row.interval.mean)
    return {
        BELOW: f"{value} falls below (mean {mean})",
        ABOVE: f"{value} lies above (mean {mean})",
        WITHIN: f"{value} lies within it again (mean {mean})",
    }[placement]


def _standing_sentence(grid: StepSizeGrid) -> str:
    ref, best = grid.reference_cell, grid.best_cell
    ref_text = f"The reference cell ({cell_label(grid, grid.key(ref.member))})"
    if grid.standing == BEST:
        return f"{ref_text} has the grid's best mean, {value_with_ci(ref.interval)}."
    versus = (
        f"the best, {cell_label(grid, grid.key(best.member))} with {value_with_ci(best.interval)}"
    )
    ref_text += f", {value_with_ci(ref.interval)},"
    if grid.standing == TIED:
        return f"{ref_text} is tied with {versus}: their confidence intervals overlap."
    if grid.standing == BEATEN:
        return f"{ref_text} is beaten by {versus}: their confidence intervals do not overlap."
    return f"{ref_text} is below {versus}; with one seed their intervals cannot be compared."
