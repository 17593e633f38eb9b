"""Re-evaluating a trained run (the logic of `experiments.evaluate`, without its flags): the
evaluation options checked into a plan before anything compiles, the algorithm's own evaluation
of the chosen members' restored states, the table and the results file."""

import dataclasses
import json
import os
import re

import jax
import numpy as np

from experiments.app_plumbing import UsageError
from experiments.run_levels import evaluation_levels
from metarl_jax.algos import MacawConfig, MamlConfig, PearlConfig, Rl2Config
from metarl_jax.algos.registry import algorithm_entry
from metarl_jax.algos.settings import EVAL_SEED
from metarl_jax.io import metrics as metrics_io
from metarl_jax.io import summary
from metarl_jax.io.atomic_files import create_file
from metarl_jax.io.report_stats import confidence_interval
from metarl_jax.runs.load import (
    BEST,
    RunError,
    checkpoint_to_read,
    load_run,
    member_indices,
    read_record,
)
from metarl_jax.runs.record import decode_config, record_env
from metarl_jax.sweep import evaluate_states
from metarl_jax.tasks import RestrictionError, parse_restriction

EVALUATIONS_DIR = "evaluations"


@dataclasses.dataclass(frozen=True)
class EvaluationOptions:
    """What `experiments.evaluate`'s flags ask for (None: the run's own setting)."""

    run: str | None
    checkpoint: int | None = None
    best: bool = False
    members: tuple[str, ...] = ()  # each NAME=VALUE,...
    env: str | None = None
    eval_tasks: str | None = None
    num_eval_tasks: int | None = None
    eval_seed: int = EVAL_SEED
    adapt_steps: int | None = None
    episodes: int | None = None
    name: str | None = None
    render: bool = False

    def given(self) -> dict:
        """The options that differ from their defaults."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default and f.name != "name"
        }


# The config field each evaluation flag sets, per algorithm (absent: the flag does not apply).
EVALUATION_FIELDS = {
    MamlConfig: {
        "adapt_steps": "eval_adapt_steps",
        "eval_tasks": "eval_tasks",
        "num_eval_tasks": "num_eval_tasks",
    },
    MacawConfig: {"adapt_steps": "eval_adapt_steps"},
    Rl2Config: {
        "episodes": "episodes_per_trial",
        "eval_tasks": "eval_tasks",
        "num_eval_tasks": "num_eval_tasks",
    },
    PearlConfig: {
        "episodes": "eval_episodes",
        "eval_tasks": "eval_tasks",
        "num_eval_tasks": "num_eval_tasks",
    },
}


@dataclasses.dataclass(frozen=True)
class EvaluationPlan:
    run_dir: str
    checkpoint: int | str | None  # None: the latest; "best"
    members: tuple[int, ...]  # indices into the run's members
    config_changes: dict
    options: dict  # the evaluation options as given (for the output)
    out_path: str


def parse_member(text: str) -> dict:
    """`seed=0,inner_lr=0.1` as {"seed": "0", "inner_lr": "0.1"}."""
    wanted = {}
    for part in text.split(","):
        name, equals, value = part.partition("=")
        if not equals or not name.strip() or not value.strip():
            raise UsageError(f"--member: expected NAME=VALUE,..., not {text!r}")
        if name.strip() in wanted:
            raise UsageError(f"--member: {name.strip()} is given twice in {text!r}")
        wanted[name.strip()] = value.strip()
    return wanted


def _chosen_members(options: EvaluationOptions, rows: list[dict]) -> tuple[int, ...]:
    chosen = []
    for text in options.members or [None]:
        try:
            found = member_indices(rows, None if text is None else parse_member(text))
        except RunError as error:
            raise UsageError(f"--{error}") from None
        chosen += [i for i in found if i not in chosen]
    return tuple(chosen)


def _checkpoint(options: EvaluationOptions, run_dir: str) -> int | str | None:
    """The checkpoint asked for (None: the latest; "best"), checked to be saved."""
    if options.best and options.checkpoint is not None:
        raise UsageError("--best: give --best or --checkpoint, not both")
    wanted = BEST if options.best else options.checkpoint
    try:
        checkpoint_to_read(run_dir, wanted)
    except RunError as error:
        flag = "best" if options.best else "run" if wanted is None else "checkpoint"
        raise UsageError(f"--{flag}: {error}") from None
    return wanted


def _config_changes(options: EvaluationOptions, config, env) -> dict:
    """The config fields the evaluation flags set, each checked by the config itself."""
    fields = EVALUATION_FIELDS[type(config)]
    given = {
        flag: getattr(options, flag)
        for flag in ("adapt_steps", "episodes", "eval_tasks", "num_eval_tasks")
        if getattr(options, flag) is not None
    }
    changes = {"eval_seed": options.eval_seed}
    for flag, value in given.items():
        if flag not in fields:
            raise UsageError(f"--{flag}: does not apply to {type(config).__name__}'s evaluation")
        if flag == "eval_tasks":
            try:
                value = parse_restriction(value, env.task_space, "eval_tasks")
            except RestrictionError as error:
                raise UsageError(str(error)) from None
        changes[fields[flag]] = value
    try:
        dataclasses.replace(config, **changes)
    except ValueError as error:
        field = str(error).split(":", 1)[0]
        flag = next((f for f, name in fields.items() if name == field), field)
        raise UsageError(f"--{flag}: {str(error).split(':', 1)[-1].strip()}") from None
    return changes


def _default_name(checkpoint, options: EvaluationOptions) -> str:
    parts = [f"checkpoint_{checkpoint}" if checkpoint is not None else "latest"]
    given = options.given()
    given["members"] = "+".join(given.get("members", ()))
    parts += [
        k if v is True else f"{k}={v}"
        for k, v in given.items()
        if k not in ("run", "best", "checkpoint") and v
    ]
    return re.sub(r"[^A-Za-z0-9.=,+-]+", "_", "_".join(parts)).strip("_")


def evaluation_plan(options: EvaluationOptions) -> EvaluationPlan:
    """Every check, before anything compiles or is written."""
    if not options.run:
        raise UsageError("--run: which run to evaluate (its directory)")
    run_dir = options.run
    try:
        record = read_record(run_dir)
    except RunError as error:
        raise UsageError(f"--run: {error}") from None
    if options.env is not None and options.env != record["env"]["name"]:
        raise UsageError(
            f"--env: the run trained on {record['env']['name']}, not {options.env}; a run "
            "evaluates on its own env (other tasks of it: --eval_tasks)"
        )
    data = record.get("offline_data")
    if data and not os.path.isdir(data):
        raise UsageError(f"--run: the run's offline data set {data} is not there (moved?)")
    checkpoint = _checkpoint(options, run_dir)
    members = _chosen_members(options, record["members"])
    config = decode_config(algorithm_entry(record["algo"]).config_class, record["config"])
    changes = _config_changes(options, config, record_env(record["env"]))
    name = options.name or _default_name(checkpoint, options)
    if not re.fullmatch(r"[A-Za-z0-9._=,+-]+", name):
        raise UsageError(f"--name: {name!r}: use letters, digits and . _ = , + - only")
    out_path = os.path.join(run_dir, EVALUATIONS_DIR, f"{name}.json")
    if os.path.exists(out_path):
        raise UsageError(f"--name: {out_path} exists; choose another --name")
    return EvaluationPlan(run_dir, checkpoint, members, changes, options.given(), out_path)


def over_seeds(per_member: list[dict], sweep_columns: list[str], metrics: list[str]) -> list[dict]:
    """Per member of the sweep but its seed: every metric's mean and 95 % CI half-width over
    seeds (None with one seed)."""
    groups = {}
    for row in per_member:
        groups.setdefault(tuple(row[c] for c in sweep_columns), []).append(row)
    entries = []
    for key, group in groups.items():
        entry = {**dict(zip(sweep_columns, key, strict=True)), "seeds": [r["seed"] for r in group]}
        for metric in metrics:
            interval = confidence_interval([r[metric] for r in group])
            entry[metric] = {
                "mean": interval.mean,
                "ci95": interval.half_width,
                "n": interval.n,
            }
        entries.append(entry)
    return entries


def evaluate(plan: EvaluationPlan) -> dict:
    """The algorithm's evaluation of the chosen members' restored states; the results JSON."""
    run = load_run(plan.run_dir, plan.checkpoint, plan.config_changes)
    index = np.asarray(plan.members)
    pick = lambda tree: jax.tree.map(lambda leaf: np.asarray(leaf)[index], tree)
    values = evaluate_states(run.algorithm, pick(run.members), pick(run.state))
    metrics = sorted(values)
    per_member = [
        {**run.rows[i], **{m: float(values[m][j]) for m in metrics}}
        for j, i in enumerate(plan.members)
    ]
    columns = [c for c in run.record["sweep_columns"] if c in run.rows[0]]
    return {
        "run": os.path.abspath(plan.run_dir),
        "algo": run.entry.name,
        "env": run.env.name,
        "checkpoint": "best"
        if plan.checkpoint == BEST
        else "latest"
        if plan.checkpoint is None
        else plan.checkpoint,
        "iteration": run.iteration,
        "options": plan.options,
        "config": {k: _json_value(v) for k, v in plan.config_changes.items()},
        "members": per_member,
        "over_seeds": over_seeds(per_member, columns, metrics),
        "sweep_columns": columns,
        "levels": evaluation_levels(run.algorithm, run.env, plan.config_changes["eval_seed"]),
    }


def _json_value(value):
    return value.describe() if hasattr(value, "describe") else value


def format_results(results: dict) -> str:
    """The table (mean ± 95 % CI half-width over seeds) and the reference levels."""
    names = list(results["members"][0])
    curve, _ = metrics_io.curve_columns(names)
    shown = [m for m in dict.fromkeys(["eval/return", *curve]) if m in names]
    entries = [
        {
            **entry,
            **{m: {"mean": entry[m]["mean"], "std": entry[m]["ci95"] or 0.0} for m in shown},
        }
        for entry in results["over_seeds"]
    ]
    lines = [summary.format_table(entries, results["sweep_columns"], shown)]
    lines.append("(± : 95 % CI half-width over seeds; 0 with one seed)")
    for prefix, level_set in results["levels"].items():
        values = ", ".join(f"{k} {v:.2f}" for k, v in level_set["values"].items())
        lines.append(f"reference levels of the {prefix} tasks ({level_set['metric']}): {values}")
    return "\n".join(lines)


def write_results(path: str, results: dict) -> None:
    """evaluations/<name>.json; never replaces a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    create_file(path, json.dumps(results, indent=2) + "\n")
