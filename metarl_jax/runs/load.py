"""A finished (or interrupted) run read back: its record, algorithm, members and restored state."""

import dataclasses
import json
import os
from typing import Any, NamedTuple

import jax

from metarl_jax.algos.api import Algorithm, SweepMember
from metarl_jax.algos.hyper_sweep import swept_algorithm
from metarl_jax.algos.registry import AlgorithmEntry
from metarl_jax.envs import Env
from metarl_jax.io import checkpoints
from metarl_jax.io.offline import OfflineDataError
from metarl_jax.runs.record import RECORD_FILE, rebuild, record_hypers
from metarl_jax.sweep import sweep_members

CHECKPOINTS_DIR = "checkpoints"
BEST = "best"


class RunError(ValueError):
    """A run that cannot be read as asked: none there, no such checkpoint, no such member."""


class LoadedRun(NamedTuple):
    run_dir: str
    record: dict  # run.json
    entry: AlgorithmEntry
    env: Env
    config: Any  # the algorithm's config as the run trained it
    data: Any  # MACAW's offline data set, else None
    hypers: tuple[tuple[str, tuple[float, ...]], ...]  # swept settings and their values
    algorithm: Algorithm
    members: SweepMember  # stacked, in the run's member order
    rows: list[dict]  # one per member: seed, meta_batch_size, num_train_tasks, swept values
    state: Any  # stacked over the members
    iteration: int  # of the restored checkpoint


def read_record(run_dir: str) -> dict:
    path = os.path.join(run_dir, RECORD_FILE)
    if not os.path.isfile(path):
        raise RunError(f"{run_dir} holds no run (no {RECORD_FILE})")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        raise RunError(f"{path} is damaged ({error})") from None


def make_algorithm(entry: AlgorithmEntry, config, env: Env, data, hypers) -> Algorithm:
    """The run's algorithm: with swept settings, built per member from its values."""
    if not hypers:
        return entry.make(config, env, data)
    return swept_algorithm(lambda c, e: entry.make(c, e, data), config, env)


def record_members(record: dict) -> tuple[SweepMember, list[dict]]:
    """The run's members as `sweep.sweep_members` stacked them, from the record's rows."""
    rows = record["members"]
    hypers = record_hypers(record)

    def values(name):
        seen = []
        for row in rows:
            value = 0 if row[name] == "all" else row[name]
            if value not in seen:
                seen.append(value)
        return seen

    members, built = sweep_members(
        values("seed"), values("meta_batch_size"), values("num_train_tasks"), dict(hypers)
    )
    numbers = [
        {**r, "num_train_tasks": 0 if r["num_train_tasks"] == "all" else r["num_train_tasks"]}
        for r in rows
    ]
    if built != numbers:
        raise RunError(f"{RECORD_FILE}: its members are not a sweep's product")
    return members, rows


def saved_iterations(run_dir: str) -> tuple[list[int], int | None]:
    """(iterations of the latest checkpoints kept, iteration of the best one or None)."""
    directory = os.path.join(run_dir, CHECKPOINTS_DIR)
    if not os.path.isdir(directory):
        return [], None
    manager = checkpoints.checkpoint_manager(directory, writing=False)
    latest = manager.all_steps()
    manager.close()
    best = None
    if os.path.isdir(os.path.join(directory, BEST)):
        manager = checkpoints.checkpoint_manager(os.path.join(directory, BEST), writing=False)
        best = manager.latest_step()
        manager.close()
    return sorted(latest), best


def state_template(algorithm: Algorithm, members: SweepMember):
    """The stacked state's shapes and dtypes (on the first device), what a restore needs: traced,
    not run (`init` may fill replay buffers by playing episodes)."""
    shared = () if algorithm.shared_data is None else (algorithm.shared_data.arrays,)
    in_axes = (0,) + (None,) * len(shared)
    init = jax.vmap(algorithm.init, in_axes=in_axes)
    shapes = jax.eval_shape(init, members, *shared)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), shapes)


def checkpoint_to_read(run_dir: str, checkpoint) -> tuple[str, int]:
    """(checkpoint directory, iteration) of the latest checkpoint (None), an iteration, or "best";
    RunError when the run has no such checkpoint."""
    latest, best = saved_iterations(run_dir)
    directory = os.path.join(run_dir, CHECKPOINTS_DIR)
    if checkpoint == BEST:
        if best is None:
            raise RunError(f"{run_dir} has no best checkpoint ({CHECKPOINTS_DIR}/{BEST})")
        return os.path.join(directory, BEST), best
    if not latest:
        raise RunError(f"{run_dir} has no checkpoint")
    if checkpoint is None:
        return directory, latest[-1]
    if checkpoint not in latest:
        kept = ", ".join(map(str, latest))
        raise RunError(f"checkpoint {checkpoint} is not saved in {run_dir} (kept: {kept})")
    return directory, int(checkpoint)


def load_run(run_dir: str, checkpoint: int | str | None = None, config_changes=None) -> LoadedRun:
    """Read a run back: the latest checkpoint, iteration `checkpoint`, or "best".

    `config_changes` (field -> value) rebuilds the algorithm with those config fields replaced
    (evaluation settings: more adaptation steps or episodes, other tasks); the state restores
    unchanged. Sets JAX's global float32 matmul precision (`jax_default_matmul_precision`) to
    the run's, so that what the returned functions compute, whenever they are called, matches
    training (the default 'highest' is exact on every backend). Raises RunError on bad input."""
    record = read_record(run_dir)
    jax.config.update("jax_default_matmul_precision", record["matmul_precision"])
    directory, iteration = checkpoint_to_read(run_dir, checkpoint)
    try:
        entry, env, config, data = rebuild(record)
    except OfflineDataError as error:
        raise RunError(f"the run's offline data: {error}") from None
    hypers = record_hypers(record)
    members, rows = record_members(record)
    template = state_template(make_algorithm(entry, config, env, data, hypers), members)
    manager = checkpoints.checkpoint_manager(directory, writing=False)
    try:
        state = checkpoints.restore(manager, iteration, template)
    finally:
        manager.close()
    if config_changes:
        config = dataclasses.replace(config, **config_changes)
    algorithm = make_algorithm(entry, config, env, data, hypers)
    return LoadedRun(
        run_dir,
        record,
        entry,
        env,
        config,
        data,
        hypers,
        algorithm,
        members,
        rows,
        state,
        iteration,
    )


def _matches(row: dict, wanted: dict) -> bool:
    return all(
        str(row[name]) == str(value) or _same_number(row[name], value)
        for name, value in wanted.items()
    )


def _same_number(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def member_indices(rows: list[dict], wanted: dict | None) -> list[int]:
    """The members whose sweep values are those of `wanted` (name -> value; None: every one)."""
    if not wanted:
        return list(range(len(rows)))
    unknown = sorted(set(wanted) - set(rows[0]))
    if unknown:
        raise RunError(
            f"member: {', '.join(unknown)} is not a sweep value of the run ({', '.join(rows[0])})"
        )
    found = [i for i, row in enumerate(rows) if _matches(row, wanted)]
    if not found:
        described = ", ".join(f"{k}={v}" for k, v in wanted.items())
        raise RunError(f"member: no member of the run has {described}")
    return found


def member_config(run: LoadedRun, index: int):
    """The config of member `index`: the run's, with the member's swept values."""
    row = run.rows[index]
    return dataclasses.replace(run.config, **{name: float(row[name]) for name, _ in run.hypers})


def member_state(run: LoadedRun, index: int):
    return jax.tree.map(lambda leaf: leaf[index], run.state)
