"""Collecting episodes: a `lax.scan` over time of a vmapped batch of episodes of one task.

An episode that reaches `done` is frozen: its later steps are marked invalid and carry zero
reward. Arrays are time-major, shape [horizon, num_episodes, ...].
"""

from typing import NamedTuple

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


def rollout(
    env: Env,
    policy: Policy,
    params,
    task,
    key: jax.Array,
    num_episodes: int,
    horizon: int,
) -> Trajectory:
    reset_key, run_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(reset_key, num_episodes), task
    )
    alive = jnp.ones((num_episodes,), jnp.bool_)

    def step(carry, step_key):
        obs, state, alive = carry
        action_key, env_key = jax.random.split(step_key)
        dist_params = policy.apply(params, obs)
        action = policy.dist.sample(action_key, dist_params)
        log_prob = policy.dist.log_prob(dist_params, action)
        next_obs, next_state, reward, done = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(env_key, num_episodes), state, action, task
        )
        keep = lambda new, old: jnp.where(
            alive.reshape(alive.shape + (1,) * (new.ndim - 1)), new, old
        )
        next_state = jax.tree.map(keep, next_state, state)
        next_obs = keep(next_obs, obs)
        valid = alive.astype(jnp.float32)
        out = Trajectory(obs, action, reward * valid, valid, log_prob)
        return (next_obs, next_state, alive & ~done), out

    _, trajectory = jax.lax.scan(step, (obs, state, alive), jax.random.split(run_key, horizon))
    return trajectory


def episode_returns(trajectory: Trajectory) -> jax.Array:
    """Undiscounted return of each episode, shape [N]."""
    return jnp.sum(trajectory.rewards, axis=0)
