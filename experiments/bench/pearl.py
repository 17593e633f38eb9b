"""pearl: PEARL at the pearl_cheetah_dir flag file's shapes (actor/critic 3 x 300, encoder 3 x 200,
latent 5, meta-batch 4, RL and context batches 256, 2 task buffers) on --pearl_env.

Times the gradient steps alone (--pearl_grad_steps of them in one scan), one iteration's data
collection alone (5 tasks x (1,000 prior + 1,000 posterior steps), MJX), and a whole iteration with
--pearl_grad_steps gradient steps, for one member and for --sweep_members members vmapped in one
call. Last line: the single member's gradient steps/s.

On a CPU it runs by default 50 gradient steps per call, 2 timed calls, one member only: compiling
the initial data, the collection and the iteration takes minutes there, and again for the vmapped
members.
"""

import functools

import jax
import jax.numpy as jnp
import optax
from absl import flags

from experiments.bench.measure import (
    compiled_seconds,
    machine_description,
    member_counts,
    sizes,
    vmapped_members,
)
from metarl_jax.algos import PearlConfig, make_pearl
from metarl_jax.algos.pearl import (
    acting_env,
    collect_for_task,
    gradient_steps,
    pearl_losses_fn,
    pearl_networks,
)
from metarl_jax.envs import make_env

flags.DEFINE_string("pearl_env", "cheetah_dir", "pearl: environment.")
flags.DEFINE_integer(
    "pearl_grad_steps", None, "pearl: gradient steps per timed call (200; on a CPU 50)."
)
FLAGS = flags.FLAGS


def run() -> None:
    print(f"machine: {machine_description()}")
    size = sizes(
        {"pearl_grad_steps": 200, "repeats": 5, "sweep_members": 8},
        on_cpu={"pearl_grad_steps": 50, "repeats": 2, "sweep_members": 1},
    )
    env = make_env(FLAGS.pearl_env, physics="mjx")
    grad_steps, repeats = size["pearl_grad_steps"], size["repeats"]
    config = PearlConfig(
        horizon=env.horizon, grad_steps=grad_steps, replay_capacity=20_000, num_eval_tasks=2
    )
    algorithm = make_pearl(config, env)
    unit_env = acting_env(env)
    networks = pearl_networks(config, unit_env)
    optimizer = optax.adam(config.sac_lr)
    losses = pearl_losses_fn(config, unit_env, networks)
    for_task = functools.partial(collect_for_task, config, unit_env, networks)
    collected = config.num_tasks_sample * (config.prior_steps + config.posterior_steps)
    print(
        f"PEARL on {env.name} (horizon {env.horizon}): actor/critic {config.hidden_sizes}, encoder "
        f"{config.encoder_hidden_sizes}, latent {config.latent_size}, meta-batch "
        f"{config.max_meta_batch_size}, batches {config.batch_size}/{config.context_batch_size}; "
        f"{grad_steps} gradient steps and {collected:,} env steps per timed iteration"
    )
    weights = jnp.ones((config.max_meta_batch_size,))
    single = None
    for members in member_counts(size["sweep_members"]):
        member = vmapped_members(members, config.max_meta_batch_size)
        state = jax.block_until_ready(jax.jit(jax.vmap(algorithm.init))(member))

        def gradient_phase(state):
            train_state = (state.params, state.target_critic, state.opt_state)
            return gradient_steps(
                config,
                optimizer,
                losses,
                train_state,
                state.buffers,
                config.num_task_slots,
                weights,
                state.key,
            )

        def collection(state):
            tasks = jax.tree.map(
                lambda x: jnp.resize(x, (config.num_tasks_sample, *x.shape[1:])),
                jax.vmap(env.task_space.sample)(jax.random.split(state.key, 2)),
            )
            keys = jax.random.split(state.key, config.num_tasks_sample)
            return jax.vmap(for_task, in_axes=(None, 0, 0))(state.params, tasks, keys)

        figures = {}
        for name, fn in (
            ("gradient steps", gradient_phase),
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
