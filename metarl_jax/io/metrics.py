"""metrics.csv: one row per logged iteration x sweep member (the results contract)."""

import csv
import math
import os
from collections.abc import Sequence

import numpy as np

from metarl_jax.io.atomic_files import replace_file

LEADING_COLUMNS = ("iteration", "env_steps", "seed")


def metric_columns(names) -> list[str]:
    """train/* first, then eval/*, then everything else; numbered steps in numeric order."""

    def key(name):
        split, _, metric = name.partition("/")
        order = {"train": 0, "eval": 1}.get(split, 2)
        stem = metric.rstrip("0123456789")
        number = int(metric[len(stem) :]) if metric != stem else -1
        return order, split, stem, number

    return sorted(names, key=key)


def csv_columns(sweep_columns: Sequence[str], metric_names) -> list[str]:
    return [*LEADING_COLUMNS, *sweep_columns, *metric_columns(metric_names)]


def member_rows(iteration, env_steps, members: list[dict], sweep_columns, metrics: dict) -> list:
    rows = []
    for i, member in enumerate(members):
        row = {"iteration": iteration, "env_steps": int(env_steps[i]), "seed": member["seed"]}
        row.update({c: member[c] for c in sweep_columns})
        row.update({name: float(np.asarray(v)[i]) for name, v in metrics.items()})
        rows.append(row)
    return rows


def append_rows(path: str, columns: list[str], rows: list[dict]) -> None:
    new_file = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        if new_file:
            writer.writeheader()
        for row in rows:
            writer.writerow({c: _format(row.get(c, "")) for c in columns})


def _format(value):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return value


def read_rows(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def truncate_after(path: str, iteration: int) -> None:
    """Drop rows logged after `iteration` (written before a crash, past the last checkpoint) and
    a row cut short by a kill (no line end, or too few fields); the kept lines stay byte for byte.
    Atomic: the file is whole before and after. A file without a whole header is removed."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        lines = [line for line in f.read().splitlines(keepends=True) if line.endswith("\n")]
    if not lines:
        os.remove(path)
        return
    width = len(next(csv.reader(lines[:1])))
    kept = [lines[0]]
    for line in lines[1:]:
        fields = next(csv.reader([line]))
        if len(fields) == width and int(fields[0]) <= iteration:
            kept.append(line)
    replace_file(path, "".join(kept))


# The meta-test curve within a task: MAML's return after k gradient steps, RL²'s and PEARL's
# return of the e-th episode of a trial. Its x-axis label.
CURVE_PREFIXES = {
    "eval/return_step": "adaptation steps at meta-test",
    "eval/return_episode": "episode of the trial",
}


def curve_columns(columns) -> tuple[list[str], str]:
    """The evaluation-curve columns in numeric order, and what their index means."""
    for prefix, label in CURVE_PREFIXES.items():
        found = [c for c in columns if c.startswith(prefix) and c[len(prefix) :].isdigit()]
        if found:
            return sorted(found, key=lambda c: int(c[len(prefix) :])), label
    return [], ""


def headline_metrics(columns) -> list[str]:
    """What tables and plots lead with: train/return, eval/return, the curve's ends."""
    curve, _ = curve_columns(columns)
    names = ["train/return", "eval/return", *curve[:1], *curve[-1:]]
    return [n for n in dict.fromkeys(names) if n in columns]
