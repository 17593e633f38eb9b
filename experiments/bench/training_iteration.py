"""Time one training iteration of a run's flag file (one member, compile excluded), for
`bench locomotion`; an app of its own because it needs the run flags, whose names the
benchmarks' flags share.

    python -m experiments.bench.training_iteration --flagfile=F [--repeats=2]

Prints one JSON line: env steps per iteration, seconds per iteration (the whole jitted update) and
per collection (the iteration's env interaction alone, where the algorithm exposes it), the
episodes one physics batch steps, the horizon, the robot and the physics path.
"""

import functools
import json
import time

import jax
import jax.numpy as jnp
from absl import flags

from experiments import cli
from experiments.app_plumbing import UsageError, run_app
from metarl_jax.algos import maml, rl2
from metarl_jax.algos.maml import MamlConfig
from metarl_jax.algos.rl2 import Rl2Config
from metarl_jax.rl import make_policy
from metarl_jax.sweep import sweep_members

flags.DEFINE_integer("timed_iterations", 2, "Timed iterations (after a warm-up one).")
FLAGS = cli.FLAGS


def seconds_per_call(fn, *args, repeats: int) -> tuple[float, float]:
    """(compile + first call seconds, seconds per later call)."""
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return first, (time.perf_counter() - start) / repeats


def collection_seconds(spec, repeats: int) -> tuple[float, int]:
    """(seconds, episodes in one physics batch) of the iteration's env interaction alone: MAML's
    sampling of every task (pre- and post-adaptation episodes with the inner step between), RL²'s
    trials."""
    env, config = spec.env, spec.config
    num_tasks = spec.meta_batch_sizes[0]
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(jax.random.PRNGKey(1), num_tasks))
    keys = jax.random.split(jax.random.PRNGKey(2), num_tasks)
    if isinstance(config, MamlConfig):
        policy = make_policy(env, config.hidden_sizes, config.activation)
        params = policy.init(jax.random.PRNGKey(0))
        collect = functools.partial(maml.sample_task, config, env, policy)
        episodes = num_tasks * config.rollouts_per_task
    elif isinstance(config, Rl2Config):
        agent = rl2.rl2_agent(config, env)
        params = agent.init(jax.random.PRNGKey(0))
        collect = functools.partial(rl2.collect, config, env, agent)
        episodes = num_tasks * config.trials_per_task
    else:
        raise UsageError(f"--algo: {spec.algo} is not timed by bench locomotion")
    collect_tasks = jax.jit(jax.vmap(collect, in_axes=(None, 0, 0)))
    return seconds_per_call(collect_tasks, params, tasks, keys, repeats=repeats)[1], episodes


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    spec = cli.spec_from_flags()
    cli.apply_matmul_precision()
    algorithm = cli.make_algorithm(spec)
    members, _ = sweep_members((0,), spec.meta_batch_sizes[:1], spec.num_train_tasks[:1])
    state = jax.jit(jax.vmap(algorithm.init))(members)
    update = jax.jit(jax.vmap(algorithm.update))
    compile_s, iteration_s = seconds_per_call(
        lambda s: update(s, members)[0], state, repeats=FLAGS.timed_iterations
    )
    collect_s, batch = collection_seconds(spec, FLAGS.timed_iterations)
    steps = float(jnp.sum(jax.vmap(algorithm.env_steps_per_iteration)(members)))
    print(
        json.dumps(
            {
                "algo": spec.algo,
                "env": spec.env.name,
                "physics": FLAGS.physics,
                "horizon": spec.env.horizon,
                "physics_batch": batch,
                "env_steps_per_iteration": steps,
                "iteration_seconds": iteration_s,
                "collection_seconds": collect_s,
                "first_call_seconds": compile_s,
            }
        )
    )
    return 0


if __name__ == "__main__":
    run_app(main)
