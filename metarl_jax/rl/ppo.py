"""PPO's clipped surrogate."""

import jax
import jax.numpy as jnp

from metarl_jax.rl.returns import masked_mean


def clipped_surrogate_loss(
    log_ratio: jax.Array, advantages: jax.Array, valid: jax.Array, clip: float
) -> jax.Array:
    """-E[min(r A, clip(r, 1-eps, 1+eps) A)] with r = exp(log_ratio)."""
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantages
    return -masked_mean(jnp.minimum(unclipped, clipped), valid)
