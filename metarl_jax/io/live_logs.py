"""Live views of a training run, beside metrics.csv (which stays the results contract):
TensorBoard event files, one run per sweep member under `<out_dir>/tensorboard/<member>/` (so
TensorBoard overlays the seeds), and optionally one Weights & Biases run per member, grouped by
the run's name. Each logged chunk writes every metric at step = iteration, and the env steps.

On resume, TensorBoard drops the events past the checkpoint resumed from (a purge step); W&B
keeps its first values of a step, and the rerun chunks log the same values again (a resumed run
equals an uninterrupted one).
"""

import dataclasses
import hashlib
import os
import re
import time

import numpy as np

from metarl_jax.io.summary import number

TENSORBOARD_DIR = "tensorboard"
ENV_STEPS_TAG = "env_steps"


@dataclasses.dataclass(frozen=True)
class WandbOptions:
    project: str
    group: str  # the run's name
    mode: str  # online | offline | disabled


@dataclasses.dataclass(frozen=True)
class LiveLogs:
    """One TensorBoard event file and one W&B run per sweep member (none where off)."""

    member_names: tuple[str, ...]
    tensorboard: tuple = ()
    wandb: tuple = ()


def member_name(row: dict, sweep_columns) -> str:
    """A member's run name from its sweep values, e.g. `seed=0,meta_batch_size=20`."""
    return ",".join(f"{column}={row[column]}" for column in ("seed", *sweep_columns))


def flag_values(flag_lines: dict[str, str]) -> dict:
    """{flag: value} from `--name=value` texts, numbers and booleans as such (hyperparameters)."""
    return {name: _typed(text) for name, text in flag_lines.items()}


def _typed(text: str):
    return text == "true" if text in ("true", "false") else number(text)


def open_live_logs(
    out_dir: str,
    rows: list[dict],
    sweep_columns,
    hparams: dict,
    flags_text: str,
    start_iteration: int | None,
    tensorboard: bool = True,
    wandb: WandbOptions | None = None,
    hparam_metrics=("eval/return",),
) -> LiveLogs:
    """Writers for every member. `start_iteration`: None for a new run, else the checkpoint
    resumed from (what was logged past it is purged). The flags and each member's sweep values
    are written as hyperparameters when the run starts from iteration 0."""
    names = tuple(member_name(row, sweep_columns) for row in rows)
    member_hparams = [{**hparams, **{k: row[k] for k in ("seed", *sweep_columns)}} for row in rows]
    writers = ()
    if tensorboard:
        purge = None if start_iteration is None else (start_iteration + 1 if start_iteration else 0)
        writers = tuple(
            _tensorboard_writer(os.path.join(out_dir, TENSORBOARD_DIR, name), purge)
            for name in names
        )
        if not start_iteration:
            for writer, values in zip(writers, member_hparams, strict=True):
                _write_hparams(writer, values, flags_text, hparam_metrics)
    runs = ()
    if wandb is not None:
        runs = tuple(
            _wandb_run(wandb, out_dir, name, values)
            for name, values in zip(names, member_hparams, strict=True)
        )
    return LiveLogs(names, writers, runs)


def _tensorboard_writer(logdir: str, purge_step: int | None):
    """An event file written synchronously (tensorboardX's `SummaryWriter` queues events for a
    thread, and a kill loses what its flush has not reached). A nanosecond suffix: two sessions
    in the same second write two files, in time order."""
    from tensorboardX.event_file_writer import EventsWriter
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    os.makedirs(logdir, exist_ok=True)
    writer = EventsWriter(os.path.join(logdir, "events"), f".{time.time_ns()}")
    if purge_step is not None:
        start = SessionLog(status=SessionLog.START)
        writer.write_event(Event(wall_time=time.time(), step=purge_step, session_log=start))
    writer.flush()
    return writer


def _write_summaries(writer, step: int, summaries) -> None:
    from tensorboardX.proto.event_pb2 import Event

    for summary in summaries:
        writer.write_event(Event(wall_time=time.time(), step=step, summary=summary))
    writer.flush()


def _write_hparams(writer, values: dict, flags_text: str, metric_names) -> None:
    from tensorboardX.summary import hparams, text

    # TensorBoard's text tab renders markdown: indented lines show as they are.
    flags = text("flags", "".join(f"    {line}\n" for line in flags_text.splitlines()))
    _write_summaries(writer, 0, [*hparams(values, dict.fromkeys(metric_names, 0.0)), flags])


def _scalars(values: dict):
    from tensorboardX.proto.summary_pb2 import Summary

    return Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in values.items()])


def _wandb_run(options: WandbOptions, out_dir: str, name: str, config: dict):
    import wandb

    return wandb.init(
        project=options.project,
        group=options.group,
        name=name,
        id=wandb_id(out_dir, name),
        resume="allow",
        dir=out_dir,
        mode=options.mode,
        config=config,
        reinit="create_new",
    )


def wandb_id(out_dir: str, name: str) -> str:
    """The same id for a member of the same run directory: a resumed run continues its runs."""
    digest = hashlib.sha1(f"{os.path.abspath(out_dir)}|{name}".encode()).hexdigest()[:12]
    return f"{re.sub(r'[^A-Za-z0-9_-]', '-', name)[:50]}-{digest}"


def log_chunk(logs: LiveLogs, iteration: int, env_steps, metrics: dict) -> None:
    """Every member's metrics of a chunk (`metrics`: name -> value per member) at its
    iteration, and its env steps."""
    env_steps = np.asarray(env_steps)
    for i, _ in enumerate(logs.member_names):
        values = {name: float(np.asarray(v)[i]) for name, v in metrics.items()}
        values[ENV_STEPS_TAG] = int(env_steps[i])
        if logs.tensorboard:
            _write_summaries(logs.tensorboard[i], iteration, [_scalars(values)])
        if logs.wandb:
            logs.wandb[i].log(values, step=iteration)


def close_live_logs(logs: LiveLogs) -> None:
    for writer in logs.tensorboard:
        writer.close()
    for run in logs.wandb:
        run.finish()
