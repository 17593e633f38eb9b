"""The seed paper's Figure 1: MAML-TRPO, MAML-PPO, RL² and PEARL on Cheetah-Direction, the return
after adaptation (averaged over both directions) against environment steps, in one panel with the
reference levels, and a table of final returns per direction with 95 % confidence intervals and
each run's convergence verdict.

    python -m experiments.figure1 --preset=cpu    # experiments/flags/cpu/*_cheetah_dir.flags
    python -m experiments.figure1 --preset=gpu    # the seed's budgets (flags/*_cheetah_dir.flags)
    python -m experiments.figure1 --preset=cpu --only=maml_trpo,pearl --out_dir=runs/fig1

Each run is `python -m experiments.main --flagfile=...` in its own process, into
<out_dir>/<algo>; its progress lines are relayed. A finished run (summary.json) is kept and a
half-finished one resumed, so an interrupted figure continues when started again with the same
--out_dir. Then <out_dir>/figure1.png, table.md and table.csv are written from the runs' files.

Figure 2 (MACAW from offline data) is not run here: it needs a 5e6-transition SAC data set per
task (`experiments.make_offline_data`), a GPU job; `--preset=gpu` says so with the command.
"""

import csv
import datetime
import json
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from absl import flags

from experiments.app_plumbing import UsageError, check_no_file_in_the_way, run_app
from experiments.flags_file import read_flags_file
from experiments.run_processes import run_state, stream_process, subprocess_env
from metarl_jax.baselines.levels import SEED_CHEETAH_DIR, SEED_HORIZON
from metarl_jax.io.metrics import read_rows
from metarl_jax.io.plots import draw_levels, group_over_seeds
from metarl_jax.io.report_stats import confidence_interval

FLAGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flags")
ALGORITHMS = ("maml_trpo", "maml_ppo", "rl2", "pearl")  # the seed's Figure 1
SEED_NAME = {"maml_trpo": "seed_maml_trpo", "maml_ppo": "seed_maml_ppo", "rl2": "seed_rl2_ppo"}
SEED_NAME["pearl"] = "seed_pearl"
PRESET_DIRS = {"cpu": os.path.join(FLAGS_DIR, "cpu"), "gpu": FLAGS_DIR}

flags.DEFINE_enum("preset", "cpu", list(PRESET_DIRS), "cpu (hours on 2 cores) or gpu (the seed's).")
flags.DEFINE_string("out_dir", None, "Figure directory (default: runs/figure1_<preset>_<time>).")
flags.DEFINE_list("only", [], f"Run only these algorithms, of {list(ALGORITHMS)}.")
flags.DEFINE_bool("dry_run", False, "Print the plan (runs and their state); run nothing.")
FLAGS = flags.FLAGS

DIRECTIONS = ("eval/return_dir_forward", "eval/return_dir_backward")
# The return before adaptation: MAML's before its first gradient step, RL²'s and PEARL's first
# episode of a trial (PEARL's from its prior).
BEFORE_ADAPTATION = ("eval/return_step0", "eval/return_episode0")


def flagfile_of(algo: str, preset: str) -> str:
    return os.path.join(PRESET_DIRS[preset], f"{algo}_cheetah_dir.flags")


def _planned(out_dir: str) -> list[tuple[str, str, bool, bool]]:
    """(algo, run_dir, finished, started) of each selected algorithm."""
    unknown = sorted(set(FLAGS.only) - set(ALGORITHMS))
    if unknown:
        raise UsageError(f"--only: {unknown} not among {list(ALGORITHMS)}")
    chosen = [a for a in ALGORITHMS if not FLAGS.only or a in FLAGS.only]
    return [(a, os.path.join(out_dir, a), *run_state(os.path.join(out_dir, a))) for a in chosen]


def _train(planned, env) -> None:
    for i, (algo, run_dir, finished, started) in enumerate(planned, 1):
        if finished:
            print(f"[{i}/{len(planned)}] {algo}: finished earlier, kept", flush=True)
            continue
        command = [
            sys.executable,
            "-m",
            "experiments.main",
            f"--flagfile={flagfile_of(algo, FLAGS.preset)}",
            f"--out_dir={run_dir}",
            *(("--resume",) if started else ()),
        ]
        print(f"[{i}/{len(planned)}] {algo} -> {run_dir}", flush=True)
        began = time.perf_counter()
        returncode = stream_process(command, env, prefix=f"  {algo}: ")
        if returncode != 0:
            raise RunFailed(f"{algo} failed (exit {returncode}); rerun to resume it")
        print(f"  {algo}: {time.perf_counter() - began:.0f} s", flush=True)


class RunFailed(Exception):
    pass


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
    return {
        "algo": summary["algo"],
        "rows": rows,
        "levels": summary["levels"].get("eval"),
        "final": intervals,
        "before": before,
        "env_steps": int(final[0]["env_steps"]),
        "converged": member.get("convergence", {}).get("converged"),
        "horizon": _horizon(run_dir),
    }


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
        lines.append(f"- {algo}: {verdict}; {_verdict(r['converged'])}.")
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
    ]
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write("\n".join(markdown))
    print("\n".join(markdown[6:]))


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    out_dir = FLAGS.out_dir or os.path.join(
        "runs", f"figure1_{FLAGS.preset}_{datetime.datetime.now():%Y%m%d-%H%M%S}"
    )
    check_no_file_in_the_way("out_dir", out_dir)
    planned = _planned(out_dir)
    for algo, *_ in planned:
        if not os.path.exists(flagfile_of(algo, FLAGS.preset)):
            raise UsageError(f"--preset: no flag file {flagfile_of(algo, FLAGS.preset)}")
    print(f"figure 1 ({FLAGS.preset}): {len(planned)} runs into {out_dir}", flush=True)
    if FLAGS.dry_run:
        for algo, run_dir, finished, started in planned:
            state = "done" if finished else "resume" if started else "to run"
            print(f"  {algo}: {flagfile_of(algo, FLAGS.preset)} -> {run_dir} [{state}]")
        return 0
    os.makedirs(out_dir, exist_ok=True)
    if FLAGS.preset == "gpu":
        print(
            "Figure 2 (MACAW, offline) is separate: make its data set with "
            "`python -m experiments.make_offline_data --env=cheetah_dir ...`, then "
            "`python -m experiments.main --flagfile=experiments/flags/macaw_cheetah_dir.flags`",
            flush=True,
        )
    try:
        _train(planned, subprocess_env(out_dir))
    except RunFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    results = {algo: run_results(run_dir) for algo, run_dir, *_ in planned}
    write_outputs(results, out_dir)
    print(f"\nfigure, table.md and table.csv in {out_dir}")
    return 0


def entry_point():
    run_app(main)


if __name__ == "__main__":
    entry_point()
