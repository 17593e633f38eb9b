"""Soft actor-critic maths: tanh-Gaussian policy, twin-Q targets and losses, Polyak averaging.

The formulas follow Haarnoja et al. 2018 (SAC v2: twin Q networks with target Q networks and an
optional learned temperature). PEARL's oyster implementation fixes alpha at 1 and scales rewards
by 5 instead of tuning the temperature; both conventions are expressible here.
"""

import math

import jax
import jax.numpy as jnp

_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def tanh_gaussian_log_prob(mean: jax.Array, log_std: jax.Array, pre_tanh: jax.Array) -> jax.Array:
    """log p(tanh(u)) for u ~ N(mean, exp(log_std)), summed over the last axis."""
    z = (pre_tanh - mean) * jnp.exp(-log_std)
    gaussian = -0.5 * jnp.square(z) - log_std - _HALF_LOG_2PI
    # log(1 - tanh(u)^2) without cancellation for large |u|.
    log_det = 2.0 * (_LOG_2 - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))
    return jnp.sum(gaussian - log_det, axis=-1)


def tanh_gaussian_sample(
    key: jax.Array, mean: jax.Array, log_std: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """A reparameterized action tanh(mean + std * eps) and its log-probability."""
    pre_tanh = mean + jnp.exp(log_std) * jax.random.normal(key, jnp.shape(mean), jnp.float32)
    return jnp.tanh(pre_tanh), tanh_gaussian_log_prob(mean, log_std, pre_tanh)


def tanh_gaussian_mode(mean: jax.Array) -> jax.Array:
    """The deterministic action tanh(mean)."""
    return jnp.tanh(mean)


def soft_q_target(
    reward: jax.Array,
    done: jax.Array,
    next_q1: jax.Array,
    next_q2: jax.Array,
    next_log_prob: jax.Array,
    *,
    gamma: float,
    reward_scale: float,
    alpha: float | jax.Array,
) -> jax.Array:
    """reward_scale * r + gamma * (1 - done) * (min(Q1', Q2') - alpha * log pi(a'|s')), no grad."""
    soft_value = jnp.minimum(next_q1, next_q2) - alpha * next_log_prob
    return jax.lax.stop_gradient(reward_scale * reward + gamma * (1.0 - done) * soft_value)


def _mean(x: jax.Array, weights: jax.Array | None) -> jax.Array:
    if weights is None:
        return jnp.mean(x)
    return jnp.sum(weights * x) / jnp.maximum(jnp.sum(weights), 1e-8)


def critic_loss(
    q1: jax.Array, q2: jax.Array, target: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
    """The sum of both critics' (optionally weighted) mean squared errors."""
    return _mean(jnp.square(q1 - target), weights) + _mean(jnp.square(q2 - target), weights)


def actor_loss(
    log_prob: jax.Array,
    q1: jax.Array,
    q2: jax.Array,
    alpha: float | jax.Array,
    weights: jax.Array | None = None,
) -> jax.Array:
    """mean(alpha * log pi(a|s) - min(Q1, Q2)), optionally weighted."""
    return _mean(alpha * log_prob - jnp.minimum(q1, q2), weights)


def temperature_loss(
    log_alpha: jax.Array,
    log_prob: jax.Array,
    target_entropy: float,
    weights: jax.Array | None = None,
) -> jax.Array:
    """-mean(log_alpha * (log pi + target_entropy)), the policy term held fixed."""
    return -_mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy), weights)


def polyak_update(target_params, online_params, tau: float | jax.Array):
    """(1 - tau) * target + tau * online, leaf by leaf."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target_params, online_params)


def default_target_entropy(action_size: int) -> float:
    """-|A|, the usual SAC entropy target."""
    return -float(action_size)


def actor_critic_losses(
    actor_apply,
    critic_apply,
    params,
    target_critic,
    batch,
    sample,
    next_key,
    action_key,
    *,
    gamma: float,
    reward_scale: float,
    alpha,
    critic_obs=None,
    policy_obs=None,
    next_obs=None,
    weights=None,
):
    """Twin-Q critic loss and actor loss of one batch (`batch`: obs, actions, rewards, dones,
    next_obs). `sample(actor_params, obs, key) -> (action, log_prob, mean, log_std)`.

    The inputs may differ from the batch's observations (PEARL appends z: with its gradient for
    the critic, detached for the actor and the target). The actor's loss does not reach the
    critic's parameters; `alpha` is used as given (stop its gradient when it is learned).
    Returns (critic_loss, actor_loss, (q1, log_prob, mean, log_std)).
    """
    critic_obs = batch["obs"] if critic_obs is None else critic_obs
    policy_obs = batch["obs"] if policy_obs is None else policy_obs
    next_obs = batch["next_obs"] if next_obs is None else next_obs
    next_action, next_log_prob, _, _ = sample(params["actor"], next_obs, next_key)
    target_q1, target_q2 = critic_apply(target_critic, next_obs, next_action)
    target = soft_q_target(
        batch["rewards"],
        batch["dones"],
        target_q1,
        target_q2,
        next_log_prob,
        gamma=gamma,
        reward_scale=reward_scale,
        alpha=alpha,
    )
    q1, q2 = critic_apply(params["critic"], critic_obs, batch["actions"])
    action, log_prob, mean, log_std = sample(params["actor"], policy_obs, action_key)
    new_q1, new_q2 = critic_apply(jax.lax.stop_gradient(params["critic"]), policy_obs, action)
    return (
        critic_loss(q1, q2, target, weights),
        actor_loss(log_prob, new_q1, new_q2, alpha, weights),
        (q1, log_prob, mean, log_std),
    )
