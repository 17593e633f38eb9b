"""The seed's Figure 1 from finished Cheetah-Direction runs: the figure (return after adaptation,
both directions averaged, against env steps, with the levels), the table of final returns per
direction with 95 % confidence intervals and convergence, and a reading from the numbers.
`experiments.figure1` trains the runs and calls `write_outputs`."""

import csv
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments.flags_file import read_flags_file
from experiments.study_design import SEED_CHEETAH_DIR, SEED_HORIZON
from metarl_jax.io.metrics import read_rows
from metarl_jax.io.plots import draw_levels, group_over_seeds
from metarl_jax.io.report_stats import PLATEAU_TEST, confidence_interval

ALGORITHMS = ("maml_trpo", "maml_ppo", "rl2", "pearl")  # the seed's Figure 1
SEED_NAME = {
    "maml_trpo": "seed_maml_trpo",
    "maml_ppo": "seed_maml_ppo",
    "rl2": "seed_rl2_ppo",
    "pearl": "seed_pearl",
}
DIRECTIONS = ("eval/return_dir_forward", "eval/return_dir_backward")
# The return before adaptation: MAML's before its first gradient step, RL²'s and PEARL's first
# episode of a trial (PEARL's from its prior).
BEFORE_ADAPTATION = ("eval/return_step0", "eval/return_episode0")


def run_results(run_dir: str) -> dict:
    """What the figure and the table take from one finished run."""
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    rows = read_rows(os.path.join(run_dir, "metrics.csv"))
    last = max(int(r["iteration"]) for r in rows)
    final = [r for r in rows if int(r["iteration"]) == last]
    columns = rows[0].keys()
    before = next((c for c in BEFORE_ADAPTATION if c in columns), None)
    intervals = {
        name: confidence_interval(float(r[name]) for r in final)
        for name in ("eval/return", *DIRECTIONS, *((before,) if before else ()))
        if name in columns
    }
    member = summary["members"][0]
    horizon = _horizon(run_dir)
    return {
        "algo": summary["algo"],
        "rows": rows,
        "levels": summary["levels"].get("eval"),
        "final": intervals,
        "before": before,
        "env_steps": int(final[0]["env_steps"]),
        "converged": member.get("convergence", {}).get("converged"),
        "declined": declined(rows, intervals["eval/return"]),
        "horizon": horizon,
    }


DECLINE_TEST = (
    "a run declined when the final seed-mean of eval/return is below the best seed-mean of the "
    "second half of its logged evaluations by more than the final value's 95 % CI half-width "
    "(with one seed: by anything)"
)


def declined(rows: list[dict], final) -> bool:
    (_, values), *_ = group_over_seeds(rows, [], "eval/return").values()
    means = values.mean(axis=0)
    best = means[len(means) // 2 :].max()
    return bool(means[-1] < best - (final.half_width or 0.0))


def _horizon(run_dir: str) -> int:
    """The run's horizon (0 in flags.txt: the env's default, Cheetah-Dir's 200 as the seed's)."""
    saved = read_flags_file(os.path.join(run_dir, "flags.txt"))
    return int(saved.get("horizon", 0)) or SEED_HORIZON


def _ci(interval) -> str:
    if interval is None:
        return "-"
    if not interval.has_interval:
        return f"{interval.mean:.1f}"
    return f"{interval.mean:.1f} ± {interval.half_width:.1f}"


def _verdict(converged) -> str:
    return {True: "plateau", False: "still changing", None: "cannot tell"}[converged]


def plot_figure(results: dict, path: str) -> None:
    """The return after adaptation against env steps: one line per algorithm (mean over seeds,
    95 % CI band), the levels of the first run (all share the env, horizon and tasks)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, (algo, result) in enumerate(results.items()):
        (steps, values), *_ = group_over_seeds(result["rows"], [], "eval/return").values()
        bands = [confidence_interval(values[:, j]) for j in range(values.shape[1])]
        mean = values.mean(axis=0)
        ax.plot(steps, mean, color=f"C{i}", marker=".", label=f"{algo} ({values.shape[0]} seeds)")
        if all(b.has_interval for b in bands):
            ax.fill_between(
                steps, [b.low for b in bands], [b.high for b in bands], color=f"C{i}", alpha=0.2
            )
    first = next(iter(results.values()))
    draw_levels(ax, first["levels"])
    ax.set_xscale("log")
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel("return after adaptation, mean of both directions")
    horizon = first["horizon"]
    ax.set_title(f"Cheetah-Direction, horizon {horizon}: the seed's Figure 1", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


TABLE_COLUMNS = (
    "algorithm",
    "env steps per seed",
    "after adaptation (both directions)",
    "forward",
    "backward",
    "before adaptation",
    "convergence",
    "seed paper (horizon 200)",
)


def table_rows(results: dict) -> list[list[str]]:
    rows = []
    for algo, r in results.items():
        seed = SEED_CHEETAH_DIR.get(SEED_NAME[algo])
        rows.append(
            [
                algo,
                f"{r['env_steps']:.2e}",
                _ci(r["final"].get("eval/return")),
                _ci(r["final"].get(DIRECTIONS[0])),
                _ci(r["final"].get(DIRECTIONS[1])),
                _ci(r["final"].get(r["before"])) if r["before"] else "-",
                _verdict(r["converged"]),
                f"{seed:,.0f}" if seed else "-",
            ]
        )
    return rows


def reading(results: dict) -> list[str]:
    """What the numbers support: inference shown or not per algorithm, and the ordering."""
    lines = []
    for algo, r in results.items():
        average = r["final"].get("eval/return")
        sides = [r["final"].get(d) for d in DIRECTIONS]
        if average is None or not average.has_interval:
            lines.append(f"- {algo}: one seed, no interval: cannot tell whether it inferred.")
            continue
        shown = average.low > 0 and all(s is not None and s.mean > 0 for s in sides)
        verdict = (
            "infers the direction (95 % CI of the direction average above 0, both directions "
            "positive)"
            if shown
            else "does not show inference (the direction average's CI reaches 0 or one "
            "direction is not positive)"
        )
        decline = (
            "declined over its last half" if r["declined"] else "no decline over its last half"
        )
        lines.append(f"- {algo}: {verdict}; {_verdict(r['converged'])}; {decline}.")
    ranked = sorted(results, key=lambda a: results[a]["final"]["eval/return"].mean, reverse=True)
    seed_order = sorted(
        results, key=lambda a: SEED_CHEETAH_DIR.get(SEED_NAME[a], 0.0), reverse=True
    )
    same = "the same as" if ranked == seed_order else "not"
    lines.append(
        f"- Order of the final means: {' > '.join(ranked)}; the seed paper's: "
        f"{' > '.join(seed_order)} ({same} the seed's order; ties within CIs are not resolved "
        "by this table)."
    )
    if any(r["horizon"] != SEED_HORIZON for r in results.values()):
        lines.append(
            f"- These runs use a horizon other than the seed's {SEED_HORIZON}: the seed's values "
            "are beside them for order, not for scale."
        )
    return lines


def write_outputs(results: dict, out_dir: str) -> None:
    plot_figure(results, os.path.join(out_dir, "figure1.png"))
    rows = table_rows(results)
    with open(os.path.join(out_dir, "table.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_COLUMNS)
        writer.writerows(rows)
    first = next(iter(results.values()))
    levels = first["levels"] or {"values": {}}
    level_text = ", ".join(f"{k} {v:.1f}" for k, v in levels["values"].items())
    markdown = [
        "# Figure 1: Cheetah-Direction",
        "",
        "![figure](figure1.png)",
        "",
        "Final evaluation (mean ± 95 % CI over seeds; evaluations play both directions equally):",
        "",
        "| " + " | ".join(TABLE_COLUMNS) + " |",
        "|" + " --- |" * len(TABLE_COLUMNS),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        f"Levels on these evaluation tasks: {level_text}.",
        "",
        *reading(results),
        "",
        "Before adaptation: MAML's return before its gradient step and PEARL's first episode "
        "(z from the prior) cannot know the direction; RL²'s first episode can, since its "
        "recurrent state reads every reward from the first step on.",
        "",
        f"Convergence: {PLATEAU_TEST}. Decline: {DECLINE_TEST}.",
        "",
    ]
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write("\n".join(markdown))
    print("\n".join(markdown[6:]))
