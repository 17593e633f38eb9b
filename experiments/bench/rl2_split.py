"""What an RL² iteration spends its time on: the trial collection alone, the PPO update alone (the
batch built from the collected trials, then every epoch), and the whole compiled iteration, for one
sweep member and for several vmapped in one call. Shared by rl2_bandit and rl2_cheetah.
"""

import functools

import jax
import jax.numpy as jnp
from absl import flags

from experiments.app_plumbing import UsageError
from experiments.bench.measure import compiled_seconds, member_counts, vmapped_members
from metarl_jax.algos import Rl2Config, make_rl2
from metarl_jax.algos.config_checks import ConfigError
from metarl_jax.algos.rl2 import (
    RECURRENT_UNROLLS,
    collect_tasks,
    ppo_batch,
    ppo_update,
    rl2_agent,
    rl2_optimizer,
)
from metarl_jax.algos.settings import HELP, settings_of
from metarl_jax.algos.task_axis import TaskAxis

# The run flags of the same names, with Rl2Config's defaults and help.
_SETTINGS = {field.name: field for field in settings_of(Rl2Config)}
flags.DEFINE_enum(
    "recurrent_unroll",
    _SETTINGS["recurrent_unroll"].default,
    list(RECURRENT_UNROLLS),
    "rl2_bandit, rl2_cheetah: " + _SETTINGS["recurrent_unroll"].metadata[HELP],
)
flags.DEFINE_integer(
    "bptt_window",
    _SETTINGS["bptt_window"].default,
    "rl2_bandit, rl2_cheetah: " + _SETTINGS["bptt_window"].metadata[HELP],
)
FLAGS = flags.FLAGS


def rl2_config(**values) -> Rl2Config:
    """The benchmark's config with --recurrent_unroll and --bptt_window; a failed check is one
    usage line naming the flag."""
    try:
        return Rl2Config(
            **values, recurrent_unroll=FLAGS.recurrent_unroll, bptt_window=FLAGS.bptt_window
        )
    except ConfigError as error:
        raise UsageError(f"--{error}") from None


def measure_split(prefix: str, env, config, sweep_members: int, repeats: int) -> dict:
    """Prints one line per member count and returns the single member's milliseconds."""
    agent, optimizer = rl2_agent(config, env), rl2_optimizer(config)
    algorithm = make_rl2(config, env)
    num_tasks = config.max_meta_batch_size
    axis = TaskAxis(num_tasks)
    steps = num_tasks * config.trials_per_task * config.episodes_per_trial * config.horizon
    active = jnp.ones((num_tasks,))
    single = {}
    for members in member_counts(sweep_members):
        member = vmapped_members(members, num_tasks)
        state = jax.jit(jax.vmap(algorithm.init))(member)
        tasks = jax.vmap(lambda k: jax.vmap(env.task_space.sample)(jax.random.split(k, num_tasks)))(
            jax.random.split(jax.random.PRNGKey(1), members)
        )
        keys = jax.random.split(jax.random.PRNGKey(2), members * num_tasks).reshape(
            members, num_tasks, -1
        )
        collect = jax.jit(jax.vmap(functools.partial(collect_tasks, config, env, agent)))
        _, collect_s = compiled_seconds(collect, state.params, tasks, keys, repeats=repeats)
        trajectories = collect(state.params, tasks, keys)
        update_keys = jax.random.split(jax.random.PRNGKey(3), members)

        @jax.vmap
        def update(params, opt_state, trajectories, key):
            batch = ppo_batch(config, trajectories, active, axis)
            return ppo_update(config, agent, optimizer, params, opt_state, batch, active, key, axis)

        update_compile_s, update_s = compiled_seconds(
            jax.jit(update),
            state.params,
            state.opt_state,
            trajectories,
            update_keys,
            repeats=repeats,
        )
        compile_s, iteration_s = compiled_seconds(
            jax.jit(jax.vmap(algorithm.update)), state, member, repeats=repeats
        )
        print(
            f"{members} member(s) in one call: collection {collect_s * 1e3:.1f} ms, PPO update "
            f"{update_s * 1e3:.1f} ms, iteration {iteration_s * 1e3:.1f} ms = "
            f"{iteration_s / collect_s:.1f}x the collection (compile: update "
            f"{update_compile_s:.1f} s, iteration {compile_s:.1f} s); "
            f"{members * steps / iteration_s:,.0f} env steps/s",
            flush=True,
        )
        if members == 1:
            single = {"collect": collect_s, "update": update_s, "iteration": iteration_s}
        else:
            print(f"{prefix}_collect_ms_{members}_members: {collect_s * 1e3:.2f}")
            print(f"{prefix}_update_ms_{members}_members: {update_s * 1e3:.2f}")
            print(f"{prefix}_iteration_ms_{members}_members: {iteration_s * 1e3:.2f}")
    for name, seconds in single.items():
        print(f"{prefix}_{name}_ms: {seconds * 1e3:.2f}")
    print(f"{prefix}_iteration_over_collect: {single['iteration'] / single['collect']:.2f}")
    return single
