"""Statistics for the study report: confidence intervals over seeds and how to compare them.

Pure functions of numbers (no files, no plotting). An interval is Student t over seeds:
mean ± t_{(1+level)/2, n-1} · s / √n with s the sample standard deviation (ddof 1). With one
seed there is no interval (`half_width` None), and comparisons that need one answer None
("cannot tell") rather than guess.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtrit


@dataclass(frozen=True)
class Interval:
    mean: float
    half_width: float | None  # None: fewer than two values, no interval
    n: int
    std: float | None  # sample standard deviation (ddof 1); None with one value

    @property
    def low(self) -> float:
        return self.mean - (self.half_width or 0.0)

    @property
    def high(self) -> float:
        return self.mean + (self.half_width or 0.0)

    @property
    def has_interval(self) -> bool:
        return self.half_width is not None


def t_quantile(probability: float, df: int) -> float:
    """The `probability` quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return float(stdtrit(df, probability))


def confidence_interval(values: Iterable[float], level: float = 0.95) -> Interval:
    """Mean and Student-t half-width of `values` (one per seed) at confidence `level`."""
    data = np.asarray(list(values), dtype=np.float64)
    if data.size == 0:
        raise ValueError("no values")
    mean = float(data.mean())
    if data.size == 1:
        return Interval(mean, None, 1, None)
    std = float(data.std(ddof=1))
    half = t_quantile(0.5 + level / 2, data.size - 1) * std / math.sqrt(data.size)
    return Interval(mean, half, int(data.size), std)


@dataclass(frozen=True)
class PlateauTest:
    """The convergence check of one sweep member's learning curve (see `plateau_test`)."""

    change: float | None  # seed-mean over the last quarter of the logs minus the quarter before
    half_width: float | None  # 95% CI half-width over seeds of the final logged value
    converged: bool | None  # None: cannot tell (fewer than 4 logs, or one seed)
    floor: float = 0.0  # the smallest tolerance: a fraction of the distance between the levels


# A change below this fraction of the distance between the reference levels is a plateau even when
# the seeds agree exactly (e.g. k = 1 members, whose seeds all train on the same task).
PLATEAU_FLOOR_OF_LEVEL_SPAN = 0.01
PLATEAU_TEST = (
    "a member has converged when the seed-mean of its headline evaluation metric over the last "
    "quarter of the logged evaluations differs from its mean over the quarter before by less than "
    "the 95% CI half-width over seeds of the final value, or than "
    f"{PLATEAU_FLOOR_OF_LEVEL_SPAN:.0%} of the distance between the run's reference levels where "
    "it has both, whichever is larger"
)


def plateau_test(series, level: float = 0.95, level_span: float | None = None) -> PlateauTest:
    """`PLATEAU_TEST` on `series` [seeds, logged evaluations] (oldest first); `level_span`: the
    distance between the lower and upper reference levels (None: no floor)."""
    data = np.asarray(series, dtype=np.float64)
    quarter = data.shape[1] // 4
    change = None
    if quarter:
        means = data.mean(axis=0)
        change = float(means[-quarter:].mean() - means[-2 * quarter : -quarter].mean())
    final = confidence_interval(data[:, -1], level)
    floor = PLATEAU_FLOOR_OF_LEVEL_SPAN * abs(level_span) if level_span else 0.0
    if change is None or not final.has_interval:
        return PlateauTest(change, final.half_width, None, floor)
    return PlateauTest(change, final.half_width, abs(change) < max(final.half_width, floor), floor)


def intervals_overlap(a: Interval, b: Interval) -> bool | None:
    """Whether two intervals share a point; None when either has no interval (one seed)."""
    if not (a.has_interval and b.has_interval):
        return None
    return a.low <= b.high and b.low <= a.high


def paired_difference(
    a: Mapping[int, float], b: Mapping[int, float], level: float = 0.95
) -> Interval | None:
    """Interval of a − b over the seeds both have (the same seed's values are paired)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return confidence_interval([a[s] - b[s] for s in seeds], level)


def first_reaching(means: Iterable[float], level: float) -> int | None:
    """The first index whose mean is at least `level` (returns: higher is better), or None."""
    for index, mean in enumerate(means):
        if mean >= level:
            return index
    return None
