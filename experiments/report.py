"""The study report: what the runs of experiments (a)–(e) say, as Markdown with figures.

    python -m experiments.report RUN_DIR... [--out_dir=DIR]

Each RUN_DIR is a directory written by `python -m experiments.main` (flags.txt, metrics.csv,
summary.json). Runs are grouped by their `--experiment`: (a) number of training tasks, (b) MACAW
with its offline data, (c) meta-batch size, (d) out-of-sample vs in-sample tasks, (e) MAML's
test-time gradient steps on out-of-sample tasks; runs outside the study come last. Writes
`<out_dir>/report.md` and PNG figures in `<out_dir>/figures/` (default `--out_dir`:
runs/report_<timestamp>).

Numbers: the final evaluation return of a sweep member is `eval/return` at the run's last logged
iteration, with a 95% Student-t confidence interval over seeds (none with one seed). Every
sentence of a section's reading is generated from these numbers.

Bad input (a directory that is not a run, no directories, runs compared on one plot with
different --horizon / --num_arms / --eval_tasks, two runs with the same (experiment, env, algo,
train_tasks), an existing non-empty --out_dir): one `error: …` line on stderr, exit code 2,
nothing written.
"""

import csv
import datetime
import json
import math
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from absl import app, flags
from matplotlib.ticker import MaxNLocator

from experiments.flags_file import read_flags_file
from metarl_jax.algos.registry import REGISTRY
from metarl_jax.io import report_stats as stats
from metarl_jax.io.metrics import curve_columns, read_rows
from metarl_jax.io.plots import group_over_seeds, x_axis

FLAGS = flags.FLAGS

LEVEL = 0.95
RUN_FILES = ("flags.txt", "metrics.csv", "summary.json")
STUDY = ("a", "b", "c", "d", "e")
TITLES = {
    "a": "(a) Number of distinct training tasks",
    "b": "(b) MACAW",
    "c": "(c) Meta-batch size",
    "d": "(d) Out-of-sample tasks",
    "e": "(e) MAML: test-time gradient steps on out-of-sample tasks",
    "": "Other runs (outside the study)",
}
# Settings that must agree among the runs of one experiment and environment (one plot).
SHARED_SETTINGS = ("horizon", "num_arms", "eval_tasks")
ALL = "all"


class ReportError(Exception):
    pass


# ----- reading runs ---------------------------------------------------------------------------


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
    notes: list[str] = field(default_factory=list)

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


def _headline(columns, prefix, run_flags, notes) -> str | None:
    """The column of `prefix/return`; for runs logged before it existed, the curve point that
    defines it (MAML: after --inner_steps steps; RL²: the trial's last episode)."""
    if f"{prefix}/return" in columns:
        return f"{prefix}/return"
    curve, _ = _prefixed_curve(columns, prefix)
    if not curve:
        return None
    if "_step" in curve[0]:
        try:
            inner_steps = int(run_flags.get("inner_steps", 1))
        except ValueError:
            inner_steps = 1
        column = curve[min(inner_steps, len(curve) - 1)]
    else:
        column = curve[-1]
    notes.append(f"no `{prefix}/return` column (an older run): used `{column}` in its place")
    return column


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
    if experiment not in ("", *STUDY):
        raise ReportError(f"{path}: unknown experiment {experiment!r} (known: a, b, c, d, e)")
    algo, env = info("algo"), info("env")
    if not algo or not env:
        raise ReportError(f"{path}: neither summary.json nor flags.txt names the algo and env")
    iterations = _float(summary.get("iterations", run_flags.get("num_iterations")))

    notes: list[str] = []
    headline = {}
    for prefix in ("eval", "eval_train"):
        column = _headline(columns, prefix, run_flags, notes)
        if column:
            headline[prefix] = column
    if "eval" not in headline:
        raise ReportError(f"{path}: metrics.csv has no eval/return column (nor an eval curve)")
    curves = {p: _prefixed_curve(columns, p) for p in ("eval", "eval_train")}
    sweep_columns = [c for c in ("meta_batch_size", "num_train_tasks") if c in columns]
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
        notes=notes,
    )


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
    return sorted(members.values(), key=lambda m: [_sort_key(v) for v in m.sweep.values()])


def _sort_key(value: str):
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
        if run.experiment in STUDY:
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
        if run.experiment in ("a", "b") and "num_train_tasks" not in run.sweep_columns:
            raise ReportError(
                f"{run.path}: experiment ({run.experiment}) run without a num_train_tasks column "
                "in metrics.csv"
            )
        entry = REGISTRY.get(run.algo)
        if run.experiment and (entry is None or run.experiment not in entry.study_experiments):
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


def check_out_dir(out_dir: str) -> None:
    if os.path.exists(out_dir):
        if not os.path.isdir(out_dir):
            raise ReportError(f"--out_dir: {out_dir} exists and is not a directory")
        if os.listdir(out_dir):
            raise ReportError(f"--out_dir: {out_dir} is not empty; choose another directory")


# ----- formatting -----------------------------------------------------------------------------


def num(x: float | None) -> str:
    """Four significant digits, no exponent for returns in the thousands."""
    if x is None:
        return "—"
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    return f"{x:.4g}"


def signed(x: float) -> str:
    text = num(x)
    return text if text.startswith("-") else f"+{text}"


def ci_range(iv: stats.Interval | None) -> str:
    if iv is None:
        return "—"
    if not iv.has_interval:
        return "none (1 seed)"
    return f"[{num(iv.low)}, {num(iv.high)}]"


def ci_text(iv: stats.Interval | None) -> str:
    """ "mean ± half-width", or the mean and why there is no interval."""
    if iv is None:
        return "—"
    if not iv.has_interval:
        return f"{num(iv.mean)} (1 seed, no interval)"
    return f"{num(iv.mean)} ± {num(iv.half_width)}"


def value_with_ci(iv: stats.Interval | None) -> str:
    """For prose: "mean (95% CI [lo, hi])"."""
    if iv is None:
        return "no value"
    if not iv.has_interval:
        return f"{num(iv.mean)} (one seed, no interval)"
    return f"{num(iv.mean)} (95% CI [{num(iv.low)}, {num(iv.high)}])"


def overlap_text(overlap: bool | None) -> str:
    return {True: "overlap", False: "do not overlap", None: "cannot be compared (one seed)"}[
        overlap
    ]


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    escape = lambda cell: str(cell).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "run"


def _join(items) -> str:
    items = list(dict.fromkeys(str(i) for i in items))
    return ", ".join(items)


# ----- shared pieces of a section ---------------------------------------------------------------


def describe_runs(runs: list[Run]) -> list[str]:
    """What was run: environments, algorithms, seeds, iterations; one bullet per run."""
    seeds = sorted(set().union(*(set(m.seeds) for r in runs for m in r.members)))
    iterations = sorted({r.final_iteration for r in runs})
    lines = [
        f"What was run: {len(runs)} run(s); environments {_join(r.env for r in runs)}; "
        f"algorithms {_join(r.algo for r in runs)}; seeds {_join(seeds)}; final logged "
        f"iteration {_join(iterations)}.",
        "",
    ]
    for run in runs:
        sweep = "; ".join(
            f"{c} {_join(m.sweep[c] for m in run.members)}" for c in run.sweep_columns
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
            f"eval tasks `{run.eval_tasks}`; seeds {_join(run.members[0].seeds)}; "
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
    lines = table(header, rows)
    if any(row[5] == "1" for row in rows):
        lines += ["Members with one seed have no confidence interval.", ""]
    return lines


def learning_curves(run: Run, figures_dir: str, used: set) -> str:
    """eval/return against env steps (mean over seeds, one line per member), beside the final
    evaluation curve within a task (MAML: gradient steps; RL², PEARL: episodes of a trial)."""
    curve, curve_label = run.curves.get("eval", ([], ""))
    panels = 2 if curve else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    styles = [("eval", "-", "out-of-sample " if run.experiment == "d" else "")]
    if run.experiment == "d":
        styles.append(("eval_train", "--", "in-sample "))
    for prefix, style, what in styles:
        grouped = group_over_seeds(run.rows, run.sweep_columns, run.headline[prefix])
        ordered = sorted(grouped.items(), key=lambda kv: _label_key(kv[0]))
        for i, (label, (steps, values)) in enumerate(ordered):
            ax.plot(
                steps,
                values.mean(axis=0),
                style,
                color=f"C{i % 10}",
                marker=".",
                label=f"{what}{label or 'run'}",
            )
    ax.set_xlabel(f"{x_axis(run.rows)[1]} (per member)")
    ax.set_ylabel(f"{run.headline['eval']} (mean over seeds)")
    ax.set_title(f"{run.algo} on {run.env}: evaluation return", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if curve:
        ax = axes[0, 1]
        for member in run.members:
            means = [np.mean(list(member.final[c].values())) for c in curve if member.final[c]]
            ax.plot(range(len(means)), means, marker="o", label=member.label or "run")
        ax.set_xlabel(curve_label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("evaluation return (mean over seeds)")
        where = " (out of sample)" if run.experiment in ("d", "e") else ""
        ax.set_title(
            f"final iteration ({run.final_iteration}): evaluation curve{where}", fontsize=10
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    name = _unique(
        f"curves_{run.experiment or 'other'}_{_slug(run.env)}_{_slug(run.algo)}_"
        f"{_slug(run.train_tasks)}.png",
        used,
    )
    _save(fig, os.path.join(figures_dir, name))
    return name


def _label_key(label: str):
    return [_sort_key(part.partition("=")[2]) for part in label.split(", ")]


def _unique(name: str, used: set) -> str:
    stem, ext = os.path.splitext(name)
    candidate, i = name, 1
    while candidate in used:
        i += 1
        candidate = f"{stem}_{i}{ext}"
    used.add(candidate)
    return candidate


def _save(fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def curves_block(runs: list[Run], figures_dir: str, used: set) -> list[str]:
    lines = ["Learning curves (evaluation return against environment steps, mean over seeds):", ""]
    for run in runs:
        name = learning_curves(run, figures_dir, used)
        lines += [f"![learning curves: {run.name}](figures/{name})", ""]
    return lines


def by_env(runs: list[Run]) -> dict[str, list[Run]]:
    groups = defaultdict(list)
    for run in sorted(runs, key=lambda r: (r.env, r.algo, not r.is_full, r.train_tasks)):
        groups[run.env].append(run)
    return dict(sorted(groups.items()))


def panels(n: int, width: float = 5.5):
    fig, axes = plt.subplots(1, n, figsize=(width * n, 4.2), squeeze=False)
    return fig, list(axes[0])


def _lines_along(run: Run, axis: str) -> dict[str, list[Member]]:
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
        members.sort(key=lambda m: _sort_key(m.sweep[axis]))
    return dict(lines)


def _errorbar(ax, xs, ivs, label, **kwargs):
    means = [iv.mean for iv in ivs]
    errors = [iv.half_width if iv.has_interval else 0.0 for iv in ivs]
    ax.errorbar(xs, means, yerr=errors, marker="o", capsize=3, label=label, **kwargs)


# ----- sections -------------------------------------------------------------------------------


def section_a(runs: list[Run], figures_dir: str, used: set) -> list[str]:
    lines = describe_runs(runs)
    lines += ["Final evaluation return per number of training tasks k:", ""]
    lines += member_table(runs)
    lines += _num_tasks_figure(
        runs,
        figures_dir,
        used,
        "a_num_train_tasks.png",
        "number of training tasks k (log scale; all = the whole distribution)",
        _reading_a,
    )
    return lines + curves_block(runs, figures_dir, used)


def section_b(runs: list[Run], figures_dir: str, used: set) -> list[str]:
    lines = describe_runs(runs)
    lines += ["Final evaluation return per number of training tasks (offline buffers) k:", ""]
    lines += member_table(runs)
    lines += _num_tasks_figure(
        runs,
        figures_dir,
        used,
        "b_num_offline_tasks.png",
        "number of training tasks / offline buffers k (log scale)",
        _reading_b,
    )
    return lines + curves_block(runs, figures_dir, used)


def _num_tasks_figure(runs, figures_dir, used, name, xlabel, reading_of) -> list[str]:
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
            for label, members in _lines_along(run, "num_train_tasks").items():
                points = [(m, m.interval(run.headline["eval"])) for m in members]
                points = [(m, iv) for m, iv in points if iv]
                has_all |= any(m.sweep["num_train_tasks"] == ALL for m, _ in points)
                xs = [
                    all_position
                    if m.sweep["num_train_tasks"] == ALL
                    else position[int(m.sweep["num_train_tasks"])]
                    for m, _ in points
                ]
                _errorbar(ax, xs, [iv for _, iv in points], label)
                reading.append(reading_of(env, label, points))
        ticks = [*position.values(), *([all_position] if has_all else [])]
        ax.set_xticks(ticks, [*map(str, finite), *([ALL] if has_all else [])])
        _style_final_return_axes(ax, xlabel, env)
    return _figure_and_reading(
        fig, figures_dir, used, name, "final return against the number of training tasks", reading
    )


def _style_final_return_axes(ax, xlabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel("final eval/return (95% CI over seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _figure_and_reading(fig, figures_dir, used, name, alt, reading) -> list[str]:
    _save(fig, os.path.join(figures_dir, name))
    used.add(name)
    return [f"![{alt}](figures/{name})", "", "Reading: " + " ".join(reading), ""]


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


def section_c(runs: list[Run], figures_dir: str, used: set) -> list[str]:
    lines = describe_runs(runs)
    lines += ["Final evaluation return per meta-batch size:", ""]
    lines += member_table(runs)
    envs = by_env(runs)
    fig, axes = panels(len(envs))
    reading = []
    for ax, (env, env_runs) in zip(axes, envs.items(), strict=True):
        sizes = set()
        for run in env_runs:
            for label, members in _lines_along(run, "meta_batch_size").items():
                points = [(m, m.interval(run.headline["eval"])) for m in members]
                points = [(m, iv) for m, iv in points if iv]
                xs = [int(m.sweep["meta_batch_size"]) for m, _ in points]
                sizes.update(xs)
                _errorbar(ax, xs, [iv for _, iv in points], label)
                reading.append(_reading_c(env, label, points))
        ax.set_xscale("log")
        ax.set_xticks(sorted(sizes), [str(s) for s in sorted(sizes)])
        ax.minorticks_off()
        _style_final_return_axes(ax, "meta-batch size (tasks per iteration, log scale)", env)
    lines += _figure_and_reading(
        fig, figures_dir, used, "c_meta_batch_size.png",
        "final return against the meta-batch size", reading,
    )  # fmt: skip
    return lines + curves_block(runs, figures_dir, used)


def _reading_c(env: str, label: str, points) -> str:
    if not points:
        return f"On {env}, {label}: no evaluation values."
    if len(points) == 1:
        m, iv = points[0]
        return (
            f"On {env}, {label}: only meta-batch size {m.sweep['meta_batch_size']} was run, final "
            f"return {value_with_ci(iv)}."
        )
    best = max(points, key=lambda p: p[1].mean)
    worst = min(points, key=lambda p: p[1].mean)
    overlap = stats.intervals_overlap(best[1], worst[1])
    return (
        f"On {env}, {label}: the best meta-batch size is {best[0].sweep['meta_batch_size']} "
        f"with {value_with_ci(best[1])}, the worst {worst[0].sweep['meta_batch_size']} with "
        f"{value_with_ci(worst[1])} (difference {signed(best[1].mean - worst[1].mean)}); their "
        f"confidence intervals {overlap_text(overlap)}."
    )


def _d_points(run: Run, member: Member):
    out_col, in_col = run.headline["eval"], run.headline["eval_train"]
    out, inside = member.interval(out_col), member.interval(in_col)
    gap = stats.paired_difference(member.final.get(out_col, {}), member.final.get(in_col, {}))
    return out, inside, gap


def section_d(runs: list[Run], figures_dir: str, used: set) -> list[str]:
    lines = describe_runs(runs)
    lines += [
        "Final return out of sample (`eval/`, on the evaluation tasks) and in sample "
        "(`eval_train/`, fresh tasks of the training region), and the gap out − in (paired by "
        "seed; its 95% CI is over the per-seed differences):",
        "",
    ]
    header = [
        "algo",
        "env",
        "train tasks",
        "eval tasks",
        "member",
        "seeds",
        "out-of-sample",
        "out 95% CI",
        "in-sample",
        "in 95% CI",
        "gap (out − in)",
        "gap 95% CI",
        "CIs overlap",
    ]
    rows, reading = [], []
    envs = by_env(runs)
    fig, axes = plt.subplots(2, len(envs), figsize=(5.5 * len(envs), 7.0), squeeze=False)
    for col, (env, env_runs) in enumerate(envs.items()):
        ax, gap_ax = axes[0, col], axes[1, col]
        ticks = []
        for run in env_runs:
            for member in run.members:
                out, inside, gap = _d_points(run, member)
                label = run.algo + (f" ({member.label})" if len(run.members) > 1 else "")
                overlap = stats.intervals_overlap(out, inside) if out and inside else None
                rows.append(
                    [
                        run.algo,
                        env,
                        f"`{run.train_tasks}`",
                        f"`{run.eval_tasks}`",
                        member.label or "run",
                        str(out.n if out else 0),
                        ci_text(out),
                        ci_range(out),
                        ci_text(inside),
                        ci_range(inside),
                        ci_text(gap),
                        ci_range(gap),
                        overlap_text(overlap) if out and inside else "—",
                    ]
                )
                x = len(ticks)
                ticks.append(label)
                if out:
                    _errorbar(
                        ax,
                        [x + 0.1],
                        [out],
                        "out-of-sample" if x == 0 else None,
                        color="tab:red",
                        linestyle="none",
                    )
                if inside:
                    _errorbar(
                        ax,
                        [x - 0.1],
                        [inside],
                        "in-sample" if x == 0 else None,
                        color="tab:blue",
                        linestyle="none",
                    )
                if gap:
                    _errorbar(gap_ax, [x], [gap], None, color="tab:purple", linestyle="none")
                reading.append(_reading_d(run, label, out, inside, gap, overlap))
        for a in (ax, gap_ax):
            a.set_xticks(range(len(ticks)), ticks, fontsize=8)
            a.set_xlim(-0.6, len(ticks) - 0.4)
            a.grid(alpha=0.3)
        ax.set_ylabel("final return (95% CI over seeds)")
        ax.set_title(f"{env}: out-of-sample vs in-sample")
        ax.legend(fontsize=8)
        gap_ax.axhline(0.0, color="black", linewidth=0.8)
        gap_ax.set_ylabel("gap out − in (paired 95% CI)")
    _save(fig, os.path.join(figures_dir, "d_out_of_sample.png"))
    used.add("d_out_of_sample.png")
    lines += table(header, rows)
    lines += ["![out-of-sample vs in-sample final return](figures/d_out_of_sample.png)"]
    lines += ["", "Reading: " + " ".join(reading), ""]
    return lines + curves_block(runs, figures_dir, used)


def _reading_d(run: Run, label, out, inside, gap, overlap) -> str:
    head = f"On {run.env}, {label} trained on `{run.train_tasks}`"
    if not (out and inside):
        return f"{head}: missing out-of-sample or in-sample values."
    gap_ci = f" (paired 95% CI [{num(gap.low)}, {num(gap.high)}] over {gap.n} seeds)"
    if not gap.has_interval:
        gap_ci = " (one seed, no interval)"
    return (
        f"{head}: the final return out of sample (`{run.eval_tasks}`) is {value_with_ci(out)}, "
        f"in sample {value_with_ci(inside)}; the gap out − in is {signed(gap.mean)}{gap_ci}, "
        f"and the two confidence intervals {overlap_text(overlap)}."
    )


def section_e(runs: list[Run], figures_dir: str, used: set) -> list[str]:
    lines = describe_runs(runs)
    lines += ["Final evaluation return (`eval/return`, out of sample):", ""]
    lines += member_table(runs)
    max_k = max(len(r.curves["eval"][0]) for r in runs) - 1
    header = [
        "algo",
        "env",
        "trained on",
        "member",
        "seeds",
        *[f"step {k}" for k in range(max_k + 1)],
    ]
    rows, reading = [], []
    envs = by_env(runs)
    fig, axes = panels(len(envs))
    for ax, (env, env_runs) in zip(axes, envs.items(), strict=True):
        algos = sorted({r.algo for r in env_runs})
        for run in env_runs:
            curve = run.curves["eval"][0]
            for member in run.members:
                ivs = [member.interval(c) for c in curve]
                kind = "whole distribution" if run.is_full else f"sub-range {run.train_tasks}"
                label = f"{run.algo}, trained on {kind}"
                if len(run.members) > 1:
                    label += f" ({member.label})"
                cells = [ci_text(iv) for iv in ivs] + ["—"] * (max_k + 1 - len(ivs))
                rows.append(
                    [
                        run.algo,
                        env,
                        f"`{run.train_tasks}`",
                        member.label or "run",
                        str(ivs[0].n if ivs[0] else 0),
                        *cells,
                    ]
                )
                present = [(k, iv) for k, iv in enumerate(ivs) if iv]
                _errorbar(
                    ax,
                    [k for k, _ in present],
                    [iv for _, iv in present],
                    label,
                    linestyle="-" if run.is_full else "--",
                    color=f"C{algos.index(run.algo) % 10}",
                    markerfacecolor="white" if not run.is_full else None,
                )
        ax.set_xlabel("test-time gradient steps k")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("final eval/return_step k (out of sample, 95% CI)")
        ax.set_title(f"{env}: eval tasks {env_runs[0].eval_tasks}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        for algo in algos:
            reading.append(_reading_e(env, algo, [r for r in env_runs if r.algo == algo]))
    _save(fig, os.path.join(figures_dir, "e_adaptation_steps.png"))
    used.add("e_adaptation_steps.png")
    lines += [
        "Return after k test-time gradient steps on out-of-sample tasks (mean ± 95% CI "
        "half-width over seeds):",
        "",
        *table(header, rows),
        "![return against test-time gradient steps](figures/e_adaptation_steps.png)",
        "",
        "Reading: " + " ".join(reading),
        "",
    ]
    return lines + curves_block(runs, figures_dir, used)


def _curve_means(run: Run, member: Member) -> list[float]:
    return [
        float(np.mean(list(member.final[c].values()))) if member.final.get(c) else math.nan
        for c in run.curves["eval"][0]
    ]


def _reading_e(env: str, algo: str, runs: list[Run]) -> str:
    full = [r for r in runs if r.is_full]
    subs = [r for r in runs if not r.is_full]
    head = f"On {env}, {algo}:"
    if not full or not subs:
        which = "the whole distribution" if not full else "a sub-range"
        given = full or subs
        parts = []
        for run in given:
            means = _curve_means(run, run.members[0])
            parts.append(
                f"the model trained on `{run.train_tasks}` returns {num(means[0])} at step 0 and "
                f"{num(means[-1])} at step {len(means) - 1}"
            )
        return f"{head} no model trained on {which} was given; " + "; ".join(parts) + "."
    full_run = full[0]
    sentences = []
    for sub in subs:
        for member in sub.members:
            reference = next(
                (m for m in full_run.members if m.sweep == member.sweep), full_run.members[0]
            )
            f_means, s_means = _curve_means(full_run, reference), _curve_means(sub, member)
            k_full, k_sub = len(f_means) - 1, len(s_means) - 1
            reached = stats.first_reaching(s_means, f_means[0])
            level = f"the full model's step-0 level ({num(f_means[0])})"
            where = (
                f"first reaches {level} at step {reached}"
                if reached is not None
                else f"does not reach {level} within K={k_sub} steps"
            )
            member_text = f" ({member.label})" if len(sub.members) > 1 else ""
            sentences.append(
                f"{head} the model trained on the whole distribution returns {num(f_means[0])} at "
                f"step 0 and {num(f_means[-1])} at step {k_full}; the model trained on "
                f"`{sub.train_tasks}`{member_text} returns {num(s_means[0])} at step 0 and "
                f"{num(s_means[-1])} at step {k_sub}. Comparing means over seeds, the sub-range "
                f"model {where}."
            )
    return " ".join(sentences)


def section_other(runs: list[Run], figures_dir: str, used: set) -> list[str]:
    lines = describe_runs(runs)
    lines += ["Final evaluation return per sweep member:", ""]
    lines += member_table(runs)
    points = [
        (run, m, m.interval(run.headline["eval"]))
        for run in runs
        for m in run.members
        if m.interval(run.headline["eval"])
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


SECTIONS = {
    "a": section_a,
    "b": section_b,
    "c": section_c,
    "d": section_d,
    "e": section_e,
    "": section_other,
}


def write_report(runs: list[Run], out_dir: str) -> str:
    figures_dir = os.path.join(out_dir, "figures")
    os.makedirs(figures_dir, exist_ok=True)
    used: set = set()
    lines = [
        "# Robustness of meta-RL to the training tasks: study report",
        "",
        f"Generated by `python -m experiments.report` from {len(runs)} run(s). The final "
        "evaluation return of a sweep member is `eval/return` (MAML: after `--inner_steps` "
        "test-time gradient steps; RL²: the last episode of a trial; PEARL: the last evaluation "
        "episode, acting on the posterior of the episodes before it; MACAW: online after "
        "`--inner_steps` offline adaptation steps) at the run's last logged "
        "iteration; intervals are 95% Student-t confidence intervals over seeds (mean ± "
        "t(0.975, n−1)·s/√n, s the sample standard deviation); with one seed there is none. "
        "Every number in the readings is computed from the runs' metrics.csv.",
        "",
    ]
    grouped = defaultdict(list)
    for run in runs:
        grouped[run.experiment].append(run)
    for experiment in ("a", "b", "c", "d", "e", ""):
        if experiment == "" and not grouped[""]:
            continue
        lines += [f"## {TITLES[experiment]}", ""]
        if not grouped[experiment]:
            lines += ["No runs given.", ""]
        else:
            lines += SECTIONS[experiment](grouped[experiment], figures_dir, used)
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")
    return path


# ----- the app --------------------------------------------------------------------------------


def generate(run_dirs: list[str], out_dir: str | None = None) -> int:
    """Check every input, then write the report; the exit code (2: bad input, nothing written)."""
    try:
        if not run_dirs:
            raise ReportError(
                "no run directories given (usage: python -m experiments.report RUN_DIR... "
                "[--out_dir=DIR])"
            )
        runs = [load_run(os.path.normpath(path)) for path in run_dirs]
        check_runs(runs)
        out_dir = out_dir or os.path.join("runs", f"report_{datetime.datetime.now():%Y%m%d-%H%M%S}")
        check_out_dir(out_dir)
    except ReportError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    os.makedirs(out_dir, exist_ok=True)
    path = write_report(runs, out_dir)
    print(path, flush=True)
    return 0


def define_flags() -> None:
    """The app's flags, defined when it runs rather than on import, so that tests and other apps
    (which define their own --out_dir) can import this module."""
    if "out_dir" not in FLAGS:
        flags.DEFINE_string(
            "out_dir",
            None,
            "Report directory (default: runs/report_<timestamp>); must not exist or be empty.",
        )


def main(argv) -> int:
    """RUN_DIR... are the positional arguments; returns the exit code."""
    return generate(list(argv[1:]), FLAGS.out_dir)


def entry_point():
    define_flags()
    app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
    entry_point()
