"""Generate an offline meta-RL data set (MACAW's): a learning behaviour agent's data on each task.

    python -m experiments.make_offline_data --env=bandit --num_arms=5 --steps_per_task=1000 \
        --out_dir=data/bandit
    python -m experiments.make_offline_data --env=cheetah_dir --num_train_tasks=2 \
        --num_test_tasks=2 --out_dir=data/cheetah_dir          # add --resume after a stop

The flags make a `metarl_jax.data.DataSetSpec` (see `metarl_jax.data.generation` for what each
means); `generate_data_set` makes the set. Between SAC chunks the state is saved in DIR/partial/
with the flags in DIR/partial/flags.txt (continue with --resume and the same flags, except
--chunk_iterations); DIR/offline_data.npz and DIR/metadata.json (the format of
`metarl_jax.io.offline`) replace it at the end.
"""

import os
import sys
from functools import partial

from absl import flags

from experiments.app_plumbing import (
    UsageError,
    check_in_interval,
    check_no_file_in_the_way,
    check_positive,
    check_resumable,
    int_list,
    run_app,
    write_flags_file,
)
from experiments.flags_file import parse_flag_lines, read_flags_file
from metarl_jax.data import (
    PARTIAL_DIR,
    DataSetSpec,
    SacAgentConfig,
    generate_data_set,
    pool_restrictions,
)
from metarl_jax.envs import ENV_NAMES, make_env
from metarl_jax.io.offline import DATA_FILE, METADATA_FILE, OfflineDataError
from metarl_jax.tasks import RestrictionError

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

FLAGS_FILE = "flags.txt"
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


def run_flag_lines() -> list[str]:
    """The flags that define the data set, as flags.txt lines (`--name=value`)."""
    return [FLAGS[name].serialize() for name in RUN_FLAGS]


def _check_flags_txt(path: str) -> None:
    try:
        saved = read_flags_file(path)
    except (OSError, ValueError) as error:
        raise UsageError(f"--resume: {path} is unreadable: {error}") from None
    current = parse_flag_lines(run_flag_lines())
    check_resumable(path, saved, current, RESUMABLE_FLAGS, "the unfinished data set")


def _check_resumed_flags(out_dir: str, partial_dir: str) -> None:
    """partial/flags.txt must match the flags."""
    flags_path = os.path.join(partial_dir, FLAGS_FILE)
    if not os.path.isfile(flags_path):
        raise UsageError(f"--resume: {out_dir} holds no unfinished data set ({flags_path})")
    _check_flags_txt(flags_path)


def check_out_dir(out_dir: str, resume: bool) -> None:
    """Refuse a finished data set or a file in the way; on --resume, require matching flags."""
    check_no_file_in_the_way("out_dir", out_dir)
    partial_dir = os.path.join(out_dir, PARTIAL_DIR)
    if os.path.exists(partial_dir) and not os.path.isdir(partial_dir):
        raise UsageError(f"--out_dir: {partial_dir} exists and is not a directory")
    if os.path.exists(os.path.join(out_dir, METADATA_FILE)):
        raise UsageError(
            f"--out_dir: {out_dir} already holds an offline data set; choose another directory"
        )
    if resume:
        _check_resumed_flags(out_dir, partial_dir)
    elif os.path.exists(partial_dir):
        raise UsageError(
            f"--out_dir: {out_dir} holds an unfinished data set ({PARTIAL_DIR}/); pass "
            "--resume to continue it or choose another directory"
        )


def spec_from_flags() -> DataSetSpec:
    """Validate every flag (and --out_dir) before anything compiles; raise UsageError."""
    if FLAGS.env is None:
        raise UsageError(f"--env: required; one of {', '.join(ENV_NAMES)}")
    if FLAGS.env not in ENV_NAMES:
        raise UsageError(f"--env: unknown environment {FLAGS.env!r}; known: {', '.join(ENV_NAMES)}")
    if not FLAGS.out_dir:
        raise UsageError("--out_dir: required")
    for name in ("num_train_tasks", "num_test_tasks", "steps_per_task", "chunk_iterations"):
        check_positive(name, getattr(FLAGS, name))
    for name in ("horizon", "random_steps", "seed", "task_pool_seed"):
        check_positive(name, getattr(FLAGS, name), allow_zero=True)
    check_in_interval("gamma", FLAGS.gamma, 0, 1)
    bandit = FLAGS.env == "bandit"
    if bandit and FLAGS.num_arms < 2:
        raise UsageError(f"--num_arms: {FLAGS.num_arms} must be at least 2")
    if bandit and FLAGS.horizon > 1:
        raise UsageError(f"--horizon: bandit data has one pull per episode, got {FLAGS.horizon}")
    hidden_sizes = int_list("hidden_sizes", FLAGS.hidden_sizes, distinct=False)
    behaviour = None
    if not bandit:
        behaviour = SacAgentConfig(
            hidden_sizes=hidden_sizes, gamma=FLAGS.gamma, random_steps=FLAGS.random_steps
        )
    spec = DataSetSpec(
        env=make_env(FLAGS.env, horizon=FLAGS.horizon or None, num_arms=FLAGS.num_arms),
        num_train_tasks=FLAGS.num_train_tasks,
        num_test_tasks=FLAGS.num_test_tasks,
        steps_per_task=FLAGS.steps_per_task,
        behaviour=behaviour,
        train_tasks=FLAGS.train_tasks,
        test_tasks=FLAGS.test_tasks,
        task_pool_seed=FLAGS.task_pool_seed,
        seed=FLAGS.seed,
        gamma=FLAGS.gamma,
        chunk_iterations=FLAGS.chunk_iterations,
    )
    try:
        pool_restrictions(spec)
    except RestrictionError as error:
        raise UsageError(str(error)) from None
    check_out_dir(FLAGS.out_dir, FLAGS.resume)
    return spec


def _record_flags(partial_dir: str) -> None:
    write_flags_file(os.path.join(partial_dir, FLAGS_FILE), run_flag_lines())


def main(argv) -> int:
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    spec = spec_from_flags()
    try:
        data, metadata = generate_data_set(
            spec,
            FLAGS.out_dir,
            resume=FLAGS.resume,
            record_partial=_record_flags,
            progress=partial(print, flush=True),
        )
    except OfflineDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, array in data.items():
        print(f"{name:24s} {list(array.shape)} {array.dtype}")
    print(
        f"offline data set in {os.path.join(FLAGS.out_dir, DATA_FILE)} and {METADATA_FILE} "
        f"({metadata['wall_seconds']:.1f} s)",
        flush=True,
    )
    return 0


def entry_point():
    run_app(main)


if __name__ == "__main__":
    entry_point()
