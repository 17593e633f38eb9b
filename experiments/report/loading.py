"""Reading run directories (flags.txt, metrics.csv, summary.json) into `Run`s, and the checks
that make a set of runs fit for one report, all before anything is written."""

import csv
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field

from experiments.app_plumbing import UsageError
from experiments.flags_file import read_flags_file
from experiments.study_design import (
    EXPERIMENTS,
    MAX_SWEPT_SETTINGS,
    NUM_TRAIN_TASKS_EXPERIMENTS,
    joins,
)
from metarl_jax.baselines.levels import headline_metric, levels_framing
from metarl_jax.io import report_stats as stats
from metarl_jax.io.metrics import LEADING_COLUMNS, curve_columns, read_rows

LEVEL = 0.95
RUN_FILES = ("flags.txt", "metrics.csv", "summary.json")
# Settings that must agree among the runs of one experiment and environment (one plot).
SHARED_SETTINGS = ("horizon", "num_arms", "eval_tasks")
ALL = "all"
# Experiments whose figures show one run each, so that their runs need not share SHARED_SETTINGS.
ONE_PLOT_PER_RUN = ("f",)
# The sweep columns every run may have; any other is a setting swept with --sweep.
SIZE_COLUMNS = ("meta_batch_size", "num_train_tasks")


class ReportError(UsageError):
    """Bad input to the report: one `error: …` line, exit code 2, nothing written."""


@dataclass
class Member:
    """One sweep member of a run, at the run's last logged iteration."""

    sweep: dict[str, str]  # sweep column -> value as logged ("all" for the whole region)
    env_steps: int
    final: dict[str, dict[int, float]]  # metric -> {seed: value}

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.sweep.items())

    @property
    def seeds(self) -> list[int]:
        return sorted(set().union(*(set(v) for v in self.final.values())))

    def interval(self, metric: str) -> stats.Interval | None:
        values = self.final.get(metric, {})
        finite = [v for v in values.values() if math.isfinite(v)]
        return stats.confidence_interval(finite, LEVEL) if finite else None


@dataclass
class Run:
    path: str
    flags: dict
    experiment: str
    algo: str
    env: str
    train_tasks: str
    eval_tasks: str
    num_iterations: int | None
    final_iteration: int
    rows: list[dict]
    sweep_columns: list[str]
    headline: dict[str, str]  # "eval" / "eval_train" -> the column of its headline return
    curves: dict[str, tuple[list[str], str]]  # prefix -> (curve columns, what the index means)
    members: list[Member]
    # prefix -> reference level set (summary.json's `levels`, `baselines.levels`); {} if none
    levels: dict = field(default_factory=dict)

    def levels_of(self, prefix: str = "eval") -> dict | None:
        """The level set framing the headline of `prefix` (None: none computed in its metric)."""
        return levels_framing(self.levels, self.headline.get(prefix), prefix)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.experiment, self.env, self.algo, self.train_tasks)

    @property
    def name(self) -> str:
        return f"{self.algo} on {self.env}, train {self.train_tasks}"

    def setting(self, name: str) -> str:
        if name == "eval_tasks":
            return self.eval_tasks
        value = self.flags.get(name)
        return "(unset)" if value is None else str(value)

    @property
    def is_full(self) -> bool:
        return self.train_tasks == "full"

    @property
    def swept_settings(self) -> list[str]:
        """The settings swept with --sweep, in metrics.csv's order."""
        return [c for c in self.sweep_columns if c not in SIZE_COLUMNS]


def read_flags(path: str) -> dict[str, str]:
    try:
        return read_flags_file(path)
    except ValueError as error:
        raise ReportError(f"{path}: {error}") from None


def _prefixed_curve(columns: list[str], prefix: str) -> tuple[list[str], str]:
    """curve_columns for metrics under `prefix/` (eval, eval_train)."""
    inner = {"eval/" + c[len(prefix) + 1 :]: c for c in columns if c.startswith(prefix + "/")}
    found, label = curve_columns(list(inner))
    return [inner[c] for c in found], label


def _headline(columns, prefix, env: str) -> str | None:
    """The column of the env's headline quantity (`baselines.levels.headline_metric`: bandits
    `prefix/reward_per_step`, else `prefix/return`), None if not logged."""
    wanted = f"{prefix}/{headline_metric(env)}"
    return wanted if wanted in columns else None


def _float(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def load_run(path: str) -> Run:
    if not os.path.isdir(path):
        raise ReportError(f"{path}: not a directory")
    missing = [name for name in RUN_FILES if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise ReportError(f"{path}: not a run directory (missing {', '.join(missing)})")
    try:
        run_flags = read_flags(os.path.join(path, "flags.txt"))
        with open(os.path.join(path, "summary.json")) as f:
            summary = json.load(f)
        if not isinstance(summary, dict):
            raise ReportError(f"{path}: summary.json is not a JSON object")
        rows = read_rows(os.path.join(path, "metrics.csv"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as error:
        raise ReportError(f"{path}: cannot read the run: {error}") from None
    if not rows:
        raise ReportError(f"{path}: metrics.csv has no rows")
    columns = list(rows[0])
    lacking = [c for c in ("iteration", "env_steps", "seed", "meta_batch_size") if c not in columns]
    if lacking:
        raise ReportError(f"{path}: metrics.csv lacks column(s) {', '.join(lacking)}")
    try:
        for row in rows:
            row["iteration"] = int(row["iteration"])
            row["seed"] = int(row["seed"])
    except (TypeError, ValueError):
        raise ReportError(f"{path}: metrics.csv has a non-integer iteration or seed") from None

    def info(name, default=""):
        value = summary.get(name, run_flags.get(name, default))
        return default if value is None or isinstance(value, bool) else str(value)

    experiment = info("experiment")
    if experiment not in ("", *EXPERIMENTS):
        known = ", ".join(EXPERIMENTS)
        raise ReportError(f"{path}: unknown experiment {experiment!r} (known: {known})")
    algo, env = info("algo"), info("env")
    if not algo or not env:
        raise ReportError(f"{path}: neither summary.json nor flags.txt names the algo and env")
    iterations = _float(summary.get("iterations", run_flags.get("num_iterations")))

    headline = {}
    for prefix in ("eval", "eval_train"):
        column = _headline(columns, prefix, env)
        if column:
            headline[prefix] = column
    if "eval" not in headline:
        raise ReportError(f"{path}: metrics.csv has no eval/{headline_metric(env)} column")
    curves = {p: _prefixed_curve(columns, p) for p in ("eval", "eval_train")}
    # between the leading columns and the metrics: meta_batch_size, num_train_tasks, swept settings
    sweep_columns = [c for c in columns[len(LEADING_COLUMNS) :] if "/" not in c]
    final_iteration = max(row["iteration"] for row in rows)
    members = _members(path, rows, columns, sweep_columns, final_iteration)
    return Run(
        path=path,
        flags=run_flags,
        experiment=experiment,
        algo=algo,
        env=env,
        train_tasks=info("train_tasks", "full"),
        eval_tasks=info("eval_tasks", "full"),
        num_iterations=None if iterations is None else int(iterations),
        final_iteration=final_iteration,
        rows=rows,
        sweep_columns=sweep_columns,
        headline=headline,
        curves={p: c for p, c in curves.items() if c[0]},
        members=members,
        levels=_levels(path, summary.get("levels") or {}),
    )


def _levels(path: str, levels) -> dict:
    """summary.json's reference levels, checked: {prefix: {metric, values, lower, upper}}."""
    for level_set in levels.values() if isinstance(levels, dict) else [None]:
        values = level_set.get("values") if isinstance(level_set, dict) else None
        if not (
            isinstance(values, dict)
            and isinstance(level_set.get("metric"), str)
            and all(isinstance(v, int | float) for v in values.values())
            and level_set.get("lower") in values
            and (level_set.get("upper") is None or level_set["upper"] in values)
        ):
            raise ReportError(
                f"{path}: summary.json's `levels` is malformed (want per evaluation set a metric, "
                "numeric values, and lower/upper naming two of them)"
            )
    return levels


def _members(path, rows, columns, sweep_columns, final_iteration) -> list[Member]:
    metrics = [c for c in columns if "/" in c]
    members: dict[tuple, Member] = {}
    for row in rows:
        if row["iteration"] != final_iteration:
            continue
        key = tuple(str(row[c]) for c in sweep_columns)
        member = members.setdefault(
            key, Member(dict(zip(sweep_columns, key, strict=True)), 0, defaultdict(dict))
        )
        member.env_steps = int(_float(row["env_steps"]) or 0)
        for metric in metrics:
            value = _float(row[metric])
            if value is None:
                continue
            if row["seed"] in member.final[metric]:
                raise ReportError(
                    f"{path}: metrics.csv has two rows for seed {row['seed']}, member "
                    f"{member.label or 'run'} at iteration {final_iteration}"
                )
            member.final[metric][row["seed"]] = value
    return sorted(members.values(), key=lambda m: [sweep_sort_key(v) for v in m.sweep.values()])


def sweep_sort_key(value: str):
    """Sweep values in numeric order, "all" last."""
    number = _float(value)
    return (1, 0.0) if number is None else (0, number)


def check_runs(runs: list[Run]) -> None:
    """Everything that makes a set of runs unfit for one report, before anything is written."""
    seen: dict[tuple, str] = {}
    for run in runs:
        if run.key in seen:
            experiment, env, algo, train = run.key
            raise ReportError(
                f"two runs with the same experiment ({experiment or '-'}), env {env}, algo "
                f"{algo} and train_tasks {train}: {seen[run.key]} and {run.path}"
            )
        seen[run.key] = run.path
    groups = defaultdict(list)
    for run in runs:
        if run.experiment in EXPERIMENTS and run.experiment not in ONE_PLOT_PER_RUN:
            groups[(run.experiment, run.env)].append(run)
    for (experiment, env), group in sorted(groups.items()):
        for setting in SHARED_SETTINGS:
            values = {run.path: run.setting(setting) for run in group}
            if len(set(values.values())) > 1:
                listed = ", ".join(f"{path} has {value}" for path, value in values.items())
                raise ReportError(
                    f"experiment ({experiment}) on {env}: runs compared on one plot differ in "
                    f"--{setting} ({listed})"
                )
    for run in runs:
        if (
            run.experiment in NUM_TRAIN_TASKS_EXPERIMENTS
            and "num_train_tasks" not in run.sweep_columns
        ):
            raise ReportError(
                f"{run.path}: experiment ({run.experiment}) run without a num_train_tasks column "
                "in metrics.csv"
            )
        if run.experiment and not joins(run.algo, run.experiment):
            raise ReportError(
                f"{run.path}: {run.algo} takes no part in experiment ({run.experiment})"
            )
        if run.experiment == "d" and "eval_train" not in run.headline:
            raise ReportError(
                f"{run.path}: experiment (d) run without eval_train/ metrics (in-sample "
                "evaluation, --eval_train_region)"
            )
        if run.experiment == "e":
            curve, _ = run.curves.get("eval", ([], ""))
            if not curve or "_step" not in curve[0]:
                raise ReportError(
                    f"{run.path}: experiment (e) run without eval/return_step columns"
                )
        if run.experiment == "f":
            _check_step_size_run(run)


def _check_step_size_run(run: Run) -> None:
    """An (f) run sweeps one or two settings (the grid of its table) and nothing else."""
    swept = run.swept_settings
    if not 1 <= len(swept) <= MAX_SWEPT_SETTINGS:
        raise ReportError(
            f"{run.path}: experiment (f) run sweeps {len(swept)} settings (--sweep); its section "
            f"shows one or {MAX_SWEPT_SETTINGS}"
        )
    for column in SIZE_COLUMNS:
        if column in run.sweep_columns and len({m.sweep[column] for m in run.members}) > 1:
            raise ReportError(
                f"{run.path}: experiment (f) run sweeps {column} too; its section compares the "
                "swept settings at one value of it"
            )


def check_out_dir(out_dir: str) -> None:
    """app_plumbing.check_empty_or_new_dir's rule, with the report's own two messages."""
    if os.path.exists(out_dir):
        if not os.path.isdir(out_dir):
            raise ReportError(f"--out_dir: {out_dir} exists and is not a directory")
        if os.listdir(out_dir):
            raise ReportError(f"--out_dir: {out_dir} is not empty; choose another directory")
