"""The report's numbers, computed once from the loaded runs before anything is rendered: one
`MemberStats` row per (run, sweep member, quantity) with its 95% confidence interval over seeds,
its position between the reference levels and (for the headline) its convergence verdict; and for
each run of experiment (f) its grid of swept settings judged against the reference cell. The
sections only format these rows and compare them."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from experiments.report.loading import Member, Run, sweep_sort_key
from metarl_jax.baselines.levels import level_span, position
from metarl_jax.io import report_stats as stats
from metarl_jax.io import summary

# The quantities of a member besides its evaluation curve's points (which go by their column).
OUT_OF_SAMPLE = "eval"  # the headline on the evaluation tasks
IN_SAMPLE = "eval_train"  # the headline on fresh tasks of the training region
GAP = "gap"  # out of sample minus in sample, paired by seed
INFERENCE_GAIN = "eval/inference_gain"  # PEARL: posterior episodes minus the prior one


@dataclass(frozen=True)
class MemberStats:
    """One quantity of one sweep member of one run, at the run's last logged iteration."""

    run: Run
    member: Member
    quantity: str  # OUT_OF_SAMPLE, IN_SAMPLE, GAP, INFERENCE_GAIN or an eval curve column
    interval: stats.Interval | None  # 95% Student-t over the seeds' finite values
    seed_mean: float  # mean over every logged seed (nan if none logged)
    levels: dict | None = None  # the level set framing it (OUT_OF_SAMPLE, IN_SAMPLE)
    position: float | None = None  # between the levels: lower 0, upper 1
    plateau: stats.PlateauTest | None = None  # OUT_OF_SAMPLE only

    @property
    def experiment(self) -> str:
        return self.run.experiment

    @property
    def algo(self) -> str:
        return self.run.algo

    @property
    def converged(self) -> bool:
        return self.plateau is not None and self.plateau.converged is True


# Where a cell's mean lies against the reference cell's 95% CI.
WITHIN, BELOW, ABOVE = "within", "below", "above"
# The reference cell against the grid's best mean: the best itself, its CIs overlapping the
# best's, not overlapping, or no comparison (one seed).
BEST, TIED, BEATEN, CANNOT_TELL = "best", "tied", "beaten", "cannot tell"


@dataclass(frozen=True)
class SettingLine:
    """One swept setting's values with every other swept setting at its reference value, each
    cell's mean placed against the reference cell's CI (None: no cell, or no CI)."""

    setting: str
    cells: tuple[tuple[str, MemberStats | None, str | None], ...]  # (value, headline, placement)


@dataclass(frozen=True)
class StepSizeGrid:
    """An experiment (f) run's final headline over its grid of swept settings."""

    run: Run
    settings: tuple[str, ...]  # the swept settings: the table's rows, then its columns
    values: tuple[tuple[str, ...], ...]  # per setting, its swept values in numeric order
    reference_flags: tuple[str | None, ...]  # per setting, its own flag in flags.txt
    reference: tuple[str | None, ...]  # per setting, the swept value equal to its flag
    cells: Mapping[tuple[str, ...], MemberStats]  # (value per setting) -> the headline row
    reference_cell: MemberStats | None  # every setting at its reference value (None: not swept)
    best_cell: MemberStats | None  # the highest mean over the grid
    standing: str | None  # BEST, TIED, BEATEN or CANNOT_TELL; None without a reference cell
    lines: tuple[SettingLine, ...]  # per setting, the others at their reference values

    def key(self, member: Member) -> tuple[str, ...]:
        return tuple(member.sweep[s] for s in self.settings)


@dataclass(frozen=True)
class StatsTable:
    rows: tuple[MemberStats, ...]
    by_key: Mapping[tuple[str, str, str], MemberStats]  # (run path, member label, quantity)
    grids: Mapping[str, StepSizeGrid] = field(default_factory=dict)  # (f) runs, by run path

    def find(self, run: Run, member: Member, quantity: str) -> MemberStats | None:
        return self.by_key.get((run.path, member.label, quantity))

    def interval(self, run: Run, member: Member, quantity: str) -> stats.Interval | None:
        found = self.find(run, member, quantity)
        return found.interval if found else None

    def headline(self, run: Run, member: Member) -> MemberStats:
        return self.by_key[(run.path, member.label, OUT_OF_SAMPLE)]

    def seed_means(self, run: Run, member: Member, columns: list[str]) -> list[float]:
        found = [self.find(run, member, column) for column in columns]
        return [row.seed_mean if row else math.nan for row in found]


def build_stats_table(runs: list[Run]) -> StatsTable:
    """Every number the report shows, for every member of every run."""
    rows = tuple(row for run in runs for member in run.members for row in _rows(run, member))
    by_key = {(r.run.path, r.member.label, r.quantity): r for r in rows}
    headlines = {k[:2]: r for k, r in by_key.items() if k[2] == OUT_OF_SAMPLE}
    grids = {run.path: _grid(run, headlines) for run in runs if run.experiment == "f"}
    return StatsTable(rows, by_key, grids)


def _rows(run: Run, member: Member) -> list[MemberStats]:
    headline = run.headline["eval"]
    levels = run.levels_of("eval")
    rows = [_framed(run, member, OUT_OF_SAMPLE, headline, levels, _plateau(run, member, levels))]
    if IN_SAMPLE in run.headline:
        in_column = run.headline[IN_SAMPLE]
        rows.append(_framed(run, member, IN_SAMPLE, in_column, run.levels_of(IN_SAMPLE), None))
        gap = stats.paired_difference(
            member.final.get(headline, {}), member.final.get(in_column, {})
        )
        rows.append(MemberStats(run, member, GAP, gap, gap.mean if gap else math.nan))
    columns = run.curves.get("eval", ([], ""))[0]
    if INFERENCE_GAIN in member.final:
        columns = [INFERENCE_GAIN, *columns]
    rows += [_framed(run, member, column, column, None, None) for column in columns]
    return rows


def _framed(run, member, quantity, column, levels, plateau) -> MemberStats:
    interval = member.interval(column)
    where = position(levels, interval.mean) if levels and interval else None
    values = member.final.get(column)
    seed_mean = float(np.mean(list(values.values()))) if values else math.nan
    return MemberStats(run, member, quantity, interval, seed_mean, levels, where, plateau)


def _plateau(run: Run, member: Member, levels: dict | None) -> stats.PlateauTest | None:
    """The plateau test of the member's headline, seed by seed (None: nothing logged)."""
    series = summary.seed_series(run.rows, member.sweep, run.headline["eval"])
    if not (series and series[0]):
        return None
    return stats.plateau_test(series, level_span=level_span(levels))


def _grid(run: Run, headlines: Mapping[tuple[str, str], MemberStats]) -> StepSizeGrid:
    settings = tuple(run.swept_settings)
    values = tuple(
        tuple(sorted({m.sweep[s] for m in run.members}, key=sweep_sort_key)) for s in settings
    )
    flags = tuple(run.flags.get(s) for s in settings)
    reference = tuple(_swept_value(f, v) for f, v in zip(flags, values, strict=True))
    cells = {
        tuple(m.sweep[s] for s in settings): headlines[(run.path, m.label)] for m in run.members
    }
    cells = {key: row for key, row in cells.items() if row.interval}
    reference_cell = cells.get(reference) if None not in reference else None
    best_cell = max(cells.values(), key=lambda row: row.interval.mean, default=None)
    standing = None
    if reference_cell is not None:
        if reference_cell is best_cell:
            standing = BEST
        else:
            overlap = stats.intervals_overlap(reference_cell.interval, best_cell.interval)
            standing = {True: TIED, False: BEATEN, None: CANNOT_TELL}[overlap]
    lines = []
    for axis, setting in enumerate(settings):
        if reference[axis] is None:
            continue
        line = []
        for value in values[axis]:
            key = (*reference[:axis], value, *reference[axis + 1 :])
            row = None if None in key else cells.get(key)
            line.append((value, row, _placement(row, reference_cell)))
        lines.append(SettingLine(setting, tuple(line)))
    return StepSizeGrid(
        run, settings, values, flags, reference, cells, reference_cell, best_cell, standing,
        tuple(lines),
    )  # fmt: skip


def _swept_value(flag: str | None, values: tuple[str, ...]) -> str | None:
    """The swept value (as logged) equal to a setting's flag value, None if none is."""
    try:
        wanted = float(flag)
    except (TypeError, ValueError):
        return None
    for value in values:
        try:
            if math.isclose(float(value), wanted, rel_tol=1e-9, abs_tol=1e-12):
                return value
        except ValueError:
            continue
    return None


def _placement(row: MemberStats | None, reference: MemberStats | None) -> str | None:
    """Where a cell's mean lies against the reference cell's 95% CI."""
    if row is None or reference is None or not reference.interval.has_interval:
        return None
    mean, ci = row.interval.mean, reference.interval
    return BELOW if mean < ci.low else ABOVE if mean > ci.high else WITHIN
