"""Benchmarks that print figures (never timed assertions).

    python -m experiments.bench maml_trpo_nav [--fisher_subsample=0.25] [--repeats=5]
    python -m experiments.bench envs [--env_batch_sizes=64,256,1024] [--bench_tasks=4]
    python -m experiments.bench rl2_bandit [--bandit_arms=5] [--bandit_pulls=100]
    python -m experiments.bench sweep [--sweep_members=8] [--sweep_iterations=5]
    python -m experiments.bench pearl [--pearl_env=cheetah_dir] [--pearl_grad_steps=200]
    python -m experiments.bench macaw [--macaw_env=cheetah_dir]

Each figure is a mean over --repeats calls after a warm-up call.

maml_trpo_nav runs the reference 2-D navigation configuration (meta-batch 20, 20 episodes per task,
horizon 100, one inner step, TRPO with 10 conjugate-gradient iterations) and prints compile time,
seconds per meta-iteration split into sampling / inner adaptation / TRPO step, env steps/s, and
the meta-step's achieved GFLOP/s beside this machine's large-matmul GFLOP/s; first with the full
batch in the Fisher-vector products, then with --fisher_subsample of each task's episodes (the last
line's figure).

envs measures locomotion env steps/s (cheetah_dir, cheetah_vel, ant_dir, ant_goal) with random
actions: MJX (`make_locomotion_env`, jit(vmap) over episodes), native MuJoCo C alone
(`mujoco.rollout` on os.cpu_count() threads, no JAX, FRAME_SKIP physics steps per env step), and
the native env stepped from jit through a callback (`make_native_locomotion_env`), at several batch
sizes, excluding compilation; then env steps/s inside MAML's data collection (rollouts, baseline
fit, GAE) at the Figure-1 configuration (horizon 200, 20 episodes per task, meta-batch 40), vmapped
over --bench_tasks tasks (0: all 40 on an accelerator, 4 on a CPU). Last line: MJX env steps/s over
native C env steps/s for Cheetah-Dir at the largest batch.

rl2_bandit times one RL²-PPO iteration (the rl2_bandit flag file's setting: meta-batch 100 bandits,
one trial of --bandit_pulls pulls each, GRU 64, 5 PPO epochs) for one sweep member and for
--sweep_members members vmapped in one call, and the trial collection alone; it prints compile time,
updates/s and env steps/s, last line the single member's env steps/s.

sweep times one compiled sweep of --sweep_members members (seeds of the quickstart's MAML-TRPO
navigation configuration: meta-batch 20 x 20 episodes, horizon 100, Fisher subsample 0.25, 3
evaluation adaptation steps on 20 tasks) for --sweep_iterations iterations in one chunk, sharded
over every visible device, against the same members as separate runs (one compiled 1-member
function on one device, called once per seed). Compilation is timed apart (first call minus a
second, cached call) and left out of the steady-state ratio; totals with compilation are printed
too. Last line: separate-runs seconds over sweep seconds, steady state.

pearl times PEARL at the pearl_cheetah_dir flag file's shapes (actor/critic 3 x 300, encoder
3 x 200, latent 5, meta-batch 4, RL and context batches 256, 2 task buffers) on --pearl_env: the
gradient steps alone (--pearl_grad_steps of them in one scan), one iteration's data collection
alone (5 tasks x (1,000 prior + 1,000 posterior steps), MJX), and a whole iteration with
--pearl_grad_steps gradient steps, for one member and for --sweep_members members vmapped in one
call. Last line: the single member's gradient steps/s.

macaw times one MACAW meta-iteration (macaw's defaults: value and policy 3 x 100 with a
weight-transform layer on every layer, latent 100, task batch 5, batches of 256, one inner step,
second order) on --macaw_env's shapes with a synthetic offline data set (2 tasks x 100,000
transitions of random numbers: the update's cost does not depend on the values), for one member and
for --sweep_members members vmapped in one call. Last line: the single member's iterations/s.

Like every experiment app, it runs with the XLA CPU flag that `experiments/__init__.py` sets
(MJX batches of >= 512 Ant or 1,024 Cheetah episodes otherwise deadlock with jaxlib 0.10.2).
"""

import os
import platform
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from absl import app, flags
from mujoco import rollout as mj_rollout

from metarl_jax.algos import (
    MacawConfig,
    MacawData,
    MamlConfig,
    PearlConfig,
    Rl2Config,
    make_macaw,
    make_maml,
    make_pearl,
    make_rl2,
    sweep_member,
)
from metarl_jax.algos.maml import maml_parts
from metarl_jax.algos.pearl import pearl_parts
from metarl_jax.algos.rl2 import rl2_parts
from metarl_jax.envs import make_env
from metarl_jax.envs.locomotion import (
    FRAME_SKIP,
    LOCOMOTION,
    RESET_NOISE,
    load_model,
    make_locomotion_env,
)
from metarl_jax.envs.native import make_native_locomotion_env
from metarl_jax.rl import conjugate_gradient, make_policy

flags.DEFINE_integer("repeats", 5, "Timed repetitions of each piece (after a warm-up call).")
flags.DEFINE_float(
    "fisher_subsample",
    0.25,
    "Fraction of episodes in TRPO's Fisher products for the second measurement (the first is "
    "always the full batch).",
)
flags.DEFINE_integer("meta_batch_size", 20, "Tasks per meta-iteration.")
flags.DEFINE_integer("rollouts_per_task", 20, "Episodes per task.")
flags.DEFINE_list(
    "bench_envs", ["cheetah_dir", "cheetah_vel", "ant_dir", "ant_goal"], "envs: environments."
)
flags.DEFINE_list("env_batch_sizes", ["64", "256", "1024"], "envs: episodes per batch.")
flags.DEFINE_integer("env_horizon", 50, "envs: episode length of the random-action batches.")
flags.DEFINE_integer("env_repeats", 1, "envs: timed calls per figure (after a warm-up call).")
flags.DEFINE_integer(
    "bench_tasks",
    0,
    "envs: tasks vmapped in MAML's data collection (Figure 1: 40); 0 = 40 on an accelerator, "
    "4 on a CPU.",
)
flags.DEFINE_integer("bandit_arms", 5, "rl2_bandit: arms.")
flags.DEFINE_integer("bandit_pulls", 100, "rl2_bandit: pulls per trial.")
flags.DEFINE_integer(
    "sweep_members", 8, "rl2_bandit, sweep: members (seeds) vmapped in one compiled call."
)
flags.DEFINE_integer("sweep_iterations", 5, "sweep: meta-iterations of every member.")
flags.DEFINE_string("pearl_env", "cheetah_dir", "pearl: environment.")
flags.DEFINE_integer("pearl_grad_steps", 200, "pearl: gradient steps per timed call.")
flags.DEFINE_string("macaw_env", "cheetah_dir", "macaw: environment whose shapes the data has.")
FLAGS = flags.FLAGS


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    device = jax.devices()[0]
    return (
        f"{device.platform} {device.device_kind}; {os.cpu_count()} cores ({cpu}); "
        f"jax {jax.__version__}"
    )


def timed(fn, *args, repeats: int):
    """(seconds per call, result) after one warm-up call; blocks on the result."""
    result = jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        result = jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / repeats, result


def flops_of(fn, *args) -> float:
    """XLA's FLOP count of a jitted function (loop bodies count once: keep loops out of `fn`)."""
    cost = fn.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", 0.0))


def matmul_gflops(repeats: int, size: int = 2048) -> float:
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size))
    seconds, _ = timed(jax.jit(lambda x: x @ x), a, repeats=max(repeats, 5))
    return 2 * size**3 / seconds / 1e9


def bench_maml_trpo_nav() -> None:
    print(f"machine: {machine_description()}")
    matmul = matmul_gflops(FLAGS.repeats)
    print(f"large matmul on this machine: {matmul:.1f} GFLOP/s")
    full = measure_maml_trpo_nav(fisher_subsample=1.0)
    print(f"maml_trpo_nav_full_batch_iters_per_s: {1.0 / full:.3f}")
    print()
    subsampled = measure_maml_trpo_nav(fisher_subsample=FLAGS.fisher_subsample)
    print(f"large matmul on this machine: {matmul_gflops(FLAGS.repeats):.1f} GFLOP/s")
    print(
        f"full batch {full:.3f} s, Fisher subsample {FLAGS.fisher_subsample} "
        f"{subsampled:.3f} s per meta-iteration"
    )
    print(f"maml_trpo_nav_iters_per_s: {1.0 / subsampled:.3f}")


def measure_maml_trpo_nav(fisher_subsample: float) -> float:
    """Print the figures of one configuration; return seconds per meta-iteration."""
    repeats = FLAGS.repeats
    env = make_env("navigation", horizon=100)
    config = MamlConfig(
        outer_optimizer="trpo",
        horizon=100,
        rollouts_per_task=FLAGS.rollouts_per_task,
        max_meta_batch_size=FLAGS.meta_batch_size,
        inner_steps=1,
        cg_iterations=10,
        fisher_subsample=fisher_subsample,
    )
    num_tasks = config.max_meta_batch_size
    print(
        f"config: meta-batch {num_tasks} x {config.rollouts_per_task} episodes x horizon "
        f"{config.horizon}, 1 inner step, TRPO {config.cg_iterations} CG iterations, "
        f"fisher_subsample {config.fisher_subsample}"
    )

    algorithm = make_maml(config, env)
    member = sweep_member(0, num_tasks)
    state = jax.jit(algorithm.init)(member)
    update = jax.jit(algorithm.update)
    start = time.perf_counter()
    compiled_update = update.lower(state, member).compile()
    compile_seconds = time.perf_counter() - start
    for _ in range(2):  # a couple of iterations so the policy is not at its initialization
        state, _ = compiled_update(state, member)
    iteration_seconds, (_, metrics) = timed(compiled_update, state, member, repeats=repeats)

    # The same computation in pieces, each jitted on its own, for the split and the FLOP count.
    parts = maml_parts(config, env)
    params = state["params"]
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(jax.random.PRNGKey(1), num_tasks))
    keys = jax.random.split(jax.random.PRNGKey(2), num_tasks)
    weights = jnp.full((num_tasks,), 1.0 / num_tasks)

    collect = jax.jit(jax.vmap(parts.collect, in_axes=(None, 0, 0)))
    adapt = jax.jit(jax.vmap(parts.adapt, in_axes=(None, 0)))
    sample_all = jax.jit(jax.vmap(parts.sample_task, in_axes=(None, 0, 0)))
    trpo_step = jax.jit(parts.trpo_step)
    collect_seconds, (batches, _) = timed(collect, params, tasks, keys, repeats=repeats)
    adapt_seconds, _ = timed(adapt, params, batches, repeats=repeats)
    inner, post, _ = sample_all(params, tasks, keys)
    trpo_seconds, _ = timed(trpo_step, params, inner, post, weights, repeats=repeats)

    @jax.jit
    def linearize_and_gradient(params, inner, post, weights):
        return parts.trpo_problem(params, inner, post, weights).gradient

    @jax.jit
    def plus_one_fisher_product(params, inner, post, weights):
        problem = parts.trpo_problem(params, inner, post, weights)
        return problem.fisher_vector_product(problem.gradient)

    @jax.jit
    def plus_cg(params, inner, post, weights):
        problem = parts.trpo_problem(params, inner, post, weights)
        return conjugate_gradient(
            problem.fisher_vector_product, -problem.gradient, config.cg_iterations
        )[0]

    @jax.jit
    def one_step_evaluation(params, inner, post, weights):
        problem = parts.trpo_problem(params, inner, post, weights)
        return problem.evaluate_step(0.01 * problem.gradient)

    pieces = (params, inner, post, weights)
    linearize_seconds, _ = timed(linearize_and_gradient, *pieces, repeats=repeats)
    one_product_seconds, _ = timed(plus_one_fisher_product, *pieces, repeats=repeats)
    cg_seconds, _ = timed(plus_cg, *pieces, repeats=repeats)
    fisher_product_seconds = (cg_seconds - linearize_seconds) / config.cg_iterations
    tries = float(metrics["optim/line_search_tries"])

    flops_collect = flops_of(collect, params, tasks, keys)
    flops_adapt = flops_of(adapt, params, batches)
    flops_linearize = flops_of(linearize_and_gradient, *pieces)
    flops_product = flops_of(plus_one_fisher_product, *pieces) - flops_linearize
    flops_evaluation = flops_of(one_step_evaluation, *pieces) - flops_linearize
    flops_iteration = (
        2 * flops_collect
        + flops_adapt
        + flops_linearize
        + config.cg_iterations * flops_product
        + tries * flops_evaluation
    )
    env_steps = num_tasks * config.rollouts_per_task * config.horizon * 2
    sampling_seconds = 2 * collect_seconds

    print(f"compile time (one meta-iteration): {compile_seconds:.2f} s")
    print(f"seconds per meta-iteration: {iteration_seconds:.3f} (one compiled update)")
    print(f"  sampling (2 x {num_tasks} tasks of rollouts + GAE): {sampling_seconds:.3f} s")
    print(f"  inner adaptation: {adapt_seconds:.3f} s")
    print(f"  TRPO step: {trpo_seconds:.3f} s")
    print(f"    linearization + surrogate gradient: {linearize_seconds:.3f} s")
    print(
        f"    one Fisher-vector product: {fisher_product_seconds * 1e3:.1f} ms "
        f"(first alone: {(one_product_seconds - linearize_seconds) * 1e3:.1f} ms)"
    )
    print(f"    line search: {tries:.0f} evaluations")
    print(f"env steps/s: {env_steps / iteration_seconds:,.0f}")
    print(
        f"meta-step FLOPs (XLA count): {flops_iteration / 1e9:.2f} GFLOP -> "
        f"{flops_iteration / iteration_seconds / 1e9:.1f} GFLOP/s achieved; "
        f"Fisher-vector product {flops_product / 1e9:.2f} GFLOP"
    )
    return iteration_seconds


def random_action_episodes(env, horizon: int):
    """jit(vmap over episodes) of random-action episodes of one task; returns each return."""

    def episode(key, task):
        reset_key, run_key = jax.random.split(key)
        _, state = env.reset(reset_key, task)

        def step(carry, step_key):
            state, total = carry
            action = jax.random.uniform(step_key, (env.action_size,), minval=-1.0, maxval=1.0)
            _, state, reward, _ = env.step(step_key, state, action, task)
            return (state, total + reward), None

        keys = jax.random.split(run_key, horizon)
        return jax.lax.scan(step, (state, jnp.zeros(())), keys)[0][1]

    return jax.jit(jax.vmap(episode, in_axes=(0, None)))


def compiled_seconds(fn, *args, repeats: int):
    """(compile seconds, seconds per call after a warm-up call) of a jitted function."""
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_seconds = time.perf_counter() - start
    seconds, _ = timed(compiled, *args, repeats=repeats)
    return compile_seconds, seconds


def jax_env_steps_per_s(env, batch: int, horizon: int, repeats: int):
    task = env.task_space.sample(jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(1), batch)
    compile_s, seconds = compiled_seconds(
        random_action_episodes(env, horizon), keys, task, repeats=repeats
    )
    return batch * horizon / seconds, compile_s


def native_c_env_steps_per_s(robot: str, batch: int, horizon: int, repeats: int) -> float:
    """MuJoCo C alone: one `mujoco.rollout` call of batch x horizon x FRAME_SKIP physics steps."""
    model = load_model(robot)
    threads = os.cpu_count() or 1
    rng = np.random.default_rng(0)
    state = np.zeros((batch, mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS)))
    state[:, 1 : 1 + model.nq] = model.qpos0 + rng.uniform(
        -RESET_NOISE, RESET_NOISE, (batch, model.nq)
    )
    state[:, 1 + model.nq : 1 + model.nq + model.nv] = RESET_NOISE * rng.normal(
        size=(batch, model.nv)
    )
    control = np.repeat(rng.uniform(-1, 1, (batch, horizon, model.nu)), FRAME_SKIP, axis=1)
    datas = [mujoco.MjData(model) for _ in range(threads)]
    with mj_rollout.Rollout(nthread=threads) as pool:
        run = lambda: pool.rollout(model, datas, state, control)
        run()
        start = time.perf_counter()
        for _ in range(repeats):
            run()
        seconds = (time.perf_counter() - start) / repeats
    return batch * horizon / seconds


def maml_collect_env_steps_per_s(env, num_tasks: int, repeats: int):
    """Env steps/s of MAML's data collection (rollouts + baseline + GAE) vmapped over tasks."""
    config = MamlConfig(horizon=200, rollouts_per_task=20, max_meta_batch_size=40)
    env = env._replace(horizon=config.horizon)
    parts = maml_parts(config, env)
    params = make_policy(env, config.hidden_sizes, config.activation).init(jax.random.PRNGKey(0))
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(jax.random.PRNGKey(1), num_tasks))
    keys = jax.random.split(jax.random.PRNGKey(2), num_tasks)
    collect = jax.jit(jax.vmap(parts.collect, in_axes=(None, 0, 0)))
    compile_s, seconds = compiled_seconds(collect, params, tasks, keys, repeats=repeats)
    return num_tasks * config.rollouts_per_task * config.horizon / seconds, compile_s


def bench_envs() -> None:
    start = time.perf_counter()
    print(f"machine: {machine_description()}")
    batches = sorted(int(b) for b in FLAGS.env_batch_sizes)
    horizon, repeats = FLAGS.env_horizon, FLAGS.env_repeats
    accelerator = jax.devices()[0].platform != "cpu"
    num_tasks = FLAGS.bench_tasks or (40 if accelerator else 4)
    print(
        f"random-action episodes of horizon {horizon} (frame skip {FRAME_SKIP}), batch sizes "
        f"{batches}; native C: mujoco.rollout on {os.cpu_count()} threads; native jit: "
        f"make_native_locomotion_env through jax.pure_callback; timings exclude compilation, "
        f"{repeats} timed call(s) after a warm-up call"
    )
    rows, cheetah_ratio = [], None
    header = (
        f"{'env':<12} {'batch':>6} {'MJX':>10} {'native C':>10} {'native jit':>11} "
        f"{'MJX/C':>7} {'jit/C':>7} {'jit/MJX':>8} {'compile MJX/jit s':>18}"
    )
    print("env steps/s")
    print(header)
    for name in FLAGS.bench_envs:
        mjx_env = make_locomotion_env(name, horizon=horizon)
        native_env = make_native_locomotion_env(name, horizon=horizon)
        for batch in batches:
            mjx_rate, mjx_compile = jax_env_steps_per_s(mjx_env, batch, horizon, repeats)
            c_rate = native_c_env_steps_per_s(LOCOMOTION[name].robot, batch, horizon, repeats)
            jit_rate, jit_compile = jax_env_steps_per_s(native_env, batch, horizon, repeats)
            row = (
                f"{name:<12} {batch:>6} {mjx_rate:>10,.0f} {c_rate:>10,.0f} {jit_rate:>11,.0f} "
                f"{mjx_rate / c_rate:>7.3f} {jit_rate / c_rate:>7.3f} {jit_rate / mjx_rate:>8.2f} "
                f"{mjx_compile:>9.1f}/{jit_compile:<8.1f}"
            )
            print(row, flush=True)
            rows.append(row)
            if name == "cheetah_dir" and batch == batches[-1]:
                cheetah_ratio = mjx_rate / c_rate
    print()
    print(
        f"MAML data collection (rollouts + baseline + GAE), Figure-1 config: horizon 200 x 20 "
        f"episodes per task x {num_tasks} tasks (Figure 1: 40) = "
        f"{num_tasks * 20 * 200:,} env steps per call"
    )
    print(f"{'env':<12} {'MJX':>10} {'native jit':>11} {'jit/MJX':>8} {'compile MJX/jit s':>18}")
    for name in FLAGS.bench_envs:
        mjx_rate, mjx_compile = maml_collect_env_steps_per_s(
            make_locomotion_env(name), num_tasks, repeats
        )
        jit_rate, jit_compile = maml_collect_env_steps_per_s(
            make_native_locomotion_env(name), num_tasks, repeats
        )
        print(
            f"{name:<12} {mjx_rate:>10,.0f} {jit_rate:>11,.0f} {jit_rate / mjx_rate:>8.2f} "
            f"{mjx_compile:>9.1f}/{jit_compile:<8.1f}",
            flush=True,
        )
    print(f"benchmark wall time: {time.perf_counter() - start:.0f} s")
    if cheetah_ratio is not None:
        print(f"mjx_vs_native_cpu_ratio: {cheetah_ratio:.3f}")


def bench_rl2_bandit() -> None:
    print(f"machine: {machine_description()}")
    arms, pulls, repeats = FLAGS.bandit_arms, FLAGS.bandit_pulls, FLAGS.repeats
    env = make_env("bandit", horizon=pulls, num_arms=arms)
    config = Rl2Config(horizon=pulls, episodes_per_trial=1, max_meta_batch_size=100)
    algorithm = make_rl2(config, env)
    steps_per_update = config.max_meta_batch_size * pulls
    print(
        f"RL²-PPO, {arms}-armed bandits, {pulls} pulls per trial, meta-batch "
        f"{config.max_meta_batch_size}, GRU {config.hidden_sizes}, {config.ppo_epochs} epochs"
    )

    parts = rl2_parts(config, env)
    params = parts.agent.init(jax.random.PRNGKey(0))
    tasks = jax.vmap(env.task_space.sample)(
        jax.random.split(jax.random.PRNGKey(1), config.max_meta_batch_size)
    )
    keys = jax.random.split(jax.random.PRNGKey(2), config.max_meta_batch_size)
    collect = jax.jit(jax.vmap(parts.collect, in_axes=(None, 0, 0)))
    _, collect_s = compiled_seconds(collect, params, tasks, keys, repeats=repeats)
    print(
        f"trial collection alone: {collect_s * 1e3:.1f} ms, "
        f"{steps_per_update / collect_s:,.0f} env steps/s"
    )

    for members in (1, FLAGS.sweep_members):
        member = jax.vmap(lambda s: sweep_member(s, config.max_meta_batch_size))(
            jnp.arange(members)
        )
        state = jax.jit(jax.vmap(algorithm.init))(member)
        update = jax.jit(jax.vmap(algorithm.update))
        compile_s, update_s = compiled_seconds(update, state, member, repeats=repeats)
        print(
            f"{members} member(s) in one call: compile {compile_s:.1f} s, "
            f"{update_s * 1e3:.1f} ms per iteration, {1.0 / update_s:.2f} updates/s, "
            f"{members * steps_per_update / update_s:,.0f} env steps/s"
        )
        if members == 1:
            single_update_s = update_s
    print(f"rl2_bandit_updates_per_s: {1.0 / single_update_s:.3f}")
    print(f"rl2_bandit_steps_per_s: {steps_per_update / single_update_s:.0f}")


def bench_sweep() -> None:
    from metarl_jax.sweep import sweep_members, train

    print(f"machine: {machine_description()}")
    num_members, iterations = FLAGS.sweep_members, FLAGS.sweep_iterations
    meta_batch = FLAGS.meta_batch_size
    config = MamlConfig(
        outer_optimizer="trpo",
        horizon=100,
        rollouts_per_task=FLAGS.rollouts_per_task,
        max_meta_batch_size=meta_batch,
        fisher_subsample=0.25,
        eval_adapt_steps=3,
        num_eval_tasks=20,
    )
    algorithm = make_maml(config, make_env("navigation", horizon=config.horizon))
    devices = jax.devices()
    print(
        f"MAML-TRPO navigation (quickstart): meta-batch {meta_batch} x "
        f"{config.rollouts_per_task} episodes x horizon {config.horizon}, Fisher subsample "
        f"{config.fisher_subsample}; {num_members} members x {iterations} iterations "
        f"(one chunk, evaluation at its end); {len(devices)} device(s)"
    )

    def run(seeds, run_devices) -> float:
        members, _ = sweep_members(seeds, (meta_batch,))
        start = time.perf_counter()
        result = list(train(algorithm, members, iterations, iterations, devices=run_devices))[-1]
        jax.block_until_ready(result.state)
        return time.perf_counter() - start

    seeds = list(range(num_members))
    first = run(seeds, devices)  # compiles
    sweep_s = run(seeds, devices)  # cached
    sweep_compile = first - sweep_s
    print(
        f"one sweep of {num_members} members on {len(devices)} device(s): compile "
        f"{sweep_compile:.1f} s, run {sweep_s:.2f} s; with compile {first:.1f} s",
        flush=True,
    )

    first = run([0], devices[:1])  # compiles the 1-member function
    separate = [run([seed], devices[:1]) for seed in seeds]
    single_compile = first - separate[0]
    separate_s = sum(separate)
    print(
        f"{num_members} separate 1-member runs on 1 device: compile {single_compile:.1f} s "
        f"(once), run {separate_s:.2f} s ({separate_s / num_members:.2f} s each); with compile "
        f"{single_compile + separate_s:.1f} s in one process, "
        f"{num_members * single_compile + separate_s:.1f} s as {num_members} processes",
        flush=True,
    )
    member_steps = iterations * meta_batch * config.rollouts_per_task * config.horizon * 2
    print(
        f"training env steps/s, all members (evaluation inside the timed call): sweep "
        f"{num_members * member_steps / sweep_s:,.0f}, separate "
        f"{num_members * member_steps / separate_s:,.0f}"
    )
    sweep_total = sweep_compile + sweep_s
    print(
        f"separate / sweep: {separate_s / sweep_s:.2f}x steady state; with compile "
        f"{(single_compile + separate_s) / sweep_total:.2f}x (one process), "
        f"{(num_members * single_compile + separate_s) / sweep_total:.2f}x "
        f"({num_members} processes)"
    )
    print(f"sweep_speedup: {separate_s / sweep_s:.3f}")


def bench_pearl() -> None:
    print(f"machine: {machine_description()}")
    env = make_env(FLAGS.pearl_env)
    grad_steps, repeats = FLAGS.pearl_grad_steps, FLAGS.repeats
    config = PearlConfig(
        horizon=env.horizon, grad_steps=grad_steps, replay_capacity=20_000, num_eval_tasks=2
    )
    parts = pearl_parts(config, env)
    algorithm = make_pearl(config, env)
    collected = config.num_tasks_sample * (config.prior_steps + config.posterior_steps)
    print(
        f"PEARL on {env.name} (horizon {env.horizon}): actor/critic {config.hidden_sizes}, encoder "
        f"{config.encoder_hidden_sizes}, latent {config.latent_size}, meta-batch "
        f"{config.max_meta_batch_size}, batches {config.batch_size}/{config.context_batch_size}; "
        f"{grad_steps} gradient steps and {collected:,} env steps per timed iteration"
    )
    weights = jnp.ones((config.max_meta_batch_size,))
    single = None
    for members in (1, FLAGS.sweep_members):
        member = jax.vmap(lambda s: sweep_member(s, config.max_meta_batch_size))(
            jnp.arange(members)
        )
        state = jax.block_until_ready(jax.jit(jax.vmap(algorithm.init))(member))

        def gradient_steps(state):
            train_state = (state["params"], state["target_critic"], state["opt_state"])
            return parts.gradient_steps(
                train_state, state["buffers"], config.num_task_buffers, weights, state["key"]
            )

        def collection(state):
            tasks = jax.tree.map(
                lambda x: jnp.resize(x, (config.num_tasks_sample, *x.shape[1:])),
                jax.vmap(env.task_space.sample)(jax.random.split(state["key"], 2)),
            )
            keys = jax.random.split(state["key"], config.num_tasks_sample)
            return jax.vmap(parts.collect_for_task, in_axes=(None, 0, 0))(
                state["params"], tasks, keys
            )

        figures = {}
        for name, fn in (
            ("gradient steps", gradient_steps),
            ("collection", collection),
            ("whole iteration", algorithm.update),
        ):
            args = (state, member) if name == "whole iteration" else (state,)
            compile_s, seconds = compiled_seconds(jax.jit(jax.vmap(fn)), *args, repeats=repeats)
            figures[name] = seconds
            print(f"{members} member(s), {name}: compile {compile_s:.1f} s, {seconds:.3f} s")
        grad_rate = members * grad_steps / figures["gradient steps"]
        print(
            f"{members} member(s) in one call: {grad_rate:,.0f} gradient steps/s (alone), "
            f"{members * collected / figures['collection']:,.0f} env steps/s (collection "
            f"alone), whole iteration {members * grad_steps / figures['whole iteration']:,.0f} "
            f"gradient steps/s and {members * collected / figures['whole iteration']:,.0f} env "
            "steps/s",
            flush=True,
        )
        if members == 1:
            single = grad_rate
    print(f"pearl_grad_steps_per_s: {single:.1f}")


def bench_macaw() -> None:
    print(f"machine: {machine_description()}")
    env = make_env(FLAGS.macaw_env)
    config = MacawConfig(horizon=env.horizon, eval_episodes=1)
    tasks, transitions = 2, 100_000
    rng = np.random.default_rng(0)

    def buffers():
        actions = (
            rng.integers(0, env.action_size, (tasks, transitions)).astype(np.int32)
            if env.discrete
            else rng.uniform(-1, 1, (tasks, transitions, env.action_size)).astype(np.float32)
        )
        return {
            "obs": rng.normal(size=(tasks, transitions, env.obs_size)).astype(np.float32),
            "actions": actions,
            "rewards": rng.normal(size=(tasks, transitions)).astype(np.float32),
            "returns": rng.normal(size=(tasks, transitions)).astype(np.float32),
        }

    task_batch = jax.vmap(env.task_space.sample)(jax.random.split(jax.random.PRNGKey(0), tasks))
    data = MacawData(buffers(), buffers(), task_batch, task_batch)
    algorithm = make_macaw(config, env, data)
    print(
        f"MACAW on {env.name}'s shapes (obs {env.obs_size}, actions {env.action_size}): "
        f"networks {config.hidden_sizes} with weight-transform latents {config.latent_size}, "
        f"task batch {config.max_meta_batch_size} x {config.batch_size} transitions (x2: inner "
        "and outer), one inner step, second order"
    )
    single = None
    for members in (1, FLAGS.sweep_members):
        member = jax.vmap(lambda s: sweep_member(s, config.max_meta_batch_size))(
            jnp.arange(members)
        )
        state = jax.jit(jax.vmap(algorithm.init, in_axes=(0, None)))(member, data)
        update = jax.jit(jax.vmap(algorithm.update, in_axes=(0, 0, None)))
        compile_s, seconds = compiled_seconds(update, state, member, data, repeats=FLAGS.repeats)
        print(
            f"{members} member(s) in one call: compile {compile_s:.1f} s, "
            f"{seconds * 1e3:.1f} ms per iteration, {members / seconds:,.1f} member-iterations/s",
            flush=True,
        )
        if members == 1:
            single = 1.0 / seconds
    print(f"macaw_iters_per_s: {single:.2f}")


BENCHMARKS = {
    "maml_trpo_nav": bench_maml_trpo_nav,
    "macaw": bench_macaw,
    "pearl": bench_pearl,
    "envs": bench_envs,
    "rl2_bandit": bench_rl2_bandit,
    "sweep": bench_sweep,
}


def main(argv):
    if len(argv) != 2 or argv[1] not in BENCHMARKS:
        raise app.UsageError(f"usage: python -m experiments.bench {{{','.join(BENCHMARKS)}}}")
    jax.config.update("jax_default_matmul_precision", "highest")  # the apps' default
    print(f"XLA_FLAGS: {os.environ.get('XLA_FLAGS', '')}; float32 matmul precision: highest")
    BENCHMARKS[argv[1]]()


def entry_point():
    app.run(main)


if __name__ == "__main__":
    entry_point()
