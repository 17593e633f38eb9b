"""PEARL's context encoder and the Gaussian maths on its per-transition factors.

The encoder maps each transition of a context to a Gaussian factor over the latent task variable z;
the posterior is their product (or, for a deterministic z, the mean of the factor means). Contexts
have a static number of transitions N; `weights` (0/1 over N) masks out the padding.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

MIN_VARIANCE = 1e-7


class ContextEncoder(nn.Module):
    """Per-transition Gaussian factors: context [..., N, D] -> (means, variances) [..., N, L]."""

    latent_size: int
    hidden_sizes: Sequence[int] = (200, 200, 200)

    @nn.compact
    def __call__(self, context):
        x = context
        for width in self.hidden_sizes:
            x = nn.relu(nn.Dense(width)(x))
        means, raw = jnp.split(nn.Dense(2 * self.latent_size)(x), 2, axis=-1)
        return means, jnp.maximum(nn.softplus(raw), MIN_VARIANCE)


def _masked(means, variances, weights):
    """Weights [..., N, 1], with masked-out factors replaced by N(0, 1) so they cannot leak NaN."""
    if weights is None:
        weights = jnp.ones(means.shape[:-1], means.dtype)
    weights = jnp.asarray(weights, means.dtype)[..., None]
    keep = weights > 0
    return weights, jnp.where(keep, means, 0.0), jnp.where(keep, variances, 1.0)


def product_of_gaussians(means, variances, weights=None, include_prior=False):
    """Product of diagonal Gaussian factors over axis -2: [..., N, L] -> (mean, variance) [..., L].

    `include_prior` multiplies in N(0, I) as one more factor; without it an all-masked context
    gives N(0, I) by definition.
    """
    weights, means, variances = _masked(means, variances, weights)
    precision = jnp.sum(weights / variances, axis=-2)
    weighted_means = jnp.sum(weights * means / variances, axis=-2)
    if include_prior:
        precision = precision + 1.0
    empty = jnp.sum(weights, axis=-2) == 0
    variance = 1.0 / jnp.where(empty, 1.0, precision)
    return jnp.where(empty, 0.0, variance * weighted_means), variance


def mean_of_factors(means, weights=None):
    """Masked mean of the factor means over axis -2 (PEARL's deterministic z); 0 if all masked."""
    weights, means, _ = _masked(means, means, weights)
    count = jnp.sum(weights, axis=-2)
    return jnp.sum(weights * means, axis=-2) / jnp.where(count == 0, 1.0, count)


def kl_to_standard_normal(mean, variance):
    """KL(N(mean, diag variance) || N(0, I)), summed over the last axis."""
    return 0.5 * jnp.sum(variance + mean**2 - 1.0 - jnp.log(variance), axis=-1)


def sample_latent(key, mean, variance):
    """Reparameterised sample mean + sqrt(variance) * eps."""
    return mean + jnp.sqrt(variance) * jax.random.normal(key, mean.shape, mean.dtype)


class RewardDecoder(nn.Module):
    """Predicts a transition's reward from (s, a, z): relu MLP -> scalar [...]."""

    hidden_sizes: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, obs, action, latent):
        x = jnp.concatenate([obs, action, latent], axis=-1)
        for width in self.hidden_sizes:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(1)(x)[..., 0]
