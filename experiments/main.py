"""Train a meta-RL algorithm over a whole sweep in one compiled call, and leave the results behind.

    python -m experiments.main                                   # the quickstart flag file
    python -m experiments.main --flagfile=experiments/flags/maml_trpo_nav.flags
    python -m experiments.main --flagfile=RUN/flags.txt --out_dir=RUN --resume

Outputs in --out_dir: flags.txt, metrics.csv, checkpoints/, plots/*.png, summary.json.
"""

import datetime
import os
import sys
import time

import jax
import numpy as np

from experiments import cli
from experiments.app_plumbing import UsageError, expected_wall_time_line, run_app, run_seconds
from experiments.study_design import seed_reported_levels
from metarl_jax.algos.meta_training import evaluation_keys
from metarl_jax.algos.registry import algorithm_entry
from metarl_jax.baselines.levels import (
    headline_metric,
    level_span,
    levels_framing,
    reference_levels,
)
from metarl_jax.io import checkpoints, metrics, plots, summary
from metarl_jax.sweep import init_states, initialize_distributed, sweep_members, train

FLAGS = cli.FLAGS
cli.flags.DEFINE_bool(
    "first_chunk_only",
    False,
    "Stop after the first chunk (checkpointed; --resume continues) once the expected wall time "
    "is printed: how experiments.study predicts a preset's total. Not a setting of the run.",
)
FLAGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flags")
DEFAULT_FLAGFILE = os.path.join(FLAGS_DIR, "quickstart.flags")


class RunError(Exception):
    pass


def _progress_line(result, num_iterations, chunk_iterations):
    """Rates and ETA from the latest chunk's run time (its compile time left out)."""
    chunk_steps = float(np.sum(result.env_steps)) * chunk_iterations / result.iteration
    eta = run_seconds(result) / chunk_iterations * (num_iterations - result.iteration)
    logged = {**result.train_metrics, **result.eval_metrics}
    shown = {name: logged[name] for name in metrics.headline_metrics(logged)}
    values = " | ".join(f"{k} {float(np.mean(v)):.2f}" for k, v in shown.items())
    return (
        f"iter {result.iteration}/{num_iterations} | env steps {int(result.env_steps.max()):,} "
        f"per member | {values} | {_rate(chunk_steps, chunk_iterations, run_seconds(result))} | "
        f"ETA {datetime.timedelta(seconds=round(eta))}"
    )


def _rate(chunk_steps, chunk_iterations, seconds) -> str:
    if chunk_steps:
        return f"{chunk_steps / seconds:,.0f} env steps/s (all members)"
    return f"{chunk_iterations / seconds:,.1f} iterations/s (offline: no env steps)"


def _check_finite(result, algorithm, rows, last_saved):
    for name in algorithm.loss_metrics:
        values = np.asarray(result.train_metrics[name])
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            member = rows[bad[0]]
            kept = f"iteration {last_saved}" if last_saved else "none written yet"
            raise RunError(
                f"non-finite {name} ({values[bad[0]]}) within iterations up to {result.iteration} "
                f"for member {member}; stopping. Last good checkpoint: {kept}."
            )


def _memory_note(spec: cli.RunSpec) -> str:
    member_bytes = algorithm_entry(spec.algo).member_memory_bytes
    if member_bytes is None:
        return ""
    gib = spec.num_members * member_bytes(spec.config, spec.env) / 2**30
    return (
        f"; replay buffers {gib:.2f} GiB on the device(s) ({spec.config.num_task_slots} tasks x "
        f"{spec.config.replay_capacity:,} transitions per member)"
    )


def _plan(spec: cli.RunSpec, out_dir: str) -> str:
    tasks = ",".join(str(k or "all") for k in spec.num_train_tasks)
    swept = "".join(f" x {name} {list(values)}" for name, values in spec.hypers)
    return (
        f"dry run: {spec.algo} on {spec.env.name} (experiment {spec.experiment or '-'}), "
        f"{spec.num_members} members = seeds {list(spec.seeds)} x meta-batch "
        f"{list(spec.meta_batch_sizes)} x training tasks [{tasks}]{swept}; "
        f"train {spec.train_tasks}, eval {spec.eval_tasks}; {spec.num_iterations} iterations; "
        f"out_dir {out_dir}"
        f"{_memory_note(spec)}"
    )


def _append_metrics(metrics_path, result, rows, sweep_columns):
    logged = {**result.train_metrics, **result.eval_metrics}
    if not os.path.exists(metrics_path):
        columns = metrics.csv_columns(sweep_columns, logged)
    else:
        with open(metrics_path) as f:
            columns = f.readline().strip().split(",")
    metrics.append_rows(
        metrics_path,
        columns,
        metrics.member_rows(result.iteration, result.env_steps, rows, sweep_columns, logged),
    )


def evaluation_levels(algorithm, env) -> dict:
    """{metric prefix: reference level set (`baselines.levels`)} on the tasks and data key of the
    run's evaluations; the level set's metric gets the prefix (eval/return, ...)."""
    if algorithm.evaluation_tasks is None:
        return {}
    _, data_key = evaluation_keys()
    levels = {}
    for prefix, tasks in algorithm.evaluation_tasks().items():
        seed = seed_reported_levels(env.name, env.horizon)
        found = reference_levels(env, tasks, data_key, algorithm.evaluation_steps, seed)
        if found:
            levels[prefix] = {**found, "metric": f"{prefix}/{found['metric']}"}
    return levels


def run(spec: cli.RunSpec, out_dir: str, resume: bool) -> dict:
    run_started = time.perf_counter()
    algorithm = cli.make_algorithm(spec)
    members, rows = sweep_members(
        spec.seeds, spec.meta_batch_sizes, spec.num_train_tasks, dict(spec.hypers)
    )
    sweep_columns = list(spec.sweep_columns)
    for row in rows:
        if row["num_train_tasks"] == 0:
            row["num_train_tasks"] = "all"
    metrics_path = os.path.join(out_dir, "metrics.csv")
    # On several processes (--distributed) all of them train and checkpoint (orbax coordinates
    # them); process 0 alone writes the other files and prints.
    writer = jax.process_index() == 0
    say = print if writer else (lambda *args, **kwargs: None)
    manager = checkpoints.checkpoint_manager(os.path.join(out_dir, "checkpoints"))
    state, start_iteration = None, 0
    if resume:
        start_iteration = manager.latest_step() or 0
        if start_iteration:
            state = checkpoints.restore(manager, start_iteration, init_states(algorithm, members))
        if writer:
            metrics.truncate_after(metrics_path, start_iteration)
        say(f"resuming {out_dir} from iteration {start_iteration}", flush=True)
    if writer:
        with open(os.path.join(out_dir, "flags.txt"), "w") as f:
            f.write(cli.flags_file_text())  # on resume: records the new --num_iterations
    say(
        f"{len(rows)} sweep members ({', '.join(['seed', *sweep_columns])}) in one compiled call; "
        f"{spec.num_iterations} iterations in chunks of {spec.log_every}{_memory_note(spec)}",
        flush=True,
    )
    if spec.physics:
        say(f"physics: {spec.physics}", flush=True)

    started = time.perf_counter()
    last_saved = start_iteration
    for result in train(
        algorithm,
        members,
        spec.num_iterations,
        spec.log_every,
        state,
        start_iteration,
        layout=spec.sweep_layout,
    ):
        _check_finite(result, algorithm, rows, last_saved)
        if writer:
            _append_metrics(metrics_path, result, rows, sweep_columns)
        saving = time.perf_counter()
        checkpoints.save(manager, result.iteration, result.state)
        chunk_iterations = result.iteration - last_saved
        if last_saved == start_iteration:
            per_iteration = (run_seconds(result) + time.perf_counter() - saving) / chunk_iterations
            say(
                expected_wall_time_line(
                    time.perf_counter() - run_started,
                    per_iteration,
                    spec.num_iterations - result.iteration,
                    result.compile_seconds,
                ),
                flush=True,
            )
        last_saved = result.iteration
        say(_progress_line(result, spec.num_iterations, chunk_iterations), flush=True)
        if FLAGS.first_chunk_only:
            say(f"stopped after the first chunk; --resume continues in {out_dir}", flush=True)
            return {}
    wall_seconds = time.perf_counter() - started
    if not writer:
        return {}

    all_rows = metrics.read_rows(metrics_path)
    levels = evaluation_levels(algorithm, spec.env)
    plot_paths = plots.write_plots(out_dir, all_rows, sweep_columns, levels)
    headline = f"eval/{headline_metric(spec.env.name)}"
    span = level_span(levels_framing(levels, headline))
    finals = summary.final_by_member(all_rows, sweep_columns, headline, span)
    run_info = {
        "algo": spec.algo,
        "env": spec.env.name,
        "experiment": spec.experiment,
        "train_tasks": spec.train_tasks,
        "eval_tasks": spec.eval_tasks,
        "iterations": spec.num_iterations,
        "num_members": len(rows),
        "wall_seconds_this_session": round(wall_seconds, 2),
        "plots": [os.path.relpath(p, out_dir) for p in plot_paths],
        "levels": levels,
    }
    summary.write_summary(os.path.join(out_dir, "summary.json"), run_info, finals)
    print(f"\nfinal iteration {spec.num_iterations} (mean ± std over seeds):")
    print(summary.format_table(finals, sweep_columns, metrics.headline_metrics(all_rows[0])))
    print(f"\nresults in {out_dir}", flush=True)
    return {"finals": finals, "run_info": run_info}


def main(argv):
    """Exit code 0; 2 for bad input (a UsageError, printed by `run_app`), 1 if the run fails."""
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.distributed:
        initialize_distributed()  # before anything touches a device
    spec = cli.spec_from_flags()
    out_dir = FLAGS.out_dir or os.path.join(
        "runs", f"{FLAGS.name}_{datetime.datetime.now():%Y%m%d-%H%M%S}"
    )
    cli.check_out_dir(out_dir, FLAGS.resume)
    if FLAGS.dry_run:
        print(_plan(spec, out_dir))
        return 0
    cli.apply_matmul_precision()
    os.makedirs(out_dir, exist_ok=True)
    try:
        run(spec, out_dir, FLAGS.resume)
    except RunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def entry_point():
    if len(sys.argv) == 1:
        sys.argv.append(f"--flagfile={DEFAULT_FLAGFILE}")
    run_app(main)


if __name__ == "__main__":
    entry_point()
