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

import datetime
import os
import sys
import time

from absl import flags

from experiments.app_plumbing import UsageError, check_no_file_in_the_way, run_app
from experiments.report.figure1 import ALGORITHMS, run_results, write_outputs
from experiments.run_processes import run_state, stream_process, subprocess_env

FLAGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flags")
PRESET_DIRS = {"cpu": os.path.join(FLAGS_DIR, "cpu"), "gpu": FLAGS_DIR}

flags.DEFINE_enum("preset", "cpu", list(PRESET_DIRS), "cpu (hours on 2 cores) or gpu (the seed's).")
flags.DEFINE_string("out_dir", None, "Figure directory (default: runs/figure1_<preset>_<time>).")
flags.DEFINE_list("only", [], f"Run only these algorithms, of {list(ALGORITHMS)}.")
flags.DEFINE_bool("dry_run", False, "Print the plan (runs and their state); run nothing.")
FLAGS = flags.FLAGS


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
