"""summary.json and the closing table: final metrics per sweep member, aggregated over seeds."""

import dataclasses
from collections import defaultdict

import numpy as np

from metarl_jax.io.atomic_files import write_json
from metarl_jax.io.report_stats import PLATEAU_TEST, PlateauTest, plateau_test


def final_by_member(
    rows: list[dict],
    sweep_columns: list[str],
    convergence_metric: str = "eval/return",
    level_span: float | None = None,
) -> list[dict]:
    """For the last logged iteration: mean, std and count over seeds of every metric, and the
    convergence check (`report_stats.PLATEAU_TEST`) of the member's `convergence_metric`, whose
    reference levels are `level_span` apart (None: unknown)."""
    if not rows:
        return []
    last = max(int(r["iteration"]) for r in rows)
    groups = defaultdict(list)
    for row in rows:
        if int(row["iteration"]) == last:
            groups[tuple(row[c] for c in sweep_columns)].append(row)
    metrics = [c for c in rows[0] if "/" in c]
    summary = []
    for key, group in groups.items():
        entry = {"iteration": last, "env_steps": int(group[0]["env_steps"])}
        entry.update({c: number(v) for c, v in zip(sweep_columns, key, strict=True)})
        entry["seeds"] = sorted(int(r["seed"]) for r in group)
        for metric in metrics:
            values = np.array([float(r[metric]) for r in group if r[metric] != ""])
            if values.size:
                entry[metric] = {"mean": float(values.mean()), "std": float(values.std())}
        if convergence_metric in rows[0]:
            entry["convergence"] = convergence(
                rows, sweep_columns, key, convergence_metric, level_span
            )
        summary.append(entry)
    return summary


def convergence(
    rows: list[dict],
    sweep_columns: list[str],
    member: tuple,
    metric: str,
    level_span: float | None = None,
) -> dict:
    """The plateau test of one member's `metric` (its rows of every seed, in logged order)."""
    series = seed_series(rows, dict(zip(sweep_columns, member, strict=True)), metric)
    if not (series and series[0]):
        test = PlateauTest(None, None, None)
    else:
        test = plateau_test(series, level_span=level_span)
    return {"metric": metric, "test": PLATEAU_TEST, **dataclasses.asdict(test)}


def seed_series(rows: list[dict], sweep: dict[str, str], column: str) -> list[list[float]]:
    """One member's logged `column`, one list per seed, cut to the shortest (latest kept)."""
    by_seed = defaultdict(list)
    for row in rows:
        if all(row.get(k) == v for k, v in sweep.items()) and row.get(column, "") != "":
            by_seed[row["seed"]].append(float(row[column]))
    length = min((len(series) for series in by_seed.values()), default=0)
    return [series[len(series) - length :] for series in by_seed.values()]


def number(text):
    """A sweep value as logged: an int (meta-batch size), a float (a swept setting), or text
    ("all")."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def write_summary(path: str, run_info: dict, members: list[dict]) -> None:
    """summary.json, written whole or not at all."""
    write_json(path, {**run_info, "members": members})


def format_table(members: list[dict], sweep_columns: list[str], metrics: list[str]) -> str:
    header = [*sweep_columns, "seeds", *metrics]
    lines = []
    for m in members:
        cells = [str(m[c]) for c in sweep_columns] + [str(len(m["seeds"]))]
        for metric in metrics:
            v = m.get(metric)
            cells.append(f"{v['mean']:.2f} ± {v['std']:.2f}" if v else "-")
        lines.append(cells)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    row = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
    return "\n".join([row(header), row(["-" * w for w in widths]), *map(row, lines)])
