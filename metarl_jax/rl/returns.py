"""Discounted returns and generalized advantage estimation over time-major, masked batches.

Episodes end at their last valid step or at the horizon; both are treated as terminal (value 0
beyond), as in the reference MAML implementations.
"""

import jax
import jax.numpy as jnp


def discounted_returns(rewards: jax.Array, valid: jax.Array, gamma: float) -> jax.Array:
    """R_t = r_t + gamma * R_{t+1}, zero outside valid steps. Shapes [T, ...]."""

    def backward(next_return, step):
        reward, is_valid = step
        ret = (reward + gamma * next_return) * is_valid
        return ret, ret

    _, returns = jax.lax.scan(backward, jnp.zeros_like(rewards[0]), (rewards, valid), reverse=True)
    return returns


def gae(
    rewards: jax.Array, values: jax.Array, valid: jax.Array, gamma: float, lam: float
) -> jax.Array:
    """Generalized advantage estimates; with lam = 1 they equal discounted returns minus values."""
    next_values = jnp.concatenate([values[1:] * valid[1:], jnp.zeros_like(values[:1])])
    deltas = (rewards + gamma * next_values - values) * valid
    next_valid = jnp.concatenate([valid[1:], jnp.zeros_like(valid[:1])])

    def backward(next_advantage, step):
        delta, is_valid, continues = step
        advantage = (delta + gamma * lam * continues * next_advantage) * is_valid
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(rewards[0]), (deltas, valid, next_valid), reverse=True
    )
    return advantages


def masked_mean(x: jax.Array, valid: jax.Array) -> jax.Array:
    return jnp.sum(x * valid) / jnp.maximum(jnp.sum(valid), 1.0)


def normalize(x: jax.Array, valid: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Standardize over valid entries; invalid entries become 0."""
    mean = masked_mean(x, valid)
    std = jnp.sqrt(masked_mean((x - mean) ** 2, valid))
    return (x - mean) / (std + eps) * valid


def trial_gae(
    rewards: jax.Array, values: jax.Array, valid: jax.Array, gamma: float, lam: float
) -> jax.Array:
    """GAE over a whole trial: episode boundaries do not cut it, invalid steps are skipped.

    An invalid step (a frozen, ended episode) passes the next valid step's value and advantage
    straight through, so the return flows from one episode into the next; the trial's end is
    terminal. Shapes [T, ...].
    """

    def backward(carry, step):
        next_value, next_advantage = carry
        reward, value, is_valid = step
        delta = reward + gamma * next_value - value
        advantage = delta + gamma * lam * next_advantage
        keep = is_valid > 0
        carry = (jnp.where(keep, value, next_value), jnp.where(keep, advantage, next_advantage))
        return carry, advantage * is_valid

    zeros = jnp.zeros_like(rewards[0])
    _, advantages = jax.lax.scan(backward, (zeros, zeros), (rewards, values, valid), reverse=True)
    return advantages
