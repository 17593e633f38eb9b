"""macaw: one MACAW meta-iteration at macaw's defaults (value and policy 3 x 100 with a
weight-transform layer on every layer, latent 100, task batch 5, batches of 256, one inner step,
second order) on --macaw_env's shapes, for one member and for --sweep_members members vmapped in one
call.

The offline data set is synthetic (2 tasks x 100,000 transitions of random numbers): the update's
cost does not depend on the values. Last line: the single member's iterations/s.
"""

import jax
import numpy as np
from absl import flags

from experiments.bench.measure import (
    compiled_seconds,
    machine_description,
    member_counts,
    sizes,
    vmapped_members,
)
from metarl_jax.algos import MacawConfig, MacawData, make_macaw
from metarl_jax.envs import make_env

flags.DEFINE_string("macaw_env", "cheetah_dir", "macaw: environment whose shapes the data has.")
FLAGS = flags.FLAGS


def run() -> None:
    print(f"machine: {machine_description()}")
    size = sizes({"repeats": 5, "sweep_members": 8})
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
        f"networks {config.hidden_sizes} with weight-transform latents {config.wt_latent_size}, "
        f"task batch {config.max_meta_batch_size} x {config.batch_size} transitions (x2: inner "
        "and outer), one inner step, second order"
    )
    single = None
    for members in member_counts(size["sweep_members"]):
        member = vmapped_members(members, config.max_meta_batch_size)
        state = jax.jit(jax.vmap(algorithm.init, in_axes=(0, None)))(member, data)
        update = jax.jit(jax.vmap(algorithm.update, in_axes=(0, 0, None)))
        compile_s, seconds = compiled_seconds(update, state, member, data, repeats=size["repeats"])
        print(
            f"{members} member(s) in one call: compile {compile_s:.1f} s, "
            f"{seconds * 1e3:.1f} ms per iteration, {members / seconds:,.1f} member-iterations/s",
            flush=True,
        )
        if members == 1:
            single = 1.0 / seconds
    print(f"macaw_iters_per_s: {single:.2f}")
