"""envs: locomotion env steps/s (cheetah_dir, cheetah_vel, ant_dir, ant_goal) with random actions.

Three ways of stepping: MJX (`make_locomotion_env`, jit(vmap) over episodes), native MuJoCo C alone
(`mujoco.rollout` on os.cpu_count() threads, no JAX, FRAME_SKIP physics steps per env step), and
the native env stepped from jit through a callback (`make_native_locomotion_env`), at several batch
sizes, excluding compilation; then env steps/s inside MAML's data collection (rollouts, baseline
fit, GAE) at the Figure-1 configuration (horizon 200, 20 episodes per task, meta-batch 40), vmapped
over --bench_tasks tasks. Last line: MJX env steps/s over native C env steps/s for Cheetah-Dir at
the largest batch.

On a CPU it runs by default Cheetah-Dir and Ant-Dir at batch 1,024 with 4 tasks in the collection
(the reference's 12 + 4 MJX compilations take about 10 minutes there).
"""

import functools
import os
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from absl import flags
from mujoco import rollout as mj_rollout

from experiments.app_plumbing import check_one_of, int_list
from experiments.bench.measure import compiled_seconds, machine_description, sizes
from metarl_jax.algos import MamlConfig, maml
from metarl_jax.envs.locomotion import (
    FRAME_SKIP,
    LOCOMOTION,
    RESET_NOISE,
    load_model,
    make_locomotion_env,
)
from metarl_jax.envs.native import make_native_locomotion_env
from metarl_jax.rl import make_policy

REFERENCE_SIZES = {
    "bench_envs": ["cheetah_dir", "cheetah_vel", "ant_dir", "ant_goal"],
    "env_batch_sizes": [64, 256, 1024],
    "bench_tasks": 40,
}
CPU_SIZES = {
    "bench_envs": ["cheetah_dir", "ant_dir"],
    "env_batch_sizes": [1024],
    "bench_tasks": 4,
}

flags.DEFINE_list(
    "bench_envs",
    None,
    "envs: environments (cheetah_dir,cheetah_vel,ant_dir,ant_goal; on a CPU cheetah_dir,ant_dir).",
)
flags.DEFINE_list("env_batch_sizes", None, "envs: episodes per batch (64,256,1024; on a CPU 1024).")
flags.DEFINE_integer("env_horizon", 50, "envs: episode length of the random-action batches.")
flags.DEFINE_integer("env_repeats", 1, "envs: timed calls per figure (after a warm-up call).")
flags.DEFINE_integer(
    "bench_tasks", None, "envs: tasks vmapped in MAML's data collection (Figure 1: 40; on a CPU 4)."
)
FLAGS = flags.FLAGS


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
    policy = make_policy(env, config.hidden_sizes, config.activation)
    params = policy.init(jax.random.PRNGKey(0))
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(jax.random.PRNGKey(1), num_tasks))
    keys = jax.random.split(jax.random.PRNGKey(2), num_tasks)
    collect = jax.jit(
        jax.vmap(functools.partial(maml.collect, config, env, policy), in_axes=(None, 0, 0))
    )
    compile_s, seconds = compiled_seconds(collect, params, tasks, keys, repeats=repeats)
    return num_tasks * config.rollouts_per_task * config.horizon / seconds, compile_s


def run() -> None:
    start = time.perf_counter()
    print(f"machine: {machine_description()}")
    size = sizes(REFERENCE_SIZES, CPU_SIZES)
    for name in size["bench_envs"]:
        check_one_of("bench_envs", name, LOCOMOTION)
    batches = sorted(int_list("env_batch_sizes", map(str, size["env_batch_sizes"])))
    env_names, num_tasks = size["bench_envs"], size["bench_tasks"]
    horizon, repeats = FLAGS.env_horizon, FLAGS.env_repeats
    print(
        f"random-action episodes of horizon {horizon} (frame skip {FRAME_SKIP}), batch sizes "
        f"{batches}; native C: mujoco.rollout on {os.cpu_count()} threads; native jit: "
        f"make_native_locomotion_env through jax.pure_callback; timings exclude compilation, "
        f"{repeats} timed call(s) after a warm-up call"
    )
    cheetah_ratio = None
    header = (
        f"{'env':<12} {'batch':>6} {'MJX':>10} {'native C':>10} {'native jit':>11} "
        f"{'MJX/C':>7} {'jit/C':>7} {'jit/MJX':>8} {'compile MJX/jit s':>18}"
    )
    print("env steps/s")
    print(header)
    for name in env_names:
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
            if name == "cheetah_dir" and batch == batches[-1]:
                cheetah_ratio = mjx_rate / c_rate
    print()
    print(
        f"MAML data collection (rollouts + baseline + GAE), Figure-1 config: horizon 200 x 20 "
        f"episodes per task x {num_tasks} tasks (Figure 1: 40) = "
        f"{num_tasks * 20 * 200:,} env steps per call"
    )
    print(f"{'env':<12} {'MJX':>10} {'native jit':>11} {'jit/MJX':>8} {'compile MJX/jit s':>18}")
    for name in env_names:
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
