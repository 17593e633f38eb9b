"""Flags shared by the experiment apps, and their validation into a run specification.

Every check here runs before anything is compiled or written; a failure is a `UsageError` whose
message names the flag.
"""

import dataclasses
import functools
import os

from absl import flags

from experiments.flags_file import parse_flag_lines, read_flags_file
from metarl_jax.algos import (
    MAX_EVAL_ADAPT_STEPS,
    MAX_INNER_STEPS,
    Algorithm,
    MacawConfig,
    MamlConfig,
    PearlConfig,
    Rl2Config,
)
from metarl_jax.algos.config_checks import ConfigError
from metarl_jax.algos.macaw import FIELDS as MACAW_FIELDS
from metarl_jax.algos.macaw import MacawData
from metarl_jax.algos.registry import ALGORITHM_NAMES, AlgorithmEntry, algorithm_entry
from metarl_jax.envs import ENV_NAMES, PHYSICS, Env, make_env
from metarl_jax.io.offline import OfflineDataError, load_offline_data, tasks_from_arrays
from metarl_jax.nets import ACTIVATIONS
from metarl_jax.tasks import (
    MAX_FINITE_TASKS,
    RestrictionError,
    check_pool_size,
    covers_space,
    parse_restriction,
)

FLAGS = flags.FLAGS

EXPERIMENTS = ("a", "b", "c", "d", "e")

flags.DEFINE_enum(
    "experiment",
    "",
    ["", *EXPERIMENTS],
    "Which study experiment this run belongs to (the report groups runs by it): a = number of "
    "training tasks, b = MACAW's number of offline tasks/buffers, c = meta-batch size, d = "
    "out-of-sample tasks, e = MAML's test-time steps.",
)
flags.DEFINE_bool(
    "eval_train_region",
    False,
    "Also evaluate on fresh tasks of the training region (metrics eval_train/...): in-sample "
    "beside --eval_tasks' out-of-sample.",
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
    "physics", "mjx", f"Locomotion physics: one of {PHYSICS} (native: MuJoCo C, CPU only)."
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
flags.DEFINE_integer("num_iterations", 100, "Meta-iterations.")
flags.DEFINE_integer("log_every", 10, "Iterations per compiled chunk: log, evaluate, checkpoint.")
flags.DEFINE_string(
    "train_tasks", "full", "Training tasks: full | finite:K | range:.. | complement:.."
)
flags.DEFINE_string("eval_tasks", "full", "Evaluation tasks, same syntax as --train_tasks.")
flags.DEFINE_integer("task_pool_seed", 0, "Seed that draws finite task pools.")
flags.DEFINE_list(
    "hidden_sizes", ["64", "64"], "Policy hidden layer widths (RL²: GRU layers, default 64)."
)
flags.DEFINE_string("activation", "tanh", f"Policy activation: one of {tuple(ACTIVATIONS)}.")
flags.DEFINE_integer("rollouts_per_task", 20, "Episodes per task per adaptation step.")
flags.DEFINE_integer("inner_steps", 1, "Inner gradient steps during meta-training.")
flags.DEFINE_float("inner_lr", 0.1, "Inner-loop learning rate.")
flags.DEFINE_string(
    "inner_loss", "lvc", "Inner objective: lvc (ProMP's likelihood ratio) | reinforce (log-prob)."
)
flags.DEFINE_bool("first_order", False, "First-order MAML (no gradient through the inner step).")
flags.DEFINE_float("gamma", 0.99, "Discount.")
flags.DEFINE_float("gae_lambda", 1.0, "GAE lambda.")
flags.DEFINE_float("max_kl", 0.01, "TRPO: KL bound.")
flags.DEFINE_integer("cg_iterations", 10, "TRPO: conjugate-gradient iterations.")
flags.DEFINE_float("cg_damping", 1e-5, "TRPO: damping added to the Fisher-vector product.")
flags.DEFINE_integer("line_search_steps", 15, "TRPO: backtracking steps.")
flags.DEFINE_float("line_search_ratio", 0.8, "TRPO: backtracking ratio.")
flags.DEFINE_float(
    "fisher_subsample", 1.0, "TRPO: fraction of each task's episodes used in Fisher products."
)
flags.DEFINE_float("outer_lr", 1e-3, "Adam learning rate (MAML-PPO's outer step; RL²).")
flags.DEFINE_integer("ppo_steps", 5, "MAML-PPO: gradient steps per meta-iteration.")
flags.DEFINE_float("clip", 0.3, "PPO clipping epsilon (MAML-PPO 0.3; RL² default 0.2).")
flags.DEFINE_float("inner_kl_coef", 5e-4, "PPO: ProMP's KL penalty on the pre-update policy.")
flags.DEFINE_integer("episodes_per_trial", 2, "RL²: episodes per trial (state kept across).")
flags.DEFINE_integer("trials_per_task", 1, "RL²: trials per task per iteration.")
flags.DEFINE_integer("ppo_epochs", 5, "RL²: PPO epochs per iteration.")
flags.DEFINE_integer("num_minibatches", 1, "RL²: minibatches (of tasks) per epoch.")
flags.DEFINE_float("value_coef", 0.5, "RL²: weight of the value loss.")
flags.DEFINE_float("entropy_coef", 0.0, "RL²: weight of the entropy bonus.")
flags.DEFINE_float("max_grad_norm", 0.0, "RL²: global gradient-norm clip (0: none).")
flags.DEFINE_integer("latent_size", 5, "PEARL: size of the context variable z.")
flags.DEFINE_list("encoder_hidden_sizes", ["200", "200", "200"], "PEARL: encoder layer widths.")
flags.DEFINE_integer(
    "num_task_buffers",
    100,
    "PEARL: training tasks (each with its replay buffers) when the training tasks are a whole "
    "region ('all'); at most the space's number of distinct tasks.",
)
flags.DEFINE_integer("num_tasks_sample", 5, "PEARL: training tasks that collect per iteration.")
flags.DEFINE_integer("initial_steps", 2000, "PEARL: transitions per training task before training.")
flags.DEFINE_integer("prior_steps", 1000, "PEARL: transitions per sampled task with z ~ prior.")
flags.DEFINE_integer(
    "posterior_steps", 1000, "PEARL: transitions per sampled task with z ~ posterior (RL only)."
)
flags.DEFINE_integer("grad_steps", 2000, "PEARL: gradient steps per iteration.")
flags.DEFINE_integer("batch_size", 256, "PEARL: RL transitions per task and gradient step.")
flags.DEFINE_integer(
    "context_batch_size", 256, "PEARL: context transitions per task and gradient step."
)
flags.DEFINE_integer("replay_capacity", 1_000_000, "PEARL: RL buffer capacity per task.")
flags.DEFINE_float("sac_lr", 3e-4, "PEARL: Adam learning rate (actor, critic, encoder).")
flags.DEFINE_float("tau", 0.005, "PEARL: Polyak rate of the target critic.")
flags.DEFINE_float("reward_scale", 5.0, "PEARL: reward scale of the soft Q target.")
flags.DEFINE_float("kl_weight", 0.1, "PEARL: weight beta of KL(q(z|c) || N(0, I)).")
flags.DEFINE_float("alpha", 1.0, "PEARL: entropy temperature (initial value if learned).")
flags.DEFINE_bool("learn_alpha", False, "PEARL: learn the temperature (target entropy -|A|).")
flags.DEFINE_bool("deterministic_z", False, "PEARL: z = mean of the factors' means, no KL.")
flags.DEFINE_bool("context_next_obs", False, "PEARL: context (s, a, r, s') instead of (s, a, r).")
flags.DEFINE_enum(
    "pearl_exploration",
    "posterior_sampling",
    ["posterior_sampling", "uniform_actions"],
    "PEARL: how the prior phase (initial data, collection's prior episodes, evaluation's first "
    "episode) acts: the policy on z ~ N(0, I) (oyster), or uniformly random actions.",
)
flags.DEFINE_float(
    "reward_decoder_weight",
    0.0,
    "PEARL: weight of an auxiliary loss training the encoder to predict reward_scale * r from "
    "(s, a, z) (0: none, as oyster).",
)
flags.DEFINE_bool(
    "critic_trains_encoder",
    True,
    "PEARL: the critic's loss trains the encoder (oyster); with --nocritic_trains_encoder only "
    "the reward decoder and the KL do.",
)
flags.DEFINE_integer(
    "eval_episodes", 3, "PEARL: episodes per evaluation task (z from the prior in the first)."
)
flags.DEFINE_string(
    "offline_data",
    None,
    "MACAW: directory of an offline data set (python -m experiments.make_offline_data); its "
    "training tasks' buffers train, its test tasks' buffers adapt at evaluation.",
)
flags.DEFINE_float("value_lr", 1e-5, "MACAW: outer Adam learning rate of the value function.")
flags.DEFINE_float("policy_lr", 1e-4, "MACAW: outer Adam learning rate of the policy.")
flags.DEFINE_float("advantage_coef", 0.01, "MACAW: weight of the advantage-head loss.")
flags.DEFINE_float("awr_temperature", 1.0, "MACAW: temperature T of the weights exp(A/T).")
flags.DEFINE_float("max_awr_weight", 20.0, "MACAW: clamp of the weights exp(A/T).")
flags.DEFINE_float("policy_std", 0.2, "MACAW: fixed standard deviation of the policy.")
flags.DEFINE_integer("num_eval_tasks", 40, "Evaluation tasks per evaluation.")
flags.DEFINE_integer("eval_adapt_steps", 3, "Adaptation steps K at meta-test (returns after 0..K).")

# Where a run goes, not what it computes: left out of flags.txt.
LOCATION_FLAGS = ("out_dir", "resume", "distributed", "dry_run")
PRECISION_FLAGS = ("matmul_precision", "physics_precision")
# May differ when a run is resumed (to extend it, or under another name).
RESUMABLE_FLAGS = ("num_iterations", "name")


class UsageError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class RunSpec:
    algo: str
    env: Env
    config: MamlConfig | Rl2Config | PearlConfig | MacawConfig
    seeds: tuple[int, ...]
    meta_batch_sizes: tuple[int, ...]
    num_train_tasks: tuple[int, ...]  # 0 = the whole training region
    sweep_columns: tuple[str, ...]  # the swept flags that get a metrics.csv column
    num_iterations: int
    log_every: int
    data: MacawData | None = None  # MACAW's offline data set


def _int_list(name: str, values, allow_all: bool = False, distinct: bool = True) -> tuple[int, ...]:
    if not values:
        raise UsageError(f"--{name}: empty list")
    out = []
    for v in values:
        if allow_all and v.strip() == "all":
            out.append(0)
            continue
        try:
            n = int(v)
        except ValueError:
            raise UsageError(f"--{name}: {v!r} is not an integer") from None
        if n <= 0:
            raise UsageError(f"--{name}: {n} must be positive")
        out.append(n)
    if distinct and len(set(out)) != len(out):
        raise UsageError(f"--{name}: repeated value in {','.join(values)}")
    return tuple(out)


def _positive(name: str, value, allow_zero=False):
    if value < 0 or (value == 0 and not allow_zero):
        raise UsageError(
            f"--{name}: {value} must be {'non-negative' if allow_zero else 'positive'}"
        )


@functools.lru_cache(maxsize=16)
def _make_env(name: str, horizon: int | None, num_arms: int, physics: str, precision: str) -> Env:
    """Environments are immutable; validating many runs in one process builds each once."""
    return make_env(
        name,
        horizon=horizon,
        num_arms=num_arms,
        physics=physics,
        physics_precision=None if precision == "default" else precision,
    )


def apply_matmul_precision() -> None:
    """JAX's global float32 matmul precision from --matmul_precision (before anything compiles)."""
    import jax

    jax.config.update("jax_default_matmul_precision", FLAGS.matmul_precision)


def make_algorithm(spec: RunSpec) -> Algorithm:
    return algorithm_entry(spec.algo).make(spec.config, spec.env, spec.data)


def apply_algorithm_defaults() -> None:
    """The algorithm's reference defaults (its registry entry) for flags left unset on the
    command line and in flag files; flags.txt records the values used."""
    for name, value in algorithm_entry(FLAGS.algo).reference_defaults.items():
        if not FLAGS[name].present:
            FLAGS[name].value = value


def spec_from_flags() -> RunSpec:
    """Validate the flags into a run specification; raise UsageError naming the first bad flag."""
    if FLAGS.env not in ENV_NAMES:
        raise UsageError(f"--env: unknown environment {FLAGS.env!r}; known: {', '.join(ENV_NAMES)}")
    if FLAGS.algo not in ALGORITHM_NAMES:
        raise UsageError(
            f"--algo: unknown algorithm {FLAGS.algo!r}; known: {', '.join(ALGORITHM_NAMES)}"
        )
    apply_algorithm_defaults()
    if FLAGS.physics not in PHYSICS:
        raise UsageError(f"--physics: unknown {FLAGS.physics!r}; known: {', '.join(PHYSICS)}")
    if FLAGS.activation not in ACTIVATIONS:
        raise UsageError(f"--activation: unknown {FLAGS.activation!r}; known: {tuple(ACTIVATIONS)}")
    if FLAGS.env == "bandit" and FLAGS.num_arms < 2:
        raise UsageError(f"--num_arms: {FLAGS.num_arms} must be at least 2")
    _positive("horizon", FLAGS.horizon, allow_zero=True)
    for name in (
        "num_iterations",
        "log_every",
        "rollouts_per_task",
        "num_eval_tasks",
        "cg_iterations",
        "line_search_steps",
        "ppo_steps",
        "episodes_per_trial",
        "trials_per_task",
        "ppo_epochs",
        "num_minibatches",
    ):  # PEARL's and MACAW's sizes: their configs check them (one line naming the flag)
        _positive(name, getattr(FLAGS, name))
    for name in (
        "inner_lr",
        "max_kl",
        "outer_lr",
        "clip",
        "sac_lr",
        "reward_scale",
        "alpha",
        "value_lr",
        "policy_lr",
        "awr_temperature",
        "max_awr_weight",
        "policy_std",
    ):
        _positive(name, getattr(FLAGS, name))
    for name in (
        "cg_damping",
        "value_coef",
        "entropy_coef",
        "max_grad_norm",
        "kl_weight",
        "advantage_coef",
    ):
        _positive(name, getattr(FLAGS, name), allow_zero=True)
    for name in ("gamma", "gae_lambda", "tau"):
        if not 0.0 <= getattr(FLAGS, name) <= 1.0:
            raise UsageError(f"--{name}: {getattr(FLAGS, name)} must be in [0, 1]")
    if not 0.0 < FLAGS.line_search_ratio < 1.0:
        raise UsageError(f"--line_search_ratio: {FLAGS.line_search_ratio} must be in (0, 1)")
    if not 0.0 < FLAGS.fisher_subsample <= 1.0:
        raise UsageError(f"--fisher_subsample: {FLAGS.fisher_subsample} must be in (0, 1]")
    if not 1 <= FLAGS.inner_steps <= MAX_INNER_STEPS:
        raise UsageError(f"--inner_steps: {FLAGS.inner_steps} must be in [1, {MAX_INNER_STEPS}]")
    if not 0 <= FLAGS.eval_adapt_steps <= MAX_EVAL_ADAPT_STEPS:
        raise UsageError(
            f"--eval_adapt_steps: {FLAGS.eval_adapt_steps} must be in [0, {MAX_EVAL_ADAPT_STEPS}]"
        )
    # flags.txt written before issue 14 holds an empty --inner_loss for the per-algorithm default
    entry = algorithm_entry(FLAGS.algo)
    inner_loss = FLAGS.inner_loss or entry.legacy_flag_values.get("inner_loss", "lvc")
    if inner_loss not in ("reinforce", "lvc"):
        raise UsageError(f"--inner_loss: unknown {inner_loss!r}; known: reinforce, lvc")
    hidden_sizes = _int_list("hidden_sizes", FLAGS.hidden_sizes, distinct=False)
    seeds_text = FLAGS.seeds
    try:
        seeds = tuple(int(s) for s in seeds_text)
    except ValueError:
        raise UsageError(f"--seeds: expected integers, got {','.join(seeds_text)}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UsageError(f"--seeds: expected distinct non-negative integers, got {seeds_text}")
    meta_batch_sizes = _int_list("meta_batch_size", FLAGS.meta_batch_size)

    env = _make_env(
        FLAGS.env, FLAGS.horizon or None, FLAGS.num_arms, FLAGS.physics, FLAGS.physics_precision
    )
    try:
        train_tasks = parse_restriction(FLAGS.train_tasks, env.task_space, "train_tasks")
        eval_tasks = parse_restriction(FLAGS.eval_tasks, env.task_space, "eval_tasks")
    except RestrictionError as error:
        raise UsageError(str(error)) from None
    if FLAGS.num_train_tasks:
        num_train_tasks = _int_list("num_train_tasks", FLAGS.num_train_tasks, allow_all=True)
        if train_tasks.num_tasks:
            raise UsageError(
                "--num_train_tasks: give the finite sizes here or in --train_tasks=finite:K, "
                "not both"
            )
        if max(num_train_tasks) > MAX_FINITE_TASKS:
            raise UsageError(f"--num_train_tasks: at most {MAX_FINITE_TASKS} tasks")
        try:
            check_pool_size(max(num_train_tasks), env.task_space, "num_train_tasks")
        except RestrictionError as error:
            raise UsageError(str(error)) from None
        pool_size = max(num_train_tasks)
        if pool_size:
            train_tasks = dataclasses.replace(train_tasks, num_tasks=pool_size)
    else:
        num_train_tasks = (train_tasks.num_tasks,)
    if not entry.supports(env):
        kind = "discrete" if env.discrete else "continuous"
        raise UsageError(f"--algo: {FLAGS.algo} does not run on {env.name}'s {kind} actions")
    _check_experiment(entry, env, train_tasks, eval_tasks)

    shared = dict(
        hidden_sizes=hidden_sizes,
        horizon=env.horizon,
        max_meta_batch_size=max(meta_batch_sizes),
        gamma=FLAGS.gamma,
        gae_lambda=FLAGS.gae_lambda,
        train_tasks=train_tasks,
        eval_tasks=eval_tasks,
        task_pool_seed=FLAGS.task_pool_seed,
        num_eval_tasks=FLAGS.num_eval_tasks,
        eval_train_region=FLAGS.eval_train_region,
    )
    build = CONFIG_BUILDERS[entry.config_class]
    try:
        config, data = build(entry, shared, env, num_train_tasks, meta_batch_sizes, inner_loss)
    except ConfigError as error:  # a check the flags above do not repeat: name the setting
        field = str(error).split(":", 1)[0]
        raise UsageError(f"--{error}" if field in FLAGS else f"config setting {error}") from None
    sweep_columns = ["meta_batch_size"]
    if FLAGS.num_train_tasks or train_tasks.num_tasks:
        sweep_columns.append("num_train_tasks")
    return RunSpec(
        algo=FLAGS.algo,
        env=env,
        config=config,
        seeds=seeds,
        meta_batch_sizes=meta_batch_sizes,
        num_train_tasks=num_train_tasks,
        sweep_columns=tuple(sweep_columns),
        num_iterations=FLAGS.num_iterations,
        log_every=FLAGS.log_every,
        data=data,
    )


def _check_experiment(entry: AlgorithmEntry, env: Env, train_tasks, eval_tasks) -> None:
    """What each study experiment needs, checked before anything compiles."""
    experiment, space = FLAGS.experiment, env.task_space
    if experiment in ("a", "b") and not FLAGS.num_train_tasks:
        raise UsageError(
            f"--num_train_tasks: experiment ({experiment}) sweeps the number of training tasks"
        )
    if experiment and experiment not in entry.study_experiments:
        joins = ", ".join(f"({e})" for e in sorted(entry.study_experiments))
        raise UsageError(
            f"--algo: {FLAGS.algo} takes no part in experiment ({experiment}); it joins {joins}"
        )
    if experiment in ("d", "e") and covers_space(space, eval_tasks):
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


def _pearl_config(entry, shared, env, num_train_tasks, meta_batch_sizes, inner_loss):
    """PEARL keeps replay buffers per training task, so its training tasks are always a finite
    pool: the sweep's largest k, and for 'all' (a whole region) --num_task_buffers tasks of it."""
    sizes = [k for k in num_train_tasks if k > 0]
    if 0 in num_train_tasks:
        whole = FLAGS.num_task_buffers
        if env.task_space.num_distinct:
            whole = min(whole, env.task_space.num_distinct)
        if whole > MAX_FINITE_TASKS:
            raise UsageError(f"--num_task_buffers: at most {MAX_FINITE_TASKS} tasks")
        if sizes and max(sizes) > whole:
            raise UsageError(
                f"--num_task_buffers: PEARL's 'all' is a pool of {whole} tasks, fewer than the "
                f"sweep's k={max(sizes)}; raise it above every k"
            )
        sizes.append(whole)
    shared = {name: value for name, value in shared.items() if name != "gae_lambda"}
    return PearlConfig(
        **shared,
        latent_size=FLAGS.latent_size,
        encoder_hidden_sizes=_int_list(
            "encoder_hidden_sizes", FLAGS.encoder_hidden_sizes, distinct=False
        ),
        num_task_buffers=max(sizes),
        num_tasks_sample=FLAGS.num_tasks_sample,
        initial_steps=FLAGS.initial_steps,
        prior_steps=FLAGS.prior_steps,
        posterior_steps=FLAGS.posterior_steps,
        grad_steps=FLAGS.grad_steps,
        batch_size=FLAGS.batch_size,
        context_batch_size=FLAGS.context_batch_size,
        replay_capacity=FLAGS.replay_capacity,
        tau=FLAGS.tau,
        reward_scale=FLAGS.reward_scale,
        kl_weight=FLAGS.kl_weight,
        lr=FLAGS.sac_lr,
        alpha=FLAGS.alpha,
        learn_alpha=FLAGS.learn_alpha,
        deterministic_z=FLAGS.deterministic_z,
        context_next_obs=FLAGS.context_next_obs,
        exploration=FLAGS.pearl_exploration,
        reward_decoder_weight=FLAGS.reward_decoder_weight,
        critic_trains_encoder=FLAGS.critic_trains_encoder,
        eval_episodes=FLAGS.eval_episodes,
    )


def _macaw_config(entry, shared, env, num_train_tasks, meta_batch_sizes, inner_loss):
    """MACAW trains on the offline data set's training tasks and evaluates on its test tasks."""
    if not FLAGS.offline_data:
        raise UsageError("--offline_data: MACAW needs an offline data set (make_offline_data)")
    if FLAGS.train_tasks != "full" or FLAGS.eval_tasks != "full":
        flag = "train_tasks" if FLAGS.train_tasks != "full" else "eval_tasks"
        raise UsageError(
            f"--{flag}: MACAW's training and test tasks are those of --offline_data; restrict "
            "them when making the data"
        )
    try:
        arrays, metadata = load_offline_data(FLAGS.offline_data, env)
        data = MacawData(
            train={name: arrays[f"train/{name}"] for name in MACAW_FIELDS},
            test={name: arrays[f"test/{name}"] for name in MACAW_FIELDS},
            train_tasks=tasks_from_arrays(arrays, "train_tasks", env),
            test_tasks=tasks_from_arrays(arrays, "test_tasks", env),
        )
    except OfflineDataError as error:
        raise UsageError(f"--offline_data: {error}") from None
    if env.horizon != metadata["horizon"]:
        raise UsageError(
            f"--horizon: {env.horizon}, but the episodes of {FLAGS.offline_data} last "
            f"{metadata['horizon']} steps (its Monte-Carlo returns are per episode)"
        )
    if abs(FLAGS.gamma - metadata["gamma"]) > 1e-9:
        raise UsageError(
            f"--gamma: {FLAGS.gamma}, but the Monte-Carlo returns of {FLAGS.offline_data} are "
            f"discounted with {metadata['gamma']}"
        )
    if FLAGS.inner_steps != 1:
        raise UsageError("--inner_steps: MACAW takes one inner step (value, then policy)")
    if FLAGS.eval_adapt_steps < 1:
        raise UsageError("--eval_adapt_steps: MACAW's eval/return is after one offline step")
    available = metadata["num_train_tasks"]
    if max(num_train_tasks) > available:
        raise UsageError(
            f"--num_train_tasks: {max(num_train_tasks)} exceeds the {available} training tasks "
            f"of {FLAGS.offline_data}"
        )
    config = MacawConfig(
        hidden_sizes=shared["hidden_sizes"],
        latent_size=FLAGS.latent_size,
        horizon=env.horizon,
        max_meta_batch_size=max(meta_batch_sizes),
        batch_size=FLAGS.batch_size,
        inner_lr_init=FLAGS.inner_lr,
        value_lr=FLAGS.value_lr,
        policy_lr=FLAGS.policy_lr,
        advantage_coef=FLAGS.advantage_coef,
        temperature=FLAGS.awr_temperature,
        max_weight=FLAGS.max_awr_weight,
        policy_std=FLAGS.policy_std,
        inner_steps=FLAGS.inner_steps,
        eval_adapt_steps=FLAGS.eval_adapt_steps,
        eval_episodes=FLAGS.eval_episodes,
    )
    return config, data


def _rl2_config(entry, shared, env, num_train_tasks, meta_batch_sizes, inner_loss):
    return Rl2Config(  # checks num_minibatches <= the largest meta-batch itself
        **shared,
        episodes_per_trial=FLAGS.episodes_per_trial,
        trials_per_task=FLAGS.trials_per_task,
        lr=FLAGS.outer_lr,
        ppo_epochs=FLAGS.ppo_epochs,
        num_minibatches=FLAGS.num_minibatches,
        clip=FLAGS.clip,
        value_coef=FLAGS.value_coef,
        entropy_coef=FLAGS.entropy_coef,
        max_grad_norm=FLAGS.max_grad_norm,
    )


def _maml_config(entry, shared, env, num_train_tasks, meta_batch_sizes, inner_loss):
    return MamlConfig(
        **shared,
        **entry.config_settings,
        activation=FLAGS.activation,
        rollouts_per_task=FLAGS.rollouts_per_task,
        inner_steps=FLAGS.inner_steps,
        inner_lr=FLAGS.inner_lr,
        inner_loss=inner_loss,
        first_order=FLAGS.first_order,
        max_kl=FLAGS.max_kl,
        cg_iterations=FLAGS.cg_iterations,
        cg_damping=FLAGS.cg_damping,
        line_search_steps=FLAGS.line_search_steps,
        line_search_ratio=FLAGS.line_search_ratio,
        fisher_subsample=FLAGS.fisher_subsample,
        outer_lr=FLAGS.outer_lr,
        ppo_steps=FLAGS.ppo_steps,
        clip=FLAGS.clip,
        inner_kl_coef=FLAGS.inner_kl_coef,
        eval_adapt_steps=FLAGS.eval_adapt_steps,
    )


def run_flags() -> dict[str, str]:
    """This app's flags that define a run, serialized (`--name=value`)."""
    return {
        flag.name: flag.serialize()
        for flag in FLAGS.get_flags_for_module(__name__)
        if flag.name not in LOCATION_FLAGS
    }


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
    current = parse_flag_lines(flags_file_text().splitlines())
    # A run saved before a flag existed ran with that flag's default; before the precision flags
    # existed, runs used JAX's default precision (TF32 matmuls on GPUs).
    defaults = parse_flag_lines(
        [FLAGS[name]._serialize(FLAGS[name].default) for name in current if name not in saved]
    )
    defaults.update({name: "default" for name in PRECISION_FLAGS if name not in saved})
    saved = {**defaults, **saved}
    for name in sorted(set(saved) | set(current)):
        if name not in RESUMABLE_FLAGS and saved.get(name) != current.get(name):
            raise UsageError(
                f"--resume: flag --{name} differs from the run in {out_dir} "
                f"({current.get(name, 'unset')!s} vs {saved.get(name, 'unset')!s})"
            )


def _without_data(build):
    return lambda *args: (build(*args), None)


# How each config class is built from the flags (until the flags are generated from the configs).
CONFIG_BUILDERS = {
    MamlConfig: _without_data(_maml_config),
    Rl2Config: _without_data(_rl2_config),
    PearlConfig: _without_data(_pearl_config),
    MacawConfig: _macaw_config,  # returns (config, offline data)
}
