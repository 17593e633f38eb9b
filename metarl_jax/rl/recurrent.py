"""Recurrent agents over trials (RL²): collection and backpropagation through time.

A trial is `episodes_per_trial` consecutive episodes of one task. The agent reads, at every step,
[observation, previous action, previous reward, previous done] and keeps its recurrent state
across the episodes of a trial; every trial starts from the zero state. At the first step of an
episode other than the first, "previous" is the last step of the episode before and done is 1.

An episode that ends early (`done`) is frozen until its slot of `horizon` steps ends: those steps
are invalid, and neither the environment, the recurrent state nor the previous-step inputs
change on them. `unroll` applies the same rule, so it reproduces collection exactly.
Arrays are time-major over the whole trial: [episodes_per_trial * horizon, num_trials, ...].
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from metarl_jax.envs import Env
from metarl_jax.nets import GRUCategoricalPolicy, GRUGaussianPolicy, GRUValue, zero_carry
from metarl_jax.rl.distributions import CATEGORICAL, DIAG_GAUSSIAN, Family
from metarl_jax.rl.gru_sequence import fused_unroll
from metarl_jax.rl.rollout import episode_keys


class RecurrentAgent(NamedTuple):
    init: Callable[[jax.Array], dict]  # key -> {"policy": ..., "value": ...}
    step: Callable  # (params, carry, inputs) -> (carry, distribution parameters, value)
    initial_carry: Callable[[tuple[int, ...]], tuple]  # batch shape -> zero carry
    action_features: Callable[[jax.Array], jax.Array]  # action -> its part of the next input
    dist: Family
    input_size: int
    # (params, inputs [T, N, I], valid [T, N], scan_unroll, carry or None) -> (distribution
    # parameters, values):
    # `unroll`'s numbers on valid steps, fused for training (rl.gru_sequence)
    fused_unroll: Callable


class TrialTrajectory(NamedTuple):
    inputs: jax.Array  # [T, N, input_size]: what the agent read
    actions: jax.Array  # [T, N] (discrete) or [T, N, action_size]
    rewards: jax.Array  # [T, N], zero on invalid steps
    valid: jax.Array  # [T, N] float
    log_probs: jax.Array  # [T, N] under the sampling policy
    values: jax.Array  # [T, N] value estimates at collection
    # the recurrent state each step read, (policy, value) layers of [T, N, H] (record_carries)
    carries: tuple | None = None


def make_recurrent_agent(env: Env, hidden_sizes: Sequence[int]) -> RecurrentAgent:
    hidden_sizes = tuple(hidden_sizes)
    if env.discrete:
        policy_net = GRUCategoricalPolicy(env.action_size, hidden_sizes)
        family = CATEGORICAL
        action_features = lambda a: jax.nn.one_hot(a, env.action_size)
    else:
        policy_net = GRUGaussianPolicy(env.action_size, hidden_sizes)
        family = DIAG_GAUSSIAN
        action_features = lambda a: a
    value_net = GRUValue(hidden_sizes)
    input_size = env.obs_size + env.action_size + 2

    def init(key):
        policy_key, value_key = jax.random.split(key)
        carry, inputs = zero_carry(hidden_sizes), jnp.zeros((input_size,))
        return {
            "policy": policy_net.init(policy_key, carry, inputs),
            "value": value_net.init(value_key, carry, inputs),
        }

    def step(params, carry, inputs):
        policy_carry, value_carry = carry
        policy_carry, dist_params = policy_net.apply(params["policy"], policy_carry, inputs)
        value_carry, value = value_net.apply(params["value"], value_carry, inputs)
        return (policy_carry, value_carry), dist_params, value

    def initial_carry(batch_shape):
        return (zero_carry(hidden_sizes, batch_shape), zero_carry(hidden_sizes, batch_shape))

    def unroll_fused(params, inputs, valid, scan_unroll=1, carry=None):
        return fused_unroll(params, inputs, valid, not env.discrete, scan_unroll, carry)

    return RecurrentAgent(
        init, step, initial_carry, action_features, family, input_size, unroll_fused
    )


def _keep_where(mask, new, old):
    """Per batch element: `new` where mask, else `old` (mask has shape [N])."""
    return jax.tree.map(
        lambda n, o: jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o), new, old
    )


def agent_inputs(obs, prev_action_features, prev_reward, prev_done) -> jax.Array:
    """What the agent reads at a step [N, input_size]: [obs, previous action's features,
    previous reward, previous done]."""
    return jnp.concatenate(
        [obs, prev_action_features, prev_reward[:, None], prev_done[:, None]], axis=-1
    )


def rollout_trials(
    env: Env,
    agent: RecurrentAgent,
    params,
    task,
    key: jax.Array,
    num_trials: int,
    episodes_per_trial: int,
    horizon: int,
    record_carries: bool = False,
) -> TrialTrajectory:
    """`num_trials` independent trials of one task, each from the zero recurrent state; with
    `record_carries`, the recurrent state every step read (for truncated BPTT)."""
    action_size = env.action_size
    context = (
        jnp.zeros((num_trials, action_size)),  # previous action's features
        jnp.zeros((num_trials,)),  # previous reward
        jnp.zeros((num_trials,)),  # previous done
    )

    def episode(carry_and_context, episode_key):
        carry, context = carry_and_context
        reset_keys, run_key = episode_keys(episode_key, num_trials)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, task)
        alive = jnp.ones((num_trials,), jnp.bool_)

        def step(state, step_key):
            obs, env_state, alive, carry, (prev_action, prev_reward, prev_done) = state
            inputs = agent_inputs(obs, prev_action, prev_reward, prev_done)
            next_carry, dist_params, value = agent.step(params, carry, inputs)
            action_key, env_key = jax.random.split(step_key)
            action = agent.dist.sample(action_key, dist_params)
            log_prob = agent.dist.log_prob(dist_params, action)
            next_obs, next_env_state, reward, done = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(env_key, num_trials), env_state, action, task
            )
            valid = alive.astype(jnp.float32)
            next_context = (agent.action_features(action), reward, done.astype(jnp.float32))
            kept = _keep_where(
                alive,
                (next_obs, next_env_state, next_carry, next_context),
                (obs, env_state, carry, (prev_action, prev_reward, prev_done)),
            )
            out = TrialTrajectory(
                inputs,
                action,
                reward * valid,
                valid,
                log_prob,
                value,
                carry if record_carries else None,
            )
            return (*kept[:2], alive & ~done, *kept[2:]), out

        state = (obs, env_state, alive, carry, context)
        state, out = jax.lax.scan(step, state, jax.random.split(run_key, horizon))
        *_, carry, (prev_action, prev_reward, _) = state
        return (carry, (prev_action, prev_reward, jnp.ones((num_trials,)))), out

    start = (agent.initial_carry((num_trials,)), context)
    _, trajectory = jax.lax.scan(episode, start, jax.random.split(key, episodes_per_trial))
    return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), trajectory)


def unroll(
    agent: RecurrentAgent, params, inputs: jax.Array, valid: jax.Array, scan_unroll=1, carry=None
):
    """Distribution parameters and values along trials [T, N, ...], from the zero state (or from
    `carry`, the agent's (policy, value) state for each of the N rows)."""

    def step(carry, x):
        step_inputs, step_valid = x
        next_carry, dist_params, value = agent.step(params, carry, step_inputs)
        return _keep_where(step_valid > 0, next_carry, carry), (dist_params, value)

    if carry is None:
        carry = agent.initial_carry(inputs.shape[1:2])
    return jax.lax.scan(step, carry, (inputs, valid), unroll=scan_unroll)[1]


def windowed(x: jax.Array, window: int) -> jax.Array:
    """[T, N, ...] -> [window, (T / window) * N, ...]: each window of steps its own rows."""
    steps, rows = x.shape[:2]
    x = x.reshape(steps // window, window, rows, *x.shape[2:])
    return jnp.swapaxes(x, 0, 1).reshape(window, -1, *x.shape[3:])


def unwindowed(x: jax.Array, steps: int) -> jax.Array:
    """The inverse of `windowed`: [window, (T / window) * N, ...] -> [T, N, ...]."""
    window = x.shape[0]
    x = x.reshape(window, steps // window, -1, *x.shape[2:])
    return jnp.swapaxes(x, 0, 1).reshape(steps, -1, *x.shape[3:])


def episode_returns_per_trial(trajectory: TrialTrajectory, episodes_per_trial: int) -> jax.Array:
    """Undiscounted return of each episode of each trial, shape [episodes_per_trial, N]."""
    rewards = trajectory.rewards
    return rewards.reshape(episodes_per_trial, -1, *rewards.shape[1:]).sum(axis=1)
