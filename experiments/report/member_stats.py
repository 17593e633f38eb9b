"""The report's numbers, computed once from the loaded runs before anything is rendered: one
`MemberStats` row per (run, sweep member, quantity) with its 95% confidence interval over seeds,
its position between the reference levels and (for the headline) its convergence verdict. The
sections only format these rows and compare them."""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from experiments.report.loading import Member, Run
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


@dataclass(frozen=True)
class StatsTable:
    rows: tuple[MemberStats, ...]
    by_key: Mapping[tuple[str, str, str], MemberStats]  # (run path, member label, quantity)

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
    return StatsTable(rows, {(r.run.path, r.member.label, r.quantity): r for r in rows})


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
