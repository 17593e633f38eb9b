"""The flags of a training run, and their validation into a run specification.

The algorithms' settings are flags made from their config fields (`experiments.config_flags`);
the flags defined here say what to run, on which tasks and where. Every check runs before
anything is compiled or written; a failure is a `UsageError` whose message names the flag.
"""

import dataclasses
import functools
import os

from absl import flags

from experiments.algorithm_inputs import ALGORITHM_INPUTS
from experiments.app_plumbing import (
    UsageError,
    check_one_of,
    check_positive,
    check_resumable,
    int_list,
)
from experiments.config_flags import (
    apply_algorithm_defaults,
    define_setting_flags,
    settings_from_flags,
)
from experiments.flags_file import parse_flag_lines, read_flags_file
from experiments.study_design import (
    EXPERIMENTS,
    JOINED_EXPERIMENTS,
    NUM_TRAIN_TASKS_EXPERIMENTS,
    OUT_OF_SAMPLE_EXPERIMENTS,
    STUDY_EXPERIMENTS,
    joins,
)
from metarl_jax.algos import Algorithm
from metarl_jax.algos.config_checks import ConfigError
from metarl_jax.algos.macaw import MacawData
from metarl_jax.algos.registry import ALGORITHM_NAMES, ENTRIES, AlgorithmEntry, algorithm_entry
from metarl_jax.algos.settings import sweep_error
from metarl_jax.envs import (
    ENV_NAMES,
    LOCOMOTION_ENV_NAMES,
    PHYSICS,
    Env,
    resolve_physics,
)
from metarl_jax.runs.load import make_algorithm as make_run_algorithm
from metarl_jax.runs.record import record_env
from metarl_jax.sweep import LAYOUTS
from metarl_jax.tasks import (
    MAX_FINITE_TASKS,
    RestrictionError,
    check_pool_size,
    covers_space,
    parse_restriction,
)

FLAGS = flags.FLAGS

flags.DEFINE_enum(
    "experiment",
    "",
    ["", *EXPERIMENTS],
    "Which study experiment this run belongs to (the report groups runs by it): "
    + ", ".join(f"{letter} = {e.varies}" for letter, e in STUDY_EXPERIMENTS.items())
    + ".",
)
flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first (one process per host)."
)
flags.DEFINE_bool(
    "dry_run", False, "Validate the flags, print the plan, compile and write nothing."
)
flags.DEFINE_string("out_dir", None, "Run directory (default: runs/<name>_<timestamp>).")
flags.DEFINE_string("name", "run", "Run name, used for the default --out_dir.")
flags.DEFINE_bool("resume", False, "Continue the run in --out_dir from its latest checkpoint.")
flags.DEFINE_string("env", "navigation", f"Environment: one of {ENV_NAMES}.")
flags.DEFINE_integer("num_arms", 5, "Bandit: number of arms.")
flags.DEFINE_string(
    "physics",
    "auto",
    f"Locomotion physics: one of {PHYSICS} (native: MuJoCo C through a callback, CPU only; "
    "auto: native on a CPU, MJX on an accelerator). flags.txt records the path auto chose.",
)
flags.DEFINE_float(
    "action_scale",
    0.0,
    "Continuous actions: 0 leaves them as the env takes them (clipped by the physics, the "
    "control cost on the action as given: gym's convention); S > 0 has the policy act in "
    "[-S, S], mapped onto the env's box and clipped before the physics and the control cost "
    "(rllab's normalized env; garage and pytorch-maml-rl run MAML on locomotion with S = 10).",
)
flags.DEFINE_bool(
    "task_in_observation",
    False,
    "Append the task's coordinates to every observation: an oracle that need not infer its "
    "task, whose return is the upper reference level of a meta-RL run on the env.",
)
flags.DEFINE_enum(
    "matmul_precision",
    "highest",
    ["highest", "high", "default"],
    "float32 matmul precision of everything but the physics (jax_default_matmul_precision): "
    "'highest' is exact on every backend; 'default' lets GPUs use TF32 (faster, and a masked "
    "member no longer equals a separate run to float32 tolerance).",
)
flags.DEFINE_enum(
    "physics_precision",
    "highest",
    ["highest", "default"],
    "MJX's matmul precision: 'highest' keeps it equal to MuJoCo C on GPUs; 'default' follows "
    "--matmul_precision.",
)
flags.DEFINE_integer("horizon", 0, "Episode length (0: the environment's default).")
flags.DEFINE_string("algo", "maml_trpo", f"Algorithm: one of {ALGORITHM_NAMES}.")
flags.DEFINE_list("seeds", ["0"], "Seeds, swept in one call.")
flags.DEFINE_list("meta_batch_size", ["20"], "Meta-batch sizes (tasks per iteration), swept.")
flags.DEFINE_list(
    "num_train_tasks",
    [],
    "Numbers of fixed training tasks, swept ('all' = the whole training distribution). "
    "Default: from --train_tasks.",
)
flags.DEFINE_multi_string(
    "sweep",
    [],
    "NAME:V1,V2,... sweeps a numeric setting in the same compiled call (repeat the flag for "
    "several; the product with --seeds, --meta_batch_size and --num_train_tasks). Only settings "
    "that change no shape are sweepable; the swept values replace the setting's flag.",
)
flags.DEFINE_integer("num_iterations", 100, "Meta-iterations.")
flags.DEFINE_enum(
    "sweep_layout",
    "packed",
    list(LAYOUTS),
    "How the sweep lays out members that differ only in meta-batch size: packed (their real "
    "tasks side by side, each member pays only for its own; MAML-TRPO, MAML-PPO, RL²) or masked "
    "(each member computes the largest meta-batch and masks the rest; always for the others).",
)
flags.DEFINE_integer("log_every", 10, "Iterations per compiled chunk: log, evaluate, checkpoint.")
flags.DEFINE_string(
    "train_tasks", "full", "Training tasks: full | finite:K | range:.. | complement:.."
)
flags.DEFINE_string("eval_tasks", "full", "Evaluation tasks, same syntax as --train_tasks.")
flags.DEFINE_integer(
    "task_pool_size",
    100,
    "PEARL: the training tasks (each with its replay buffers) that 'all' stands for when the "
    "training tasks are a whole region; at most the space's number of distinct tasks.",
)
flags.DEFINE_string(
    "offline_data",
    None,
    "MACAW: directory of an offline data set (python -m experiments.make_offline_data); its "
    "training tasks' buffers train, its test tasks' buffers adapt at evaluation.",
)
flags.DEFINE_bool(
    "tensorboard",
    True,
    "Write TensorBoard event files as the run trains, one run per sweep member under "
    "OUT_DIR/tensorboard/ (view: tensorboard --logdir OUT_DIR/tensorboard).",
)
flags.DEFINE_bool(
    "wandb",
    False,
    "Also log every metric to Weights & Biases, one W&B run per sweep member grouped by --name "
    "(needs the optional extra: pip install 'metarl_jax[wandb]').",
)
flags.DEFINE_string("wandb_project", "metarl_jax", "--wandb: the W&B project.")
flags.DEFINE_enum(
    "wandb_mode",
    "online",
    ["online", "offline", "disabled"],
    "--wandb: offline writes the runs under OUT_DIR/wandb without a network (wandb sync "
    "uploads them later).",
)
define_setting_flags(ENTRIES)
LIVE_LOG_FLAGS = ("tensorboard", "wandb", "wandb_project", "wandb_mode")
# Where a run goes, not what it computes: left out of flags.txt.
LOCATION_FLAGS = ("out_dir", "resume", "distributed", "dry_run", *LIVE_LOG_FLAGS)
# May differ when a run is resumed (to extend it, or under another name).
RESUMABLE_FLAGS = ("num_iterations", "name", "sweep_layout")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    algo: str
    env: Env
    config: object  # the algorithm's config (its registry entry's config class)
    seeds: tuple[int, ...]
    meta_batch_sizes: tuple[int, ...]
    num_train_tasks: tuple[int, ...]  # 0 = the whole training region
    sweep_columns: tuple[str, ...]  # the swept flags that get a metrics.csv column
    hypers: tuple[tuple[str, tuple[float, ...]], ...]  # --sweep: (setting, its values) each
    num_iterations: int
    log_every: int
    sweep_layout: str = "packed"
    experiment: str = ""  # the study experiment (a-e) the run belongs to, if any
    train_tasks: str = "full"  # the restrictions as given (for the plan and summary.json)
    eval_tasks: str = "full"
    data: MacawData | None = None  # MACAW's offline data set
    physics: str = ""  # locomotion: the physics path taken, in words

    @property
    def num_members(self) -> int:
        count = len(self.seeds) * len(self.meta_batch_sizes) * len(self.num_train_tasks)
        for _, values in self.hypers:
            count *= len(values)
        return count


def env_options() -> dict:
    """The env's options from the flags (physics resolved), as run.json records them."""
    return {
        "name": FLAGS.env,
        "horizon": FLAGS.horizon,
        "num_arms": FLAGS.num_arms,
        "physics": FLAGS.physics,
        "physics_precision": FLAGS.physics_precision,
        "action_scale": FLAGS.action_scale,
        "task_in_observation": FLAGS.task_in_observation,
    }


@functools.lru_cache(maxsize=16)
def _make_env(options: tuple) -> Env:
    """Environments are immutable; validating many runs in one process builds each once."""
    return record_env(dict(options))


def apply_matmul_precision() -> None:
    """JAX's global float32 matmul precision from --matmul_precision (before anything compiles)."""
    import jax

    jax.config.update("jax_default_matmul_precision", FLAGS.matmul_precision)


def physics_description(requested: str, resolved: str) -> str:
    """The locomotion physics path a run takes, in words (for its output)."""
    import jax

    if resolved == "native":
        what = "native (MuJoCo C stepped from the jitted loop through a callback)"
    else:
        what = f"mjx (MJX on {jax.default_backend()}, matmul precision {FLAGS.physics_precision})"
    how = "chosen by --physics=auto for this backend" if requested == "auto" else "as asked"
    return f"{what}, {how}"


def make_algorithm(spec: RunSpec) -> Algorithm:
    return make_run_algorithm(
        algorithm_entry(spec.algo), spec.config, spec.env, spec.data, spec.hypers
    )


def _swept_settings(config) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """--sweep=NAME:V1,V2,...: each a sweepable setting of the config, with values that are
    numbers the config accepts."""
    swept = {}
    for spec in FLAGS.sweep:
        name, colon, listed = spec.partition(":")
        name = name.strip()
        if not colon or not name:
            raise UsageError(f"--sweep: expected NAME:V1,V2,..., not {spec!r}")
        if name in swept:
            raise UsageError(f"--sweep: {name} is swept twice")
        texts = [v.strip() for v in listed.split(",") if v.strip()]
        try:
            values = tuple(float(v) for v in texts)
        except ValueError:
            bad = next(v for v in texts if not _is_number(v))
            raise UsageError(f"--sweep: {name}: {bad!r} is not a number") from None
        error = sweep_error(config, name, values)
        if error:
            raise UsageError(f"--sweep: {error}")
        if len(set(values)) != len(values):
            raise UsageError(f"--sweep: {name} lists a value twice")
        swept[name] = values
    return tuple(swept.items())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def spec_from_flags() -> RunSpec:
    """Validate the flags into a run specification; raise UsageError naming the first bad flag."""
    check_one_of("env", FLAGS.env, ENV_NAMES)
    check_one_of("algo", FLAGS.algo, ALGORITHM_NAMES)
    entry = algorithm_entry(FLAGS.algo)
    apply_algorithm_defaults(entry)
    check_one_of("physics", FLAGS.physics, PHYSICS)
    requested_physics = FLAGS.physics
    FLAGS.physics = resolve_physics(FLAGS.physics)  # flags.txt reproduces the path taken
    if FLAGS.env == "bandit" and FLAGS.num_arms < 2:
        raise UsageError(f"--num_arms: {FLAGS.num_arms} must be at least 2")
    check_positive("horizon", FLAGS.horizon, allow_zero=True)
    check_positive("action_scale", FLAGS.action_scale, allow_zero=True)
    if FLAGS.action_scale and FLAGS.env == "bandit":
        raise UsageError("--action_scale: the bandit's actions are discrete")
    check_positive("num_iterations", FLAGS.num_iterations)
    check_positive("log_every", FLAGS.log_every)
    seeds = int_list("seeds", FLAGS.seeds, minimum=0)
    meta_batch_sizes = int_list("meta_batch_size", FLAGS.meta_batch_size)
    env = _make_env(tuple(env_options().items()))
    train_tasks, eval_tasks, num_train_tasks = _task_restrictions(env)
    if not entry.supports(env):
        kind = "discrete" if env.discrete else "continuous"
        raise UsageError(f"--algo: {FLAGS.algo} does not run on {env.name}'s {kind} actions")
    _check_experiment(entry, env, train_tasks, eval_tasks)

    derived = dict(
        horizon=env.horizon,
        max_meta_batch_size=max(meta_batch_sizes),
        train_tasks=train_tasks,
        eval_tasks=eval_tasks,
        **entry.config_settings,
    )
    prepare = ALGORITHM_INPUTS.get(entry.config_class)
    data = prepare(derived, env, num_train_tasks) if prepare else None
    config = _config_from_flags(entry, derived)
    hypers = _swept_settings(config)
    sweep_columns = ["meta_batch_size"]
    if FLAGS.num_train_tasks or train_tasks.num_tasks:
        sweep_columns.append("num_train_tasks")
    sweep_columns += [name for name, _ in hypers]
    return RunSpec(
        algo=FLAGS.algo,
        env=env,
        config=config,
        seeds=seeds,
        meta_batch_sizes=meta_batch_sizes,
        num_train_tasks=num_train_tasks,
        sweep_columns=tuple(sweep_columns),
        hypers=hypers,
        num_iterations=FLAGS.num_iterations,
        log_every=FLAGS.log_every,
        sweep_layout=FLAGS.sweep_layout,
        experiment=FLAGS.experiment,
        train_tasks=FLAGS.train_tasks,
        eval_tasks=FLAGS.eval_tasks,
        data=data,
        physics=physics_description(requested_physics, FLAGS.physics)
        if env.name in LOCOMOTION_ENV_NAMES
        else "",
    )


def _config_from_flags(entry: AlgorithmEntry, derived: dict):
    """The algorithm's config: its settings from their flags, the rest derived by the app; the
    config checks itself (a failed check names the setting's flag)."""
    config_class = entry.config_class
    fields = {f.name for f in dataclasses.fields(config_class)}
    values = settings_from_flags(config_class)
    values.update({name: value for name, value in derived.items() if name in fields})
    try:
        return config_class(**values)
    except ConfigError as error:
        field = str(error).split(":", 1)[0]
        raise UsageError(f"--{error}" if field in FLAGS else f"config setting {error}") from None


def _task_restrictions(env: Env):
    """--train_tasks, --eval_tasks and --num_train_tasks: (train, eval, the swept k's)."""
    try:
        train_tasks = parse_restriction(FLAGS.train_tasks, env.task_space, "train_tasks")
        eval_tasks = parse_restriction(FLAGS.eval_tasks, env.task_space, "eval_tasks")
    except RestrictionError as error:
        raise UsageError(str(error)) from None
    if not FLAGS.num_train_tasks:
        return train_tasks, eval_tasks, (train_tasks.num_tasks,)
    num_train_tasks = int_list("num_train_tasks", FLAGS.num_train_tasks, allow_all=True)
    if train_tasks.num_tasks:
        raise UsageError(
            "--num_train_tasks: give the finite sizes here or in --train_tasks=finite:K, not both"
        )
    if max(num_train_tasks) > MAX_FINITE_TASKS:
        raise UsageError(f"--num_train_tasks: at most {MAX_FINITE_TASKS} tasks")
    try:
        check_pool_size(max(num_train_tasks), env.task_space, "num_train_tasks")
    except RestrictionError as error:
        raise UsageError(str(error)) from None
    if max(num_train_tasks):
        train_tasks = dataclasses.replace(train_tasks, num_tasks=max(num_train_tasks))
    return train_tasks, eval_tasks, num_train_tasks


def _check_experiment(entry: AlgorithmEntry, env: Env, train_tasks, eval_tasks) -> None:
    """What each study experiment needs, checked before anything compiles."""
    experiment, space = FLAGS.experiment, env.task_space
    if experiment in NUM_TRAIN_TASKS_EXPERIMENTS and not FLAGS.num_train_tasks:
        raise UsageError(
            f"--num_train_tasks: experiment ({experiment}) sweeps the number of training tasks"
        )
    if experiment and not joins(entry.name, experiment):
        joined = ", ".join(f"({e})" for e in sorted(JOINED_EXPERIMENTS.get(entry.name, ())))
        raise UsageError(
            f"--algo: {FLAGS.algo} takes no part in experiment ({experiment}); it joins {joined}"
        )
    if experiment in OUT_OF_SAMPLE_EXPERIMENTS and covers_space(space, eval_tasks):
        raise UsageError(
            f"--eval_tasks: experiment ({experiment}) evaluates out of sample; "
            f"{FLAGS.eval_tasks!r} covers the whole task space"
        )
    if experiment == "d":
        if covers_space(space, train_tasks):
            raise UsageError(
                f"--train_tasks: experiment (d) trains on a sub-range; {FLAGS.train_tasks!r} "
                "covers the whole task space"
            )
        if not FLAGS.eval_train_region:
            raise UsageError(
                "--eval_train_region: experiment (d) compares out-of-sample with in-sample "
                "returns; set it"
            )
    if experiment == "f" and not FLAGS.sweep:
        raise UsageError(
            "--sweep: experiment (f) compares step sizes; sweep at least one setting "
            "(--sweep=NAME:V1,V2,...)"
        )


def run_flags() -> dict[str, str]:
    """The flags that define a run, serialized (`--name=value`)."""
    names = [
        flag.name
        for module in (__name__, "experiments.config_flags")
        for flag in FLAGS.get_flags_for_module(module)
    ]
    return {name: FLAGS[name].serialize() for name in names if name not in LOCATION_FLAGS}


def check_live_log_flags() -> None:
    """--wandb needs the wandb package (the optional extra)."""
    import importlib.util

    if FLAGS.wandb and importlib.util.find_spec("wandb") is None:
        raise UsageError(
            "--wandb: the wandb package is not installed (pip install 'metarl_jax[wandb]'), "
            "or leave --wandb out"
        )


def flags_file_text() -> str:
    """flags.txt: every flag that defines the run, usable as --flagfile to reproduce it."""
    return "\n".join(sorted(run_flags().values())) + "\n"


def check_out_dir(out_dir: str, resume: bool) -> None:
    """Refuse to overwrite a run; on --resume, require one with a matching flags.txt."""
    flags_path = os.path.join(out_dir, "flags.txt")
    holds_run = os.path.isdir(out_dir) and any(
        os.path.exists(os.path.join(out_dir, name))
        for name in ("flags.txt", "metrics.csv", "checkpoints", "summary.json")
    )
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UsageError(f"--out_dir: {out_dir} exists and is not a directory")
    if not resume:
        if holds_run:
            raise UsageError(
                f"--out_dir: {out_dir} already holds a run; pass --resume to continue it or "
                "choose another directory"
            )
        return
    if not os.path.exists(flags_path):
        raise UsageError(f"--resume: {out_dir} holds no run to resume (no flags.txt)")
    try:
        saved = read_flags_file(flags_path)
    except ValueError as error:
        raise UsageError(f"--resume: {flags_path}: {error}") from None
    check_resumable(
        flags_path,
        saved,
        parse_flag_lines(flags_file_text().splitlines()),
        RESUMABLE_FLAGS,
        what="the run",
    )
