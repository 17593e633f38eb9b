"""Train a meta-RL algorithm over a whole sweep in one compiled call, and leave the results behind.

    python -m experiments.main                                   # the quickstart flag file
    python -m experiments.main --flagfile=experiments/flags/maml_trpo_nav.flags
    python -m experiments.main --flagfile=RUN/flags.txt --out_dir=RUN --resume

Outputs in --out_dir: flags.txt, run.json, metrics.csv, checkpoints/ (the latest few and best/),
tensorboard/ (live logs), plots/*.png, summary.json. Every file is written whole or not at all, so
a run killed at any moment continues with --resume from its last complete checkpoint.
"""

import dataclasses
import datetime
import os
import sys
import time

import jax
import numpy as np

from experiments import cli
from experiments.app_plumbing import UsageError, expected_wall_time_line, run_app, run_seconds
from experiments.flags_file import parse_flag_lines
from experiments.run_levels import evaluation_levels
from metarl_jax.algos.registry import algorithm_entry
from metarl_jax.baselines.levels import (
    headline_metric,
    level_span,
    levels_framing,
)
from metarl_jax.io import checkpoints, live_logs, metrics, plots, summary
from metarl_jax.io.atomic_files import replace_file, write_json
from metarl_jax.runs import RECORD_FILE, run_record
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


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """What one session of a run writes to, beside its checkpoints."""

    out_dir: str
    rows: list  # one dict of sweep values per member
    sweep_columns: list
    writer: bool  # process 0 (on several processes all checkpoint; one writes the rest)
    provenance: dict  # every checkpoint's and summary.json's
    headline: str  # the evaluation metric the best checkpoint is chosen by

    @property
    def metrics_path(self) -> str:
        return os.path.join(self.out_dir, "metrics.csv")

    @property
    def checkpoint_dir(self) -> str:
        return os.path.join(self.out_dir, "checkpoints")

    def say(self, *args) -> None:
        if self.writer:
            print(*args, flush=True)


def _start_files(spec: cli.RunSpec, out_dir: str, rows: list) -> RunFiles:
    """flags.txt and run.json (first, so that a run killed at any point later can resume), and
    the provenance every checkpoint carries."""
    flags_text = cli.flags_file_text()  # on resume: records the new --num_iterations
    record = run_record(
        spec.algo,
        cli.env_options(),
        spec.config,
        rows,
        spec.hypers,
        spec.sweep_columns,
        FLAGS.offline_data,
        FLAGS.matmul_precision,
        flags_text,
    )
    files = RunFiles(
        out_dir=out_dir,
        rows=rows,
        sweep_columns=list(spec.sweep_columns),
        writer=jax.process_index() == 0,
        provenance={**checkpoints.provenance(), "flags": flags_text, "run": record},
        headline=f"eval/{headline_metric(spec.env.name)}",
    )
    if files.writer:
        replace_file(os.path.join(out_dir, "flags.txt"), flags_text)
        write_json(os.path.join(out_dir, RECORD_FILE), record)
    return files


def _resume_point(files: RunFiles, manager, algorithm, members, resume: bool):
    """(state, iteration) of the last complete checkpoint; (None, 0) for a new run. Rows
    logged past it are dropped."""
    if not resume:
        return None, 0
    start_iteration = manager.latest_step() or 0
    state = None
    if start_iteration:
        state = checkpoints.restore(manager, start_iteration, init_states(algorithm, members))
    if files.writer:
        metrics.truncate_after(files.metrics_path, start_iteration)
    files.say(f"resuming {files.out_dir} from iteration {start_iteration}")
    return state, start_iteration


def _open_live_logs(files: RunFiles, start_iteration, resume: bool):
    wandb = None
    if FLAGS.wandb:
        wandb = live_logs.WandbOptions(FLAGS.wandb_project, FLAGS.name, FLAGS.wandb_mode)
    return live_logs.open_live_logs(
        files.out_dir,
        files.rows if files.writer else [],
        files.sweep_columns,
        live_logs.flag_values(parse_flag_lines(files.provenance["flags"].splitlines())),
        files.provenance["flags"],
        start_iteration if resume else None,
        tensorboard=FLAGS.tensorboard,
        wandb=wandb,
        hparam_metrics=(files.headline,),
    )


def _save_chunk(files: RunFiles, result, manager, best):
    """The chunk's checkpoint, after the best one where it improves on it (so that a kill
    between the two leaves a best no older than the latest); returns the best so far."""
    value = checkpoints.headline_value(result.eval_metrics, files.headline)
    if checkpoints.improves(value, best):
        best = {"metric": files.headline, "value": value, "iteration": result.iteration}
        best_metadata = checkpoints.checkpoint_metadata(
            result.iteration, result.env_steps, files.provenance
        )
        checkpoints.save_best(
            files.checkpoint_dir, result.iteration, result.state, {**best_metadata, "best": best}
        )
    metadata = checkpoints.checkpoint_metadata(result.iteration, result.env_steps, files.provenance)
    checkpoints.save(manager, result.iteration, result.state, metadata)
    return best


def run(spec: cli.RunSpec, out_dir: str, resume: bool) -> dict:
    run_started = time.perf_counter()
    algorithm = cli.make_algorithm(spec)
    members, rows = sweep_members(
        spec.seeds, spec.meta_batch_sizes, spec.num_train_tasks, dict(spec.hypers)
    )
    for row in rows:
        if row["num_train_tasks"] == 0:
            row["num_train_tasks"] = "all"
    files = _start_files(spec, out_dir, rows)
    manager = checkpoints.checkpoint_manager(files.checkpoint_dir)
    state, start_iteration = _resume_point(files, manager, algorithm, members, resume)
    best = checkpoints.best_so_far(files.checkpoint_dir)
    files.say(
        f"{len(rows)} sweep members ({', '.join(['seed', *files.sweep_columns])}) in one compiled "
        f"call; {spec.num_iterations} iterations in chunks of {spec.log_every}{_memory_note(spec)}"
    )
    if spec.physics:
        files.say(f"physics: {spec.physics}")
    logs = _open_live_logs(files, start_iteration, resume)
    try:
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
            if files.writer:
                _append_metrics(files.metrics_path, result, rows, files.sweep_columns)
                live_logs.log_chunk(
                    logs,
                    result.iteration,
                    result.env_steps,
                    {**result.train_metrics, **result.eval_metrics},
                )
            saving = time.perf_counter()
            best = _save_chunk(files, result, manager, best)
            if last_saved == start_iteration:
                _say_expected_wall_time(files, spec, result, run_started, saving, last_saved)
            files.say(_progress_line(result, spec.num_iterations, result.iteration - last_saved))
            last_saved = result.iteration
            if FLAGS.first_chunk_only:
                files.say(f"stopped after the first chunk; --resume continues in {out_dir}")
                return {}
    finally:
        live_logs.close_live_logs(logs)
    if not files.writer:
        return {}
    return _finish(spec, files, algorithm, best, time.perf_counter() - started)


def _say_expected_wall_time(files, spec, result, run_started, saving, last_saved) -> None:
    per_iteration = (run_seconds(result) + time.perf_counter() - saving) / (
        result.iteration - last_saved
    )
    files.say(
        expected_wall_time_line(
            time.perf_counter() - run_started,
            per_iteration,
            spec.num_iterations - result.iteration,
            result.compile_seconds,
        )
    )


def _finish(spec: cli.RunSpec, files: RunFiles, algorithm, best, wall_seconds) -> dict:
    """Plots, summary.json and the closing table."""
    out_dir, sweep_columns = files.out_dir, files.sweep_columns
    all_rows = metrics.read_rows(files.metrics_path)
    levels = evaluation_levels(algorithm, spec.env, spec.config.eval_seed)
    plot_paths = plots.write_plots(out_dir, all_rows, sweep_columns, levels)
    span = level_span(levels_framing(levels, files.headline))
    finals = summary.final_by_member(all_rows, sweep_columns, files.headline, span)
    run_info = {
        "algo": spec.algo,
        "env": spec.env.name,
        "experiment": spec.experiment,
        "train_tasks": spec.train_tasks,
        "eval_tasks": spec.eval_tasks,
        "iterations": spec.num_iterations,
        "num_members": len(files.rows),
        "wall_seconds_this_session": round(wall_seconds, 2),
        "plots": [os.path.relpath(p, out_dir) for p in plot_paths],
        "levels": levels,
        "best_checkpoint": best,
        "provenance": {**files.provenance, "utc_time": checkpoints.utc_now()},
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
    cli.check_live_log_flags()
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
