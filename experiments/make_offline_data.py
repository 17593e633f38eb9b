"""Generate an offline meta-RL data set (MACAW's): a learning behaviour agent's data on each task.

    python -m experiments.make_offline_data --env=bandit --num_arms=5 --steps_per_task=1000 \
        --out_dir=data/bandit
    python -m experiments.make_offline_data --env=cheetah_dir --num_train_tasks=2 \
        --num_test_tasks=2 --out_dir=data/cheetah_dir          # add --resume after a stop

Training tasks are a pool of --num_train_tasks drawn from --train_tasks with --task_pool_seed,
test tasks a pool of --num_test_tasks from --test_tasks with --task_pool_seed + 1. The behaviour is
one SAC agent per task (continuous control; every task vmapped in one compiled chunk of
--chunk_iterations iterations) or Thompson sampling (bandits). Between chunks the state is saved
in DIR/partial/ (continue with --resume and the same flags); DIR/offline_data.npz and
DIR/metadata.json (the format of `metarl_jax.io.offline`) replace it at the end.
"""

import dataclasses
import datetime
import json
import math
import os
import shutil
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from metarl_jax.algos.offline_data import (
    SacAgentConfig,
    bandit_data_per_task,
    nominal_iterations,
    sac_data_arrays,
    sac_data_chunks,
    sac_data_init,
    transitions_per_task,
)
from metarl_jax.envs import ENV_NAMES, Env, make_env
from metarl_jax.io.offline import (
    DATA_FILE,
    FIELDS,
    METADATA_FILE,
    OfflineDataError,
    load_partial_state,
    save_offline_data,
    save_partial_state,
    task_arrays,
)
from metarl_jax.tasks import RestrictionError, check_pool_size, draw_pool, parse_restriction

FLAGS = flags.FLAGS

flags.DEFINE_string("env", None, f"Environment: one of {ENV_NAMES}.")
flags.DEFINE_string("out_dir", None, "Directory of the data set (refused if it holds one).")
flags.DEFINE_integer("num_arms", 5, "Bandit: number of arms.")
flags.DEFINE_integer("num_train_tasks", 50, "Training tasks K (each its own behaviour agent).")
flags.DEFINE_integer("num_test_tasks", 20, "Test tasks M.")
flags.DEFINE_integer(
    "steps_per_task", 5000, "Transitions per task (rounded up to whole episodes); bandit: pulls."
)
flags.DEFINE_string(
    "train_tasks", "full", "Region of the training tasks: full | range:.. | complement:.."
)
flags.DEFINE_string("test_tasks", "full", "Region of the test tasks, same syntax.")
flags.DEFINE_integer("task_pool_seed", 0, "Seed of the training pool; the test pool uses seed+1.")
flags.DEFINE_integer("seed", 0, "Seed of the behaviour agents.")
flags.DEFINE_integer("horizon", 0, "Episode length (0: the environment's default).")
flags.DEFINE_float("gamma", 0.99, "Discount of the SAC agents and of the stored returns.")
flags.DEFINE_integer(
    "chunk_iterations", 10, "SAC iterations per compiled chunk (one episode each)."
)
flags.DEFINE_list("hidden_sizes", ["256", "256"], "SAC actor and critic hidden layer widths.")
flags.DEFINE_integer("random_steps", 2000, "SAC: uniform random actions for a task's first steps.")
flags.DEFINE_bool("resume", False, "Continue the unfinished data set in --out_dir/partial/.")

PARTIAL_DIR = "partial"
FLAGS_FILE = "flags.json"
LOCATION_FLAGS = ("out_dir", "resume")
RESUMABLE_FLAGS = ("chunk_iterations",)  # chunking does not change the data
RUN_FLAGS = (
    "env",
    "num_arms",
    "num_train_tasks",
    "num_test_tasks",
    "steps_per_task",
    "train_tasks",
    "test_tasks",
    "task_pool_seed",
    "seed",
    "horizon",
    "gamma",
    "chunk_iterations",
    "hidden_sizes",
    "random_steps",
)


class UsageError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Spec:
    env: Env
    config: SacAgentConfig | None  # None: bandit (Thompson sampling)
    train_restriction: object
    test_restriction: object
    out_dir: str


def _positive(name: str, allow_zero: bool = False) -> None:
    value = getattr(FLAGS, name)
    if value < 0 or (value == 0 and not allow_zero):
        raise UsageError(
            f"--{name}: {value} must be {'non-negative' if allow_zero else 'positive'}"
        )


def _hidden_sizes() -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in FLAGS.hidden_sizes)
    except ValueError:
        raise UsageError(f"--hidden_sizes: expected integers, got {FLAGS.hidden_sizes}") from None
    if not sizes or min(sizes) <= 0:
        raise UsageError(f"--hidden_sizes: expected positive widths, got {FLAGS.hidden_sizes}")
    return sizes


def _pool_restriction(flag: str, count_flag: str, env: Env):
    space = env.task_space
    try:
        restriction = parse_restriction(getattr(FLAGS, flag), space, flag)
        if restriction.num_tasks:
            raise RestrictionError(
                f"--{flag}: the data set's tasks are already a pool of --{count_flag}; give a "
                "region (full, range:.., complement:..)"
            )
        check_pool_size(getattr(FLAGS, count_flag), space, count_flag)
    except RestrictionError as error:
        raise UsageError(str(error)) from None
    return dataclasses.replace(restriction, num_tasks=getattr(FLAGS, count_flag))


def run_flags() -> dict:
    return {name: FLAGS[name].value for name in RUN_FLAGS}


def _check_out_dir(out_dir: str) -> None:
    """Refuse a finished data set or a file in the way; on --resume, require matching flags."""
    parent = os.path.abspath(out_dir)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(f"--out_dir: {parent} exists and is not a directory")
    partial = os.path.join(out_dir, PARTIAL_DIR)
    if os.path.exists(partial) and not os.path.isdir(partial):
        raise UsageError(f"--out_dir: {partial} exists and is not a directory")
    if os.path.exists(os.path.join(out_dir, METADATA_FILE)):
        raise UsageError(
            f"--out_dir: {out_dir} already holds an offline data set; choose another directory"
        )
    flags_path = os.path.join(partial, FLAGS_FILE)
    if not FLAGS.resume:
        if os.path.exists(partial):
            raise UsageError(
                f"--out_dir: {out_dir} holds an unfinished data set ({PARTIAL_DIR}/); pass "
                "--resume to continue it or choose another directory"
            )
        return
    if not os.path.isfile(flags_path):
        raise UsageError(f"--resume: {out_dir} holds no unfinished data set ({flags_path})")
    try:
        with open(flags_path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as error:
        raise UsageError(f"--resume: {flags_path} is unreadable: {error}") from None
    current = run_flags()
    for name in RUN_FLAGS:
        if name not in RESUMABLE_FLAGS and saved.get(name) != current[name]:
            raise UsageError(
                f"--resume: flag --{name} differs from the unfinished data set in {out_dir} "
                f"({current[name]!r} vs {saved.get(name, 'unset')!r})"
            )


def spec_from_flags() -> Spec:
    """Validate every flag (and --out_dir) before anything compiles; raise UsageError."""
    if FLAGS.env is None:
        raise UsageError(f"--env: required; one of {', '.join(ENV_NAMES)}")
    if FLAGS.env not in ENV_NAMES:
        raise UsageError(f"--env: unknown environment {FLAGS.env!r}; known: {', '.join(ENV_NAMES)}")
    if not FLAGS.out_dir:
        raise UsageError("--out_dir: required")
    for name in ("num_train_tasks", "num_test_tasks", "steps_per_task", "chunk_iterations"):
        _positive(name)
    for name in ("horizon", "random_steps", "seed", "task_pool_seed"):
        _positive(name, allow_zero=True)
    if not 0.0 <= FLAGS.gamma <= 1.0:
        raise UsageError(f"--gamma: {FLAGS.gamma} must be in [0, 1]")
    bandit = FLAGS.env == "bandit"
    if bandit and FLAGS.num_arms < 2:
        raise UsageError(f"--num_arms: {FLAGS.num_arms} must be at least 2")
    if bandit and FLAGS.horizon > 1:
        raise UsageError(f"--horizon: bandit data has one pull per episode, got {FLAGS.horizon}")
    hidden_sizes = _hidden_sizes()
    env = make_env(FLAGS.env, horizon=FLAGS.horizon or None, num_arms=FLAGS.num_arms)
    train_restriction = _pool_restriction("train_tasks", "num_train_tasks", env)
    test_restriction = _pool_restriction("test_tasks", "num_test_tasks", env)
    _check_out_dir(FLAGS.out_dir)
    config = None
    if not bandit:
        config = SacAgentConfig(
            hidden_sizes=hidden_sizes, gamma=FLAGS.gamma, random_steps=FLAGS.random_steps
        )
    return Spec(env, config, train_restriction, test_restriction, FLAGS.out_dir)


def _draw_tasks(spec: Spec):
    space = spec.env.task_space
    train = draw_pool(space, spec.train_restriction, FLAGS.task_pool_seed)
    test = draw_pool(space, spec.test_restriction, FLAGS.task_pool_seed + 1)
    return train, test


def _progress_line(chunk, num_chunks, state, capacity, mean_returns, rows, seconds):
    sizes = np.asarray(state["buffers"].size)
    remaining = int(np.sum(capacity - sizes))
    rate = rows / max(seconds, 1e-9)
    eta = datetime.timedelta(seconds=round(remaining / rate)) if rate > 0 else "?"
    returns = mean_returns[np.isfinite(mean_returns)]
    shown = f"{np.mean(returns):.2f}" if returns.size else "-"
    return (
        f"chunk {chunk}/{max(num_chunks, chunk)} | steps per task {int(sizes.mean()):,}/"
        f"{capacity:,} | mean behaviour return {shown} | {rate:,.0f} steps/s | ETA {eta}"
    )


def _sac_data(spec: Spec, tasks, num_tasks: int):
    """Run (or resume) the SAC agents chunk by chunk: (arrays, returns [chunks, K+M], seconds)."""
    env, config = spec.env, spec.config
    partial = os.path.join(spec.out_dir, PARTIAL_DIR)
    state = sac_data_init(env, config, tasks, jax.random.PRNGKey(FLAGS.seed), FLAGS.steps_per_task)
    history, seconds_before = np.zeros((0, num_tasks), np.float32), 0.0
    if FLAGS.resume and os.path.exists(os.path.join(partial, "state.npz")):
        state, extras = load_partial_state(partial, state)
        history, seconds_before = extras["returns"], float(extras["wall_seconds"])
        print(f"resuming {spec.out_dir} at iteration {int(state['iteration'])}", flush=True)
    else:
        os.makedirs(partial, exist_ok=True)
        with open(os.path.join(partial, FLAGS_FILE), "w") as f:
            json.dump(run_flags(), f, indent=2)
    capacity = transitions_per_task(env, FLAGS.steps_per_task)
    num_chunks = math.ceil(
        nominal_iterations(env, config, FLAGS.steps_per_task) / FLAGS.chunk_iterations
    )
    print(
        f"SAC behaviour on {num_tasks} tasks of {env.name} ({capacity:,} transitions each, "
        f"horizon {env.horizon}), chunks of {FLAGS.chunk_iterations} iterations",
        flush=True,
    )
    started = time.perf_counter()
    last, size_before = started, int(np.sum(state["buffers"].size))
    initial = state
    for state, mean_returns in sac_data_chunks(initial, env, config, FLAGS.chunk_iterations):
        now = time.perf_counter()
        history = np.concatenate([history, mean_returns[None]])
        size = int(np.sum(state["buffers"].size))
        save_partial_state(
            partial,
            state,
            {"returns": history, "wall_seconds": seconds_before + now - started},
        )
        chunk = math.ceil(int(state["iteration"]) / FLAGS.chunk_iterations)
        print(
            _progress_line(
                chunk, num_chunks, state, capacity, mean_returns, size - size_before, now - last
            ),
            flush=True,
        )
        last, size_before = now, size
    return sac_data_arrays(state), history, seconds_before + time.perf_counter() - started


def _returns_lists(history: np.ndarray, first: int, last: int) -> list[list[float | None]]:
    """Per task, its mean behaviour return per chunk (None where it no longer collected)."""
    return [
        [float(v) if np.isfinite(v) else None for v in history[:, task]]
        for task in range(first, last)
    ]


def _metadata(spec, train_tasks, num_train, num_test, history, seconds) -> dict:
    env = spec.env
    sac_agent = spec.config is not None
    return {
        "env": env.name,
        "task_space": env.task_space.name,
        "num_arms": FLAGS.num_arms if env.name == "bandit" else None,
        "obs_size": env.obs_size,
        "action_size": env.action_size,
        "discrete": env.discrete,
        "horizon": env.horizon,
        "gamma": FLAGS.gamma,
        "num_train_tasks": num_train,
        "num_test_tasks": num_test,
        "transitions_per_task": (
            transitions_per_task(env, FLAGS.steps_per_task) if sac_agent else FLAGS.steps_per_task
        ),
        "task_fields": list(train_tasks._fields),
        "behaviour": "sac" if sac_agent else "thompson",
        "seed": FLAGS.seed,
        "task_pool_seed": FLAGS.task_pool_seed,
        "train_task_restriction": FLAGS.train_tasks,
        "test_task_restriction": FLAGS.test_tasks,
        "returns_per_task": {
            "train": _returns_lists(history, 0, num_train),
            "test": _returns_lists(history, num_train, num_train + num_test),
        },
        "wall_seconds": round(seconds, 2),
        # Continuous actions are the policy's, in [-1, 1]; the env acts on action * action_bound.
        "action_bound": None if env.discrete else env.action_bound,
        "behaviour_config": dataclasses.asdict(spec.config) if sac_agent else None,
    }


def run(spec: Spec) -> None:
    train_tasks, test_tasks = _draw_tasks(spec)
    num_train, num_test = FLAGS.num_train_tasks, FLAGS.num_test_tasks
    tasks = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), train_tasks, test_tasks)
    if spec.config is None:
        started = time.perf_counter()
        arrays = bandit_data_per_task(tasks, FLAGS.steps_per_task, jax.random.PRNGKey(FLAGS.seed))
        # Bandits have no chunks: the returns per tenth of the pulls show the learning.
        history = np.stack(
            [
                block.mean(axis=1)
                for block in np.array_split(
                    arrays["rewards"], min(10, FLAGS.steps_per_task), axis=1
                )
            ]
        )
        seconds = time.perf_counter() - started
    else:
        arrays, history, seconds = _sac_data(spec, tasks, num_train + num_test)
    data = {}
    for split, rows in (("train", slice(0, num_train)), ("test", slice(num_train, None))):
        data.update({f"{split}/{field}": arrays[field][rows] for field in FIELDS})
    data.update(task_arrays(train_tasks, "train_tasks"))
    data.update(task_arrays(test_tasks, "test_tasks"))
    metadata = _metadata(spec, train_tasks, num_train, num_test, history, seconds)
    save_offline_data(spec.out_dir, data, metadata)
    shutil.rmtree(os.path.join(spec.out_dir, PARTIAL_DIR), ignore_errors=True)
    for name, array in data.items():
        print(f"{name:24s} {list(array.shape)} {array.dtype}")
    print(
        f"offline data set in {os.path.join(spec.out_dir, DATA_FILE)} and {METADATA_FILE} "
        f"({seconds:.1f} s)",
        flush=True,
    )


def main(argv):
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        spec = spec_from_flags()
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        run(spec)
    except OfflineDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def entry_point():
    app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
    entry_point()
