"""PEARL's context encoders and the Gaussian maths on their per-transition factors.

Two posterior families over the latent task variable z, both a product of per-transition factors
with N(0, I) (or with nothing, for oyster's diagonal family):
- diagonal (PEARL, oyster): each transition gives an axis-aligned Gaussian factor (means,
  variances) [N, L]; the posterior is their product (for a deterministic z, the mean of the factor
  means), described by (mean [L], variances [L]).
- rank_one: each transition gives one linear-Gaussian observation of z, u·z ≈ c with unit noise
  (directions u [N, L], values c [N]); with the prior N(0, I) the posterior precision is
  I + Σ u uᵀ and its information vector Σ c u, so evidence along any direction of z-space adds up
  (the diagonal family can only add it along the axes). Described by (mean [L], the lower Cholesky
  factor of the precision [L, L]).
`sample_latent`, `kl_to_standard_normal` and `latent_variances` take either description (told apart
by the second part's rank). Contexts have a static number of transitions N; `weights` (0/1 over N)
masks out the padding.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

MIN_VARIANCE = 1e-7


def _per_transition_mlp(context, hidden_sizes: Sequence[int], out_size: int):
    """A relu MLP applied to each transition (called inside a module's compact __call__)."""
    x = context
    for width in hidden_sizes:
        x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(out_size)(x)


class ContextEncoder(nn.Module):
    """Per-transition Gaussian factors: context [..., N, D] -> (means, variances) [..., N, L]."""

    latent_size: int
    hidden_sizes: Sequence[int] = (200, 200, 200)

    @nn.compact
    def __call__(self, context):
        out = _per_transition_mlp(context, self.hidden_sizes, 2 * self.latent_size)
        means, raw = jnp.split(out, 2, axis=-1)
        return means, jnp.maximum(nn.softplus(raw), MIN_VARIANCE)


class RankOneContextEncoder(nn.Module):
    """Per-transition linear-Gaussian observations of z: context [..., N, D] -> (directions
    [..., N, L], values [..., N])."""

    latent_size: int
    hidden_sizes: Sequence[int] = (200, 200, 200)

    @nn.compact
    def __call__(self, context):
        out = _per_transition_mlp(context, self.hidden_sizes, self.latent_size + 1)
        return out[..., : self.latent_size], out[..., self.latent_size]


def rank_one_posterior(directions, values, weights=None):
    """N(0, I) times the observations u_n·z ≈ c_n (unit noise) over axis -2 of `directions`
    [..., N, L]: (mean [..., L], lower Cholesky factor of the precision [..., L, L]). Masked
    observations count for nothing; an all-masked context gives N(0, I)."""
    if weights is None:
        weights = jnp.ones(directions.shape[:-1], directions.dtype)
    keep = jnp.asarray(weights, directions.dtype) > 0
    kept = jnp.where(keep[..., None], directions, 0.0)
    values = jnp.where(keep, values, 0.0)
    identity = jnp.eye(directions.shape[-1], dtype=directions.dtype)
    precision = identity + jnp.einsum("...ni,...nj->...ij", kept, kept)
    information = jnp.einsum("...ni,...n->...i", kept, values)
    cholesky = jnp.linalg.cholesky(precision)
    half = solve_triangular(cholesky, information[..., None], lower=True)
    mean = solve_triangular(cholesky, half, lower=True, trans=1)[..., 0]
    return mean, cholesky


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


def _is_precision_cholesky(mean, spread) -> bool:
    return spread.ndim == mean.ndim + 1


def _inverse_cholesky(cholesky):
    """C⁻¹ for the lower Cholesky factor C of a precision (its covariance is C⁻ᵀ C⁻¹)."""
    identity = jnp.broadcast_to(jnp.eye(cholesky.shape[-1], dtype=cholesky.dtype), cholesky.shape)
    return solve_triangular(cholesky, identity, lower=True)


def kl_to_standard_normal(mean, spread):
    """KL(q || N(0, I)) for q = N(mean, diag variances) or N(mean, (C Cᵀ)⁻¹) given C [..., L, L]."""
    if _is_precision_cholesky(mean, spread):
        diagonal = jnp.diagonal(spread, axis1=-2, axis2=-1)
        trace = jnp.sum(_inverse_cholesky(spread) ** 2, axis=(-2, -1))
        log_det_precision = 2.0 * jnp.sum(jnp.log(diagonal), axis=-1)
        return 0.5 * (trace + jnp.sum(mean**2, -1) - mean.shape[-1] + log_det_precision)
    return 0.5 * jnp.sum(spread + mean**2 - 1.0 - jnp.log(spread), axis=-1)


def sample_latent(key, mean, spread):
    """Reparameterised sample: mean + sqrt(variances) * eps, or mean + C⁻ᵀ eps (covariance
    C⁻ᵀ C⁻¹ = (C Cᵀ)⁻¹) for a precision's Cholesky factor C."""
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    if _is_precision_cholesky(mean, spread):
        return mean + solve_triangular(spread, eps[..., None], lower=True, trans=1)[..., 0]
    return mean + jnp.sqrt(spread) * eps


def latent_variances(mean, spread):
    """The marginal variances [..., L] of either description."""
    if _is_precision_cholesky(mean, spread):
        return jnp.sum(_inverse_cholesky(spread) ** 2, axis=-2)
    return spread


class RewardDecoder(nn.Module):
    """Predicts a transition's reward from (s, a, z): relu MLP -> scalar [...]."""

    hidden_sizes: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, obs, action, latent):
        x = jnp.concatenate([obs, action, latent], axis=-1)
        for width in self.hidden_sizes:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(1)(x)[..., 0]
