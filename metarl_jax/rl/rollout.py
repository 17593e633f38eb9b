"""Collecting episodes: a `lax.scan` over time of a vmapped batch of episodes of one task.

An episode that reaches `done` is frozen: its later steps are marked invalid and carry zero
reward. Arrays are time-major, shape [horizon, num_episodes, ...].
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metarl_jax.envs import Env
from metarl_jax.rl.policy import Policy


class Trajectory(NamedTuple):
    obs: jax.Array  # [T, N, obs_size]
    actions: jax.Array  # [T, N] (discrete) or [T, N, action_size]
    rewards: jax.Array  # [T, N]
    valid: jax.Array  # [T, N] float: 1 while the episode is running
    log_probs: jax.Array  # [T, N] log-prob of the action under the sampling policy


class Transitions(NamedTuple):
    """What an off-policy learner stores: fields [T, N, ...]."""

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_obs: jax.Array
    dones: jax.Array  # 1.0 on a terminal transition (not on the horizon's cut)
    valid: jax.Array


class OfflineTransitions(NamedTuple):
    """Transitions of an offline data set labelled with their returns (what AWR learns from):
    fields [..., B, ...]."""

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    returns: jax.Array  # discounted Monte-Carlo return from this step to the episode's end


class Step(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array  # zero on frozen steps
    next_obs: jax.Array
    done: jax.Array
    valid: jax.Array
    extras: Any  # what the acting function returned beside the action


def episode_keys(key: jax.Array, num_episodes: int) -> tuple[jax.Array, jax.Array]:
    """(the keys `env.reset` gets [N, 2], the key of the steps) of `run_episodes(key, N)`."""
    reset_key, run_key = jax.random.split(key)
    return jax.random.split(reset_key, num_episodes), run_key


def run_episodes(
    env: Env,
    act: Callable[[jax.Array, jax.Array], tuple[jax.Array, Any]],
    task,
    key: jax.Array,
    num_episodes: int,
    horizon: int,
) -> Step:
    """`num_episodes` episodes of one task; `act(key, obs [N, obs]) -> (actions [N, ...], extras)`.

    Returns a `Step` of time-major arrays [T, N, ...].
    """
    reset_keys, run_key = episode_keys(key, num_episodes)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, task)
    alive = jnp.ones((num_episodes,), jnp.bool_)

    def step(carry, step_key):
        obs, state, alive = carry
        action_key, env_key = jax.random.split(step_key)
        action, extras = act(action_key, obs)
        next_obs, next_state, reward, done = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(env_key, num_episodes), state, action, task
        )
        keep = lambda new, old: jnp.where(
            alive.reshape(alive.shape + (1,) * (new.ndim - 1)), new, old
        )
        valid = alive.astype(jnp.float32)
        out = Step(obs, action, reward * valid, next_obs, done.astype(jnp.float32), valid, extras)
        next_state = jax.tree.map(keep, next_state, state)
        return (keep(next_obs, obs), next_state, alive & ~done), out

    _, steps = jax.lax.scan(step, (obs, state, alive), jax.random.split(run_key, horizon))
    return steps


def rollout(
    env: Env,
    policy: Policy,
    params,
    task,
    key: jax.Array,
    num_episodes: int,
    horizon: int,
) -> Trajectory:
    def act(action_key, obs):
        dist_params = policy.apply(params, obs)
        action = policy.dist.sample(action_key, dist_params)
        return action, policy.dist.log_prob(dist_params, action)

    steps = run_episodes(env, act, task, key, num_episodes, horizon)
    return Trajectory(steps.obs, steps.action, steps.reward, steps.valid, steps.extras)


def collect_transitions(
    env: Env,
    act: Callable[[jax.Array, jax.Array], jax.Array],
    task,
    key: jax.Array,
    num_episodes: int,
    horizon: int,
) -> Transitions:
    """Episodes as transitions for a replay buffer; `act(key, obs [N, obs]) -> actions`."""
    steps = run_episodes(env, lambda k, o: (act(k, o), ()), task, key, num_episodes, horizon)
    return Transitions(
        steps.obs, steps.action, steps.reward, steps.next_obs, steps.done, steps.valid
    )


def episode_returns(trajectory: Trajectory | Transitions) -> jax.Array:
    """Undiscounted return of each episode, shape [N]."""
    return jnp.sum(trajectory.rewards, axis=0)
