"""MACAW's losses (Mitchell et al. 2021): advantage-weighted regression, the advantage head, Monte
Carlo value regression, and one inner SGD step with learned per-parameter learning rates.

Advantages are R - V with R the Monte-Carlo return. `weights` (0/1, same shape as the losses)
masks out padding. The macaw repository by default also standardises the advantages over the
batch before dividing by the temperature; pass standardised advantages to get that.
"""

import math

import jax
import jax.numpy as jnp

from metarl_jax.rl.returns import masked_mean

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _mean(x: jax.Array, weights: jax.Array | None) -> jax.Array:
    return jnp.mean(x) if weights is None else masked_mean(x, weights)


def awr_weights(
    advantages: jax.Array, temperature: float | jax.Array, max_weight: float | jax.Array = 20.0
) -> jax.Array:
    """stop_gradient(min(exp(A / T), max_weight)), clipped before the exp so it cannot overflow."""
    clipped = jnp.minimum(advantages / temperature, jnp.log(max_weight))
    return jax.lax.stop_gradient(jnp.exp(clipped))


def awr_policy_loss(
    log_probs: jax.Array,
    advantages: jax.Array,
    temperature: float | jax.Array,
    max_weight: float | jax.Array = 20.0,
    weights: jax.Array | None = None,
) -> jax.Array:
    """mean(-log pi(a|s) * awr_weights(A)), optionally weighted."""
    return _mean(-log_probs * awr_weights(advantages, temperature, max_weight), weights)


def advantage_head_loss(
    predicted_advantages: jax.Array,
    mc_returns: jax.Array,
    values: jax.Array,
    weights: jax.Array | None = None,
) -> jax.Array:
    """mean((A_pred - (R - V))^2) with the target R - V held fixed."""
    target = jax.lax.stop_gradient(mc_returns - values)
    return _mean(jnp.square(predicted_advantages - target), weights)


def value_regression_loss(
    values: jax.Array, mc_returns: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
    """mean((V - R)^2), the bootstrap-free regression onto Monte-Carlo returns."""
    return _mean(jnp.square(values - jax.lax.stop_gradient(mc_returns)), weights)


def init_inner_lrs(adapted, value: float = 1e-3):
    """One learning rate per adapted entry, all `value`, shaped like `adapted`."""
    return jax.tree.map(lambda leaf: jnp.full_like(leaf, value), adapted)


def inner_sgd_step(loss_fn, adapted, fixed, inner_lrs):
    """adapted - inner_lrs * grad(loss_fn)(adapted, fixed), differentiable in all three.

    Each leaf of `inner_lrs` broadcasts against its leaf of `adapted`: a scalar per tensor, as in
    the macaw repository (which learns softplus-parameterised rates), works as well as one per
    entry.
    """
    grads = jax.grad(loss_fn)(adapted, fixed)
    return jax.tree.map(lambda p, g, lr: p - lr * g, adapted, grads, inner_lrs)


def fixed_std_gaussian_log_prob(
    mean: jax.Array, actions: jax.Array, std: float | jax.Array
) -> jax.Array:
    """log N(actions; tanh(mean), std^2), summed over the last axis (MACAW's policy, std 0.2)."""
    z = (actions - jnp.tanh(mean)) / std
    return jnp.sum(-0.5 * jnp.square(z) - jnp.log(std) - _HALF_LOG_2PI, axis=-1)
